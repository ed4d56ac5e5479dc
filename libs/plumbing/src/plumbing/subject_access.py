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
    """The section of `service`: logged (every id it names) before it is built."""
    found = list(records)
    named = list(dict.fromkeys([person_id, *case_ids, *(record.id for record in found)]))
    record_for_request(access_log, RESOURCE_TYPE, named)
    return {
        "service": service,
        "person_id": person_id,
        "generated_at": rfc3339(clock.now()),
        "records": [{"type": r.type, "id": r.id, "content": dict(r.content)} for r in found],
        "access_log": audit.entries_naming(access_log, caller.country, named),
        "sent_to": sorted(set(sent_to)),
    }
