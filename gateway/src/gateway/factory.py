"""Wire the gateway from its settings: contracts, one JWKS cache, one validator per service, budgets, docs."""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path

from gateway.app import Gateway
from gateway.auth import EdgeAuthenticator
from gateway.contracts import SERVICES, audience_of, build_routes, combined_document, load_contracts
from gateway.docs import DocsAssets, origin_of
from gateway.problem_pages import ProblemPages
from gateway.ratelimit import RateLimiter
from gateway.settings import GatewaySettings
from plumbing.auth import JwksCache, TokenValidator

DOCS_CLIENT_ID = "api-docs"


def create_app(settings: GatewaySettings | None = None, openapi_dir: Path | None = None) -> Gateway:
    settings = settings or GatewaySettings.from_env()
    contracts = load_contracts(openapi_dir)
    routes = build_routes(contracts)
    document = combined_document(
        contracts,
        servers=[{"url": url} for url in settings.public_urls],
        authorization_url=settings.authorization_url,
        token_url=settings.token_url,
    )
    jwks = JwksCache.for_issuer(settings.issuer)
    validators = {
        service: TokenValidator(
            settings.issuer,
            audience_of(service),
            settings.allowed_azp,
            jwks,
            settings.platform.country_codes,
        )
        for service in SERVICES
    }
    return Gateway(
        routes=routes,
        document=document,
        authenticator=EdgeAuthenticator(validators),
        limiter=RateLimiter(settings.platform.rate_budgets),
        upstreams=settings.upstreams,
        docs=DocsAssets.build(client_id=DOCS_CLIENT_ID, issuer_origin=origin_of(settings.public_issuer)),
        cors_origins=settings.cors_origins,
        max_body_bytes=settings.max_body_bytes,
        upstream_timeout=settings.upstream_timeout,
        ready=lambda: jwks.loaded,
        on_startup=jwks.start,
        on_shutdown=jwks.stop,
        problem_pages=ProblemPages.from_contracts(contracts),
    )


def configure_logging() -> None:
    """One JSON object per line on stdout for the access log; everything else at THB_LOG_LEVEL."""
    level = os.environ.get("THB_LOG_LEVEL", "INFO").upper()
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(logging.Formatter("%(message)s"))
    access = logging.getLogger("gateway.access")
    access.handlers[:] = [handler]
    access.propagate = False
    access.setLevel(os.environ.get("THB_ACCESS_LOG_LEVEL", "INFO").upper())
    logging.basicConfig(
        level=level, format='{"level":"%(levelname)s","logger":"%(name)s","message":"%(message)s"}'
    )
