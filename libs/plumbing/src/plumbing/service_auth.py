"""The token validator a service builds at start-up: its audience, the allowed clients and partner countries.

Allowed clients (`azp`): outside local mode they must be listed in THB_ALLOWED_AZP (deny by default); in local
mode the realm's local clients are allowed: the API docs client, the test client and one national system per
partner country in the configuration (so adding a country adds its national system without code changes), and,
for a service, the other services' clients (`<service>-api`): a token they obtained by exchanging the user's token
for this service's audience (plumbing.on_behalf). Keycloak issues such a token only for the pairs the realm
declares (docs/on-behalf-calls.md); outside local mode THB_ALLOWED_AZP names them.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

from plumbing.auth import TokenValidator
from plumbing.config import PlatformConfig, Settings
from plumbing.errors import ConfigError
from plumbing.jwks import JwksCache


def allowed_clients(
    settings: Settings, config: PlatformConfig, environ: Mapping[str, str] | None = None
) -> frozenset[str]:
    env = os.environ if environ is None else environ
    listed = [client.strip() for client in env.get("THB_ALLOWED_AZP", "").split(",") if client.strip()]
    if listed:
        return frozenset(listed)
    if not settings.is_local:
        raise ConfigError(f"{settings.service}: THB_ALLOWED_AZP is required outside local mode")
    return local_clients(config) | peer_service_clients(settings.service)


def local_clients(config: PlatformConfig) -> frozenset[str]:
    """The local realm's clients: API docs, the test client and `<country>-national-system` per partner country."""
    national = {f"{code.lower()}-national-system" for code in config.country_codes}
    return frozenset({"api-docs", "thb-test", *national})


def peer_service_clients(service: str) -> frozenset[str]:
    """The other services' clients (registry names + `-api`): callers on behalf of a user (plumbing.on_behalf)."""
    import thb_contracts

    return frozenset(f"{peer.name}-api" for peer in thb_contracts.services() if peer.name != service)


def service_validator(
    settings: Settings, config: PlatformConfig, environ: Mapping[str, str] | None = None
) -> tuple[TokenValidator, JwksCache]:
    """The validator for `<service>-api` and its key cache (started by the app's lifespan, after fork)."""
    if not settings.oidc_issuer:
        raise ConfigError(f"{settings.service}: OIDC_ISSUER is not set")
    jwks = JwksCache.for_issuer(settings.oidc_issuer)
    validator = TokenValidator(
        settings.oidc_issuer,
        f"{settings.service}-api",
        allowed_clients(settings, config, environ),
        jwks,
        config.country_codes,
    )
    return validator, jwks
