"""The referral service's consumer process: `python -m referral.entrypoints.consumer`.

Every identification and return event is recorded once in the inbox (the received-events listing); a
needs-identified event also becomes proposals of referrals for the case manager to confirm, and so does a return's
reception recorded by the origin country (one per reception service asked for; service_layer/proposals.py); a
person-corrected event marks the referrals whose copy it made outdated (service_layer/corrections.py); a
consent-withdrawn event (an adult withdrew her consent) is kept, so that nothing new is proposed or sent for her in
that country (409 `consent_withdrawn`; service_layer/withdrawals.py), and ends every active referral of her
person or cases there, cancelled or revoked with `consent_withdrawn` and the withdrawal on the timeline
(service_layer/referrals.end_on_consent_withdrawn: the transitions of the API's withdrawal, acting as the system).
Each is applied before it is recorded, so a crash in between is completed by the redelivery (once per event).
Running the consumer is plumbing.worker.run_consumer."""

from functools import cache
from typing import Any

from plumbing import restrictions
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
from referral.service_layer.referrals import end_on_consent_withdrawn
from referral.service_layer.withdrawals import CONSENT_WITHDRAWN_EVENT

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
        CONSENT_WITHDRAWN_EVENT: applying(end_on_consent_withdrawn, inbox.record_once, _deps),
        restrictions.EVENT: applying(restrictions.follow_with, inbox.record_once, _deps),
    }


def main() -> None:
    run_consumer(received_events.SERVICE, TOPICS, handlers)


if __name__ == "__main__":
    main()
