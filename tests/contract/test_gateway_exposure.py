"""The gateway exposes exactly the public operations of the contracts: nothing missing, nothing extra.

The expected set is read from openapi/*.yaml by tools.contracts (not by the gateway's own loader), and each
operation is proven exposed by sending a request through the real gateway to a recording upstream.
"""

from __future__ import annotations

import asyncio
import re

import httpx
import pytest

import thb_contracts
from gateway.testing import ALL_AUDIENCES, RecordingUpstream, SigningKeys, build_gateway
from plumbing.config import load_platform_config
from tools.contracts import HTTP_METHODS, REPO_ROOT, all_operations

# Every role of the one catalogue (config/platform.yaml `roles`, which the realm defines exactly).
ALL_ROLES = sorted(load_platform_config(REPO_ROOT / "config" / "platform.yaml").roles)
PUBLIC = [op for op in all_operations() if op.spec.get("x-internal") is not True]
INTERNAL = [op for op in all_operations() if op.spec.get("x-internal") is True]
# The gateway's own endpoints: the only paths it answers that no contract declares.
OWN = {"/healthz", "/readyz", "/v1/status", "/v1/openapi.json", "/docs", "/docs/", "/problems", "/problems/"}


def concrete(template: str) -> str:
    return re.sub(r"\{[^}]+\}", "0b0e8e0c-7a52-4c55-9c59-0c4f2a7f5e11", template)


@pytest.fixture(scope="module")
def keys() -> SigningKeys:
    return SigningKeys()


def send(gateway, method: str, path: str, token: str, with_body: bool = False) -> httpx.Response:
    async def run() -> httpx.Response:
        transport = httpx.ASGITransport(app=gateway)
        async with httpx.AsyncClient(transport=transport, base_url="http://gw.test") as client:
            try:
                headers = {"Authorization": f"Bearer {token}", "X-Purpose": "case-management"}
                if with_body:
                    return await client.request(method, path, headers=headers, json={})
                return await client.request(method, path, headers=headers)
            finally:
                await gateway.aclose()

    return asyncio.run(run())


@pytest.mark.parametrize("op", PUBLIC, ids=lambda op: op.label)
def test_every_public_operation_is_exposed(op, keys: SigningKeys) -> None:
    upstream = RecordingUpstream()
    gateway = build_gateway(keys, upstream=upstream)
    token = keys.token(roles=ALL_ROLES, audiences=ALL_AUDIENCES)
    path = concrete(op.path)
    response = send(gateway, op.method.upper(), path, token, with_body="requestBody" in op.spec)
    assert response.status_code == 200, response.text
    assert [(r.method, r.path) for r in upstream.requests] == [(op.method.upper(), path)]
    assert upstream.requests[0].header("host") == f"{op.service}.upstream.test"


def test_internal_operations_are_not_exposed(keys: SigningKeys) -> None:
    upstream = RecordingUpstream()
    gateway = build_gateway(keys, upstream=upstream)
    for op in INTERNAL:  # none yet; the routing unit tests cover x-internal with a sample contract
        response = send(gateway, op.method.upper(), concrete(op.path), keys.token(roles=ALL_ROLES))
        assert response.status_code in (404, 405), op.label
    assert upstream.requests == []


def test_gateway_routes_are_exactly_the_public_operations(keys: SigningKeys) -> None:
    gateway = build_gateway(keys, upstream=RecordingUpstream())
    exposed = {(op.method, op.template) for op in gateway.routes.operations}
    assert exposed == {(op.method.upper(), op.path) for op in PUBLIC}


def test_combined_document_lists_exactly_the_public_operations(keys: SigningKeys) -> None:
    gateway = build_gateway(keys, upstream=RecordingUpstream())
    doc = send_get_json(gateway, "/v1/openapi.json")
    listed = {(m.upper(), p) for p, item in doc["paths"].items() for m in item if m in HTTP_METHODS}
    assert listed == {(op.method.upper(), op.path) for op in PUBLIC}


def send_get_json(gateway, path: str) -> dict:
    async def run() -> dict:
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=gateway), base_url="http://gw.test"
        ) as c:
            return (await c.get(path)).json()

    return asyncio.run(run())


def test_undeclared_methods_on_declared_paths_are_not_forwarded(keys: SigningKeys) -> None:
    upstream = RecordingUpstream()
    gateway = build_gateway(keys, upstream=upstream)
    token = keys.token(roles=ALL_ROLES)
    declared: dict[str, set[str]] = {}
    for op in PUBLIC:
        declared.setdefault(op.path, set()).add(op.method.upper())
    for template, methods in declared.items():
        for method in {"GET", "POST", "PUT", "PATCH", "DELETE"} - methods:
            response = send(gateway, method, concrete(template), token)
            assert response.status_code == 405, f"{method} {template}"
    assert upstream.requests == []


@pytest.mark.parametrize("service", [s.name for s in thb_contracts.services()])
def test_nothing_else_under_a_service_prefix_is_forwarded(service: str, keys: SigningKeys) -> None:
    upstream = RecordingUpstream()
    gateway = build_gateway(keys, upstream=upstream)
    token = keys.token(roles=ALL_ROLES)
    for suffix in ("", "healthz", "readyz", "metrics", "openapi.json", "ui/", "admin", "internal/x"):
        path = f"/v1/{service}/{suffix}"
        if any(op.path == path for op in PUBLIC):
            continue
        assert send(gateway, "GET", path, token).status_code == 404, path
    for path in ("/healthz", "/readyz", "/metrics", "/openapi.json"):
        # the services' own operational endpoints are never reachable through the gateway
        assert path in OWN or send(gateway, "GET", path, token).status_code == 404
    assert upstream.requests == []
