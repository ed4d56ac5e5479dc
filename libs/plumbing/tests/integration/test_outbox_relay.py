"""The outbox relay against real Kafka and the Mongo-wire server."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter as Tally
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any

import pytest
from kafka import KafkaConsumer
from kafka.errors import KafkaTimeoutError, MessageSizeTooLargeError
from kafka.structs import TopicPartition
from mongoengine import StringField, connect, disconnect
from prometheus_client import REGISTRY
from pymongo import MongoClient
from pymongo.collection import Collection

from plumbing import outbox
from plumbing.events import new_event
from plumbing.kafka import CLOUD_EVENT_TRAIT, TopicSpec, ensure_topics, make_producer
from plumbing.outbox import CLAIM_BATCH, OutboxFields, Relay, notify_relay, push_events

pytestmark = pytest.mark.integration
ALIAS = "outbox-tests"


class Case(OutboxFields):
    """A stand-in aggregate: any document with the OutboxFields works with the relay."""

    meta = {"db_alias": ALIAS, "collection": "relay_cases"}
    case_id = StringField(primary_key=True)
    status = StringField()


def closed(case_id: str, reason: str = "referred") -> dict[str, Any]:
    data = {
        "case_id": case_id,
        "person_id": str(uuid.uuid4()),
        "owner_country": "ME",
        "reason": reason,
        "final_category": "victim",
    }
    return new_event("identification.case.closed.v1", case_id, data, "/identification")


@pytest.fixture(scope="module")
def db(mongo: Any) -> Iterator[Any]:
    name = f"outbox_{uuid.uuid4().hex[:8]}"
    connect(db=name, host=mongo.env["MONGODB_URI"], alias=ALIAS, tz_aware=True)
    client: MongoClient = MongoClient(mongo.env["MONGODB_URI"], tz_aware=True)
    yield client[name]
    disconnect(ALIAS)
    client.drop_database(name)
    client.close()


@pytest.fixture()
def cases(db: Any) -> Collection:
    Case.drop_collection()
    return Case._get_collection()


@pytest.fixture()
def bootstrap(kafka: Any) -> str:
    return kafka.env["KAFKA_BOOTSTRAP_SERVERS"]


@pytest.fixture()
def topic(bootstrap: str) -> str:
    name = f"test.relay.{uuid.uuid4().hex[:8]}.v1"
    ensure_topics(bootstrap, [TopicSpec(name, partitions=3, retention_ms=3_600_000)])
    return name


def read_topic(bootstrap: str, topic: str, count: int, timeout_s: float = 30) -> list[Any]:
    """All records of the topic once `count` arrived; asserts the topic then holds exactly `count`."""
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    try:
        partitions = [TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic))]
        consumer.assign(partitions)
        consumer.seek_to_beginning(*partitions)
        records: list[Any] = []
        deadline = time.monotonic() + timeout_s
        while len(records) < count and time.monotonic() < deadline:
            for batch in consumer.poll(timeout_ms=200).values():
                records.extend(batch)
        assert len(records) >= count, f"only {len(records)} of {count} records arrived"
        total = sum(consumer.end_offsets(partitions).values())
        assert total == count, f"topic holds {total} records, expected {count} (duplicates?)"
        return records
    finally:
        consumer.close()


def until(predicate: Callable[[], bool], timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def event_ids(record: Any) -> str:
    return dict(record.headers)["ce_id"].decode()


def test_relay_publishes_one_aggregates_events_in_order_on_one_partition(cases, bootstrap, topic) -> None:
    case_id = str(uuid.uuid4())
    envelopes = [closed(case_id) for _ in range(10)]
    Case(case_id=case_id, status="closed", pending_events=envelopes).save()
    producer = make_producer(bootstrap)
    relay = Relay([Case], producer, lambda envelope: topic)
    try:
        published, failed = relay.run_once()
    finally:
        producer.close()
    assert (published, failed) == (10, False)
    records = read_topic(bootstrap, topic, 10)
    assert [event_ids(r) for r in records] == [e["id"] for e in envelopes]
    assert {r.partition for r in records} == {records[0].partition}
    assert {r.key for r in records} == {case_id.encode()}
    stored = cases.find_one({"_id": case_id})
    assert stored["pending_events"] == []
    assert stored["outbox_lease_owner"] is None and stored["outbox_lease_until"] is None
    assert stored["status"] == "closed"


def test_events_written_while_no_relay_ran_are_published_by_the_relay_process(
    db, cases, bootstrap, topic, mongo
):
    # The "killed between accepting the write and publishing" case: the write is durable, no relay saw it.
    # One document carries a live lease of a relay that died mid-publish: the new relay waits it out.
    ids = [str(uuid.uuid4()) for _ in range(3)]
    envelopes = {case_id: [closed(case_id), closed(case_id)] for case_id in ids}
    for case_id in ids:
        Case(case_id=case_id, pending_events=envelopes[case_id]).save()
    cases.update_one(
        {"_id": ids[0]},
        {
            "$set": {
                "outbox_lease_owner": "dead-relay",
                "outbox_lease_until": datetime.now(UTC) + timedelta(minutes=5),
            }
        },
    )
    asyncapi = _asyncapi_with(topic)
    env = {
        **os.environ,
        "MONGODB_URI": mongo.env["MONGODB_URI"],
        "KAFKA_BOOTSTRAP_SERVERS": bootstrap,
        "ASYNCAPI_PATH": str(asyncapi),
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "plumbing.cli.relay", "--service", "identification", "--collections",
         "relay_cases", "--database", db.name, "--poll-interval", "0.2"],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    try:
        # The other documents are published while the dead relay's lease holds the third one back ...
        unleased = read_topic(bootstrap, topic, 4, timeout_s=30)
        assert all(record.key != ids[0].encode() for record in unleased)
        # ... and once the lease runs out (moved to the past here instead of waiting), it is published too.
        cases.update_one(
            {"_id": ids[0]}, {"$set": {"outbox_lease_until": datetime.now(UTC) - timedelta(seconds=1)}}
        )
        records = read_topic(bootstrap, topic, 6, timeout_s=30)
        until(lambda: cases.count_documents({"pending_events.0": {"$exists": True}}) == 0, 10, "empty outbox")
    finally:
        process.terminate()
        output = process.communicate(timeout=15)[0]
    assert process.returncode == 0, output  # SIGTERM is a graceful stop
    for case_id in ids:
        got = [event_ids(r) for r in records if r.key == case_id.encode()]
        assert got == [e["id"] for e in envelopes[case_id]]


def _asyncapi_with(topic: str) -> Any:
    import tempfile
    from pathlib import Path

    import yaml

    doc = {
        "asyncapi": "3.0.0",
        "channels": {
            "t": {
                "address": topic,
                "x-partitions": 3,
                "x-retention-ms": 3_600_000,
                "messages": {"m": {"$ref": "#/components/messages/m"}},
            }
        },
        # An event type is a message with the CloudEvents trait (plumbing.kafka.is_event_message), as in asyncapi.
        "components": {
            "messages": {
                "m": {"name": "identification.case.closed.v1", "traits": [{"$ref": CLOUD_EVENT_TRAIT}]}
            }
        },
    }
    path = Path(tempfile.mkdtemp()) / "asyncapi.yaml"
    path.write_text(yaml.safe_dump(doc))
    return path


def test_two_relays_with_leases_never_publish_a_document_twice(cases, bootstrap, topic, monkeypatch) -> None:
    # Small batches, so that the two relays' claims interleave over the 30 documents (one batch would take all).
    monkeypatch.setattr(outbox, "CLAIM_BATCH", 4)
    ids = [str(uuid.uuid4()) for _ in range(30)]
    expected = {}
    for case_id in ids:
        expected[case_id] = [closed(case_id) for _ in range(4)]
        Case(case_id=case_id, pending_events=expected[case_id]).save()
    arrived: list[str] = []
    both_hold_a_batch = threading.Event()

    def producer() -> Any:
        # A relay makes its producer at its first send, holding its first batch: waiting there for the other
        # relay to hold one too makes both publish (else the first to start may drain all 30 documents alone).
        arrived.append(threading.current_thread().name)
        if len(arrived) >= 2:
            both_hold_a_batch.set()
        both_hold_a_batch.wait(timeout=30)
        return make_producer(bootstrap)

    relays = [Relay([Case], producer, lambda e: topic, poll_interval_s=0.05) for _ in "ab"]
    for relay in relays:
        # No readiness probe between passes: it looks up a platform topic this broker lacks (5 s, and a producer
        # made outside a batch), so one relay would sit in it while the other drains everything.
        relay.ready.set()
    threads = [threading.Thread(target=r.run, kwargs={"install_signal_handlers": False}) for r in relays]
    for thread in threads:
        thread.start()
    try:
        records = read_topic(bootstrap, topic, 120, timeout_s=60)
    finally:
        for relay in relays:
            relay.stop()
        for thread in threads:
            thread.join(timeout=15)
    assert not any(t.is_alive() for t in threads)
    assert max(Tally(event_ids(r) for r in records).values()) == 1
    for case_id in ids:
        assert [event_ids(r) for r in records if r.key == case_id.encode()] == [
            e["id"] for e in expected[case_id]
        ]
    # Both relays did work (otherwise this test would prove nothing about concurrency).
    assert all(relay.published_total > 0 for relay in relays), [r.published_total for r in relays]
    assert sum(relay.published_total for relay in relays) == 120


def test_events_appended_while_the_relay_publishes_are_not_lost(cases, bootstrap, topic) -> None:
    case_id = str(uuid.uuid4())
    first = [closed(case_id) for _ in range(5)]
    Case(case_id=case_id, pending_events=first).save()
    relay = Relay([Case], partial(make_producer, bootstrap), lambda e: topic, poll_interval_s=0.05)
    thread = threading.Thread(target=relay.run, kwargs={"install_signal_handlers": False})
    thread.start()
    later = []
    try:
        for _ in range(20):  # appends race the relay's $pulls on the same document
            envelope = closed(case_id)
            later.append(envelope)
            cases.update_one({"_id": case_id}, push_events([envelope]))
        records = read_topic(bootstrap, topic, 25, timeout_s=30)
    finally:
        relay.stop()
        thread.join(timeout=15)
    assert [event_ids(r) for r in records] == [e["id"] for e in first + later]


def test_a_wake_up_datagram_publishes_without_waiting_for_the_poll(cases, bootstrap, topic) -> None:
    # The relay's own poll would come only after an hour: the record arriving within a minute of the datagram
    # proves the wake-up (no latency is asserted, so a loaded machine cannot make this test fail).
    relay = Relay(
        [Case],
        partial(make_producer, bootstrap),
        lambda e: topic,
        poll_interval_s=3600,
        wake_address="127.0.0.1:0",
    )
    thread = threading.Thread(target=relay.run, kwargs={"install_signal_handlers": False})
    thread.start()
    try:
        until(lambda: relay.wake_port is not None, 5, "wake socket")
        time.sleep(0.3)  # let the first (empty) pass finish so the relay is in its long wait
        case_id = str(uuid.uuid4())
        # As a writer does (plumbing.outbox.push_events): the events and the mark the relay finds them by.
        Case(case_id=case_id, pending_events=[closed(case_id)], outbox_pending=True).save()
        started = time.monotonic()
        notify_relay(f"127.0.0.1:{relay.wake_port}")
        read_topic(bootstrap, topic, 1, timeout_s=60)
        latency = time.monotonic() - started
    finally:
        relay.stop()
        thread.join(timeout=15)
    print(f"wake-up to consumed: {latency * 1000:.0f} ms")


def test_backlog_reports_pending_count_and_oldest_age(cases, bootstrap) -> None:
    now = datetime(2025, 6, 1, 12, 0, tzinfo=UTC)
    a, b = str(uuid.uuid4()), str(uuid.uuid4())
    old = new_event(
        "identification.case.closed.v1", a, closed(a)["data"], "/i", time=now - timedelta(minutes=5)
    )
    new = new_event(
        "identification.case.closed.v1", b, closed(b)["data"], "/i", time=now - timedelta(seconds=3)
    )
    Case(case_id=a, pending_events=[old], outbox_pending=True).save()
    Case(case_id=b, pending_events=[new, new], outbox_pending=True).save()
    Case(case_id=str(uuid.uuid4())).save()
    relay = Relay([Case], partial(make_producer, bootstrap), clock=lambda: now)
    assert relay.backlog() == {"relay_cases": (3, 300.0)}
    relay.update_metrics()
    from prometheus_client import REGISTRY

    assert REGISTRY.get_sample_value("outbox_backlog_events", {"collection": "relay_cases"}) == 3
    assert (
        REGISTRY.get_sample_value("outbox_oldest_pending_age_seconds", {"collection": "relay_cases"}) == 300
    )


def test_events_written_without_the_mark_are_marked_by_the_sweep_and_published(
    cases, bootstrap, topic
) -> None:
    # Pending events written before the mark existed (or by a writer that does not use push_events) are found
    # by the sweep the relay runs at start-up, and published; once nothing is left, the mark is gone again.
    case_id = str(uuid.uuid4())
    Case(case_id=case_id, pending_events=[closed(case_id)]).save()
    relay = Relay([Case], partial(make_producer, bootstrap), lambda e: topic)
    assert relay.run_once() == (1, False)
    assert len(read_topic(bootstrap, topic, 1)) == 1
    stored = Case._get_collection().find_one({"_id": case_id})
    assert stored["pending_events"] == [] and "outbox_pending" not in stored


def test_a_document_whose_events_are_all_published_leaves_the_claims(cases, bootstrap, topic) -> None:
    # The mark is removed only when nothing is left: events appended while the relay held the lease keep it.
    case_id = str(uuid.uuid4())
    Case(case_id=case_id, pending_events=[closed(case_id)], outbox_pending=True).save()
    relay = Relay([Case], partial(make_producer, bootstrap), lambda e: topic)
    collection = Case._get_collection()
    claimed = relay._claims(collection)
    assert [doc["_id"] for doc in claimed] == [case_id]
    collection.update_one({"_id": case_id}, push_events([closed(case_id)]))  # a write during the publication
    relay._publish_batch(collection, claimed)
    assert collection.find_one({"_id": case_id})["outbox_pending"] is True
    assert relay.run_once() == (1, False)
    assert "outbox_pending" not in collection.find_one({"_id": case_id})
    assert relay._claims(collection) == []


def test_a_backlog_of_several_batches_is_published_in_order_per_document_and_removed(
    cases, bootstrap, topic, caplog
) -> None:
    # More documents than one batch claims (plumbing.outbox.CLAIM_BATCH), with one to three events each: every
    # event on the topic once, each document's in order on its partition, every outbox empty and unmarked.
    expected = {}
    for n in range(CLAIM_BATCH + 20):
        case_id = str(uuid.uuid4())
        expected[case_id] = [closed(case_id) for _ in range(1 + n % 3)]
        cases.update_one({"_id": case_id}, push_events(expected[case_id]), upsert=True)
    total = sum(len(envelopes) for envelopes in expected.values())
    producer = make_producer(bootstrap)
    try:
        with caplog.at_level(logging.INFO, logger="plumbing.outbox"):
            assert Relay([Case], producer, lambda e: topic).run_once() == (total, False)
    finally:
        producer.close()
    # The backlog's pace is logged per full batch; the last, small one is not a backlog.
    paced = [r.getMessage() for r in caplog.records if r.getMessage().startswith("outbox batch")]
    assert len(paced) == 1 and f"of {CLAIM_BATCH} document(s) published from relay_cases" in paced[0]
    records = read_topic(bootstrap, topic, total)
    for case_id, envelopes in expected.items():
        mine = [r for r in records if r.key == case_id.encode()]
        assert [event_ids(r) for r in sorted(mine, key=lambda r: r.offset)] == [e["id"] for e in envelopes]
    assert cases.count_documents({"pending_events.0": {"$exists": True}}) == 0
    assert cases.count_documents({"outbox_pending": {"$exists": True}}) == 0
    assert cases.count_documents({"outbox_lease_owner": {"$ne": None}}) == 0


class _Sent:
    def __init__(self, error: BaseException | None) -> None:
        self.error = error

    def get(self, timeout: float | None = None) -> None:
        if self.error is not None:
            raise self.error


class StandInBroker:
    """The relay's producer when the broker's own answers are what a test is about: away until `up` is set, then
    acknowledging every record but those of `refused` aggregates (a record too large)."""

    def __init__(self, refused: frozenset[str] = frozenset()) -> None:
        self.up = threading.Event()
        self.refused = refused
        self.published: list[str] = []
        self.connects = 0

    def connect(self) -> StandInBroker:  # the relay's producer factory
        self.connects += 1
        if not self.up.is_set():
            raise KafkaTimeoutError()  # what make_producer raises when no broker answers
        return self

    def send(self, topic: str, *, key: bytes, value: bytes, headers: Any) -> _Sent:
        if key.decode() in self.refused:
            return _Sent(MessageSizeTooLargeError())
        self.published.append(dict(headers)["ce_id"].decode())
        return _Sent(None)

    def partitions_for(self, topic: str) -> set[int]:
        return {0}

    def close(self, timeout: float | None = None) -> None:
        return None


def kafka_failures() -> float:
    return REGISTRY.get_sample_value("outbox_publish_failures_total", {"reason": "kafka"}) or 0.0


def test_after_a_broker_outage_publishing_resumes_when_the_broker_answers_not_a_back_off_later(cases) -> None:
    # The first failure backs off for an hour: publishing within a minute of the broker's return proves the probe
    # (no latency is asserted). Writes during the outage wake the relay without ending its back-off.
    broker = StandInBroker()
    steps: list[float] = []  # the process's other work (follow-up steps) goes on while the broker is away
    relay = Relay(
        [Case], broker.connect, lambda e: "t", poll_interval_s=3600, max_backoff_s=3600, probe_interval_s=0.1,
        wake_address="127.0.0.1:0", periodic=[lambda: steps.append(time.monotonic())], periodic_interval_s=0.1,
    )  # fmt: skip
    thread = threading.Thread(target=relay.run, kwargs={"install_signal_handlers": False})
    events = [closed(str(uuid.uuid4())) for _ in range(3)]
    for event in events:
        cases.update_one({"_id": event["subject"]}, push_events([event]), upsert=True)
    failures = kafka_failures()
    thread.start()
    try:
        until(lambda: kafka_failures() > failures, 30, "the relay to meet the broker away")
        until(lambda: relay.wake_port is not None, 5, "wake socket")
        probes = broker.connects
        for _ in range(20):
            notify_relay(f"127.0.0.1:{relay.wake_port}")
            time.sleep(0.02)
        until(lambda: broker.connects > probes + 2, 30, "the relay to go on asking the broker")
        assert kafka_failures() == failures + 1  # one failed pass: the writes' wake-ups did not start others
        ran = len(steps)
        until(lambda: len(steps) > ran + 2, 30, "the periodic work to go on during the back-off")
        # Released, not held for a back-off (the broker was away), and still marked for the relay.
        for stored in cases.find():
            assert (stored["outbox_lease_until"], stored["outbox_lease_owner"], stored["outbox_pending"]) == (
                None, None, True,
            )  # fmt: skip
        broker.up.set()
        until(
            lambda: sorted(broker.published) == sorted(e["id"] for e in events),
            60,
            "the events to be published once the broker is up",
        )
        until(
            lambda: cases.count_documents({"pending_events.0": {"$exists": True}}) == 0, 10, "empty outboxes"
        )
    finally:
        relay.stop()
        thread.join(timeout=15)


def test_a_record_the_broker_refuses_holds_its_document_and_the_others_are_published(cases) -> None:
    too_large, fine = str(uuid.uuid4()), closed(str(uuid.uuid4()))
    broker = StandInBroker(refused=frozenset({too_large}))
    broker.up.set()
    relay = Relay([Case], broker.connect, lambda e: "t", max_backoff_s=600)
    cases.update_one({"_id": too_large}, push_events([closed(too_large)]), upsert=True)
    cases.update_one({"_id": fine["subject"]}, push_events([fine]), upsert=True)
    published, failed = relay.run_once()
    assert (published, failed, broker.published) == (1, True, [fine["id"]])
    held = cases.find_one({"_id": too_large})
    assert len(held["pending_events"]) == 1 and held["outbox_lease_until"] > datetime.now(UTC)  # its back-off
    assert relay.run_once() == (0, False)  # held: not tried again at once, and nothing else was waiting
