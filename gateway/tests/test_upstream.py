"""The gateway's own HTTP/1.1 hop: keep-alive reuse, safe retry on a stale connection, unreachable service."""

from __future__ import annotations

import asyncio
import socket

import pytest

from gateway.upstream import UpstreamError, UpstreamPool

ANSWER = b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 2\r\n\r\n{}"


async def serve(close_after: int):
    """A service that answers `close_after` requests per connection, then closes it without answering."""
    connections: list[int] = []

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        connections.append(0)
        answered = 0
        while True:
            head = await reader.readuntil(b"\r\n\r\n")
            length = next(
                (
                    int(line.split(b":")[1])
                    for line in head.split(b"\r\n")
                    if line.lower().startswith(b"content-length")
                ),
                0,
            )
            if length:
                await reader.readexactly(length)
            if answered >= close_after:
                writer.close()
                return
            writer.write(ANSWER)
            await writer.drain()
            answered += 1

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    return server, server.sockets[0].getsockname()[1], connections


def test_connections_are_reused() -> None:
    async def run() -> None:
        server, port, connections = await serve(close_after=100)
        pool = UpstreamPool(f"http://127.0.0.1:{port}")
        for _ in range(5):
            response = await pool.request("GET", b"/v1/x?limit=1", [(b"x-purpose", b"audit")])
            assert response.status == 200 and response.body == b"{}"
        assert len(connections) == 1
        await pool.aclose()
        server.close()

    asyncio.run(run())


def test_stale_connection_is_retried_only_when_repeating_is_harmless() -> None:
    async def run() -> None:
        server, port, connections = await serve(close_after=1)
        pool = UpstreamPool(f"http://127.0.0.1:{port}")
        await pool.request("GET", b"/a", [])
        assert (await pool.request("GET", b"/a", [])).status == 200  # stale, retried on a new connection
        assert len(connections) == 2
        with pytest.raises(UpstreamError):
            await pool.request(
                "POST", b"/a", [], b"{}"
            )  # stale, a POST without Idempotency-Key is not repeated
        await pool.request("GET", b"/a", [])
        response = await pool.request("POST", b"/a", [(b"idempotency-key", b"key-12345")], b"{}")
        assert response.status == 200
        await pool.aclose()
        server.close()

    asyncio.run(run())


def test_unreachable_service_raises_upstream_error() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]

    async def run() -> None:
        with pytest.raises(UpstreamError):
            await UpstreamPool(f"http://127.0.0.1:{port}").request("GET", b"/", [])

    asyncio.run(run())
