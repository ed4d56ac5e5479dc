"""Tracing: one request's trace continues through Kafka into the consuming services.

1. Across real processes (devstack's `platform`): a request with a known W3C `traceparent` through the gateway;
   the same trace id is in the gateway's and identification-api's line for that request, in the `traceparent`
   header of the Kafka record the relay published, and in each consumer's "event applied" line for that event.
2. In process, with the OpenTelemetry in-memory exporter: the outbox relay's PRODUCER span is a child of the
   request's span and plumbing.kafka's CONSUMER span is a child of the PRODUCER span, all in one trace.
   (libs/plumbing/tests/integration/test_kafka_consumer.py::test_the_handler_runs_in_the_producers_trace checks
   only the trace id seen by a handler, with no exporter and no relay; this adds the span parentage.)
"""

from __future__ import annotations

import secrets
import threading
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind
from pymongo import MongoClient

from plumbing import telemetry
from plumbing.events import new_event
from plumbing.kafka import ConsumerLoop, TopicSpec, ensure_topics, make_producer
from plumbing.outbox import Relay
from tests.integration.platform_helpers import (
    CONSUMING_SERVICES,
    EVENTS_TOPIC,
    Client,
    anonymous_person,
    header,
    json_lines,
    poll,
    read_topic,
)

pytestmark = pytest.mark.integration


def test_a_requests_trace_id_is_in_the_api_line_the_kafka_record_and_each_consumers_line(
    running_platform: Any,
) -> None:
    platform = running_platform
    trace_id, parent_span = secrets.token_hex(16), secrets.token_hex(8)
    request_id = f"trace-test-{uuid.uuid4().hex[:12]}"
    client = Client(platform, "me-police")
    response = client.post(
        "/persons",
        anonymous_person(),
        headers={"traceparent": f"00-{trace_id}-{parent_span}-01", "X-Request-Id": request_id},
    )
    assert response.status_code == 201, response.text
    person_id = response.json()["id"]

    # The API's one line for this request (found by request id) carries the caller's trace id.
    def api_line() -> dict[str, Any] | None:
        lines = json_lines(platform.log_text("identification-api"))
        return next((line for line in lines if line.get("request_id") == request_id), None)

    line = poll(api_line, 20, "identification-api's line for the request")
    assert line["operation_id"].endswith("register_person") and line["status"] == 201
    assert line["trace_id"] == trace_id
    assert any(
        line.get("request_id") == request_id and line.get("trace_id") == trace_id
        for line in json_lines(platform.log_text("gateway"))
    )

    # The record the relay published carries the trace in its W3C header.
    bootstrap = platform.env["KAFKA_BOOTSTRAP_SERVERS"]
    records = poll(
        lambda: [r for r in read_topic(bootstrap, EVENTS_TOPIC) if r.key == person_id.encode()],
        60,
        "the registration event on Kafka",
    )
    (record,) = records
    traceparent = (header(record, "traceparent") or b"").decode()
    assert traceparent.split("-")[1] == trace_id
    event_id = (header(record, "ce_id") or b"").decode()

    # Each consuming service logs applying that event, in the same trace.
    for service in CONSUMING_SERVICES:

        def applied(service: str = service) -> list[dict[str, Any]]:
            return [
                line
                for line in json_lines(platform.log_text(f"{service}-consumer"))
                if line.get("event_id") == event_id and line.get("msg") == "event applied"
            ]

        (consumer_line,) = poll(applied, 60, f"{service}-consumer applying the event")
        assert consumer_line["trace_id"] == trace_id, service
        assert consumer_line["event_type"] == "identification.person.registered.v1"


@pytest.fixture()
def exporter() -> Iterator[InMemorySpanExporter]:
    """An in-memory exporter on this process's tracer provider (installed once per process by plumbing)."""
    memory = InMemorySpanExporter()
    provider = telemetry.setup_tracing("platform-tracing-test")
    provider.add_span_processor(SimpleSpanProcessor(memory))
    yield memory
    memory.shutdown()  # the provider outlives the test; a shut-down exporter drops further spans


def test_the_consumer_span_continues_the_relays_producer_span_of_the_requests_trace(
    kafka: Any, mongo: Any, exporter: InMemorySpanExporter
) -> None:
    bootstrap = kafka.env["KAFKA_BOOTSTRAP_SERVERS"]
    topic = f"test.tracing.{uuid.uuid4().hex[:8]}.v1"
    ensure_topics(bootstrap, [TopicSpec(topic, 1, 3_600_000), TopicSpec(topic + ".dlt", 1, 3_600_000, topic)])
    client: MongoClient = MongoClient(mongo.env["MONGODB_URI"], tz_aware=True)
    database = client[f"tracing_{uuid.uuid4().hex[:8]}"]
    try:
        # The "request": a SERVER span inside which a command writes its aggregate with a pending event.
        case_id = str(uuid.uuid4())
        with trace.get_tracer("test").start_as_current_span("POST /v1/test", kind=SpanKind.SERVER) as request:
            data = {"case_id": case_id, "person_id": str(uuid.uuid4()), "owner_country": "AL", "reason": "returned",
                    "final_category": "potential_victim"}  # fmt: skip
            envelope = new_event("identification.case.closed.v1", case_id, data, "/identification")
            database["cases"].insert_one({"_id": case_id, "pending_events": [envelope]})
        request_context = request.get_span_context()
        assert envelope["traceparent"].split("-")[1] == format(request_context.trace_id, "032x")

        relay = Relay([database["cases"]], make_producer(bootstrap), topic_for=lambda _: topic)
        assert relay.run_once() == (1, False)

        handled = threading.Event()
        loop = ConsumerLoop(
            [topic], f"tracing-{uuid.uuid4().hex[:6]}", lambda _: handled.set(), bootstrap,
            session_timeout_ms=6000, heartbeat_interval_ms=1000,
        )  # fmt: skip
        thread = threading.Thread(target=loop.run, kwargs={"install_signal_handlers": False})
        thread.start()
        try:
            assert handled.wait(60), "the consumer never handled the event"
        finally:
            loop.stop()
            thread.join(20)
    finally:
        client.drop_database(database.name)
        client.close()

    spans = exporter.get_finished_spans()
    (producer,) = [s for s in spans if s.kind is SpanKind.PRODUCER and s.name == f"send {topic}"]
    (consumer,) = [s for s in spans if s.kind is SpanKind.CONSUMER and s.name == f"process {topic}"]
    assert producer.context is not None and consumer.context is not None
    assert producer.parent is not None and producer.parent.span_id == request_context.span_id
    assert consumer.parent is not None and consumer.parent.span_id == producer.context.span_id
    assert {producer.context.trace_id, consumer.context.trace_id} == {request_context.trace_id}
    attributes = dict(consumer.attributes or {})
    assert attributes["messaging.destination.name"] == topic
    assert attributes["cloudevents.event_type"] == "identification.case.closed.v1"
