"""ConsumerLoop against real Kafka and Mongo: commit after the handler, apply once, DLT, trace context, stop."""

from __future__ import annotations

import json
import os
import signal
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from kafka import KafkaConsumer
from kafka.structs import TopicPartition
from opentelemetry import trace
from pymongo import MongoClient

from plumbing.events import new_event, to_kafka
from plumbing.inbox import Inbox, apply_once
from plumbing.kafka import ConsumerLoop, TopicSpec, ensure_topics, make_producer

pytestmark = pytest.mark.integration
TP = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
CANARY = "Zeqirija Hoxhaj-Canary"


@pytest.fixture()
def bootstrap(kafka: Any) -> str:
    return kafka.env["KAFKA_BOOTSTRAP_SERVERS"]


@pytest.fixture()
def topic(bootstrap: str) -> str:
    name = f"test.consumer.{uuid.uuid4().hex[:8]}.v1"
    ensure_topics(
        bootstrap,
        [TopicSpec(name, partitions=1, retention_ms=3_600_000), TopicSpec(name + ".dlt", 1, 3_600_000, name)],
    )
    return name


@pytest.fixture()
def db(mongo: Any) -> Iterator[Any]:
    client: MongoClient = MongoClient(mongo.env["MONGODB_URI"], tz_aware=True)
    name = f"consumer_{uuid.uuid4().hex[:8]}"
    yield client[name]
    client.drop_database(name)
    client.close()


@pytest.fixture()
def producer(bootstrap: str) -> Iterator[Any]:
    producer = make_producer(bootstrap)
    yield producer
    producer.close()


def closed(case_id: str | None = None) -> dict[str, Any]:
    case_id = case_id or str(uuid.uuid4())
    data = {"case_id": case_id, "person_id": str(uuid.uuid4()), "owner_country": "XK", "reason": "returned",
            "final_category": "potential_victim"}  # fmt: skip
    return new_event("identification.case.closed.v1", case_id, data, "/identification", traceparent=TP)


def send(producer: Any, topic: str, envelope: dict[str, Any]) -> int:
    record = to_kafka(envelope)
    return producer.send(topic, key=record.key, value=record.value, headers=record.headers).get(10).offset


def until(predicate: Callable[[], bool], timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


class Running:
    """A ConsumerLoop in a thread, stopped and joined on exit."""

    def __init__(self, loop: ConsumerLoop) -> None:
        self.loop = loop
        self.thread = threading.Thread(target=loop.run, kwargs={"install_signal_handlers": False})

    def __enter__(self) -> ConsumerLoop:
        self.thread.start()
        return self.loop

    def __exit__(self, *exc: Any) -> None:
        self.loop.stop()
        self.thread.join(timeout=20)
        assert not self.thread.is_alive(), "consumer loop did not stop"


def loop_for(topic: str, bootstrap: str, handler: Any, group: str | None = None, **kw: Any) -> ConsumerLoop:
    return ConsumerLoop(
        [topic], group or f"g-{uuid.uuid4().hex[:6]}", handler, bootstrap,
        session_timeout_ms=6000, heartbeat_interval_ms=1000, backoff_s=0.05, max_backoff_s=0.2, **kw,
    )  # fmt: skip


def committed(bootstrap: str, group: str, topic: str, partition: int = 0) -> int | None:
    # A consumer that never subscribes only reads the group's committed offset; it does not join the group.
    probe = KafkaConsumer(bootstrap_servers=bootstrap, group_id=group, enable_auto_commit=False)
    try:
        return probe.committed(TopicPartition(topic, partition))
    finally:
        probe.close(autocommit=False)


def read_all(bootstrap: str, topic: str, count: int, timeout_s: float = 20) -> list[Any]:
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    try:
        tps = [TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic))]
        consumer.assign(tps)
        consumer.seek_to_beginning(*tps)
        records: list[Any] = []
        deadline = time.monotonic() + timeout_s
        while len(records) < count and time.monotonic() < deadline:
            for batch in consumer.poll(timeout_ms=200).values():
                records.extend(batch)
        return records
    finally:
        consumer.close()


def test_each_event_is_applied_once_though_delivered_twice(bootstrap, topic, db, producer) -> None:
    inbox = Inbox(db["inbox"], "referral.identification-events")
    counters = db["case_counters"]
    seen: list[str] = []
    fail_once = {"armed": True}

    def handler(event: dict[str, Any]) -> None:
        seen.append(event["id"])
        if inbox.record_once(event):
            apply_once(counters, {"_id": event["subject"]}, event["id"], {"$inc": {"n": 1}}, upsert=True)
        # The crash-after-write case: the effect is durable, then the handler fails once; the retry must not
        # apply it again.
        if fail_once["armed"]:
            fail_once["armed"] = False
            raise RuntimeError("after the durable write")

    case_id = str(uuid.uuid4())
    first, second = closed(case_id), closed(case_id)
    for envelope in (first, first, second, first):  # the same event delivered three times
        send(producer, topic, envelope)
    group = "referral.identification-events"
    with Running(loop_for(topic, bootstrap, handler, group=f"{group}-{uuid.uuid4().hex[:4]}")) as loop:
        until(lambda: len(seen) >= 5, 30, "all deliveries handled")
        until(lambda: committed(bootstrap, loop.group_id, topic) == 4, 10, "commit past the last record")
    assert seen == [first["id"], first["id"], first["id"], second["id"], first["id"]]
    assert counters.find_one({"_id": case_id})["n"] == 2
    assert sorted(counters.find_one({"_id": case_id})["applied_event_ids"]) == sorted(
        [first["id"], second["id"]]
    )
    assert db["inbox"].count_documents({}) == 2
    assert inbox.seen(first["id"]) and inbox.record_once(first) is False


