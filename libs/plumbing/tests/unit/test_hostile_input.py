"""Hostile bodies, paths and headers against the app factory: each is a 4xx problem, never a 500 or a write.

The platform-wide suite (tests/integration/test_hostile_input.py) sends the same classes to every operation of
every service, through the gateway and directly; these tests pin each class down on the demo contract."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parents[1] / "fixtures"))

from app_support import bearer, build_demo_app  # noqa: E402

from plumbing.json_input import MAX_DEPTH, nesting_depth, parse_body  # noqa: E402
from plumbing.problems import Problem  # noqa: E402

THINGS = "/v1/demo/things"
HEADERS = bearer("manager", **{"X-Purpose": "identification", "Content-Type": "application/json"})


@pytest.fixture(scope="module")
def app_and_logs():
    return build_demo_app()


@pytest.fixture
def client(app_and_logs):
    app, _ = app_and_logs
    with app.test_client() as client:
        yield client


def _post(client, raw: bytes, **headers: str):
    return client.post(THINGS, content=raw, headers={**HEADERS, **headers})


def _problem(response, status: int, slug: str) -> dict:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    body = response.json()
    assert body["type"].endswith("/" + slug)
    assert body["instance"] == response.headers["x-request-id"]
    return dict(body)


@pytest.mark.parametrize(
    ("raw", "code"),
    [
        (b'{"kind":"small","name":' + b"[" * 1000 + b"]" * 1000 + b"}", "depth"),
        (b'{"kind":"small","name":"\\ud800"}', "unicode"),
        (b'{"kind":"small","name":"a","name":"b"}', "duplicate-member"),
        (b'{"kind":"small","name":"a","tags":[1e309]}', "number"),
        (b'{"kind":"small","name":"a","tags":[NaN]}', "number"),
        (b'{"kind":"small","name":"a","tags":[-Infinity]}', "number"),
        (b'\xef\xbb\xbf{"kind":"small","name":"a"}', "json"),
        (b'{"kind":"small","name":"\xff"}', "encoding"),
        (b'{"kind":"small","name":"a"', "json"),
        (b'{"kind":"small","tags":[' + b"9" * 5000 + b"]}", "json"),
    ],
)
def test_malformed_json_is_a_400_naming_the_reason(client, raw, code):
    body = _problem(_post(client, raw), 400, "bad-request")
    assert body["errors"] == [{"pointer": "/body", "code": code}]


@pytest.mark.parametrize(
    "name", ["a\u0000b", "a\u0007b", "\u202eevil", "x\u2066y\u2069", "a\u0085b", "a\u007fb"]
)
def test_control_and_bidirectional_characters_are_a_422_with_the_fields_pointer(client, name):
    response = _post(client, json.dumps({"kind": "small", "name": name}).encode())
    body = _problem(response, 422, "validation-failed")
    assert body["errors"] == [{"pointer": "/body/name", "code": "characters"}]
    assert name not in response.text


def test_tabs_and_line_breaks_in_text_are_accepted(client):
    assert _post(client, json.dumps({"kind": "small", "name": "a\tb\nc"}).encode()).status_code == 201


def test_a_body_without_content_type_is_415(client):
    response = client.post(THINGS, content=b'{"kind":"small","name":"a"}', headers=bearer("manager"))
    _problem(response, 415, "unsupported-media-type")


def test_a_body_of_an_undeclared_type_is_415(client):
    response = _post(client, b"kind=small", **{"Content-Type": "application/x-www-form-urlencoded"})
    _problem(response, 415, "unsupported-media-type")


def test_a_path_with_an_empty_segment_is_404(app_and_logs):
    # Sent raw over a real socket: HTTP clients normalise such paths before sending them.
    import socket

    from devstack.asgi_thread import ServerThread

    app, _ = app_and_logs
    with ServerThread(app) as server:
        host, port = server.url.removeprefix("http://").split(":")
        for path in (b"//v1/demo/things", b"/v1//demo/things", b"//evil.example/v1/demo/things"):
            with socket.create_connection((host, int(port)), timeout=10) as connection:
                connection.sendall(
                    b"GET " + path + b" HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
                    b"Authorization: Bearer manager\r\nX-Purpose: identification\r\n\r\n"
                )
                answer = b""
                while chunk := connection.recv(65536):
                    answer += chunk
            head, _, _ = answer.partition(b"\r\n\r\n")
            assert head.startswith(b"HTTP/1.1 404"), head
            assert b"content-type: application/problem+json" in head.lower()


def test_nesting_is_measured_without_recursion_and_ignores_brackets_in_strings():
    assert nesting_depth('{"a": "[[[[{{{{", "b": [[1]]}') == 3
    assert nesting_depth('"\\"[[["') == 0
    assert nesting_depth("[" * 100_000 + "]" * 100_000) == 100_000
    assert parse_body(b"[" * MAX_DEPTH + b"]" * MAX_DEPTH) is not None
    with pytest.raises(Problem):
        parse_body(b"[" * (MAX_DEPTH + 1) + b"]" * (MAX_DEPTH + 1))


def test_an_unhandled_error_is_a_500_problem_with_the_request_id_logged_once(app_and_logs):
    app, logs = app_and_logs
    with app.test_client() as client:
        response = _post(client, json.dumps({"kind": "small", "name": "boom"}).encode())
    body = _problem(response, 500, "internal-error")
    assert "canary" not in response.text and "exploded" not in response.text
    lines = [json.loads(line) for line in logs.getvalue().splitlines() if '"unhandled exception"' in line]
    mine = [line for line in lines if line.get("request_id") == body["instance"]]
    assert len(mine) == 1 and mine[0]["stack"] and "exploded" not in json.dumps(mine[0])


@pytest.mark.parametrize(
    ("seen_on", "status"),
    [
        ("0001-01-01", 422),
        ("1899-12-31", 422),
        ("1899", 422),
        ("1900-01-01", 201),
        ("2025-01-01", 201),  # the demo app's FixedClock stands at 2025-01-01
        ("2025-01-02", 201),  # a day of clock skew
        ("2025-01-03", 422),
        ("2025-02", 422),  # a partial date counts from its first day
        ("2025", 201),
        ("9999-12-31", 422),
    ],
)
def test_a_past_date_outside_1900_to_today_is_a_422_with_the_fields_pointer(client, seen_on, status):
    response = _post(client, json.dumps({"kind": "small", "name": "a", "seen_on": seen_on}).encode())
    assert response.status_code == status, response.text
    if status == 422:
        assert response.json()["errors"] == [{"pointer": "/body/seen_on", "code": "date-range"}]
