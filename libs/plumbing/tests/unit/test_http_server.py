"""plumbing.http_server: a real uvicorn Server in a thread, on 127.0.0.1, with short limits, driven by raw sockets.

Timing asserts are generous upper bounds only (several times the limit), so a busy machine does not fail them.
"""

from __future__ import annotations

import asyncio
import json
import logging
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import pytest
import uvicorn
from gunicorn.config import Config as GunicornConfig
from gunicorn.glogging import Logger as GunicornLogger
from gunicorn.util import load_class

from plumbing import gunicorn_conf
from plumbing.http_server import HttpLimits, LimitedHttpToolsProtocol, LimitedUvicornWorker

PROBLEMS = "/problems/"  # the catalogue's default base (THB_PROBLEM_BASE unset)
LIMITS = HttpLimits(header_timeout=0.5, body_timeout=0.5, keepalive=5, max_header_bytes=2048)
BOUND = 5.0  # "closed within the limit": ten times the 0.5 s limits


@dataclass
class RecordingApp:
    """Echoes the body size; records the ASGI messages it received. Paths change what it does:
    /early answers without reading the body, /strict raises on http.disconnect (as Starlette's Request.body()
    does), /late waits `late_s` before reading the body."""

    received: list[str] = field(default_factory=list)
    late_s: float = 1.5

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        assert scope["type"] == "http"
        size = 0
        if scope["path"] != "/early":
            if scope["path"] == "/late":
                await asyncio.sleep(self.late_s)
            while True:
                message = await receive()
                self.received.append(message["type"])
                if message["type"] == "http.disconnect":
                    if scope["path"] == "/strict":
                        raise RuntimeError("client disconnected")
                    return
                size += len(message.get("body", b""))
                if not message.get("more_body"):
                    break
        body = json.dumps({"size": size}).encode()
        headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": body})


@dataclass
class Served:
    port: int
    app: RecordingApp

    def connect(self) -> Client:
        return Client(self.port)


@contextmanager
def serve(
    loop: str = "asyncio", limits: HttpLimits = LIMITS, late_s: float = 1.5, **config: Any
) -> Iterator[Served]:
    app = RecordingApp(late_s=late_s)
    server = uvicorn.Server(
        uvicorn.Config(
            app,
            http=LimitedHttpToolsProtocol.with_limits(limits),
            loop=loop,
            lifespan="off",
            log_config=None,
            timeout_keep_alive=limits.keepalive,
            **config,
        )
    )
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.bind(("127.0.0.1", 0))
    listener.listen(64)

    def run() -> None:
        with asyncio.Runner(loop_factory=server.config.get_loop_factory()) as runner:
            runner.run(server.serve(sockets=[listener]))

    thread = threading.Thread(target=run, name="uvicorn-under-test", daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert time.monotonic() < deadline, "the server did not start"
        time.sleep(0.02)
    try:
        yield Served(listener.getsockname()[1], app)
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        listener.close()


@pytest.fixture(params=["asyncio", "uvloop"])
def served(request: pytest.FixtureRequest) -> Iterator[Served]:
    # The unit runs on both loops: gunicorn's worker picks uvloop ("auto") where it is installed.
    with serve(request.param) as running:
        yield running


@dataclass
class Answer:
    status: int
    headers: dict[str, str]
    body: bytes

    def problem(self) -> dict[str, Any]:
        assert self.headers["content-type"] == "application/problem+json"
        parsed: dict[str, Any] = json.loads(self.body)
        assert parsed["status"] == self.status
        return parsed


def parse_answers(data: bytes) -> list[Answer]:
    """Every complete response in `data` (answers here always carry Content-Length)."""
    answers: list[Answer] = []
    while True:
        head, separator, rest = data.partition(b"\r\n\r\n")
        if not separator:
            return answers
        lines = head.decode("latin-1").split("\r\n")
        headers = {}
        for line in lines[1:]:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        length = int(headers.get("content-length", "0"))
        if len(rest) < length:
            return answers
        answers.append(Answer(int(lines[0].split()[1]), headers, rest[:length]))
        data = rest[length:]


class Client:
    """A raw socket with a read buffer, so pipelined answers can be read one at a time."""

    def __init__(self, port: int) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=BOUND)
        self.buffer = b""

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def answer(self) -> Answer:
        while not parse_answers(self.buffer):
            chunk = self.sock.recv(65536)
            assert chunk, "closed before a complete answer"
            self.buffer += chunk
        first = parse_answers(self.buffer)[0]
        head_end = self.buffer.index(b"\r\n\r\n") + 4
        self.buffer = self.buffer[head_end + len(first.body) :]
        return first

    def until_closed(self, bound: float = BOUND) -> tuple[list[Answer], float]:
        """The answers sent before the server closed, and how long the close took; fails after `bound`."""
        started = time.monotonic()
        self.sock.settimeout(bound)
        while True:
            try:
                chunk = self.sock.recv(65536)
            except TimeoutError:
                pytest.fail(f"the server kept the connection open for more than {bound} s")
            except ConnectionResetError:
                break
            if not chunk:
                break
            self.buffer += chunk
        return parse_answers(self.buffer), time.monotonic() - started

    def close(self) -> None:
        self.sock.close()


