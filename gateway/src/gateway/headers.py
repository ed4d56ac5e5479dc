"""Which request headers reach a service, and which response headers reach the client.

Identity travels only inside the signed token. Any header that a proxy or a service might read as identity
(plumbing.identity_headers: the one list, which the services strip as well) is dropped at the edge, so a client
cannot claim to be someone by sending it (services behind another proxy may trust such headers: we never let a
client's copy through). The `Authorization` header is forwarded unchanged:
services validate the token themselves.
"""

from __future__ import annotations

import re
import secrets
import uuid
from collections.abc import Iterable

from plumbing.identity_headers import is_identity_header

# Hop-by-hop headers (RFC 9110 7.6.1) and those the gateway sets itself.
HOP_BY_HOP: frozenset[str] = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "proxy-connection",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
        "host",
        "content-length",
        "x-request-id",
        "traceparent",
        "tracestate",
        "x-forwarded-for",
        "x-forwarded-proto",
        "x-forwarded-host",
        "x-real-ip",
        "forwarded",
    }
)
RESPONSE_DROP: frozenset[str] = frozenset(
    {
        "connection",
        "keep-alive",
        "transfer-encoding",
        "upgrade",
        "trailer",
        "te",
        "server",
        "date",
        "content-length",
    }
)

_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{8,100}$")
_TRACEPARENT = re.compile(r"^00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$")


def forwarded_headers(raw: Iterable[tuple[bytes, bytes]]) -> list[tuple[bytes, bytes]]:
    """The client's headers minus identity, hop-by-hop and gateway-owned ones (names already lower case)."""
    kept: list[tuple[bytes, bytes]] = []
    for name, value in raw:
        text = name.decode("latin-1")
        if text in HOP_BY_HOP or is_identity_header(text):
            continue
        kept.append((name, value))
    return kept


def request_id(incoming: str | None) -> str:
    """Keep a client's request id when it is a plain token (it is echoed into logs), otherwise make one."""
    if incoming and _REQUEST_ID.fullmatch(incoming):
        return incoming
    return str(uuid.uuid4())


def trace_context(incoming: str | None) -> tuple[str, str]:
    """(traceparent to forward, trace id): continue a valid W3C trace, or start one."""
    if incoming:
        found = _TRACEPARENT.fullmatch(incoming.strip())
        if found and found.group(1) != "0" * 32 and found.group(2) != "0" * 16:
            return incoming.strip(), found.group(1)
    trace_id = secrets.token_hex(16)
    return f"00-{trace_id}-{secrets.token_hex(8)}-01", trace_id
