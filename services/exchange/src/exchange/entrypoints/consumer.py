"""The exchange service's consumer process: `python -m exchange.entrypoints.consumer`.

One consumer group (`exchange`), consumer loops of plumbing.worker.run_consumer, two kinds of records:

- identification and return events (`TOPICS`), each recorded once in the received-events inbox (`handlers`); a
  return stopped is first told to the partners the return's forms went to (service_layer/return_stops.py); an
  adult's consent withdrawn (`identification.person.consent_withdrawn.v1`) is first applied to every record of
  the owner country linked to one of her identification cases, as an officer's notice would be, by the system
  actor `system:exchange-consumer`: the forms that rested on consent restricted, a signed `consent-withdrawn`
  notice to every country that received forms of the record, `exchange.case.consent_withdrawn.v1`
  (service_layer/consent.py; once per withdrawal, the notices keyed by its id; the withdrawal is kept, so a record
  linked to one of those cases later gets it too); a correction of the person
  (`identification.person.corrected.v1`) first marks, on the same records, the forms the country sent that are
  still in force and carry a changed member `correction_due` (service_layer/rectification.py; once per
  correction, its id on the record's `rectifications`; nothing crosses the border). Each is applied before its
  inbox record is written, so a crash in between is completed by the redelivery, which sends nothing twice;
- every configured country's inbox topic (`exchange.inbox.<country>`, `inbox_handlers`): each record is a sealed
  envelope, not a CloudEvent, so it goes unparsed to a raw handler (plumbing.kafka.RawRecord), which calls
  `receiving.receive_envelope(deps, country, token)` for the country the topic belongs to. Each inbox has a
  loop of its own in this process (plumbing.worker.run_consumer's `own_lanes`), so the forms queued for one
  country never delay another's.

What happens to an envelope and its offset (the offset is committed only once the handler returned):

- stored, or a duplicate (a redelivery or a replay: the envelope id was received before, nothing new stored):
  returned, so committed after the store;
- refused for good (`malformed`, `not-addressed-to-us`, `undecryptable`, `forged`, `re-addressed`,
  `invalid-content`, `record-anonymised`: about a record anonymised at the end of its retention period; a value
  that is not ASCII is `malformed`): nothing stored, logged with the reason and the
  routing only (countries, envelope id, topic position), counted (`refused-<reason>`), and committed: no
  poison loop, no DLT
  (replaying a forgery cannot help);
- `inapplicable` (signed and addressed to us, but about a form this country does not hold or cannot change
  now): raised, so retried with back-off and then dead-lettered to `exchange.inbox.<c>.dlt`, for an operator to
  replay (`python -m plumbing.cli.replay_dlt`) once the form it is about has arrived;
- any other failure (Mongo unreachable, a write conflict): raised, retried, then dead-lettered; never
  committed before the store or the dead letter (at least once).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from functools import partial
from typing import Any

from exchange.adapters import received_events
from exchange.adapters.envelope import EnvelopeRefused, routing
from exchange.adapters.kafka_transport import PRODUCER_OPTIONS, inbox_topic, inbox_topic_specs
from exchange.bootstrap import build_runtime
from exchange.service_layer import receiving
from exchange.service_layer.consent import CONSENT_WITHDRAWN_EVENT, apply_consent_withdrawal
from exchange.service_layer.deps import Deps
from exchange.service_layer.rectification import PERSON_CORRECTED, mark_corrections_due
from exchange.service_layer.return_stops import RETURN_STOPPED_EVENT, tell_partners_the_return_stopped
from plumbing import restrictions
from plumbing.inbox import applying
from plumbing.kafka import Handler, Handlers, RawHandler, RawRecord, event_types, load_topics
from plumbing.worker import run_consumer

log = logging.getLogger(__name__)

TOPICS = ("identification.events.v1", "return.events.v1")
# Refusals worth another attempt and then an operator: the envelope is genuine but arrived before what it is about.
RETRIED = frozenset({"inapplicable"})
# What a routing header may show in a log line (it is readable without keys, so anyone could have written it).
_COUNTRY = re.compile(r"^[A-Z]{2}$")
_ENVELOPE_ID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")


def _not_wired() -> Deps:
    raise RuntimeError("the consumer's runtime is wired by main()")


def handlers(database: Any, deps: Callable[[], Deps] = _not_wired) -> Handlers:
    """Every event is recorded in the inbox; a return stopped is first told to the partners, a consent withdrawal
    first applied to the records linked to her identification cases, a correction of the person first marks the
    forms sent about her that carry what changed (`deps`: the process's runtime, whose transport sends the
    forms)."""
    inbox = received_events.inbox(database)
    table: dict[str, Handler] = {
        event_type: inbox.record_once for topic in TOPICS for event_type in event_types(topic)
    }
    table[RETURN_STOPPED_EVENT] = applying(tell_partners_the_return_stopped, inbox.record_once, deps)
    table[CONSENT_WITHDRAWN_EVENT] = applying(apply_consent_withdrawal, inbox.record_once, deps)
    table[PERSON_CORRECTED] = applying(mark_corrections_due, inbox.record_once, deps)
    table[restrictions.EVENT] = applying(restrictions.follow_with, inbox.record_once, deps)
    return table


def inbox_handlers(deps: Deps) -> dict[str, RawHandler]:
    """The raw handler of each configured country's inbox topic."""
    return {
        inbox_topic(country): partial(receive, deps, country) for country in sorted(deps.config.country_codes)
    }


