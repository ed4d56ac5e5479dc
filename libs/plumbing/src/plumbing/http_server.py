"""HTTP/1.1 limits for every platform server (the four services and the gateway).

uvicorn's httptools protocol only has an idle keep-alive timeout: a client that sends its request head slowly,
or a body shorter than its Content-Length, holds a connection (and the ASGI task waiting on it) as long as it
likes, and httptools accepts heads of any size. `LimitedHttpToolsProtocol` adds the missing limits and answers
every protocol-level error as an RFC 9457 problem of the catalogue, like the apps do; `LimitedUvicornWorker`
is the gunicorn worker that serves with it (`worker_class` in plumbing.gunicorn_conf, `-k` in gateway).

Limits, from the environment (read once per worker process; docs/http-limits.md is the operator's view):

| variable | default | why this value |
|---|---|---|
| `THB_HTTP_HEADER_TIMEOUT` | 10 s | A real client sends its head in one write, milliseconds after connecting (or after its previous answer); 10 s is plenty even on a poor mobile link, and bounds how long a slow-header (slowloris) client holds a slot. It also closes connections that never send anything. |
| `THB_HTTP_BODY_TIMEOUT` | 30 s | Bodies are JSON records of a few KiB; the largest accepted (1 MiB) still arrives at about 280 kbit/s. Same as the gunicorn and upstream timeouts, so no layer waits longer than the others. |
| `THB_HTTP_KEEPALIVE` | 5 s | Idle time between requests on a kept-alive connection (uvicorn's own timer; the value the services always had). A proxy in front that reuses connections must idle-close them sooner. |
| `THB_HTTP_MAX_HEADER_BYTES` | 16384 | Request line plus header lines. A realm access token with its roles is 1-3 KiB; 16 KiB is Node's default and twice nginx's per-line buffer. |
| `THB_HTTP_MAX_CONNECTIONS` | 1000 | Per worker process: open connections, or running requests, beyond which a new request gets 503 (uvicorn's `limit_concurrency`). Gunicorn's default `worker_connections`; needs a file descriptor limit of at least twice that (the gateway also holds one upstream connection per forwarded request). |

What the client sees: head timeout -> 408 problem and close (a silent close when not a byte arrived, as for an
idle keep-alive connection); body timeout -> 408 problem and close when no answer had started, else just the
close; head over the limit -> 431 problem and close; a head httptools cannot parse -> 400 problem and close;
over the connection limit -> 503 problem with `Retry-After` and close. The texts are the catalogue's English
ones (the body-timeout 408 and the 503 follow `Accept-Language`, the head is known then). Nothing the client
sent is written to a response or a log line.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, ClassVar

import httptools
from uvicorn._types import ASGI3Application, ASGIReceiveCallable, ASGISendCallable, Scope
from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol, RequestResponseCycle
from uvicorn_worker import UvicornWorker

from plumbing import i18n
from plumbing.problems import PROBLEM_JSON, Problem

log = logging.getLogger("plumbing.http_server")

# httptools hands over the target and the headers, not the method and version: count those at a typical size.
_REQUEST_LINE_OVERHEAD = len(b"OPTIONS  HTTP/1.1\r\n")
_HEADER_LINE_OVERHEAD = len(b": \r\n")


@dataclass(frozen=True)
class HttpLimits:
    header_timeout: float = 10.0
    body_timeout: float = 30.0
    keepalive: int = 5
    max_header_bytes: int = 16384
    max_connections: int = 1000

    ENV: ClassVar[Mapping[str, tuple[str, type[float] | type[int]]]] = {
        "header_timeout": ("THB_HTTP_HEADER_TIMEOUT", float),
        "body_timeout": ("THB_HTTP_BODY_TIMEOUT", float),
        "keepalive": ("THB_HTTP_KEEPALIVE", int),
        "max_header_bytes": ("THB_HTTP_MAX_HEADER_BYTES", int),
        "max_connections": ("THB_HTTP_MAX_CONNECTIONS", int),
    }

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> HttpLimits:
        """The defaults, overridden by any THB_HTTP_* variable set; a value that is not a positive number stops
        the server from starting rather than leaving a limit off."""
        env = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        for attribute, (name, kind) in cls.ENV.items():
            text = env.get(name, "").strip()
            if not text:
                continue
            try:
                value = kind(text)
            except ValueError:
                wanted = "a number of seconds" if kind is float else "a whole number"
                raise ValueError(f"{name} must be {wanted}, not {text!r}") from None
            if value <= 0:
                raise ValueError(f"{name} must be greater than 0")
            values[attribute] = value
        return cls(**values)


class _HeadTooLarge(Exception):
    """Raised from a parser callback: the only way to stop httptools in the middle of a chunk."""


@lru_cache(maxsize=64)
def _problem_bytes(slug: str, language: str) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
    status, headers, body = Problem(slug).render(language, None)
    encoded = [(name.lower().encode("latin-1"), value.encode("latin-1")) for name, value in headers.items()]
    encoded += [
        (b"content-type", PROBLEM_JSON.encode()),
        (b"content-length", str(len(body)).encode()),
        # The connection is not in a state to carry another request (or is being shed).
        (b"connection", b"close"),
    ]
    return status, encoded, body


def _language(headers: list[tuple[bytes, bytes]] | None) -> str:
    for name, value in headers or ():
        if name == b"accept-language":
            return i18n.negotiate(value.decode("latin-1"))
    return i18n.DEFAULT


async def _over_capacity(scope: Scope, receive: ASGIReceiveCallable, send: ASGISendCallable) -> None:
    """uvicorn's `service_unavailable`, as a problem with Retry-After (from the catalogue's 503 rule)."""
    headers = list(scope.get("headers", [])) if scope["type"] == "http" else []
    status, out, body = _problem_bytes("service-unavailable", _language(headers))
    await send({"type": "http.response.start", "status": status, "headers": out})
    await send({"type": "http.response.body", "body": body, "more_body": False})


class LimitedHttpToolsProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with a head timeout, a body timeout, a head size cap and problem answers.

    The head timer runs from connection open, and on a kept-alive connection from the first byte of the next
    request, until the headers are complete (idle time between requests stays uvicorn's keep-alive timeout).
    The body timer runs from headers complete until the body is complete; it is re-armed instead of firing
    while the server itself holds the body back (reading paused by back-pressure or pipelining, `Expect:
    100-continue` not answered yet because the app has not asked for the body).
    """

    limits: ClassVar[HttpLimits] = HttpLimits()

    @classmethod
    def with_limits(cls, limits: HttpLimits) -> type[LimitedHttpToolsProtocol]:
        # uvicorn builds one protocol per connection from the class alone: the limits travel on a subclass.
        return type(cls.__name__, (cls,), {"limits": limits})

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # uvicorn's own capacity check answers text/plain: keep the number, make the check ours.
        self._capacity = self.limit_concurrency
        self.limit_concurrency = None
        self._head_timer: asyncio.TimerHandle | None = None
        self._body_timer: asyncio.TimerHandle | None = None
        self._awaiting_head = True  # between the end of a message (or connection open) and headers complete
        self._head_started = False  # some byte of the awaited head arrived
        self._head_size = 0  # request line and header lines, as the parser hands them over
        # Raw bytes received while the head is incomplete: catches a header line that never ends.
        self._head_received = 0
        self._message_ended_in_chunk = False
        self._head_too_large = False
        self._expired: RequestResponseCycle | None = None  # the cycle the body timeout cut off

    # -- connection --------------------------------------------------------------------------------------
    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm_head_timer()

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_timers()
        super().connection_lost(exc)

    def handle_websocket_upgrade(self) -> None:
        # The socket now belongs to the websocket protocol: our timers must not close it.
        self._cancel_timers()
        super().handle_websocket_upgrade()

    def data_received(self, data: bytes) -> None:
        # uvicorn's data_received, with our answers for an oversized or unparsable head.
        self._unset_keepalive_if_required()
        if self._awaiting_head:
            self._head_started = True
            self._arm_head_timer()
        self._message_ended_in_chunk = False
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError:
            if self._head_too_large:
                log.warning("request head over %d bytes: answered 431", self.limits.max_header_bytes)
                self._answer_and_close("request-header-too-large")
            else:
                log.warning("invalid HTTP request received: answered 400")
                self._answer_and_close("bad-request")
            return
        except httptools.HttpParserUpgrade:
            if self._should_upgrade():
                self.handle_websocket_upgrade()
            else:
                self._unsupported_upgrade_warning()
            return
        if not self._awaiting_head or self.transport.is_closing():
            return
        if self._head_started:
            self._arm_head_timer()  # the next message began in a chunk that ended the previous one
        if not self._message_ended_in_chunk:
            # Every byte of this chunk belongs to the unfinished head. httptools only reports a header once it
            # is complete, so one endless header line is caught here, not in on_header.
            self._head_received += len(data)
            if self._head_received > self.limits.max_header_bytes:
                log.warning("request head over %d bytes: answered 431", self.limits.max_header_bytes)
                self._answer_and_close("request-header-too-large")

    def send_400_response(self, msg: str) -> None:
        # Still called by uvicorn code paths we inherit; never with request content in `msg`.
        self._answer_and_close("bad-request")

    # -- parser callbacks --------------------------------------------------------------------------------
    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._head_started = True
        self._head_size = _REQUEST_LINE_OVERHEAD

    def on_url(self, url: bytes) -> None:
        self._count_head(len(url))  # called once per fragment of the target
        super().on_url(url)

    def on_header(self, name: bytes, value: bytes) -> None:
        self._count_head(len(name) + len(value) + _HEADER_LINE_OVERHEAD)
        super().on_header(name, value)

    def on_headers_complete(self) -> None:
        self._awaiting_head = False
        self._cancel_head_timer()
        if self._capacity is not None and (
            len(self.connections) >= self._capacity or len(self.tasks) >= self._capacity
        ):
            log.warning("over the connection limit (%d): answered 503", self._capacity)
            app, self.app = self.app, _over_capacity  # what super() starts (or queues) for this request
            try:
                super().on_headers_complete()
            finally:
                self.app = app
        else:
            super().on_headers_complete()
        if not (self.parser.should_upgrade() and self._should_upgrade()):
            self._arm_body_timer()

    def on_message_complete(self) -> None:
        self._cancel_body_timer()
        self._awaiting_head = True
        self._head_started = False
        self._head_received = 0
        self._message_ended_in_chunk = True
        super().on_message_complete()

    def _count_head(self, size: int) -> None:
        self._head_size += size
        if self._head_size > self.limits.max_header_bytes:
            self._head_too_large = True
            raise _HeadTooLarge

    # -- timers ------------------------------------------------------------------------------------------
    def _arm_head_timer(self) -> None:
        if self._head_timer is None:
            self._head_timer = self.loop.call_later(self.limits.header_timeout, self._head_timed_out)

    def _cancel_head_timer(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def _arm_body_timer(self) -> None:
        if self._body_timer is None and not self.transport.is_closing():
            self._body_timer = self.loop.call_later(self.limits.body_timeout, self._body_timed_out)

    def _cancel_body_timer(self) -> None:
        if self._body_timer is not None:
            self._body_timer.cancel()
            self._body_timer = None

    def _cancel_timers(self) -> None:
        self._cancel_head_timer()
        self._cancel_body_timer()

    def _head_timed_out(self) -> None:
        self._head_timer = None
        if self.transport.is_closing():
            return
        if self._head_started:
            log.info("request head not complete within %.1f s: answered 408", self.limits.header_timeout)
            self._answer_and_close("request-timeout")
        else:
            # Nothing arrived: a pre-opened or forgotten connection, closed like an idle keep-alive one.
            self.transport.close()

    def _body_timed_out(self) -> None:
        self._body_timer = None
        cycle = self.cycle
        if self.transport.is_closing() or cycle is None:
            return
        if self.flow.read_paused or cycle.waiting_for_100_continue:
            # The server is holding the body back, not the client: wait another period.
            self._arm_body_timer()
            return
        if not cycle.response_started and not self.pipeline:
            log.info("request body not complete within %.1f s: answered 408", self.limits.body_timeout)
            # The app's receive() now answers http.disconnect and its sends are dropped, so the 408 below is
            # the only answer on the wire.
            cycle.disconnected = True
            cycle.message_event.set()
            self._expired = cycle
            self._answer_and_close("request-timeout", _language(self.headers))
        else:
            log.info("request body not complete within %.1f s: connection closed", self.limits.body_timeout)
            self.transport.close()

    # -- answers -----------------------------------------------------------------------------------------
    def _answer_and_close(self, slug: str, language: str = i18n.DEFAULT) -> None:
        """Write a problem, unless an earlier request of this connection is still owed its answer (pipelining):
        the client would read ours as that one's. Then, or after writing, close."""
        self._cancel_timers()
        cycle = self.cycle
        owed = cycle is not None and not cycle.response_complete and cycle is not self._expired
        if not owed and not self.pipeline:
            status, headers, body = _problem_bytes(slug, language)
            content = [STATUS_LINE[status]]
            for name, value in [*self.server_state.default_headers, *headers]:
                content.extend([name, b": ", value, b"\r\n"])
            content.extend([b"\r\n", body])
            self.transport.write(b"".join(content))
        self.transport.close()

    def _start_asgi_task(self, cycle: RequestResponseCycle, app: ASGI3Application) -> None:
        super()._start_asgi_task(cycle, self._quiet_after_body_timeout(cycle, app))

    def _quiet_after_body_timeout(
        self, cycle: RequestResponseCycle, app: ASGI3Application
    ) -> ASGI3Application:
        """An app may raise on the http.disconnect our body timeout caused (Starlette's ClientDisconnect):
        that is the client's doing, already answered with 408, not an "Exception in ASGI application"."""

        async def run(scope: Scope, receive: ASGIReceiveCallable, send: ASGISendCallable) -> None:
            try:
                await app(scope, receive, send)
            except Exception as exc:
                if cycle is not self._expired:
                    raise
                log.info("request abandoned after the body timeout (%s)", type(exc).__name__)

        return run


class LimitedUvicornWorker(UvicornWorker):
    """gunicorn worker: `uvicorn_worker.UvicornWorker` serving with `LimitedHttpToolsProtocol`.

    The limits come from THB_HTTP_* (see the module docstring), read when the worker starts. The keep-alive
    timeout is THB_HTTP_KEEPALIVE, not gunicorn's `keepalive` setting (plumbing.gunicorn_conf sets both from
    the same variable).
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        limits = HttpLimits.from_env()
        # UvicornWorker applies CONFIG_KWARGS last when it builds its uvicorn Config.
        self.CONFIG_KWARGS = {
            **UvicornWorker.CONFIG_KWARGS,
            "http": LimitedHttpToolsProtocol.with_limits(limits),
            "limit_concurrency": limits.max_connections,
            "timeout_keep_alive": limits.keepalive,
        }
        super().__init__(*args, **kwargs)
