"""Envelope, Kafka binary mode, event type format and the event schemas (no servers)."""

from __future__ import annotations

import json
import re
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml
from opentelemetry import trace
from opentelemetry.trace import NonRecordingSpan, SpanContext, TraceFlags

from plumbing import events
from plumbing.events import (
    InvalidEventData,
    InvalidEventType,
    MalformedEvent,
    from_kafka,
    new_event,
    to_kafka,
)
from plumbing.kafka import dead_letter_headers, is_event_message, load_topics, topic_for_event

SCHEMAS = sorted(events.schema_dir().glob("*.json"))
CASE = "b6a1d2e3-4f50-4a6b-9c7d-8e9f0a1b2c3d"
PERSON = "3f0c6a4e-9b1d-4c57-8f0e-2a6d9c1b7e55"
TP = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
CANARY = "Zeqirija Hoxhaj-Canary"


def closed_data(**extra: Any) -> dict[str, Any]:
    return {
        "case_id": CASE,
        "person_id": PERSON,
        "owner_country": "AL",
        "reason": "referred",
        "final_category": "victim",
        **extra,
    }


def closed_event(**kwargs: Any) -> dict[str, Any]:
    return new_event("identification.case.closed.v1", CASE, closed_data(), "/identification", **kwargs)


def test_new_event_builds_a_cloudevents_envelope() -> None:
    moment = datetime(2025, 3, 1, 9, 30, 15, 123456, tzinfo=UTC)
    envelope = closed_event(time=moment, traceparent=TP)
    assert uuid.UUID(envelope["id"]).version == 4
    assert envelope["specversion"] == "1.0"
    assert envelope["type"] == "identification.case.closed.v1"
    assert envelope["subject"] == envelope["partitionkey"] == CASE
    assert envelope["time"] == "2025-03-01T09:30:15.123Z"
    assert envelope["datacontenttype"] == "application/json"
    assert envelope["dataschema"] == "urn:thb:event:identification.case.closed.v1"
    assert envelope["traceparent"] == TP
    assert closed_event()["id"] != closed_event()["id"]


def test_new_event_reads_time_from_the_injected_clock() -> None:
    envelope = closed_event(clock=lambda: datetime(2030, 1, 2, 3, 4, 5, tzinfo=UTC))
    assert envelope["time"] == "2030-01-02T03:04:05.000Z"


def test_a_services_event_factory_fixes_its_source_and_clock() -> None:
    make = events.event_factory("/identification", lambda: datetime(2030, 1, 2, 3, 4, 5, tzinfo=UTC))
    data = closed_data()
    envelope = make("identification.case.closed.v1", CASE, data)
    assert (envelope["source"], envelope["subject"]) == ("/identification", CASE)
    assert envelope["time"] == "2030-01-02T03:04:05.000Z"
    assert envelope["data"] == data and envelope["data"] is not data  # detached from the caller's mapping
    with pytest.raises(InvalidEventData):  # validated like every envelope, before anything is written
        make("identification.case.closed.v1", CASE, closed_data(surname=CANARY))


def test_traceparent_defaults_to_the_active_span() -> None:
    context = SpanContext(
        trace_id=0x0AF7651916CD43DD8448EB211C80319C,
        span_id=0xB7AD6B7169203331,
        is_remote=False,
        trace_flags=TraceFlags(1),
    )
    with trace.use_span(NonRecordingSpan(context)):
        assert closed_event()["traceparent"] == TP
    assert "traceparent" not in closed_event()


def test_envelope_round_trips_through_kafka_binary_mode() -> None:
    envelope = closed_event(traceparent=TP)
    record = to_kafka(envelope)
    headers = dict(record.headers)
    assert len(headers) == len(record.headers), "no header twice"
    assert record.key == CASE.encode()
    assert json.loads(record.value) == envelope["data"]
    assert headers["ce_id"] == envelope["id"].encode()
    assert headers["ce_type"] == b"identification.case.closed.v1"
    assert headers["ce_source"] == b"/identification"
    assert headers["ce_specversion"] == b"1.0"
    assert headers["ce_time"] == envelope["time"].encode()
    assert headers["ce_subject"] == CASE.encode()
    assert headers["content-type"] == b"application/json"
    assert headers["traceparent"] == TP.encode()
    assert "ce_partitionkey" not in headers and "ce_traceparent" not in headers
    assert from_kafka(record.key, record.value, record.headers) == envelope