GET = b"GET /items HTTP/1.1\r\nHost: test\r\n\r\n"


# -- head ---------------------------------------------------------------------------------------------------
def test_a_slow_head_gets_408_and_is_closed_within_the_header_timeout(served: Served) -> None:
    client = served.connect()
    client.sock.settimeout(0.2)
    started = time.monotonic()
    # One byte every 0.2 s: each arrives well within the timeout, the head never completes.
    for byte in b"GET /items HTTP/1.1\r\nHost: test\r\nX-Slow: " + b"a" * 100:
        try:
            client.send(bytes([byte]))
            client.buffer += client.sock.recv(65536)
        except TimeoutError:
            continue
        except (BrokenPipeError, ConnectionResetError):
            break
        break  # the server answered or closed
    (answer,), _ = client.until_closed()
    assert time.monotonic() - started < BOUND
    assert answer.status == 408
    assert answer.problem()["type"] == PROBLEMS + "request-timeout"
    assert answer.headers["connection"] == "close"
    assert served.app.received == []  # the app never saw the request


def test_a_connection_that_sends_nothing_is_closed_silently(served: Served) -> None:
    answers, took = served.connect().until_closed()
    assert answers == [] and took < BOUND


def test_the_next_request_on_a_kept_alive_connection_also_has_a_head_timeout(served: Served) -> None:
    client = served.connect()
    client.send(GET)
    assert client.answer().status == 200
    time.sleep(0.8)  # idle past the head timeout: idle time is the keep-alive timeout's (5 s), not the head's
    client.send(b"GET /items HTTP/1.1\r\nHo")
    (answer,), took = client.until_closed()
    assert answer.status == 408 and answer.problem()["type"] == PROBLEMS + "request-timeout"
    assert took < BOUND


def test_keep_alive_requests_still_work(served: Served) -> None:
    client = served.connect()
    for _ in range(3):
        client.send(b"POST /items HTTP/1.1\r\nHost: test\r\nContent-Length: 3\r\n\r\nabc")
        answer = client.answer()
        assert answer.status == 200 and json.loads(answer.body) == {"size": 3}
        time.sleep(0.3)
    # Pipelined requests in one write are answered in order.
    client.send(GET + GET)
    assert [client.answer().status for _ in range(2)] == [200, 200]
    client.close()


