"""The exchange service's consumer process (skeleton): applies each identification event once and records it."""

from plumbing.received_events import run_recording_consumer

TOPICS = ("identification.events.v1",)


def main() -> None:
    run_recording_consumer("exchange", TOPICS)


if __name__ == "__main__":
    main()
