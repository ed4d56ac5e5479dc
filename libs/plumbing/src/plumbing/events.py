"""CloudEvents 1.0 envelopes as plain dicts, validated against openapi/events/<type>.json, and their Kafka form.

An envelope is what a command appends to its aggregate's `pending_events` (the outbox) and what a consumer's
handler receives:

    {"specversion": "1.0", "id": "<uuid4>", "source": "/identification", "type": "identification.case.closed.v1",
     "subject": "<aggregate id>", "time": "2025-01-31T10:00:00.000Z", "datacontenttype": "application/json",
     "dataschema": "urn:thb:event:identification.case.closed.v1", "partitionkey": "<aggregate id>",
     "traceparent": "00-...-01" (or absent), "data": {...}}

On Kafka it travels in binary content mode: attributes as `ce_*` headers, `datacontenttype` as `content-type`,
the W3C `traceparent` under its own name (so any propagator reads it), the data as JSON value bytes and the
aggregate id as the record key. The conversion uses the CloudEvents SDK's Kafka binding
(`cloudevents.core.bindings.kafka`), which maps exactly this; we only keep `partitionkey` and `traceparent`
out of the `ce_*` headers ourselves (the key carries the first, the W3C header the second).

Error messages raised here name attributes, JSON pointers and schema keywords, never submitted values: they end
up in DLT headers and logs, where personal data must never appear.
"""

from __future__ import annotations

import json
import os
import re
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cache
from pathlib import Path
from typing import Any

import yaml
from cloudevents.core.bindings import kafka as ce_kafka
from cloudevents.core.formats.json import JSONFormat
from cloudevents.core.v1.event import CloudEvent
from jsonschema import Draft202012Validator, FormatChecker
from referencing import Registry
from referencing.jsonschema import DRAFT202012

import thb_contracts
from plumbing.telemetry_kafka import current_traceparent

SPECVERSION = "1.0"
CONTENT_TYPE = "application/json"
# <service>.<aggregate>.<event>.v<N>: lower-case words, digits and underscores; version without leading zero.
TYPE_PATTERN = re.compile(r"^[a-z][a-z0-9_]*\.[a-z][a-z0-9_]*\.[a-z][a-z0-9_]*\.v[1-9][0-9]*$")
TRACEPARENT_PATTERN = re.compile(r"^[0-9a-f]{2}-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}$")
# Attributes that travel as ce_* headers; partitionkey and traceparent are mapped separately (see module doc).
_CE_ATTRIBUTES = ("id", "source", "type", "subject", "time", "dataschema")
_REQUIRED = ("specversion", "id", "source", "type", "subject", "time", "datacontenttype", "data")
_REQUIRED_HEADERS = (
    "ce_id",
    "ce_type",
    "ce_source",
    "ce_specversion",
    "ce_time",
    "ce_subject",
    "content-type",
)
_ALLOWED = frozenset(_REQUIRED) | {"dataschema", "partitionkey", "traceparent"}


class EventError(ValueError):
    """Base of envelope errors. Messages never contain submitted values, so they may go to DLT headers."""

    public_message = True


class InvalidEventType(EventError):
    pass


class InvalidEventData(EventError):
    pass


class MalformedEvent(EventError):
    """A Kafka record or stored envelope that is not a valid event of a known type."""


def utc_now() -> datetime:
    return datetime.now(UTC)


def format_time(moment: datetime) -> str:
    """RFC 3339 UTC with milliseconds and `Z` (the one textual form, so round trips compare equal)."""
    if moment.tzinfo is None:
        raise EventError("event time must be timezone-aware")
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def schema_dir() -> Path:
    """Where the event JSON Schemas live: $EVENT_SCHEMA_DIR, else the contracts package's events/ folder."""
    configured = os.environ.get("EVENT_SCHEMA_DIR")
    if configured:
        return Path(configured)
    return Path(str(thb_contracts.event_schemas()))


def check_type(event_type: str) -> None:
    if not isinstance(event_type, str) or not TYPE_PATTERN.match(event_type):
        raise InvalidEventType("event type must be <service>.<aggregate>.<event>.v<N>")


@cache
def _validator(directory: Path, event_type: str) -> Draft202012Validator:
    path = directory / f"{event_type}.json"
    if not path.is_file():
        raise InvalidEventType(f"no schema for event type {event_type}")
    schema = json.loads(path.read_text(encoding="utf-8"))
    Draft202012Validator.check_schema(schema)
    return Draft202012Validator(schema, format_checker=FormatChecker(), registry=_contracts_beside(directory))


CONTRACT_URN = "urn:thb:contract:"


