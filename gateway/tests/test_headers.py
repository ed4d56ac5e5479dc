"""What reaches a service: identity headers never, the token and the purpose always."""

from __future__ import annotations

import pytest

from gateway.headers import forwarded_headers, request_id, trace_context

IDENTITY = [
    "X-User",
    "X-User-Id",
    "X-User-Roles",
    "X-Userinfo",
    "X-Country",
    "X-Agency",
    "X-Roles",
    "X-Role",
    "X-Forwarded-User",
    "X-Forwarded-Email",
    "X-Forwarded-Groups",
    "X-Forwarded-Preferred-Username",
    "X-Forwarded-Access-Token",
    "X-Auth-Request-User",
    "X-Auth-Roles",
    "X-Authenticated-Userid",
    "X-Remote-User",
    "Remote-User",
    "X-Consumer-Username",
    "X-Client-Id",
    "X-Gateway-Caller",
    "X-Jwt-Payload",
    "X-Id-Token",
]
KEPT = [
    "Authorization",
    "X-Purpose",
    "Idempotency-Key",
    "X-Acting-User",
    "Accept-Language",
    "Content-Type",
    "Accept",
]


def raw(*names: str) -> list[tuple[bytes, bytes]]:
    return [(name.lower().encode(), b"value") for name in names]


@pytest.mark.parametrize("name", IDENTITY)
def test_identity_header_is_stripped(name: str) -> None:
    assert forwarded_headers(raw(name, "X-Purpose")) == [(b"x-purpose", b"value")]


@pytest.mark.parametrize("name", KEPT)
def test_ordinary_header_is_kept(name: str) -> None:
    assert forwarded_headers(raw(name)) == raw(name)


@pytest.mark.parametrize(
    "name",
    [
        "Host",
        "Connection",
        "Transfer-Encoding",
        "X-Request-Id",
        "Traceparent",
        "X-Forwarded-For",
        "Forwarded",
    ],
)
def test_hop_by_hop_and_gateway_owned_headers_are_replaced(name: str) -> None:
    assert forwarded_headers(raw(name)) == []


def test_authorization_value_is_forwarded_byte_for_byte() -> None:
    value = b"Bearer abc.def.ghi"
    assert forwarded_headers([(b"authorization", value)]) == [(b"authorization", value)]


def test_request_id_keeps_a_plain_one_and_replaces_anything_else() -> None:
    assert request_id("abc-123_45.6") == "abc-123_45.6"
    for bad in (None, "", "short", "has space inside", "a" * 101, "name=Ana Hoxha"):
        made = request_id(bad)
        assert made != bad and len(made) == 36


def test_valid_traceparent_is_continued() -> None:
    incoming = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
    assert trace_context(incoming) == (incoming, "0af7651916cd43dd8448eb211c80319c")


@pytest.mark.parametrize(
    "incoming",
    [
        None,
        "garbage",
        "00-00000000000000000000000000000000-b7ad6b7169203331-01",
        "01-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
    ],
)
def test_invalid_or_missing_traceparent_starts_a_new_trace(incoming: str | None) -> None:
    traceparent, trace_id = trace_context(incoming)
    assert traceparent != incoming
    assert traceparent.startswith(f"00-{trace_id}-") and len(trace_id) == 32
