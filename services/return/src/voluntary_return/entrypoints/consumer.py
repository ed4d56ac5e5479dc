"""The return service's consumer process: `python -m voluntary_return.entrypoints.consumer`.

Every event it receives is recorded once in the inbox (the received-events listing). Two kinds are first applied,
so a crash in between is completed by the redelivery:
- the exchange's events about the return's forms and consent withdrawals, to the return cases that name the
  record (service_layer/border.py: the origin country's case opens, timelines follow what crossed, a withdrawal
  stops the return on both sides);
- identification's `identification.person.consent_withdrawn.v1`, an adult's withdrawal of consent
  (service_layer/withdrawals.py): every running return case of hers in that country stops (`consent_withdrawn`,
  published like every stop), and consent can no longer be recorded for a return of hers there.
Each is applied once per event (a redelivery changes nothing). Running the consumer is
plumbing.worker.run_consumer."""

from functools import cache
from typing import Any

from plumbing import restrictions
from plumbing.inbox import applying
from plumbing.kafka import Handlers, event_types
from plumbing.worker import run_consumer
from voluntary_return.adapters import received_events
from voluntary_return.service_layer.border import CONSENT_WITHDRAWN_EVENT, FOLLOWED, follow_exchange
from voluntary_return.service_layer.deps import Deps
from voluntary_return.service_layer.withdrawals import CONSENT_WITHDRAWN_EVENT as PERSON_CONSENT_WITHDRAWN
from voluntary_return.service_layer.withdrawals import follow_identification

IDENTIFICATION_EVENTS, EXCHANGE_EVENTS = "identification.events.v1", "exchange.events.v1"
TOPICS = (IDENTIFICATION_EVENTS, EXCHANGE_EVENTS)


@cache
def _deps() -> Deps:
    from voluntary_return.bootstrap import build_runtime  # wiring on first use: importing has no effects

    return build_runtime().deps


def handlers(database: Any) -> Handlers:
    inbox = received_events.inbox(database)
    table = {event_type: inbox.record_once for topic in TOPICS for event_type in event_types(topic)}
    followed = applying(follow_exchange, inbox.record_once, _deps)
    withdrawn = applying(follow_identification, inbox.record_once, _deps)
    return {
        **table,
        **{event_type: followed for event_type in (*FOLLOWED, CONSENT_WITHDRAWN_EVENT)},
        PERSON_CONSENT_WITHDRAWN: withdrawn,
        restrictions.EVENT: applying(restrictions.follow_with, inbox.record_once, _deps),
    }


def main() -> None:
    run_consumer(received_events.SERVICE, TOPICS, handlers)


if __name__ == "__main__":
    main()