@pytest.mark.parametrize(
    "bad_type",
    [
        "identification.case.closed",  # no version
        "identification.case.closed.v0",
        "identification.case.closed.V1",
        "Identification.case.closed.v1",
        "identification.closed.v1",  # no aggregate
        "identification.case.closed.v1.extra",
        "identification..closed.v1",
        "",
    ],
)
def test_event_type_format_is_enforced(bad_type: str) -> None:
    with pytest.raises(InvalidEventType):
        new_event(bad_type, CASE, closed_data(), "/identification")


def test_a_well_formed_type_without_a_schema_is_refused() -> None:
    with pytest.raises(InvalidEventType):
        new_event("identification.case.reopened.v1", CASE, closed_data(), "/identification")


@pytest.mark.parametrize(
    "field,value",
    [
        ("name", CANARY),
        ("given_name", CANARY),
        ("date_of_birth", "2009-04-01"),
        ("document_number", "AB1234567"),
        ("phone", "+355 69 000 0000"),
        ("email", "someone@example.org"),
        ("address", "Rruga e Kavajës 1"),
        ("narrative", f"{CANARY} was recruited with a false job offer"),
    ],
)
def test_schemas_reject_additional_and_personal_fields_without_echoing_them(field: str, value: str) -> None:
    for path in SCHEMAS:
        event_type = path.stem
        example = json.loads(path.read_text())["examples"][0]
        with pytest.raises(InvalidEventData) as caught:
            new_event(event_type, CASE, {**example, field: value}, "/identification")
        assert value not in str(caught.value)
        assert "additionalProperties" in str(caught.value)


def test_schema_failure_messages_name_the_place_not_the_value() -> None:
    with pytest.raises(InvalidEventData) as caught:
        new_event("identification.case.closed.v1", CASE, closed_data(reason=CANARY), "/identification")
    assert "/reason" in str(caught.value) and CANARY not in str(caught.value)
    with pytest.raises(InvalidEventData):
        new_event("identification.case.closed.v1", CASE, closed_data(case_id="not-a-uuid"), "/identification")


def _walk(schema: Any, pointer: str = "#") -> list[tuple[str, dict[str, Any]]]:
    found: list[tuple[str, dict[str, Any]]] = []
    if isinstance(schema, dict):
        found.append((pointer, schema))
        for key, value in schema.items():
            if key in ("examples", "enum", "const", "required"):
                continue
            found.extend(_walk(value, f"{pointer}/{key}"))
    elif isinstance(schema, list):
        for index, value in enumerate(schema):
            found.extend(_walk(value, f"{pointer}/{index}"))
    return found


PERSONAL = re.compile(
    r"name|birth|dob|document|passport|phone|mail|address|narrative|note|comment|descr|text"
)


@pytest.mark.parametrize("path", SCHEMAS, ids=lambda p: p.stem)
def test_every_schema_is_closed_constrained_and_exemplified(path: Path) -> None:
    schema = json.loads(path.read_text())
    assert schema["$id"] == f"urn:thb:event:{path.stem}"
    assert events.TYPE_PATTERN.match(path.stem)
    assert schema["examples"], "every schema carries examples"
    for example in schema["examples"]:
        events.validate_data(path.stem, example)
    for pointer, node in _walk(schema):
        types = node.get("type")
        types = types if isinstance(types, list) else [types]
        if "object" in types:
            assert node.get("additionalProperties") is False, (
                f"{pointer} must set additionalProperties: false"
            )
            for prop in node.get("properties", {}):
                assert not PERSONAL.search(prop), f"{pointer}/{prop} looks like personal data"
        if "string" in types:
            # Free text is how narratives leak: every string is an id, a code or a constrained token.
            assert {"enum", "pattern", "format", "const"} & node.keys(), f"{pointer} is unconstrained text"


