"""The return service's outbox, scheduler and relay on the real servers (the Mongo-wire server and Kafka), with the
clock advanced instead of slept: an adult's return is opened, approved and received; the scheduler (plumbing's,
claiming on the real database) reminds the office once that the reintegration plan is coming due and once that it
is overdue, across a restart; the relay publishes every event of the case to `return.events.v1`, in order, keyed
by the case id, and empties the outbox."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from kafka import KafkaConsumer
from kafka.structs import TopicPartition
from pymongo import MongoClient

from plumbing import mongo as connections
from plumbing.auth import Caller
from plumbing.clock import FixedClock
from plumbing.events import from_kafka
from plumbing.kafka import ensure_topics, make_producer
from plumbing.outbox import Relay
from voluntary_return.adapters.documents import AGGREGATES
from voluntary_return.bootstrap import build_runtime
from voluntary_return.domain import events
from voluntary_return.service_layer import cases
from voluntary_return.service_layer.deadlines import run_deadlines

pytestmark = pytest.mark.integration
TOPIC = "return.events.v1"


@pytest.fixture
def environ(mongo: Any, tmp_path: Path) -> Iterator[dict[str, str]]:
    env = {
        "THB_MODE": "local",
        "MONGODB_URI": mongo.env["MONGODB_URI"],
        "MONGODB_DB": f"thb_return_it_{uuid.uuid4().hex[:8]}",
        "THB_KEYS_FILE": str(tmp_path / "keys.json"),
    }
    yield env
    connections.disconnect()
    client: MongoClient = MongoClient(env["MONGODB_URI"])
    client.drop_database(env["MONGODB_DB"])
    client.close()


def deps(environ: dict[str, str], clock: FixedClock) -> Any:
    """A process's wiring (a new one stands for a restart). The answers' access-log entries need a request
    context, which a test of the service layer has not: reads are not what this test is about."""
    return replace(build_runtime(environ, clock).deps, record_read=lambda *_: None)


def user(sub: str, agency: str, role: str) -> Caller:
    return Caller(
        sub=sub,
        azp="thb-test",
        country="XK",
        agency=agency,
        roles=frozenset({role}),
        acting_user=None,
        is_machine=False,
        token="not-a-token",
    )


MANAGER = user("sub-xk-case-manager", "social-services", "case-manager")
COORDINATOR = user("sub-xk-coordinator", "coordinator-office", "coordinator")
CONSENT = {
    "topics": ["voluntary_nature", "right_to_withdraw", "data_shared_with_other_country", "risks_on_return"],
    "language": "sqi",
    "interpreter": False,
    "given_on": "2026-12-01",
}
PLAN = {
    "travel_documents": [{"type": "emergency_travel_document", "status": "ready"}],
    "travel_date": "2026-12-20",
    "route": {"origin": "XK", "destination": "ME", "transit": []},
    "special_needs": [],
    "fit_to_travel": True,
    "reception": {"agency": "me-csw-podgorica", "services": ["psycho_social"]},
}


def published(bootstrap: str, case_id: str, at_least: int, timeout_s: float = 30) -> list[Any]:
    """The records of the case on the topic (keyed by its id), once `at_least` arrived."""
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    try:
        partitions = [TopicPartition(TOPIC, p) for p in sorted(consumer.partitions_for_topic(TOPIC))]
        consumer.assign(partitions)
        consumer.seek_to_beginning(*partitions)
        found: list[Any] = []
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            for batch in consumer.poll(timeout_ms=200).values():
                found.extend(r for r in batch if r.key == case_id.encode())
            if len(found) >= at_least:
                break
        return found
    finally:
        consumer.close()


def test_the_cases_events_and_reminders_reach_the_topic_once_each_in_order(
    environ: dict[str, str], kafka: Any
) -> None:
    clock = FixedClock(datetime(2026, 12, 7, 9, 0, tzinfo=UTC))
    first = deps(environ, clock)
    case_id = cases.open_case(first, MANAGER, {"origin_country": "ME", "age_group": "adult"})["id"]
    cases.transition(first, MANAGER, case_id, {"action": "start_assessment"})
    cases.record_consent(first, MANAGER, case_id, CONSENT)
    cases.transition(first, MANAGER, case_id, {"action": "record_decision"})
    cases.approve_plan(first, COORDINATOR, case_id, PLAN)
    for action in ("record_departure", "record_reception"):
        cases.transition(first, COORDINATOR, case_id, {"action": action})
    assert run_deadlines(first) == 0  # nothing due yet

    clock.advance(days=23)  # a week before the plan's deadline
    assert run_deadlines(first) == 1
    assert run_deadlines(first) == 0
    clock.advance(days=7, seconds=1)  # just past it
    restarted = deps(environ, clock)
    assert run_deadlines(restarted) == 1
    assert run_deadlines(deps(environ, clock)) == 0

    bootstrap = kafka.env["KAFKA_BOOTSTRAP_SERVERS"]
    ensure_topics(bootstrap)
    producer = make_producer(bootstrap)
    try:
        count, failed = Relay(AGGREGATES, producer).run_once()
    finally:
        producer.close()
    assert not failed and count >= 5
    records = published(bootstrap, case_id, 5)
    envelopes = [from_kafka(r.key, r.value, r.headers) for r in records]
    assert [e["type"] for e in envelopes] == [
        events.REQUESTED,
        events.APPROVED,
        events.RECEPTION_RECORDED,
        events.REINTEGRATION_DUE,
        events.REINTEGRATION_OVERDUE,
    ]
    assert {r.partition for r in records} == {records[0].partition}
    assert {e["subject"] for e in envelopes} == {case_id}
    due, overdue = envelopes[3]["data"], envelopes[4]["data"]
    assert due["what"] == overdue["what"] == "reintegration_plan"
    assert due["due_at"] == overdue["due_at"] == "2027-01-06T09:00:00.000Z"
    stored = connections.get_database()["return_cases"].find_one({"_id": case_id})
    assert stored["pending_events"] == []
    assert stored["deadline_actions_done"] == ["due:reintegration_plan", "overdue:reintegration_plan"]
    assert stored["next_due_at"].replace(tzinfo=UTC) == datetime(2026, 12, 7, 9, 0, tzinfo=UTC) + timedelta(
        days=83
    )