def test_a_restarted_consumer_resumes_after_its_last_commit(bootstrap, topic, producer) -> None:
    group = f"g-{uuid.uuid4().hex[:6]}"
    handled: list[str] = []
    events = [closed() for _ in range(3)]
    send(producer, topic, events[0])
    with Running(loop_for(topic, bootstrap, lambda e: handled.append(e["id"]), group=group)):
        until(lambda: len(handled) == 1, 30, "first event")
        until(lambda: committed(bootstrap, group, topic) == 1, 10, "first commit")
    for envelope in events[1:]:
        send(producer, topic, envelope)
    with Running(loop_for(topic, bootstrap, lambda e: handled.append(e["id"]), group=group)):
        until(lambda: len(handled) == 3, 30, "the rest")
    assert handled == [e["id"] for e in events]


def test_malformed_and_failing_records_go_to_the_dlt_and_the_partition_moves_on(
    bootstrap, topic, producer
) -> None:
    good_before, poison, good_after = closed(), closed(), closed()
    send(producer, topic, good_before)
    raw = to_kafka(closed())
    bad_json_offset = (
        producer.send(topic, key=raw.key, value=b'{"case_id": ', headers=raw.headers).get(10).offset
    )
    bad_schema = json.dumps({"case_id": raw.key.decode(), "name": CANARY}).encode()
    bad_schema_offset = (
        producer.send(topic, key=raw.key, value=bad_schema, headers=raw.headers).get(10).offset
    )
    poison_offset = send(producer, topic, poison)
    send(producer, topic, good_after)
    handled: list[str] = []
    attempts: list[str] = []

    def handler(event: dict[str, Any]) -> None:
        attempts.append(event["id"])
        if event["id"] == poison["id"]:
            raise KeyError(f"no shelter for {CANARY}")
        handled.append(event["id"])

    with Running(loop_for(topic, bootstrap, handler, max_attempts=3)) as loop:
        until(lambda: len(handled) == 2, 30, "the good records")
        until(lambda: committed(bootstrap, loop.group_id, topic) == 5, 10, "commit past everything")
    assert handled == [good_before["id"], good_after["id"]]
    assert attempts.count(poison["id"]) == 3
    dead = read_all(bootstrap, topic + ".dlt", 3)
    assert [r.value for r in dead] == [b'{"case_id": ', bad_schema, to_kafka(poison).value]
    headers = [dict(r.headers) for r in dead]
    assert [h["dlt.origin.offset"] for h in headers] == [
        str(o).encode() for o in (bad_json_offset, bad_schema_offset, poison_offset)
    ]
    assert {h["dlt.origin.topic"] for h in headers} == {topic.encode()}
    assert {h["dlt.origin.partition"] for h in headers} == {b"0"}
    assert [h["dlt.error.class"] for h in headers] == [b"plumbing.events.MalformedEvent"] * 2 + [
        b"builtins.KeyError"
    ]
    assert [h["dlt.attempts"] for h in headers] == [b"0", b"0", b"3"]
    assert headers[2]["dlt.error.where"].startswith(b"test_kafka_consumer:handler:")
    assert headers[2]["ce_id"] == poison["id"].encode() and headers[2]["traceparent"] == TP.encode()
    for h in headers:
        assert CANARY.encode() not in h["dlt.error.message"] and len(h["dlt.error.message"]) <= 200
    assert dead[2].key == poison["subject"].encode()


def test_the_handler_runs_in_the_producers_trace(bootstrap, topic, producer) -> None:
    trace_ids: list[str] = []
    send(producer, topic, closed())
    handler = lambda e: trace_ids.append(format(trace.get_current_span().get_span_context().trace_id, "032x"))  # noqa: E731
    with Running(loop_for(topic, bootstrap, handler)):
        until(lambda: len(trace_ids) == 1, 30, "handled")
    assert trace_ids == [TP.split("-")[1]]


def test_sigterm_stops_the_loop_gracefully(bootstrap, topic, producer) -> None:
    handled: list[str] = []
    send(producer, topic, closed())
    loop = loop_for(topic, bootstrap, lambda e: handled.append(e["id"]))
    fallback_hit: list[int] = []

    def fallback(signum: int, frame: Any) -> None:  # only reached if run() did not install its own handler
        fallback_hit.append(signum)
        loop.stop()

    previous = signal.signal(signal.SIGTERM, fallback)
    try:

        def terminate_when_ready() -> None:
            until(lambda: len(handled) == 1, 30, "handled")
            os.kill(os.getpid(), signal.SIGTERM)

        killer = threading.Thread(target=terminate_when_ready)
        killer.start()
        started = time.monotonic()
        loop.run()  # main thread: installs SIGTERM/SIGINT handlers and restores them afterwards
        killer.join()
        assert signal.getsignal(signal.SIGTERM) is fallback
    finally:
        signal.signal(signal.SIGTERM, previous)
    assert fallback_hit == []
    assert handled and time.monotonic() - started < 30
    assert committed(bootstrap, loop.group_id, topic) == 1
