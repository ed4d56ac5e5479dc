"""Outbox pieces that need no server: the document fields, the $push fragment, the wake-up datagram."""

from __future__ import annotations

import socket

import pytest
from mongoengine import Document, StringField

from plumbing.outbox import OutboxFields, Relay, notify_relay, push_events


def test_outbox_fields_are_inherited_by_an_aggregate_document() -> None:
    class Aggregate(OutboxFields):
        meta = {"collection": "unit_aggregates"}
        status = StringField()

    assert {"pending_events", "outbox_lease_until", "outbox_lease_owner"} <= set(Aggregate._fields)
    assert issubclass(Aggregate, Document)
    assert Aggregate().pending_events == []


def test_push_events_appends_atomically_in_list_order_and_marks_the_document_for_the_relay() -> None:
    update = push_events([{"id": "a"}, {"id": "b"}])
    assert update == {
        "$push": {"pending_events": {"$each": [{"id": "a"}, {"id": "b"}]}},
        "$set": {"outbox_pending": True},
    }


def test_a_lease_shorter_than_a_send_is_refused() -> None:
    with pytest.raises(ValueError):
        Relay([], lambda: None, lease_s=5, send_timeout_s=10)  # type: ignore[arg-type, return-value]


def test_notify_relay_sends_one_empty_datagram_and_never_raises() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        sock.settimeout(2)
        notify_relay(f"127.0.0.1:{sock.getsockname()[1]}")
        assert sock.recv(64) == b"w"
    notify_relay("not-an-address")  # best effort: a bad address costs latency, never an error
    notify_relay(None)
