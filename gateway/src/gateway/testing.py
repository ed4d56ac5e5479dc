"""Test helpers shared by the gateway's unit, contract and integration tests (and the benchmark).

- `RecordingUpstream`: a tiny ASGI service that records every request it receives, so a test can assert that a
  rejected request never reached a service.
- `SigningKeys`: an RSA key pair with its JWKS, to mint realm-like access tokens without Keycloak.
- `build_gateway`: the real `Gateway` wired to in-memory keys, budgets and (optionally) an in-process upstream.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import jwt
from cryptography.hazmat.primitives.asymmetric import rsa

from gateway.app import Gateway
from gateway.auth import EdgeAuthenticator
from gateway.contracts import SERVICES, audience_of, build_routes, combined_document, load_contracts
from gateway.docs import DocsAssets
from gateway.httpx_forwarder import HttpxForwarder
from gateway.problem_pages import ProblemPages
from gateway.ratelimit import RateLimiter
from plumbing.auth import JwksCache, TokenValidator
from plumbing.config import RateBudget, RateBudgets

ISSUER = "http://keycloak.test/realms/thb"
ALL_AUDIENCES = tuple(audience_of(s) for s in SERVICES)
PARTNERS = ("AL", "XK", "ME")
ALLOWED_AZP = ("thb-test", "api-docs", "al-national-system", "xk-national-system", "me-national-system")


@dataclass
class Recorded:
    method: str
    path: str
    raw_path: bytes
    query: bytes
    headers: list[tuple[str, str]]
    body: bytes

    def header(self, name: str) -> str | None:
        for key, value in self.headers:
            if key == name.lower():
                return value
        return None

    def header_names(self) -> set[str]:
        return {key for key, _ in self.headers}


@dataclass
class RecordingUpstream:
    """An ASGI app standing in for a service: answers 200 JSON and remembers what it was sent."""

    requests: list[Recorded] = field(default_factory=list)
    status: int = 200
    body: bytes = b'{"items":[]}'

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                else:
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        if scope["type"] != "http":
            return
        chunks = []
        while True:
            message = await receive()
            chunks.append(message.get("body", b""))
            if not message.get("more_body"):
                break
        if scope["path"] == "/readyz":
            body, status = b'{"status":"ready"}', 200
        else:
            self.requests.append(
                Recorded(
                    method=scope["method"],
                    path=scope["path"],
                    raw_path=scope.get("raw_path") or b"",
                    query=scope.get("query_string", b""),
                    headers=[(k.decode("latin-1"), v.decode("latin-1")) for k, v in scope["headers"]],
                    body=b"".join(chunks),
                )
            )
            body, status = self.body, self.status
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})


class SigningKeys:
    def __init__(self, kid: str = "test-key") -> None:
        self.kid = kid
        self.private_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        public = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(self.private_key.public_key()))
        public.update(kid=kid, use="sig", alg="RS256")
        self.jwks = {"keys": [public]}

    def jwks_cache(self) -> JwksCache:
        cache = JwksCache("http://keycloak.test/certs", fetcher=lambda: self.jwks)
        cache.refresh()
        return cache

    def token(
        self,
        *,
        roles: Iterable[str] = ("case-manager",),
        audiences: Iterable[str] = ALL_AUDIENCES,
        sub: str | None = None,
        azp: str = "thb-test",
        machine: bool = False,
        country: Any = "AL",
        agency: Any = "social-services",
        lifetime: float = 300,
        now: float | None = None,
        **extra: Any,
    ) -> str:
        issued = time.time() if now is None else now
        claims: dict[str, Any] = {
            "iss": ISSUER,
            "aud": list(audiences),
            "sub": sub or str(uuid.uuid4()),
            "azp": azp,
            "typ": "Bearer",
            "iat": int(issued),
            "exp": int(issued + lifetime),
            "realm_access": {"roles": list(roles)},
            "country": country,
            "agency": agency,
        }
        if machine:
            claims["client_id"] = azp
        claims.update(extra)
        return jwt.encode(claims, self.private_key, algorithm="RS256", headers={"kid": self.kid})


def budgets(
    interactive: tuple[int, int] = (6000, 1000),
    machine: tuple[int, int] = (6000, 1000),
    clients: Mapping[str, tuple[int, int]] | None = None,
) -> RateBudgets:
    return RateBudgets(
        interactive=RateBudget(*interactive),
        machine_default=RateBudget(*machine),
        clients={k: RateBudget(*v) for k, v in (clients or {}).items()},
    )


def build_gateway(
    keys: SigningKeys,
    *,
    upstream: Any = None,
    upstream_urls: Mapping[str, str] | None = None,
    rate_budgets: RateBudgets | None = None,
    clock: Callable[[], float] = time.time,
    monotonic: Callable[[], float] = time.monotonic,
    openapi_dir: Path | None = None,
    contracts: Mapping[str, Mapping[str, Any]] | None = None,
    cors_origins: Iterable[str] = (),
    max_body_bytes: int = 1_048_576,
    transport: httpx.AsyncBaseTransport | None = None,
    ready: Callable[[], bool] = lambda: True,
) -> Gateway:
    """A gateway that trusts `keys`; with `upstream` (an ASGI app) every service is that in-process app."""
    loaded = dict(contracts) if contracts is not None else load_contracts(openapi_dir)
    jwks = keys.jwks_cache()
    validators = {
        service: TokenValidator(ISSUER, audience_of(service), ALLOWED_AZP, jwks, PARTNERS, clock=clock)
        for service in loaded
    }
    if upstream is not None and transport is None:
        transport = httpx.ASGITransport(app=upstream)
    urls = dict(upstream_urls or {service: f"http://{service}.upstream.test" for service in loaded})
    return Gateway(
        routes=build_routes(loaded),
        document=combined_document(
            loaded,
            servers=[{"url": "/"}],
            authorization_url=ISSUER + "/protocol/openid-connect/auth",
            token_url=ISSUER + "/protocol/openid-connect/token",
        ),
        authenticator=EdgeAuthenticator(validators, clock=clock),
        limiter=RateLimiter(rate_budgets or budgets(), clock=monotonic),
        upstreams=urls,
        docs=DocsAssets.build(client_id="api-docs", issuer_origin="http://keycloak.test"),
        cors_origins=frozenset(cors_origins),
        max_body_bytes=max_body_bytes,
        forwarder=HttpxForwarder(urls, transport) if transport is not None else None,
        ready=ready,
        problem_pages=ProblemPages.from_contracts(loaded),
    )