@cache
def _contracts_beside(directory: Path) -> Registry[Any]:
    """Event schemas refer to code lists of a service contract (`urn:thb:contract:<service>#/components/...`),
    so that a list of codes is defined once, in the HTTP contract, and an event can never be narrower than the
    request that caused it. The contracts live beside the event schema directory (openapi/<service>.yaml)."""
    resources = [
        (
            CONTRACT_URN + path.stem,
            DRAFT202012.create_resource(yaml.safe_load(path.read_text(encoding="utf-8"))),
        )
        for path in sorted(directory.parent.glob("*.yaml"))
    ]
    return Registry().with_resources(resources)


def known_types(directory: Path | None = None) -> list[str]:
    directory = directory or schema_dir()
    return sorted(p.name.removesuffix(".json") for p in directory.glob("*.json"))


def validate_data(event_type: str, data: Any, directory: Path | None = None) -> None:
    """Raise InvalidEventData when `data` does not match the type's schema (message: pointers and keywords)."""
    check_type(event_type)
    validator = _validator(directory or schema_dir(), event_type)
    errors = sorted(validator.iter_errors(data), key=lambda e: list(e.absolute_path))
    if errors:
        # e.message would quote the offending value (possibly a name); report where and which rule instead.
        where = "; ".join(
            f"{'/' + '/'.join(str(p) for p in e.absolute_path)} {e.validator}" for e in errors[:5]
        )
        raise InvalidEventData(f"{event_type} data fails its schema at {where}")


def new_event(
    type: str,  # noqa: A002 - the CloudEvents attribute name
    aggregate_id: str,
    data: Mapping[str, Any],
    source: str,
    time: datetime | None = None,
    traceparent: str | None = None,
    *,
    clock: Callable[[], datetime] = utc_now,
) -> dict[str, Any]:
    """A validated envelope for the outbox. Raises before anything is written if type or data is invalid.

    `traceparent` defaults to the active span's, so events carry the trace of the request that caused them.
    """
    check_type(type)
    if not isinstance(aggregate_id, str) or not aggregate_id:
        raise EventError("aggregate_id must be a non-empty string")
    if not isinstance(source, str) or not source:
        raise EventError("source must be a non-empty URI reference")
    payload = json.loads(json.dumps(dict(data)))  # plain JSON types only, detached from the caller's objects
    validate_data(type, payload)
    envelope: dict[str, Any] = {
        "specversion": SPECVERSION,
        "id": str(uuid.uuid4()),
        "source": source,
        "type": type,
        "subject": aggregate_id,
        "time": format_time(time or clock()),
        "datacontenttype": CONTENT_TYPE,
        "dataschema": f"urn:thb:event:{type}",
        "partitionkey": aggregate_id,
        "data": payload,
    }
    traceparent = traceparent or current_traceparent()
    if traceparent:
        envelope["traceparent"] = traceparent
    return envelope


# (event type, aggregate id, data) -> a validated envelope for the outbox
EventFactory = Callable[[str, str, Mapping[str, Any]], dict[str, Any]]


def event_factory(source: str, clock: Callable[[], datetime]) -> EventFactory:
    """`new_event` as a service's handlers call it (their Deps' `new_event`): the service's `source` and its clock
    (`clock.now`, so that a test's or a drill's fixed instant is the events' time too) are fixed once, at wiring."""

    def make(event_type: str, aggregate_id: str, data: Mapping[str, Any]) -> dict[str, Any]:
        return new_event(event_type, aggregate_id, dict(data), source, clock=clock)

    return make


def owner_country(envelope: Mapping[str, Any]) -> str | None:
    """The country owning the event's aggregate (`data.owner_country`, which every event of an owned record
    carries), or None: what a consumer keeps to scope what it received by country."""
    data = envelope.get("data")
    country = data.get("owner_country") if isinstance(data, Mapping) else None
    return country if isinstance(country, str) else None


def validate_envelope(envelope: Mapping[str, Any]) -> None:
    """Raise MalformedEvent unless this is a complete envelope whose data matches its type's schema."""
    missing = [a for a in _REQUIRED if a not in envelope]
    if missing:
        raise MalformedEvent(f"envelope lacks {', '.join(missing)}")
    unknown = sorted(set(envelope) - _ALLOWED)
    if unknown:
        raise MalformedEvent(f"envelope has unknown attributes {', '.join(unknown)}")
    if envelope["specversion"] != SPECVERSION:
        raise MalformedEvent("unsupported specversion")
    if envelope["datacontenttype"] != CONTENT_TYPE:
        raise MalformedEvent("unsupported datacontenttype")
    try:
        uuid.UUID(str(envelope["id"]))
        datetime.fromisoformat(str(envelope["time"]).replace("Z", "+00:00"))
    except ValueError as exc:
        raise MalformedEvent("envelope id or time is not well-formed") from exc
    tp = envelope.get("traceparent")
    if tp is not None and not (isinstance(tp, str) and TRACEPARENT_PATTERN.match(tp)):
        raise MalformedEvent("traceparent is not well-formed")
    try:
        validate_data(envelope["type"], envelope["data"])
    except InvalidEventType as exc:
        raise MalformedEvent(str(exc)) from exc
    except InvalidEventData as exc:
        raise MalformedEvent(str(exc)) from exc


