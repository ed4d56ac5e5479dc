"""A small HTTP/1.1 client for the gateway's hop to a service: pooled keep-alive connections, httptools parsing.

Why not httpx: measured in this gateway (docs/performance.md), httpx.AsyncClient's pool (httpcore 1.x) collapses
under concurrency — at 64 concurrent requests it spent most of its time assigning requests to connections and
re-importing its async-library probe on every request, and the gateway managed a few hundred requests per second
against a service that serves tens of thousands. The hop to a service is the simplest HTTP there is (our own
services, HTTP/1.1, small JSON answers), so the gateway speaks it directly.

Answers are read whole before they are passed on: the services' pages are bounded (max 200 items), and a whole
answer lets the gateway set Content-Length and never send half a response.

A reused keep-alive connection that the service closed while idle fails with no answer at all; such a request
is sent once more on a new connection only when repeating it is harmless (an idempotent method, or a POST with
an Idempotency-Key). Idle connections are dropped before the services' keep-alive timeout (uvicorn: 5 s).
"""

from __future__ import annotations

import asyncio
import ssl
import time
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import httptools

IDEMPOTENT = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE"})


class UpstreamError(Exception):
    """The service could not be reached or broke the exchange (-> 503)."""


class _StaleConnection(UpstreamError):
    """A reused connection closed before any byte of an answer arrived."""


@dataclass
class UpstreamResponse:
    status: int
    headers: list[tuple[bytes, bytes]]
    body: bytes


@dataclass
class _Parsed:
    headers: list[tuple[bytes, bytes]] = field(default_factory=list)
    body: list[bytes] = field(default_factory=list)
    done: bool = False

    def on_header(self, name: bytes, value: bytes) -> None:
        self.headers.append((name.lower(), value))

    def on_body(self, body: bytes) -> None:
        self.body.append(body)

    def on_message_complete(self) -> None:
        self.done = True


@dataclass
class _Connection:
    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter
    idle_since: float = 0.0


class UpstreamPool:
    def __init__(
        self,
        base_url: str,
        *,
        timeout: float = 30.0,
        connect_timeout: float = 2.0,
        max_idle: int = 128,
        idle_expiry: float = 4.0,
    ) -> None:
        parts = urlsplit(base_url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"upstream URL must be http(s)://host[:port], got {base_url!r}")
        self.host = parts.hostname
        self.port = parts.port or (443 if parts.scheme == "https" else 80)
        self.ssl = ssl.create_default_context() if parts.scheme == "https" else None
        self.host_header = parts.netloc.encode("idna")
        self.prefix = parts.path.rstrip("/").encode()
        self.timeout = timeout
        self.connect_timeout = connect_timeout
        self.max_idle = max_idle
        self.idle_expiry = idle_expiry
        self._idle: list[_Connection] = []

    async def request(
        self,
        method: str,
        target: bytes,
        headers: list[tuple[bytes, bytes]],
        body: bytes = b"",
        *,
        timeout: float | None = None,
    ) -> UpstreamResponse:
        """Send one request; `target` is the raw path with its query (`/v1/x?limit=5`)."""
        head = self._head(method, target, headers, body)
        retry_allowed = method in IDEMPOTENT or any(name == b"idempotency-key" for name, _ in headers)
        connection, reused = await self._acquire()
        try:
            return await self._exchange(connection, head, body, reused, timeout)
        except _StaleConnection:
            if not retry_allowed:
                raise UpstreamError("connection closed by the service before it answered") from None
            connection, _ = await self._acquire(fresh=True)
            return await self._exchange(connection, head, body, False, timeout)

    async def aclose(self) -> None:
        idle, self._idle = self._idle, []
        for connection in idle:
            connection.writer.close()

    # -- internals -------------------------------------------------------------------------------------------
    def _head(self, method: str, target: bytes, headers: list[tuple[bytes, bytes]], body: bytes) -> bytes:
        lines = [method.encode() + b" " + self.prefix + target + b" HTTP/1.1", b"host: " + self.host_header]
        lines.extend(name + b": " + value for name, value in headers)
        if body or method in ("POST", "PUT", "PATCH"):
            lines.append(b"content-length: " + str(len(body)).encode())
        return b"\r\n".join(lines) + b"\r\n\r\n"

    async def _acquire(self, fresh: bool = False) -> tuple[_Connection, bool]:
        now = time.monotonic()
        while self._idle and not fresh:
            connection = self._idle.pop()
            if now - connection.idle_since < self.idle_expiry and not connection.reader.at_eof():
                return connection, True
            connection.writer.close()
        try:
            reader, writer = await asyncio.wait_for(
                asyncio.open_connection(self.host, self.port, ssl=self.ssl), self.connect_timeout
            )
        except (OSError, TimeoutError) as exc:
            raise UpstreamError(f"cannot connect: {type(exc).__name__}") from exc
        return _Connection(reader, writer), False

    def _release(self, connection: _Connection) -> None:
        if len(self._idle) >= self.max_idle:
            connection.writer.close()
            return
        connection.idle_since = time.monotonic()
        self._idle.append(connection)

    async def _exchange(
        self, connection: _Connection, head: bytes, body: bytes, reused: bool, timeout: float | None
    ) -> UpstreamResponse:
        parsed = _Parsed()
        parser = httptools.HttpResponseParser(parsed)
        received = 0
        try:
            connection.writer.write(head + body if len(body) < 65536 else head)
            if len(body) >= 65536:
                connection.writer.write(body)
            await connection.writer.drain()
            async with asyncio.timeout(timeout or self.timeout):
                while not parsed.done:
                    data = await connection.reader.read(65536)
                    if not data:
                        break
                    received += len(data)
                    parser.feed_data(data)
        except (OSError, httptools.HttpParserError, TimeoutError) as exc:
            connection.writer.close()
            if reused and received == 0 and not isinstance(exc, TimeoutError):
                raise _StaleConnection() from exc
            raise UpstreamError(f"exchange failed: {type(exc).__name__}") from exc
        if not parsed.done:
            connection.writer.close()
            if reused and received == 0:
                raise _StaleConnection()
            raise UpstreamError("the service closed the connection before its answer was complete")
        # httptools resets its keep-alive answer once the message is complete: decide from the headers.
        closing = any(name == b"connection" and b"close" in value.lower() for name, value in parsed.headers)
        if not closing and parser.get_http_version() == "1.1":
            self._release(connection)
        else:
            connection.writer.close()
        return UpstreamResponse(parser.get_status_code(), parsed.headers, b"".join(parsed.body))


class Forwarder:
    """The gateway's view of the services: one pool per service (see `HttpxForwarder` for in-process tests)."""

    def __init__(self, upstreams: dict[str, str], timeout: float = 30.0) -> None:
        self.pools = {service: UpstreamPool(url, timeout=timeout) for service, url in upstreams.items()}

    async def request(
        self, service: str, method: str, target: bytes, headers: list[tuple[bytes, bytes]], body: bytes
    ) -> UpstreamResponse:
        return await self.pools[service].request(method, target, headers, body)

    async def probe(self, service: str, path: bytes, timeout: float) -> int:
        response = await self.pools[service].request("GET", path, [], b"", timeout=timeout)
        return response.status

    async def aclose(self) -> None:
        for pool in self.pools.values():
            await pool.aclose()
