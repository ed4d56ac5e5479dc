"""Records that are not CloudEvents (raw handlers), the lazily made producer, topics with a record size limit,
and which asyncapi messages are event types. No Kafka needed: fakes for the client objects."""

from __future__ import annotations

import os
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import yaml
from kafka.errors import KafkaTimeoutError
from opentelemetry import trace

from plumbing import kafka, telemetry, worker
from plumbing.kafka import (
    CONSUMED,
    ConsumerLoop,
    LazyProducer,
    RawRecord,
    TopicSpec,
    ensure_topics,
    event_types,
    load_topics,
    topic_for_event,
)

RAW = "opaque.things"
EVENTS = "identification.events.v1"


class FakeProducer:
    def __init__(self, fail: Exception | None = None) -> None:
        self.sent: list[tuple[str, dict[str, Any]]] = []
        self.fail = fail
        self.closed = False
        self.timeouts: list[float | None] = []

    def send(self, topic: str, **record: Any) -> Any:
        self.sent.append((topic, record))

        def get(timeout: float | None = None) -> Any:
            self.timeouts.append(timeout)
            if self.fail is not None:
                raise self.fail
            return SimpleNamespace(topic=topic, partition=0, offset=len(self.sent) - 1)

        return SimpleNamespace(get=get)

    def close(self, timeout: float | None = None) -> None:
        self.closed = True


def record(value: bytes | None, topic: str = RAW, offset: int = 3) -> Any:
    return SimpleNamespace(
        topic=topic, partition=0, offset=offset, key=b"k-1", value=value, headers=[("content-type", b"x/y")]
    )


def raw_loop(handler: Any, producer: FakeProducer, **kw: Any) -> ConsumerLoop:
    return ConsumerLoop(
        [EVENTS], "test-raw", {}, "127.0.0.1:1", max_attempts=2, backoff_s=0, producer=producer,
        raw_handlers={RAW: handler}, **kw,
    )  # fmt: skip


# ------------------------------------------------------------------------------------------ raw handlers


def test_a_raw_topic_is_subscribed_and_its_records_reach_their_handler_unparsed() -> None:
    seen: list[RawRecord] = []
    producer = FakeProducer()
    loop = raw_loop(seen.append, producer)
    assert loop.topics == [EVENTS, RAW]
    # Not JSON, not a CloudEvent: still the handler's, not a dead letter.
    assert loop._process(record(b"eyJ.not-json")) is True
    (got,) = seen
    assert (got.topic, got.partition, got.offset, got.key, got.value) == (RAW, 0, 3, b"k-1", b"eyJ.not-json")
    assert got.headers == (("content-type", b"x/y"),)
    assert producer.sent == []


def test_a_raw_handler_that_keeps_failing_is_retried_then_dead_lettered_with_the_record_unchanged() -> None:
    calls: list[int] = []
    producer = FakeProducer()

    def failing(raw: RawRecord) -> None:
        calls.append(raw.offset)
        raise RuntimeError("store down")

    loop = raw_loop(failing, producer)
    assert loop._process(record(b"token")) is True  # dead-lettered: committed
    assert calls == [3, 3]
    ((topic, sent),) = producer.sent
    assert topic == RAW + ".dlt" and sent["value"] == b"token" and sent["key"] == b"k-1"
    assert dict(sent["headers"])["dlt.origin.topic"] == RAW.encode()


def test_a_raw_handler_returning_means_committed_even_for_a_record_it_refuses() -> None:
    refused: list[bytes | None] = []
    producer = FakeProducer()
    loop = raw_loop(lambda raw: refused.append(raw.value), producer)  # a handler that logs and returns
    assert loop._process(record(None)) is True
    assert refused == [None] and producer.sent == []


def test_the_outcome_a_raw_handler_returns_is_counted_when_it_is_a_short_code() -> None:
    def count(outcome: str) -> float:
        return CONSUMED.labels("test-raw", RAW, outcome)._value.get()

    before = {o: count(o) for o in ("duplicate", "applied")}
    assert raw_loop(lambda raw: "duplicate", FakeProducer())._process(record(b"t")) is True
    assert (
        raw_loop(lambda raw: "Not a code: " + str(raw.value), FakeProducer())._process(record(b"t")) is True
    )
    assert raw_loop(lambda raw: None, FakeProducer())._process(record(b"t")) is True
    assert count("duplicate") == before["duplicate"] + 1 and count("applied") == before["applied"] + 2


