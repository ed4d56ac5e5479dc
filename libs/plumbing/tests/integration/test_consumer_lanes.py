"""Consumer lanes on real Kafka (plumbing.worker.ConsumerLanes): loops of one consumer group, each subscribed to
its own topics, share the work without consuming anything twice, and a record stuck on one lane does not hold up
the records of another (the exchange consumer's inboxes)."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from plumbing.kafka import ConsumerLoop, RawRecord, TopicSpec, ensure_topics, make_producer, wait_until
from plumbing.worker import ConsumerLanes

pytestmark = pytest.mark.integration


@pytest.fixture()
def bootstrap(kafka: Any) -> str:
    return kafka.env["KAFKA_BOOTSTRAP_SERVERS"]


@pytest.fixture()
def producer(bootstrap: str) -> Iterator[Any]:
    producer = make_producer(bootstrap)
    yield producer
    producer.close()


def raw_loop(topic: str, group: str, bootstrap: str, handler: Any) -> ConsumerLoop:
    return ConsumerLoop(
        [], group, {}, bootstrap, raw_handlers={topic: handler},
        session_timeout_ms=6000, heartbeat_interval_ms=1000, backoff_s=0.05, max_backoff_s=0.2,
    )  # fmt: skip


def test_a_record_stuck_on_one_lane_does_not_hold_up_another(bootstrap: str, producer: Any) -> None:
    slow, quick = (f"test.lanes.{uuid.uuid4().hex[:8]}.{name}" for name in ("slow", "quick"))
    ensure_topics(bootstrap, [TopicSpec(slow, 1, 3_600_000), TopicSpec(quick, 1, 3_600_000)])
    released = threading.Event()
    seen: dict[str, list[bytes | None]] = {slow: [], quick: []}

    def stuck_until_released(record: RawRecord) -> None:
        released.wait(60)  # one loop handling both topics would wait here before the quick record
        seen[record.topic].append(record.value)

    def at_once(record: RawRecord) -> None:
        seen[record.topic].append(record.value)

    group = f"lanes-{uuid.uuid4().hex[:6]}"  # one group, as in a service's consumer process
    lanes = ConsumerLanes(
        [raw_loop(slow, group, bootstrap, stuck_until_released), raw_loop(quick, group, bootstrap, at_once)]
    )
    runner = threading.Thread(target=lanes.run, kwargs={"install_signal_handlers": False}, daemon=True)
    runner.start()
    try:
        assert wait_until(lanes.ready.is_set, 60), "the lanes did not all get their topics"
        producer.send(slow, b"form to the busy inbox").get(10)
        producer.send(quick, b"receipt to the other inbox").get(10)
        assert wait_until(lambda: seen[quick] == [b"receipt to the other inbox"], 30)
        assert seen[slow] == []  # still stuck: the quick lane went on without it
        released.set()
        assert wait_until(lambda: seen[slow] == [b"form to the busy inbox"], 30)
        producer.send(quick, b"second receipt").get(10)
        assert wait_until(lambda: len(seen[quick]) == 2, 30)
        assert seen == {
            slow: [b"form to the busy inbox"],
            quick: [b"receipt to the other inbox", b"second receipt"],
        }  # each record once: the group gave each topic to the one lane subscribed to it
    finally:
        released.set()
        lanes.stop()
        runner.join(30)
    assert not runner.is_alive(), "the lanes did not stop"