@dataclass(frozen=True)
class KafkaRecord:
    """What goes to KafkaProducer.send: key, value and headers (kafka-python's list of (str, bytes))."""

    key: bytes
    value: bytes
    headers: list[tuple[str, bytes]]


_FORMAT = JSONFormat()


def to_kafka(envelope: Mapping[str, Any]) -> KafkaRecord:
    """Binary content mode: ce_* headers, content-type, traceparent; JSON data as value; aggregate id as key."""
    attributes: dict[str, Any] = {a: envelope[a] for a in _CE_ATTRIBUTES if envelope.get(a) is not None}
    attributes["specversion"] = envelope.get("specversion", SPECVERSION)
    attributes["datacontenttype"] = envelope.get("datacontenttype", CONTENT_TYPE)
    attributes["time"] = datetime.fromisoformat(str(envelope["time"]).replace("Z", "+00:00"))
    key = str(envelope.get("partitionkey") or envelope["subject"])
    message = ce_kafka.to_binary(CloudEvent(attributes=attributes, data=envelope["data"]), _FORMAT)
    headers = [(name, value) for name, value in message.headers.items() if name != "ce_time"]
    # The SDK writes microseconds; keep the envelope's own textual time so the round trip is exact.
    headers.append(("ce_time", str(envelope["time"]).encode("utf-8")))
    if envelope.get("traceparent"):
        headers.append(("traceparent", str(envelope["traceparent"]).encode("ascii")))
    return KafkaRecord(key=key.encode("utf-8"), value=message.value, headers=headers)


def from_kafka(key: bytes | None, value: bytes | None, headers: Sequence[tuple[str, bytes | None]]) -> dict:
    """The envelope of a binary-mode record, validated (type known, data matching its schema).

    Raises MalformedEvent for anything else: duplicate or missing headers, non-UTF-8, bad JSON, schema failure.
    """
    seen: dict[str, bytes] = {}
    for name, raw in headers:
        lowered = name.lower()
        if lowered in seen:
            raise MalformedEvent(f"duplicate header {lowered}")
        seen[lowered] = raw if raw is not None else b""
    # Checked here because the SDK fills in a fresh id and time when they are absent: a record without them
    # is not an event we can apply once.
    missing = [h for h in _REQUIRED_HEADERS if h not in seen]
    if missing:
        raise MalformedEvent(f"record lacks headers {', '.join(missing)}")
    ce_headers = {n: v for n, v in seen.items() if n.startswith("ce_") or n == "content-type"}
    if value is None:
        raise MalformedEvent("record has no value")
    try:
        message = ce_kafka.KafkaMessage(headers=ce_headers, key=key, value=value)
        event = ce_kafka.from_binary(message, _FORMAT, CloudEvent)
    except Exception as exc:  # noqa: BLE001 - any parse failure of foreign bytes is a malformed record
        # The SDK's messages may quote header values; report only what kind of failure it was.
        raise MalformedEvent(f"record is not a binary-mode CloudEvent ({type(exc).__name__})") from exc
    if not isinstance(event.get_data(), dict):
        raise MalformedEvent("record value is not a JSON object")
    envelope: dict[str, Any] = {
        "specversion": event.get_specversion(),
        "id": event.get_id(),
        "source": event.get_source(),
        "type": event.get_type(),
        "subject": event.get_subject(),
        "time": seen["ce_time"].decode("utf-8") if "ce_time" in seen else None,
        "datacontenttype": event.get_datacontenttype(),
        "data": event.get_data(),
    }
    if event.get_dataschema():
        envelope["dataschema"] = event.get_dataschema()
    envelope["partitionkey"] = (
        key.decode("utf-8", errors="strict") if key is not None else envelope["subject"]
    )
    if "traceparent" in seen:
        envelope["traceparent"] = seen["traceparent"].decode("ascii", errors="replace")
    envelope = {k: v for k, v in envelope.items() if v is not None}
    validate_envelope(envelope)
    if envelope["partitionkey"] != envelope["subject"]:
        raise MalformedEvent("record key differs from the event subject")
    return envelope
