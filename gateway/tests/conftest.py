"""Fixtures for the gateway's unit tests: signing keys, a recording upstream, and a way to call the gateway."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from gateway.app import Gateway
from gateway.testing import RecordingUpstream, SigningKeys


@pytest.fixture(scope="session")
def keys() -> SigningKeys:
    return SigningKeys()


@pytest.fixture
def upstream() -> RecordingUpstream:
    return RecordingUpstream()


def call_gateway(gateway: Gateway, method: str, path: str, **kwargs: Any) -> httpx.Response:
    """One request through the ASGI app, in a fresh event loop (the gateway's client is closed afterwards)."""

    async def run() -> httpx.Response:
        transport = httpx.ASGITransport(app=gateway, client=("203.0.113.7", 50000))
        async with httpx.AsyncClient(transport=transport, base_url="http://gateway.test") as client:
            try:
                response = await client.request(method, path, **kwargs)
                await response.aread()
                return response
            finally:
                await gateway.aclose()

    return asyncio.run(run())


@pytest.fixture
def call() -> Callable[..., httpx.Response]:
    return call_gateway
