"""The referral service's consumer process (skeleton): `python -m referral.entrypoints.consumer`.

What is its own: the topics and the handler table. Running it is plumbing.worker.run_consumer."""

from typing import Any

from plumbing.kafka import Handlers, event_types
from plumbing.worker import run_consumer
from referral.adapters import received_events

TOPICS = ("identification.events.v1",)


def handlers(database: Any) -> Handlers:
    """Every identification event is recorded in the inbox (the skeleton's only effect)."""
    inbox = received_events.inbox(database)
    return {event_type: inbox.record_once for topic in TOPICS for event_type in event_types(topic)}


def main() -> None:
    run_consumer(received_events.SERVICE, TOPICS, handlers)


if __name__ == "__main__":
    main()