def receive(deps: Deps, country: str, record: RawRecord) -> str:
    """One envelope from `country`'s inbox topic (see the module doc for what is committed when). Returns the
    outcome the consumer loop counts per topic (kafka_consumer_records_total): `stored`, `duplicate` or
    `refused-<reason>`."""
    try:
        token = (record.value or b"").decode("ascii")
    except UnicodeDecodeError:
        token = ""
    try:
        if not token:
            raise EnvelopeRefused("malformed")
        outcome = receiving.receive_envelope(deps, country, token)
    except EnvelopeRefused as refused:
        log.warning(
            "exchange envelope refused",
            extra={"fields": {"reason": refused.reason, **_where(country, record, token)}},
        )
        if refused.reason in RETRIED:
            raise
        return f"refused-{refused.reason}"
    log.info(
        "exchange envelope %s",
        outcome.result,
        extra={
            "fields": {
                **_where(country, record, token),
                "case_id": outcome.case_id,
                "form_id": outcome.form_id,
            }
        },
    )
    return outcome.result


def _where(country: str, record: RawRecord, token: str) -> dict[str, Any]:
    """Routing only: the inbox, the record's position, and the header's countries and envelope id when they have
    the shape of a country code and a UUID (never other text from the wire)."""
    fields: dict[str, Any] = {
        "inbox": country,
        "topic": record.topic,
        "partition": record.partition,
        "offset": record.offset,
    }
    try:
        route = routing(token)
    except EnvelopeRefused:
        return fields
    if _COUNTRY.match(route.sender) and _COUNTRY.match(route.recipient):
        fields.update({"from": route.sender, "to": route.recipient})
    if _ENVELOPE_ID.match(route.envelope_id):
        fields["envelope_id"] = route.envelope_id
    return fields


def main() -> None:
    runtime = build_runtime()  # keys, catalogue, the Kafka transport (receipts go back through it)
    countries = runtime.startup.config.country_codes
    try:
        run_consumer(
            received_events.SERVICE,
            TOPICS,
            partial(handlers, deps=lambda: runtime.deps),
            settings=runtime.startup.settings,
            raw_handlers=inbox_handlers(runtime.deps),
            # Each inbox in a loop of its own: a burst of forms to one country does not hold up the receipts
            # and forms arriving for the others (docs/performance.md, cross-border figure).
            own_lanes=[inbox_topic(country) for country in sorted(countries)],
            # A partner added to config/platform.yaml only gets its inbox topics here, like the declared ones.
            extra_topics=inbox_topic_specs(countries, load_topics()),
            producer_options=PRODUCER_OPTIONS,  # a dead-lettered envelope may be as large as the largest one
            max_attempts=8,  # about 20 s of retries before a dead letter: a Mongo fail-over, not an operator
            max_backoff_s=10.0,
        )
    finally:
        runtime.deps.transport.close()


if __name__ == "__main__":
    main()
