"""Dead letters land in <topic>.dlt without blocking their partition and the replay command moves them back."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
import uuid
from typing import Any

import pytest
from kafka import KafkaConsumer
from kafka.structs import TopicPartition

from plumbing.events import new_event, to_kafka
from plumbing.kafka import ConsumerLoop, TopicSpec, ensure_topics, make_producer

pytestmark = pytest.mark.integration


def closed() -> dict[str, Any]:
    case_id = str(uuid.uuid4())
    data = {"case_id": case_id, "person_id": str(uuid.uuid4()), "owner_country": "AL", "reason": "duplicate",
            "final_category": "no_indication"}  # fmt: skip
    return new_event("identification.case.closed.v1", case_id, data, "/identification")


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
        assert len(records) == count, f"{len(records)} records in {topic}, expected {count}"
        return records
    finally:
        consumer.close()


def replay(bootstrap: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "KAFKA_BOOTSTRAP_SERVERS": bootstrap}
    return subprocess.run(
        [sys.executable, "-m", "plumbing.cli.replay_dlt", *args],
        env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip


def until(predicate: Any, timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def test_dead_letters_are_replayed_to_their_origin_and_then_applied(kafka) -> None:
    bootstrap = kafka.env["KAFKA_BOOTSTRAP_SERVERS"]
    topic = f"test.dlt.{uuid.uuid4().hex[:8]}.v1"
    dlt = topic + ".dlt"
    ensure_topics(bootstrap, [TopicSpec(topic, 2, 3_600_000), TopicSpec(dlt, 2, 3_600_000, topic)])
    producer = make_producer(bootstrap)
    poison, fine = closed(), closed()
    raw = to_kafka(closed())
    try:
        for envelope in (poison, fine):
            record = to_kafka(envelope)
            producer.send(topic, key=record.key, value=record.value, headers=record.headers).get(10)
        producer.send(topic, key=raw.key, value=b"not json", headers=raw.headers).get(10)
    finally:
        producer.close()

    broken = {"on": True}
    applied: list[str] = []

    def handler(event: dict[str, Any]) -> None:
        if broken["on"] and event["id"] == poison["id"]:
            raise RuntimeError("downstream bug")
        applied.append(event["id"])

    group = f"referral-{uuid.uuid4().hex[:6]}"
    loop = ConsumerLoop([topic], group, handler, bootstrap, max_attempts=2, backoff_s=0.05,
                        session_timeout_ms=6000, heartbeat_interval_ms=1000)  # fmt: skip
    thread = threading.Thread(target=loop.run, kwargs={"install_signal_handlers": False})
    thread.start()
    try:
        until(lambda: applied == [fine["id"]], 30, "the good record")
        dead = read_all(bootstrap, dlt, 2)
        assert sorted(r.value for r in dead) == sorted([b"not json", raw_value(poison)])

        listed = replay(bootstrap, "--topic", dlt, "--dry-run")
        assert listed.returncode == 0, listed.stderr
        assert listed.stdout.count("listed ") == 2 and "0 replayed" in listed.stdout
        assert "downstream bug" not in listed.stdout  # a foreign exception's message is withheld

        broken["on"] = False  # the consumer is fixed: now the replay must get the poison event applied
        result = replay(bootstrap, "--topic", dlt, "--group", "ops-replay")
        assert result.returncode == 0, result.stdout + result.stderr
        assert "2 replayed, 0 skipped" in result.stdout, result.stdout
        until(lambda: poison["id"] in applied, 30, "the replayed event applied")
        # The malformed record went back to its topic and, still malformed, to the DLT again.
        again = read_all(bootstrap, dlt, 3)
        assert sorted(r.value for r in again).count(b"not json") == 2
        assert any(dict(r.headers).get("replay.from", b"").startswith(dlt.encode()) for r in again)

        # Committed: a second replay with the same group finds only the newly dead-lettered record.
        second = replay(bootstrap, "--topic", dlt, "--group", "ops-replay", "--dry-run")
        assert second.stdout.count("listed ") == 1, second.stdout
    finally:
        loop.stop()
        thread.join(timeout=20)
    origin = read_all(bootstrap, topic, 5)  # 3 originals + 2 replayed
    replayed = [r for r in origin if "replay.from" in dict(r.headers)]
    assert sorted(r.value for r in replayed) == sorted([b"not json", raw_value(poison)])
    assert all(not k.startswith("dlt.") for r in replayed for k, _ in r.headers)


def raw_value(envelope: dict[str, Any]) -> bytes:
    return to_kafka(envelope).value


def test_replay_refuses_a_topic_that_is_not_a_dlt(kafka) -> None:
    result = replay(kafka.env["KAFKA_BOOTSTRAP_SERVERS"], "--topic", "identification.events.v1")
    assert result.returncode == 1 and "not a dead-letter topic" in result.stderr
