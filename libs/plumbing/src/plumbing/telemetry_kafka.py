"""W3C trace context in Kafka record headers.

kafka-python has no OpenTelemetry instrumentation we trust to keep payloads out of spans, so trace context is
carried by hand: the producer side writes the `traceparent` (and `tracestate`) header, the consumer side extracts
it and runs the handler inside a CONSUMER span that continues the producer's trace. Span attributes are topic,
partition, offset and event type only: never keys' meaning, never payload.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager

from opentelemetry import context as otel_context
from opentelemetry import propagate, trace
from opentelemetry.trace import Span, SpanKind

Headers = Sequence[tuple[str, bytes | None]]

_tracer = trace.get_tracer("plumbing.kafka")
# The headers the W3C propagator reads and writes; other headers never enter the carrier.
_TRACE_HEADERS = ("traceparent", "tracestate")


def current_traceparent() -> str | None:
    """The `traceparent` of the active span, or None when nothing is being traced."""
    carrier: dict[str, str] = {}
    propagate.inject(carrier)
    return carrier.get("traceparent")


def inject_headers(headers: list[tuple[str, bytes]]) -> list[tuple[str, bytes]]:
    """Headers plus the active trace context (replacing any trace headers already present)."""
    carrier: dict[str, str] = {}
    propagate.inject(carrier)
    kept = [(k, v) for k, v in headers if k not in carrier]
    return kept + [(k, v.encode("ascii")) for k, v in carrier.items() if k in _TRACE_HEADERS]


def extract_context(headers: Headers) -> otel_context.Context:
    """The trace context named by the record's headers (an empty context when there is none)."""
    carrier: dict[str, str] = {}
    for key, value in headers:
        if key in _TRACE_HEADERS and value is not None:
            try:
                carrier[key] = value.decode("ascii")
            except UnicodeDecodeError:
                continue  # a broken trace header must not break processing; the span just starts a new trace
    return propagate.extract(carrier)


@contextmanager
def consumer_span(
    topic: str, partition: int, offset: int, headers: Headers, event_type: str | None = None
) -> Iterator[Span]:
    """Run the body inside a CONSUMER span whose parent is the trace context found in the headers."""
    parent = extract_context(headers)
    attributes: dict[str, str | int] = {
        "messaging.system": "kafka",
        "messaging.operation.type": "process",
        "messaging.destination.name": topic,
        "messaging.destination.partition.id": str(partition),
        "messaging.kafka.offset": offset,
    }
    if event_type:
        attributes["cloudevents.event_type"] = event_type
    with _tracer.start_as_current_span(
        f"process {topic}", context=parent, kind=SpanKind.CONSUMER, attributes=attributes
    ) as span:
        yield span


@contextmanager
def producer_span(topic: str, traceparent: str | None, event_type: str | None = None) -> Iterator[Span]:
    """A PRODUCER span continuing `traceparent` (the request that caused the event), for relays and replays."""
    parent = extract_context([("traceparent", traceparent.encode("ascii"))] if traceparent else [])
    attributes: dict[str, str] = {
        "messaging.system": "kafka",
        "messaging.operation.type": "send",
        "messaging.destination.name": topic,
    }
    if event_type:
        attributes["cloudevents.event_type"] = event_type
    with _tracer.start_as_current_span(
        f"send {topic}", context=parent, kind=SpanKind.PRODUCER, attributes=attributes
    ) as span:
        yield span