def test_events_on_other_topics_still_go_through_the_event_table() -> None:
    producer = FakeProducer()
    loop = raw_loop(lambda raw: pytest.fail("not a raw topic"), producer)
    assert loop._process(record(b"{not json", topic=EVENTS)) is True
    assert [topic for topic, _ in producer.sent] == [EVENTS + ".dlt"]  # malformed event: DLT as before


def test_the_dlt_producer_gets_the_producer_options(monkeypatch: pytest.MonkeyPatch) -> None:
    made: list[dict[str, Any]] = []
    monkeypatch.setattr(
        kafka, "KafkaConsumer", lambda **config: SimpleNamespace(subscribe=lambda topics: None)
    )
    monkeypatch.setattr(
        kafka, "make_producer", lambda bootstrap, **options: made.append(options) or FakeProducer()
    )
    loop = ConsumerLoop(
        [EVENTS], "g", {}, "b:1", raw_handlers={RAW: print}, producer_options={"max_request_size": 9}
    )
    assert loop._connect()
    assert made == [{"client_id": "g-dlt", "max_request_size": 9}]


def test_run_consumer_passes_raw_handlers_and_creates_the_extra_topics(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    created: list[list[str]] = []
    loops: list[Any] = []

    class Loop:
        def __init__(self, topics: list[str], group: str, table: Any, bootstrap: str, **options: Any) -> None:
            loops.append((topics, group, options))
            self.ready = None

        def run(self) -> None:
            pass

    monkeypatch.setattr(worker, "start", lambda service, settings: (settings, "db", "b:1"))
    monkeypatch.setattr(
        worker, "ensure_topics", lambda bootstrap, specs: created.append([s.name for s in specs])
    )
    monkeypatch.setattr(worker, "ConsumerLoop", Loop)
    monkeypatch.setattr(worker.worker_endpoints, "serve", lambda ready: None)
    handler = print
    worker.run_consumer(
        "svc", [EVENTS], lambda db: {}, raw_handlers={RAW: handler},
        extra_topics=[TopicSpec(RAW, 1, 1000)], max_attempts=3,
    )  # fmt: skip
    (names,) = created
    assert RAW in names and EVENTS in names and set(names) >= {t.name for t in load_topics()}
    ((topics, group, options),) = loops
    assert topics == [EVENTS] and group == "svc"
    assert options == {"raw_handlers": {RAW: handler}, "client_id": "svc", "max_attempts": 3}


# ------------------------------------------------------------------------------------------ lazy producer


def test_the_lazy_producer_is_made_on_first_send_and_waits_for_the_ack() -> None:
    made: list[FakeProducer] = []

    def factory() -> FakeProducer:
        made.append(FakeProducer())
        return made[-1]

    producer = LazyProducer(factory, send_timeout_s=4.0)
    assert made == []  # nothing before the first send
    meta = producer.send("t", b"v", key=b"k", headers=[("content-type", b"a/b")])
    producer.send("t", b"w")
    assert len(made) == 1 and meta.offset == 0
    assert made[0].timeouts == [4.0, 4.0]
    (topic, sent), _ = made[0].sent
    assert topic == "t" and sent["key"] == b"k" and sent["value"] == b"v"
    assert ("content-type", b"a/b") in sent["headers"]
    producer.close()
    assert made[0].closed


def test_after_a_failed_send_the_producer_is_closed_and_the_next_send_makes_a_fresh_one() -> None:
    made = [FakeProducer(fail=KafkaTimeoutError("no ack")), FakeProducer()]
    queue = list(made)
    producer = LazyProducer(lambda: queue.pop(0))
    with pytest.raises(KafkaTimeoutError):
        producer.send("t", b"v")
    assert made[0].closed
    producer.send("t", b"v")
    assert len(made[1].sent) == 1


def test_a_factory_that_cannot_reach_kafka_raises_on_send_and_is_asked_again() -> None:
    attempts: list[int] = []

    def factory() -> FakeProducer:
        attempts.append(1)
        if len(attempts) == 1:
            raise KafkaTimeoutError("no brokers")
        return FakeProducer()

    producer = LazyProducer(factory)
    with pytest.raises(KafkaTimeoutError):
        producer.send("t", b"v")
    producer.send("t", b"v")
    assert len(attempts) == 2


def test_a_forked_child_makes_its_own_producer_and_leaves_the_parents_alone(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    made: list[FakeProducer] = []
    producer = LazyProducer(lambda: made.append(FakeProducer()) or made[-1])
    producer.send("t", b"parent")
    parent_pid = os.getpid()
    monkeypatch.setattr(kafka.os, "getpid", lambda: parent_pid + 1)  # as in the child after fork
    producer.send("t", b"child")
    assert len(made) == 2 and not made[0].closed
    assert [r["value"] for _, r in made[1].sent] == [b"child"]


def test_a_send_continues_the_callers_trace_in_its_header() -> None:
    telemetry.setup_tracing("plumbing-tests", "memory")  # what the other tests of this process use too
    made: list[FakeProducer] = []
    producer = LazyProducer(lambda: made.append(FakeProducer()) or made[-1])
    with trace.get_tracer("test").start_as_current_span("request") as span:
        producer.send("t", b"v")
    ((_, sent),) = made[0].sent
    traceparent = dict(sent["headers"])["traceparent"].decode()
    assert traceparent.split("-")[1] == format(span.get_span_context().trace_id, "032x")


# ------------------------------------------------------------------------------------------ topics


def _asyncapi(tmp_path: Path) -> Path:
    doc = {
        "asyncapi": "3.0.0",
        "channels": {
            "big": {
                "address": "big.things",
                "x-retention-ms": 1000,
                "x-max-message-bytes": 4096,
                "messages": {"blob": {"$ref": "#/components/messages/blob"}},
            },
            "events": {
                "address": "small.events.v1",
                "x-partitions": 3,
                "x-retention-ms": 1000,
                "messages": {"happened": {"$ref": "#/components/messages/happened"}},
            },
        },
        "components": {
            "messages": {
                "blob": {
                    "name": "blob",
                    "contentType": "application/octet-stream",
                    "payload": {"type": "string"},
                },
                "happened": {
                    "name": "small.thing.happened.v1",
                    "traits": [{"$ref": "#/components/messageTraits/cloudEventBinary"}],
                },
            }
        },
    }
    path = tmp_path / "asyncapi.yaml"
    path.write_text(yaml.safe_dump(doc))
    return path


def test_a_record_size_limit_is_read_and_created_with_the_topic(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = _asyncapi(tmp_path)
    specs = {spec.name: spec for spec in load_topics(path)}
    assert (
        specs["big.things"].max_message_bytes == 4096 and specs["small.events.v1"].max_message_bytes is None
    )

    requests: list[dict[str, Any]] = []

    class Admin:
        def __init__(self, **config: Any) -> None:
            pass

        def list_topics(self) -> list[str]:
            return []

        def create_topics(self, request: dict[str, Any], **kw: Any) -> None:
            requests.append(request)

        def close(self) -> None:
            pass

    monkeypatch.setattr(kafka, "KafkaAdminClient", Admin)
    ensure_topics("b:1", specs.values())
    (request,) = requests
    assert request["big.things"]["configs"]["max.message.bytes"] == "4096"
    assert "max.message.bytes" not in request["small.events.v1"]["configs"]


def test_only_cloudevents_messages_are_event_types(tmp_path: Path) -> None:
    path = _asyncapi(tmp_path)
    assert event_types("small.events.v1", path) == ["small.thing.happened.v1"]
    assert event_types("big.things", path) == []
    with pytest.raises(KeyError):
        topic_for_event("blob", path)
    # The platform's own document: the exchange's sealed envelopes are no event type.
    assert event_types("exchange.inbox.xk") == []
