"""The broker goes down with events pending: nothing is lost, the relay publishes once it is back."""

from __future__ import annotations

import threading
import time
import uuid
from functools import partial
from typing import Any

import pytest
from kafka import KafkaConsumer
from kafka.structs import TopicPartition
from prometheus_client import REGISTRY
from pymongo import MongoClient

from plumbing.events import new_event
from plumbing.inbox import Inbox
from plumbing.kafka import ConsumerLoop, TopicSpec, ensure_topics, make_producer
from plumbing.outbox import Relay, push_events

pytestmark = [pytest.mark.integration, pytest.mark.disruptive]


def closed(case_id: str) -> dict[str, Any]:
    data = {"case_id": case_id, "person_id": str(uuid.uuid4()), "owner_country": "AL", "reason": "referred",
            "final_category": "victim"}  # fmt: skip
    return new_event("identification.case.closed.v1", case_id, data, "/identification")


def until(predicate: Any, timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)


def kafka_failures() -> float:
    return REGISTRY.get_sample_value("outbox_publish_failures_total", {"reason": "kafka"}) or 0.0


def test_broker_outage_keeps_events_pending_and_publishes_them_after_restart(kafka, mongo) -> None:
    if kafka.server is None:
        pytest.skip(
            "KAFKA_BOOTSTRAP_SERVERS names a broker this suite did not start; stopping it would disrupt its "
            "owner (make test and CI start their own broker, and there this test runs)"
        )
    bootstrap = kafka.env["KAFKA_BOOTSTRAP_SERVERS"]
    topic = f"test.outage.{uuid.uuid4().hex[:8]}.v1"
    ensure_topics(bootstrap, [TopicSpec(topic, 3, 3_600_000), TopicSpec(topic + ".dlt", 3, 3_600_000, topic)])
    client: MongoClient = MongoClient(mongo.env["MONGODB_URI"], tz_aware=True)
    db = client[f"outage_{uuid.uuid4().hex[:8]}"]
    cases = db["cases"]
    inbox = Inbox(db["inbox"], "referral.identification-events")
    applied: list[str] = []

    def handler(event: dict[str, Any]) -> None:
        if inbox.record_once(event):
            applied.append(event["id"])

    relay = Relay([cases], partial(make_producer, bootstrap, max_block_ms=2000, request_timeout_ms=2000,
                  delivery_timeout_ms=4000), lambda e: topic, poll_interval_s=0.2, max_backoff_s=2.0, send_timeout_s=5.0)  # fmt: skip
    loop = ConsumerLoop([topic], f"outage-{uuid.uuid4().hex[:6]}", handler, bootstrap, session_timeout_ms=6000,
                        heartbeat_interval_ms=1000, max_backoff_s=1.0)  # fmt: skip
    threads = [
        threading.Thread(target=relay.run, kwargs={"install_signal_handlers": False}),
        threading.Thread(target=loop.run, kwargs={"install_signal_handlers": False}),
    ]
    for thread in threads:
        thread.start()
    case_id = str(uuid.uuid4())
    before = closed(case_id)
    during = [closed(case_id) for _ in range(5)]
    stopped = False
    try:
        # Written as services write events (the mark the relay finds them by): a document inserted without it is
        # found only by the relay's start-up sweep, which may have run before this insert.
        cases.update_one({"_id": case_id}, push_events([before]), upsert=True)
        until(lambda: applied == [before["id"]], 60, "the event before the outage to be applied")

        kafka.server.stop()
        stopped = True
        failures = kafka_failures()
        cases.update_one({"_id": case_id}, push_events(during))
        until(lambda: kafka_failures() > failures, 30, "the relay to notice the outage")
        stored = cases.find_one({"_id": case_id})
        assert [e["id"] for e in stored["pending_events"]] == [e["id"] for e in during]
        assert relay.published_total == 1 and not relay.ready.is_set()
        assert all(thread.is_alive() for thread in threads), "relay and consumer survive the outage"

        kafka.server.restart()
        stopped = False
        back = time.monotonic()
        until(lambda: len(applied) == 6, 120, "all events applied after the broker returned")
        recovered_s = time.monotonic() - back
        until(lambda: cases.find_one({"_id": case_id})["pending_events"] == [], 10, "an empty outbox")
    finally:
        if stopped:  # leave the session's broker running for whatever test comes next
            kafka.server.restart()
        relay.stop()
        loop.stop()
        for thread in threads:
            thread.join(timeout=30)
        client.drop_database(db.name)
        client.close()
    assert applied == [before["id"]] + [e["id"] for e in during]
    print(f"broker restart to all events applied: {recovered_s:.1f} s")
    consumer = KafkaConsumer(bootstrap_servers=bootstrap)
    try:
        tps = [TopicPartition(topic, p) for p in range(3)]
        # At least once: duplicates are allowed by contract, losses are not; say how many there were.
        total = sum(consumer.end_offsets(tps).values())
    finally:
        consumer.close()
    assert total >= 6
    print(f"records on the topic: {total} for 6 events")