def test_asyncapi_declares_every_event_type_with_finite_retention_and_a_dlt() -> None:
    doc = yaml.safe_load((events.schema_dir().parent / "asyncapi.yaml").read_text())
    assert doc["asyncapi"].startswith("3.")
    # Event types are the CloudEvents messages; dead letters and the exchange's sealed envelopes are not.
    declared = {m["name"] for m in doc["components"]["messages"].values() if is_event_message(m)}
    assert {m["name"] for m in doc["components"]["messages"].values() if not is_event_message(m)} == {
        "dead-letter",
        "exchange-envelope",
    }
    assert declared == {p.stem for p in SCHEMAS}
    topics = {spec.name: spec for spec in load_topics()}
    for event_type in declared:
        topic = topic_for_event(event_type)
        assert topic + ".dlt" in topics and topics[topic + ".dlt"].dead_letter_of == topic
    assert all(0 < spec.retention_ms <= 400 * 24 * 3600 * 1000 for spec in topics.values())
    consumers = {c["service"] for c in doc["channels"]["identificationEvents"]["x-consumers"]}
    assert {"referral", "exchange", "return"} <= consumers
    # A service consumes as the consumer group of its own name (plumbing.worker.run_consumer): the contract says so
    # to the operator who reads lag and offsets by group.
    groups = {
        (c["service"], c["group"])
        for channel in doc["channels"].values()
        for c in channel.get("x-consumers", [])
        if c["service"] != "operator"
    }
    assert groups and all(service == group for service, group in groups), groups


def _record(envelope: dict[str, Any]) -> tuple[bytes, bytes, list[tuple[str, bytes]]]:
    record = to_kafka(envelope)
    return record.key, record.value, list(record.headers)


@pytest.mark.parametrize(
    "mutate",
    [
        pytest.param(lambda k, v, h: (k, b"{not json", h), id="bad-json"),
        pytest.param(lambda k, v, h: (k, b"[1, 2]", h), id="not-an-object"),
        pytest.param(lambda k, v, h: (k, None, h), id="no-value"),
        pytest.param(lambda k, v, h: (k, v, [x for x in h if x[0] != "ce_type"]), id="no-type"),
        pytest.param(lambda k, v, h: (k, v, [x for x in h if x[0] != "ce_id"]), id="no-id"),
        pytest.param(
            lambda k, v, h: (k, v, h + [("ce_type", b"identification.case.closed.v1")]), id="dup-header"
        ),
        pytest.param(
            lambda k, v, h: (k, v, [(n, b"\xff\xfe") if n == "ce_source" else (n, x) for n, x in h]),
            id="non-utf8",
        ),
        pytest.param(
            lambda k, v, h: (k, v, [(n, b"1.0x") if n == "ce_specversion" else (n, x) for n, x in h]),
            id="specversion",
        ),
        pytest.param(lambda k, v, h: (b"other", v, h), id="key-not-subject"),
        pytest.param(
            lambda k, v, h: (k, json.dumps({"case_id": CASE, "name": CANARY}).encode(), h), id="schema"
        ),
        pytest.param(
            lambda k, v, h: (k, v, [(n, b"garbage") if n == "traceparent" else (n, x) for n, x in h]),
            id="traceparent",
        ),
    ],
)
def test_malformed_records_raise_malformed_event_without_payload_in_the_message(mutate: Any) -> None:
    key, value, headers = mutate(*_record(closed_event(traceparent=TP)))
    with pytest.raises(MalformedEvent) as caught:
        from_kafka(key, value, headers)
    assert CANARY not in str(caught.value)


class _Leaky(Exception):
    pass


def test_dead_letter_headers_withhold_foreign_messages_and_truncate_ours() -> None:
    now = datetime(2025, 1, 1, tzinfo=UTC)
    base = {"topic": "t", "partition": 2, "offset": 7, "attempts": 3, "group": "g", "now": now}
    try:
        raise _Leaky(f"cannot apply event for {CANARY}")
    except _Leaky as exc:
        headers = dict(dead_letter_headers([("ce_id", b"x"), ("dlt.origin.topic", b"old")], exc=exc, **base))
    assert CANARY.encode() not in b"".join(headers.values())
    assert headers["dlt.origin.topic"] == b"t" and headers["dlt.origin.partition"] == b"2"
    assert headers["dlt.origin.offset"] == b"7" and headers["dlt.attempts"] == b"3"
    assert headers["dlt.error.class"].endswith(b"_Leaky")
    assert headers["dlt.error.where"].startswith(b"test_events:test_dead_letter_headers")
    assert headers["dlt.failed.at"] == b"2025-01-01T00:00:00.000Z"
    assert headers["ce_id"] == b"x"
    ours = dict(dead_letter_headers([], exc=MalformedEvent("x" * 500), **base))
    assert ours["dlt.error.message"] == b"x" * 200
