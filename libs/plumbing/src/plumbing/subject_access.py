"""The right of access (GDPR Art. 15) in every service: `GET /v1/<service>/subject-access?person_id=&case_id=`.

A service finds its records about one person (its own query: by her identification person id, or by one of her
identification case ids where its records name only the case), hands them here as `SubjectRecord`s in the view its
own API gives its readers, and gets back the section of the answer (docs/data-protection.md, "Right of access"):
the records, every access-log entry of the caller's country naming her or any of them (plumbing.audit), and the
countries her data was sent to. `answer` writes the access-log entry of this very read first (personal data
leaves only after it is durable), so the section also shows that the request was answered.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import jinja2

from plumbing import audit
from plumbing.access_log import AccessLog, record_for_request
from plumbing.auth import Caller
from plumbing.clock import Clock, rfc3339

RESOURCE_TYPE = "subject-access"


@dataclass(frozen=True)
class SubjectRecord:
    type: str  # person, case, referral, return-case, exchange-case, ...
    id: str
    content: Mapping[str, Any]


def naming(repository: Any, person_id: str, case_ids: Sequence[str], *, case_field: str) -> list[Any]:
    """The records of a scoped repository that name her person id (`person_id`) or one of her identification case
    ids (`case_field`), once each."""
    found = {doc.id: doc for doc in repository.find(person_id=person_id)}
    if case_ids:
        found.update({doc.id: doc for doc in repository.find(**{f"{case_field}__in": list(case_ids)})})
    return list(found.values())


def answer(
    service: str,
    access_log: AccessLog,
    clock: Clock,
    caller: Caller,
    person_id: str,
    case_ids: Sequence[str],
    records: Iterable[SubjectRecord],
    sent_to: Iterable[str] = (),
) -> dict[str, Any]:
    """The section of `service`: logged (every id it names) before it is built. The ids asked about are named only
    when the service holds records of hers (then they are the caller's country's ids): an id of another country
    asked about, which the service does not hold, never enters the country's log (its auditors would read it)."""
    found = list(records)
    named = list(dict.fromkeys([person_id, *case_ids, *(record.id for record in found)])) if found else []
    record_for_request(access_log, RESOURCE_TYPE, named)
    return {
        "service": service,
        "person_id": person_id,
        "generated_at": rfc3339(clock.now()),
        "records": [{"type": r.type, "id": r.id, "content": dict(r.content)} for r in found],
        "access_log": audit.entries_naming(access_log, caller.country, named),
        "sent_to": sorted(set(sent_to)),
    }


def report(
    person_id: str, clock: Clock, sections: Sequence[Mapping[str, Any]], not_deployed: Iterable[str] = ()
) -> dict[str, Any]:
    """The whole answer in one document: every service's section, the countries her data was sent to, and the
    services this deployment does not have (nothing held there)."""
    return {
        "person_id": person_id,
        "generated_at": rfc3339(clock.now()),
        "sections": [dict(section) for section in sections],
        "sent_to": sorted({country for section in sections for country in section.get("sent_to", ())}),
        "not_deployed": sorted(not_deployed),
    }


# A readable rendering for the officer who hands the answer to the person (or her representative). Every value
# is escaped (autoescape): names and free text are shown as written, never interpreted as markup.
_HTML = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Personal data held about {{ r.person_id }}</title>
<style>body{font-family:sans-serif;max-width:60em;margin:auto}dl{margin-left:1em}dt{font-weight:bold}
table{border-collapse:collapse}td,th{border:1px solid #999;padding:2px 6px;text-align:left}</style></head>
<body>
<h1>Personal data held about one person</h1>
<p>Person id {{ r.person_id }}; answered {{ r.generated_at }}.
Sent to: {{ r.sent_to | join(", ") if r.sent_to else "no other country" }}.
{% if r.not_deployed %}Not part of this deployment: {{ r.not_deployed | join(", ") }}.{% endif %}</p>
{% macro value(v) -%}
{%- if v is mapping -%}<dl>{% for k, item in v.items() %}<dt>{{ k }}</dt><dd>{{ value(item) }}</dd>{% endfor %}</dl>
{%- elif v is iterable and v is not string -%}<ul>{% for item in v %}<li>{{ value(item) }}</li>{% endfor %}</ul>
{%- elif v is none -%}&mdash;{%- else -%}{{ v }}{%- endif -%}
{%- endmacro %}
{% for s in r.sections %}
<h2>{{ s.service }}</h2>
{% for rec in s.records %}<h3>{{ rec.type }} {{ rec.id }}</h3>{{ value(rec.content) }}{% else %}<p>Nothing held.</p>{% endfor %}
<h3>Who read it</h3>
<table><tr><th>When</th><th>Who</th><th>Agency</th><th>Why</th><th>What</th></tr>
{% for e in s.access_log %}<tr><td>{{ e.time }}</td><td>{{ e.actor }}</td><td>{{ e.agency }}</td><td>{{ e.purpose }}</td>
<td>{{ e.operation }}</td></tr>{% endfor %}</table>
{% endfor %}
</body></html>
"""


def as_html(answer: Mapping[str, Any]) -> str:
    environment = jinja2.Environment(autoescape=True, undefined=jinja2.StrictUndefined)
    return environment.from_string(_HTML).render(r=answer)
