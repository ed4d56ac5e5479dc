"""The forwarder over an httpx transport: lets tests put an in-process ASGI app or a mock behind the gateway."""

from __future__ import annotations

import httpx

from gateway.upstream import UpstreamError, UpstreamResponse


class HttpxForwarder:
    def __init__(self, upstreams: dict[str, str], transport: httpx.AsyncBaseTransport) -> None:
        self.upstreams = upstreams
        self.transport = transport
        self._client: httpx.AsyncClient | None = None

    @property
    def client(self) -> httpx.AsyncClient:
        if self._client is None:
            self._client = httpx.AsyncClient(transport=self.transport, trust_env=False)
        return self._client

    async def request(
        self, service: str, method: str, target: bytes, headers: list[tuple[bytes, bytes]], body: bytes
    ) -> UpstreamResponse:
        try:
            response = await self.client.request(
                method, self.upstreams[service] + target.decode("latin-1"), headers=headers, content=body
            )
        except httpx.TransportError as exc:
            raise UpstreamError(type(exc).__name__) from exc
        raw = [(k.lower(), v) for k, v in response.headers.raw if k.lower() != b"content-length"]
        return UpstreamResponse(response.status_code, raw, response.content)

    async def probe(self, service: str, path: bytes, timeout: float) -> int:
        return (await self.request(service, "GET", path, [], b"")).status

    async def aclose(self) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None
