"""Hostile input against every operation of every service, through the gateway and straight to the service.

The classes a security probe used (and the usual others): bodies nested a thousand deep, lone surrogates,
duplicate members, non-finite numbers, a byte-order mark, invalid UTF-8, control and bidirectional formatting
characters, very long strings, huge arrays, no Content-Type; invalid percent-encoding, a forged cursor and an
out-of-range `updated_since` in the query; CR in a header value, a token whose `kid` is a number, oversized
heads; a path starting with `//`. Every answer must be a 4xx application/problem+json — never a 5xx, never a
protocol-level text/plain answer. Requests are written to the socket byte for byte (an HTTP client would
normalise or refuse several of them before sending).
"""

from __future__ import annotations

import base64
import json
import socket
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import pytest

from tests.integration.contract_requests import (
    ADULT_LABOUR,
    BODIES,
    FIXED_PATH_VALUES,
    FULL_BODIES,
    PROBE_YEARS,
    purpose_for,
    user_for,
)
from tools.contracts import all_operations

pytestmark = pytest.mark.integration


@dataclass(frozen=True)
class Answer:
    status: int
    content_type: str
    body: bytes


def send_raw(base_url: str, request: bytes, timeout: float = 30.0) -> Answer:
    """One request on its own connection, exactly these bytes; the answer read until the server closes."""
    parts = urlsplit(base_url)
    with socket.create_connection((parts.hostname, parts.port), timeout=timeout) as connection:
        try:
            connection.sendall(request)
        except OSError as error:  # the server answered and closed before reading everything: read the answer
            if not isinstance(error, BrokenPipeError | ConnectionResetError):
                raise
        received = b""
        try:
            while chunk := connection.recv(65536):
                received += chunk
        except ConnectionResetError:
            if not received:
                raise
    head, _, body = received.partition(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    status = int(lines[0].split(b" ")[1])
    headers = {
        name.strip().lower(): value.strip() for name, _, value in (line.partition(b":") for line in lines[1:])
    }
    return Answer(status, headers.get(b"content-type", b"").decode("latin-1"), body)


def build(
    method: str,
    target: bytes,
    headers: dict[bytes, bytes],
    body: bytes | None = None,
    content_type: bool = True,
) -> bytes:
    lines = [method.encode() + b" " + target + b" HTTP/1.1", b"Host: platform.test", b"Connection: close"]
    lines += [name + b": " + value for name, value in headers.items()]
    if body is not None:
        if content_type:
            lines.append(b"Content-Type: application/json")
        lines.append(b"Content-Length: " + str(len(body)).encode())
    return b"\r\n".join(lines) + b"\r\n\r\n" + (body or b"")


# ---------------------------------------------------------------------------------------------- the classes


def first_string(value: Any, path: tuple = ()) -> tuple | None:
    if isinstance(value, str):
        return path
    if isinstance(value, dict):
        items: Any = value.items()
    elif isinstance(value, list):
        items = enumerate(value)
    else:
        return None
    for key, item in items:
        found = first_string(item, (*path, key))
        if found is not None:
            return found
    return None


def replace_at(value: Any, path: tuple, replacement: Any) -> Any:
    copied = json.loads(json.dumps(value))
    target = copied
    for step in path[:-1]:
        target = target[step]
    target[path[-1]] = replacement
    return copied


def with_text(base: dict[str, Any], text: str) -> bytes:
    """`text` as the body's first string (or as an extra member when the body has none), JSON-escaped."""
    path = first_string(base)
    body = replace_at(base, path, text) if path else {**base, "note": text}
    return json.dumps(body).encode()


def body_classes(base: dict[str, Any]) -> dict[str, tuple[bytes, bool]]:
    """name -> (body bytes, send a Content-Type)."""
    valid = json.dumps(base).encode()
    first = next(iter(base), None)
    duplicated = (
        b"{" + json.dumps(first).encode() + b":" + json.dumps(base[first]).encode() + b"," + valid[1:]
        if first
        else b'{"x":1,"x":2}'
    )
    path = first_string(base) or ("note",)
    deep = json.dumps(replace_at(base, path, "DEEP") if first_string(base) else {**base, "note": "DEEP"})
    return {
        "nested-1000": (deep.encode().replace(b'"DEEP"', b"[" * 1000 + b"]" * 1000), True),
        "lone-surrogate": (with_text(base, "\ud800x").replace(b"\\ud800", b"\\ud800"), True),
        "duplicate-members": (duplicated, True),
        "number-1e309": (valid[:-1] + (b', "n": 1e309}' if first else b'"n": 1e309}'), True),
        "nan": (valid[:-1] + (b', "n": NaN}' if first else b'"n": NaN}'), True),
        "negative-zero": (valid[:-1] + (b', "n": -0}' if first else b'"n": -0}'), True),
        "byte-order-mark": (b"\xef\xbb\xbf" + valid, True),
        "invalid-utf8": (valid.replace(b"{", b"{\xff\xfe", 1), True),
        "nul": (with_text(base, "a\u0000b"), True),
        "control": (with_text(base, "a\u001bb"), True),
        "bidi-override": (with_text(base, "\u202eevil"), True),
        "bidi-isolate": (with_text(base, "\u2066x\u2069"), True),
        "long-string": (with_text(base, "A" * 100_000), True),
        "over-body-limit": (b"", True),  # declared below: a length over the limit, refused before it is read
        "huge-array": (json.dumps({**base, "items": [0] * 200_000}).encode(), True),
        "truncated": (valid[: max(1, len(valid) // 2)], True),
        "no-content-type": (valid, False),
        "not-json": (b"<xml/>", True),
    }


def forged_token() -> str:
    def part(value: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(value).encode()).rstrip(b"=").decode()

    return f"{part({'alg': 'RS256', 'typ': 'JWT', 'kid': 123})}.{part({'sub': 'x'})}.{'A' * 43}"


@dataclass(frozen=True)
class Probe:
    label: str
    base_url: str
    request: bytes


def probes(platform: Any, records: dict[str, str]) -> Iterator[Probe]:
    for op in all_operations():
        path = op.path
        for name, value in {**FIXED_PATH_VALUES, **records}.items():
            path = path.replace("{" + name + "}", value)
        for name in (
            "notification_id",
            "request_id",
            "provider_id",
            "referral_id",
        ):  # records it need not own
            path = path.replace("{" + name + "}", str(uuid.uuid4()))
        token = platform.token(user_for(op.roles, service=op.service)).encode()
        headers = {
            b"Authorization": b"Bearer " + token,
            b"X-Purpose": purpose_for(path).encode(),
            b"Idempotency-Key": f"hostile-{uuid.uuid4()}".encode(),
            b"If-Match": b'"0"',
        }
        method = op.method.upper()
        target = path.encode()
        has_body = method in ("POST", "PATCH", "PUT")
        text = json.dumps(FULL_BODIES.get(op.operation_id, BODIES.get(op.operation_id, {})))
        for name, value in {**records, "probe_year": PROBE_YEARS["hostile"], "unique": "1"}.items():
            text = text.replace("{" + name + "}", value)
        base = json.loads(text)
        valid_body = json.dumps(base).encode() if has_body else None
        for channel in ("gateway", "direct"):
            url = platform.gateway if channel == "gateway" else platform.urls[op.service]

            def probe(
                name: str, request: bytes, url: str = url, where: str = f"{op.label} [{channel}]"
            ) -> Probe:
                return Probe(f"{where} {name}", url, request)

            if has_body:
                for name, (body, typed) in body_classes(base).items():
                    request = build(method, target, headers, body, typed)
                    if name == "over-body-limit":
                        request = request.replace(b"Content-Length: 0", b"Content-Length: 1100000")
                    yield probe(name, request)
            query_base = target + b"?"
            for name, query in {
                "bad-percent": b"limit=%ZZ&x=%",
                "percent-encoded-nul": b"updated_since=%00",
                "forged-cursor": b"cursor="
                + base64.urlsafe_b64encode(b'[99999999999999999, "x"]').rstrip(b"="),
                "cursor-overflow": b"cursor="
                + base64.urlsafe_b64encode(b'["0001-01-01T00:00:00+14:00","x"]').rstrip(b"="),
                "updated-since-overflow": b"updated_since=0001-01-01T00:00:00%2B14:00",
                "updated-since-far-future": b"updated_since=9999-12-31T23:59:59-14:00",
                "long-query": b"limit=" + b"9" * 20_000,
            }.items():
                yield probe(name, build(method, query_base + query, headers, valid_body))
            yield probe(
                "cr-in-header",
                build(method, target, {**headers, b"X-Purpose": b"ident\rification"}, valid_body),
            )
            yield probe("lf-in-header", build(method, target, {**headers, b"X-Note": b"a\nb"}, valid_body))
            yield probe(
                "kid-not-a-string",
                build(
                    method,
                    target,
                    {**headers, b"Authorization": b"Bearer " + forged_token().encode()},
                    valid_body,
                ),
            )
            yield probe(
                "huge-header", build(method, target, {**headers, b"X-Pad": b"p" * 20_000}, valid_body)
            )
            yield probe("double-slash", build(method, b"/" + target, headers, valid_body))
            yield probe(
                "control-in-purpose", build(method, target, {**headers, b"X-Purpose": b"a\x01b"}, valid_body)
            )


def _fresh_records(platform: Any) -> dict[str, str]:
    import httpx

    user = "al-case-manager"
    headers = {"Authorization": f"Bearer {platform.token(user)}", "X-Purpose": "identification"}
    base = platform.urls["identification"] + "/v1/identification"
    person = httpx.post(
        base + "/persons",
        json={"surnames": ["Hostile"], "date_of_birth": "1990", "sex": "female"},
        headers={**headers, "Idempotency-Key": f"hostile-{uuid.uuid4()}"},
        timeout=30,
    )
    assert person.status_code == 201, person.text
    screening = httpx.post(
        base + "/screenings",
        json={
            "case_id": person.json()["case_id"],
            "indicator_set_version": "2026.1",
            "answers": ADULT_LABOUR,
        },
        headers={**headers, "Idempotency-Key": f"hostile-{uuid.uuid4()}"},
        timeout=30,
    )
    assert screening.status_code == 201, screening.text
    return {
        "person_id": person.json()["id"],
        "case_id": person.json()["case_id"],
        "screening_id": screening.json()["id"],
    }


def test_hostile_input_to_every_operation_is_a_4xx_problem(running_platform: Any) -> None:
    platform = running_platform
    records = _fresh_records(platform)
    every = list(probes(platform, records))
    logs = sorted(platform.logs.glob("*.log"))
    offsets = {path: path.stat().st_size for path in logs}

    def send(probe: Probe) -> Answer:
        try:
            return send_raw(probe.base_url, probe.request)
        except OSError as error:
            return Answer(0, type(error).__name__, b"")

    with ThreadPoolExecutor(max_workers=8) as pool:
        answers = list(pool.map(send, every))
    failures = [
        f"{probe.label}: {answer.status} {answer.content_type} {answer.body[:120]!r}"
        for probe, answer in zip(every, answers, strict=True)
        if not (400 <= answer.status < 500 and answer.content_type.startswith("application/problem+json"))
        and not (probe.label.endswith("negative-zero") and 200 <= answer.status < 500)
    ]
    assert len(every) > 500
    assert not failures, f"{len(failures)} of {len(every)} hostile requests:\n" + "\n".join(failures[:60])
    # Refusals are one log line each: no traceback, no "unhandled exception", in any process's log.
    for path in logs:
        with path.open("rb") as log:
            log.seek(offsets[path])
            written = log.read().decode(errors="replace")
        assert "Traceback" not in written, f"{path.name}: a traceback while refusing hostile input"
        assert "unhandled exception" not in written, f"{path.name}: an unhandled exception"
