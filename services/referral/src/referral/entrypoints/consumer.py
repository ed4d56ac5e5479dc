"""The referral service's consumer process: `python -m referral.entrypoints.consumer`.

Every identification and return event is recorded once in the inbox (the received-events listing); a
needs-identified event also becomes proposals of referrals for the case manager to confirm, and so does a return's
reception recorded by the origin country (one per reception service asked for; service_layer/proposals.py); a
person-corrected event marks the referrals whose copy it made outdated (service_layer/corrections.py). Each is
applied before it is recorded, so a crash in between is completed by the redelivery (once per event).
Running the consumer is plumbing.worker.run_consumer."""

from functools import cache
from typing import Any

from plumbing.inbox import applying
from plumbing.kafka import Handlers, event_types
from plumbing.worker import run_consumer
from referral.adapters import received_events
from referral.service_layer.corrections import PERSON_CORRECTED, mark_outdated_copies
from referral.service_layer.deps import Deps
from referral.service_layer.proposals import (
    NEEDS_IDENTIFIED,
    RECEPTION_RECORDED,
    propose_for_reception,
    propose_from_needs,
)

TOPICS = ("identification.events.v1", "return.events.v1")


@cache
def _deps() -> Deps:
    from referral.bootstrap import build_runtime  # wiring on first use: importing this module has no effects

    return build_runtime().deps


def handlers(database: Any) -> Handlers:
    inbox = received_events.inbox(database)
    table = {event_type: inbox.record_once for topic in TOPICS for event_type in event_types(topic)}
    return {
        **table,
        NEEDS_IDENTIFIED: applying(propose_from_needs, inbox.record_once, _deps),
        PERSON_CORRECTED: applying(mark_outdated_copies, inbox.record_once, _deps),
        RECEPTION_RECORDED: applying(propose_for_reception, inbox.record_once, _deps),
    }


def main() -> None:
    run_consumer(received_events.SERVICE, TOPICS, handlers)


if __name__ == "__main__":
    main()