# -- body ---------------------------------------------------------------------------------------------------
def test_a_short_body_gets_408_and_the_app_sees_a_disconnect_without_a_traceback(
    served: Served, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    errors = _ListHandler()
    uvicorn_log = logging.getLogger("uvicorn.error")
    uvicorn_log.addHandler(errors)
    try:
        client = served.connect()
        client.send(b"POST /strict HTTP/1.1\r\nHost: test\r\nContent-Length: 100\r\n\r\nonly-some")
        (answer,), took = client.until_closed()
        time.sleep(0.2)  # the app's task ends after the close
    finally:
        uvicorn_log.removeHandler(errors)
    assert answer.status == 408 and answer.problem()["type"] == PROBLEMS + "request-timeout"
    assert took < BOUND
    assert served.app.received == ["http.request", "http.disconnect"]
    assert [r.getMessage() for r in errors.records if r.levelno >= logging.ERROR] == []
    assert "request abandoned after the body timeout (RuntimeError)" in caplog.text
    assert "only-some" not in caplog.text


def test_the_body_timeout_answers_in_the_client_language(served: Served) -> None:
    client = served.connect()
    client.send(b"POST /items HTTP/1.1\r\nHost: t\r\nAccept-Language: sq\r\nContent-Length: 9\r\n\r\nab")
    (answer,), _ = client.until_closed()
    assert answer.status == 408 and answer.headers["content-language"] == "sq"
    assert answer.problem()["title"] == "Koha e kërkesës mbaroi"


def test_a_body_still_arriving_after_the_answer_is_cut_off_without_a_second_answer(served: Served) -> None:
    client = served.connect()
    client.send(b"POST /early HTTP/1.1\r\nHost: test\r\nContent-Length: 100\r\n\r\nabc")
    answers, took = client.until_closed()
    assert [answer.status for answer in answers] == [200]
    assert took < BOUND


@pytest.mark.parametrize("loop", ["asyncio", "uvloop"])
def test_the_body_timeout_waits_while_the_app_has_not_asked_for_a_100_continue_body(loop: str) -> None:
    # A body timeout of 2 s (not 0.5 s): after the 100 the client has that long to send the body, which a loaded
    # machine needs; the app asks only after 5 s, more than two timeouts.
    limits = HttpLimits(header_timeout=0.5, body_timeout=2.0, keepalive=5, max_header_bytes=2048)
    with serve(loop, limits, late_s=5.0) as served:
        client = served.connect()
        client.sock.settimeout(15)
        client.send(b"POST /late HTTP/1.1\r\nHost: test\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\n")
        assert client.answer().status == 100  # after 5 s: more than two body timeouts went by
        client.send(b"hello")
        answer = client.answer()
        assert answer.status == 200 and json.loads(answer.body) == {"size": 5}


# -- head size and malformed requests -----------------------------------------------------------------------
@pytest.mark.parametrize(
    "request_head",
    [
        b"GET /items HTTP/1.1\r\nHost: test\r\n" + b"X-Many: 0123456789abcdef\r\n" * 100 + b"\r\n",
        b"GET /items HTTP/1.1\r\nHost: test\r\nX-Long: " + b"a" * 3000 + b"\r\n\r\n",
        b"GET /" + b"a" * 3000 + b" HTTP/1.1\r\nHost: test\r\n\r\n",
        # A header line that never ends: httptools reports no header until it does.
        b"GET /items HTTP/1.1\r\nHost: test\r\nX-Endless: " + b"a" * 3000,
    ],
    ids=["many-headers", "long-header", "long-target", "unterminated-header"],
)
def test_an_oversized_head_gets_431(served: Served, request_head: bytes) -> None:
    client = served.connect()
    client.send(request_head)
    (answer,), _ = client.until_closed()
    assert answer.status == 431
    assert answer.problem()["type"] == PROBLEMS + "request-header-too-large"
    assert b"aaaa" not in answer.body
    assert served.app.received == []


def test_a_head_just_under_the_limit_is_served(served: Served) -> None:
    client = served.connect()
    client.send(b"GET /items HTTP/1.1\r\nHost: test\r\nX-Token: " + b"a" * 1900 + b"\r\n\r\n")
    assert client.answer().status == 200


@pytest.mark.parametrize(
    "garbage",
    [b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\r\n\r\n", b"GET /items HTTP/1.1\r\nBad Header\r\n\r\n"],
    ids=["tls-hello", "malformed-header"],
)
def test_a_malformed_request_gets_a_400_problem(served: Served, garbage: bytes) -> None:
    client = served.connect()
    client.send(garbage)
    (answer,), _ = client.until_closed()
    assert answer.status == 400
    assert answer.problem() == {
        "type": PROBLEMS + "bad-request",
        "title": "Malformed request",
        "status": 400,
        "detail": "The request could not be parsed.",
    }


# -- connection cap -----------------------------------------------------------------------------------------
def test_over_the_connection_limit_the_answer_is_a_503_problem_with_retry_after() -> None:
    with serve(limit_concurrency=1) as running:  # the client's own connection reaches the limit
        client = running.connect()
        client.send(GET)
        (answer,), _ = client.until_closed()
    assert answer.status == 503
    assert answer.problem()["type"] == PROBLEMS + "service-unavailable"
    assert answer.headers["retry-after"] == "5"
    assert running.app.received == []


# -- configuration ------------------------------------------------------------------------------------------
def test_limits_default_and_come_from_the_environment() -> None:
    assert HttpLimits.from_env({}) == HttpLimits(10.0, 30.0, 5, 16384, 1000)
    limits = HttpLimits.from_env(
        {
            "THB_HTTP_HEADER_TIMEOUT": "2.5",
            "THB_HTTP_BODY_TIMEOUT": "60",
            "THB_HTTP_KEEPALIVE": "15",
            "THB_HTTP_MAX_HEADER_BYTES": "8192",
            "THB_HTTP_MAX_CONNECTIONS": "200",
        }
    )
    assert limits == HttpLimits(2.5, 60.0, 15, 8192, 200)


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("THB_HTTP_HEADER_TIMEOUT", "soon"),
        ("THB_HTTP_BODY_TIMEOUT", "0"),
        ("THB_HTTP_MAX_HEADER_BYTES", "1.5"),
    ],
)
def test_an_invalid_limit_stops_the_server_from_starting(name: str, value: str) -> None:
    with pytest.raises(ValueError, match=name):
        HttpLimits.from_env({name: value})


def test_the_gunicorn_worker_serves_with_the_limited_protocol(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("THB_HTTP_HEADER_TIMEOUT", "3")
    monkeypatch.setenv("THB_HTTP_MAX_CONNECTIONS", "50")
    monkeypatch.setenv("THB_HTTP_KEEPALIVE", "7")
    assert load_class(gunicorn_conf.worker_class) is LimitedUvicornWorker
    loggers = [logging.getLogger(name) for name in ("uvicorn.error", "uvicorn.access")]
    saved = [(lg.handlers[:], lg.level, lg.propagate) for lg in loggers]
    cfg = GunicornConfig()
    try:
        worker = LimitedUvicornWorker(0, 0, [], None, 30, cfg, GunicornLogger(cfg))
    finally:
        # The worker points uvicorn's loggers at gunicorn's: put them back for the other tests.
        for lg, (handlers, level, propagate) in zip(loggers, saved, strict=True):
            lg.handlers[:], lg.level, lg.propagate = handlers, level, propagate
    worker.tmp.close()
    protocol = worker.config.http
    assert isinstance(protocol, type) and issubclass(protocol, LimitedHttpToolsProtocol)
    assert protocol.limits.header_timeout == 3.0
    assert worker.config.limit_concurrency == 50
    assert worker.config.timeout_keep_alive == 7


class _ListHandler(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)
