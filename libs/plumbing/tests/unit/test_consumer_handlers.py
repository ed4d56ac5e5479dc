"""The consumer's handler table: each event type to its handler; a type without one is skipped and committed,
a record that is not a valid event is dead-lettered (no Kafka needed: one record at a time)."""

from __future__ import annotations

import json
import uuid
from types import SimpleNamespace
from typing import Any

import pytest
from pymongo.errors import AutoReconnect, NetworkTimeout, ServerSelectionTimeoutError

from plumbing.errors import DependencyUnavailable
from plumbing.events import new_event, owner_country, schema_dir, to_kafka
from plumbing.kafka import CONSUMED, ConsumerLoop, event_types, topic_for_event

TOPIC = "identification.events.v1"
CLOSED = "identification.case.closed.v1"
REGISTERED = "identification.person.registered.v1"


def envelope_of(event_type: str) -> dict[str, Any]:
    schema = json.loads((schema_dir() / f"{event_type}.json").read_text(encoding="utf-8"))
    return new_event(event_type, str(uuid.uuid4()), schema["examples"][0], "/identification")


def record_of(envelope: dict[str, Any], offset: int = 7) -> Any:
    kafka = to_kafka(envelope)
    return SimpleNamespace(
        topic=TOPIC, partition=0, offset=offset, key=kafka.key, value=kafka.value, headers=kafka.headers
    )


class FakeProducer:
    def __init__(self) -> None:
        self.sent: list[tuple[str, Any]] = []

    def send(self, topic: str, **record: Any) -> Any:
        self.sent.append((topic, record))
        return SimpleNamespace(get=lambda timeout=None: None)


def loop_with(handlers: Any, producer: FakeProducer, group: str = "test-table") -> ConsumerLoop:
    return ConsumerLoop(
        [TOPIC], group, handlers, "127.0.0.1:1", max_attempts=2, backoff_s=0, producer=producer
    )


def test_each_type_goes_to_its_own_handler():
    seen: dict[str, list[str]] = {CLOSED: [], REGISTERED: []}
    producer = FakeProducer()
    loop = loop_with({t: (lambda e, t=t: seen[t].append(e["id"])) for t in seen}, producer)
    closed, registered = envelope_of(CLOSED), envelope_of(REGISTERED)
    assert loop._process(record_of(closed)) and loop._process(record_of(registered))
    assert seen == {CLOSED: [closed["id"]], REGISTERED: [registered["id"]]}
    assert producer.sent == []


def test_a_type_without_a_handler_is_skipped_logged_and_committed(caplog):
    producer = FakeProducer()
    loop = loop_with({CLOSED: lambda e: pytest.fail("not this one")}, producer, group="test-skip")
    skipped = CONSUMED.labels("test-skip", TOPIC, "skipped")
    before = skipped._value.get()
    registered = envelope_of(REGISTERED)
    with caplog.at_level("INFO", logger="plumbing.kafka"):
        assert loop._process(record_of(registered)) is True  # True: the offset is committed
    assert skipped._value.get() == before + 1
    assert producer.sent == []  # not a dead letter
    assert registered["id"] in caplog.text and REGISTERED in caplog.text


def test_a_failing_handler_is_retried_then_dead_lettered():
    producer = FakeProducer()
    calls: list[str] = []

    def failing(envelope: dict[str, Any]) -> None:
        calls.append(envelope["id"])
        raise RuntimeError("boom")

    loop = loop_with({CLOSED: failing}, producer)
    assert loop._process(record_of(envelope_of(CLOSED))) is True
    assert len(calls) == 2 and [topic for topic, _ in producer.sent] == [TOPIC + ".dlt"]


@pytest.mark.parametrize(
    "outage",
    [
        ServerSelectionTimeoutError("no server"),
        NetworkTimeout("hung"),
        AutoReconnect("connection lost"),
        DependencyUnavailable("identification"),
    ],
    ids=type,
)
def test_a_handler_waiting_for_the_database_is_retried_until_it_answers_never_dead_lettered(outage):
    producer = FakeProducer()
    calls: list[str] = []

    def during_an_outage(envelope: dict[str, Any]) -> None:
        calls.append(envelope["id"])
        if len(calls) <= 6:  # longer than max_attempts (2): an outage is not the record's fault
            raise outage

    loop = loop_with({CLOSED: during_an_outage}, producer, group="test-outage")
    waited = CONSUMED.labels("test-outage", TOPIC, "dependency_unavailable")
    before = waited._value.get()
    assert loop._process(record_of(envelope_of(CLOSED))) is True
    assert (
        len(calls) == 7 and producer.sent == []
    )  # applied once the database answered; nothing dead-lettered
    assert waited._value.get() == before + 6


def test_a_stop_during_an_outage_leaves_the_record_uncommitted():
    producer = FakeProducer()
    loop = loop_with({CLOSED: lambda e: (_ for _ in ()).throw(AutoReconnect("down"))}, producer)
    loop.backoff_s = 0.01
    loop.stop()
    assert loop._process(record_of(envelope_of(CLOSED))) is False  # not committed: the next run tries again
    assert producer.sent == []


def test_a_record_that_is_no_valid_event_is_dead_lettered_whatever_the_table():
    producer = FakeProducer()
    loop = loop_with({}, producer)
    broken = record_of(envelope_of(CLOSED))
    broken.value = b"{not json"
    assert loop._process(broken) is True
    assert [topic for topic, _ in producer.sent] == [TOPIC + ".dlt"]


def test_one_handler_for_every_type_still_works():
    seen: list[str] = []
    loop = loop_with(lambda e: seen.append(e["type"]), FakeProducer())
    assert loop._process(record_of(envelope_of(REGISTERED)))
    assert seen == [REGISTERED]


def test_event_types_of_a_topic_come_from_asyncapi():
    types = event_types(TOPIC)
    assert CLOSED in types and REGISTERED in types
    assert all(topic_for_event(t) == TOPIC for t in types)
    assert event_types("no.such.topic") == []


def test_owner_country_of_an_event():
    assert owner_country(envelope_of(CLOSED)) == envelope_of(CLOSED)["data"]["owner_country"]
    assert owner_country({"data": None}) is None and owner_country({"data": {"owner_country": 3}}) is None
