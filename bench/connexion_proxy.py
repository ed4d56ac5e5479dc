"""The alternative measured for the gateway's framework: connexion AsyncApp over the combined document.

Every operation resolves to one forwarding handler. It has no token checks, rate budgets or header stripping,
so its numbers are an upper bound for a connexion-based gateway (docs/performance.md).
"""

from __future__ import annotations

import os
from typing import Any

import httpx
from connexion import AsyncApp, request
from connexion.resolver import Resolver
from starlette.responses import Response

from gateway.contracts import combined_document, load_contracts

UPSTREAM = os.environ.get("BENCH_UPSTREAM", "http://127.0.0.1:9")
_client: httpx.AsyncClient | None = None


async def forward(*_args: Any, **_kwargs: Any) -> Response:
    global _client
    if _client is None:
        _client = httpx.AsyncClient(limits=httpx.Limits(max_connections=256, max_keepalive_connections=64))
    headers = [(k, v) for k, v in request.headers.items() if k not in ("host", "content-length")]
    url = UPSTREAM + request.url.path + (("?" + request.url.query) if request.url.query else "")
    # connexion has already read a body it validates; the benchmarked call (a GET) has none.
    content = await request.body() if request.method in ("POST", "PUT", "PATCH") else None
    upstream = await _client.request(request.method, url, headers=headers, content=content)
    return Response(
        upstream.content, status_code=upstream.status_code, media_type=upstream.headers.get("content-type")
    )


class ForwardAll(Resolver):
    def resolve_function_from_operation_id(self, operation_id: str) -> Any:
        return forward


def _document() -> dict[str, Any]:
    doc = combined_document(
        load_contracts(),
        servers=[{"url": "/"}],
        authorization_url="http://sso/auth",
        token_url="http://sso/token",
    )
    doc["security"] = []  # no connexion security handler: see the module docstring
    for item in doc["paths"].values():
        for spec in item.values():
            if isinstance(spec, dict):
                spec.pop("security", None)
    return doc


app = AsyncApp(__name__)
app.add_api(_document(), resolver=ForwardAll(), validate_responses=False)
