"""The gateway's settings: addresses and switches from the environment, rate budgets from config/platform.yaml.

Environment (docs/conventions.md: addresses, switches and secrets come from the environment):

| variable | meaning |
|---|---|
| `THB_UPSTREAM_<SERVICE>` | base URL of each service's API, e.g. `THB_UPSTREAM_IDENTIFICATION=http://127.0.0.1:8101` (all four required) |
| `OIDC_ISSUER` | the realm as the gateway reaches it (JWKS, `iss` check) |
| `OIDC_PUBLIC_ISSUER` | the realm as browsers reach it (authorization and token URLs in the docs); default `OIDC_ISSUER` |
| `THB_ALLOWED_AZP` | comma-separated clients whose tokens are accepted; default in local mode: the realm's demo clients |
| `THB_PUBLIC_URLS` | comma-separated base URLs for the `servers` list of the combined document; default: `/` |
| `THB_CORS_ORIGINS` | comma-separated browser origins allowed to call the API; default none |
| `THB_MAX_BODY_BYTES` | largest request body accepted (413 above); default 1048576 |
| `THB_UPSTREAM_TIMEOUT` | seconds to wait for a service's answer (503 after); default 30 |
| `THB_CONFIG` | config/platform.yaml (rate budgets, partner countries) |
| `THB_MODE` | `local` or `production` (production requires `OIDC_ISSUER` and `THB_ALLOWED_AZP`) |
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from gateway.contracts import SERVICES
from plumbing.config import ConfigError, PlatformConfig, load_platform_config
from plumbing.service_auth import local_clients


@dataclass(frozen=True)
class GatewaySettings:
    upstreams: Mapping[str, str]
    issuer: str
    public_issuer: str
    allowed_azp: frozenset[str]
    public_urls: tuple[str, ...]
    cors_origins: frozenset[str]
    max_body_bytes: int
    upstream_timeout: float
    platform: PlatformConfig

    @property
    def authorization_url(self) -> str:
        return self.public_issuer.rstrip("/") + "/protocol/openid-connect/auth"

    @property
    def token_url(self) -> str:
        return self.public_issuer.rstrip("/") + "/protocol/openid-connect/token"

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> GatewaySettings:
        env = os.environ if environ is None else environ
        mode = env.get("THB_MODE", "production")
        upstreams: dict[str, str] = {}
        missing: list[str] = []
        for service in SERVICES:
            name = f"THB_UPSTREAM_{service.upper()}"
            value = env.get(name, "").strip()
            if value:
                upstreams[service] = value.rstrip("/")
            else:
                missing.append(name)
        issuer = env.get("OIDC_ISSUER", "").strip()
        if not issuer:
            missing.append("OIDC_ISSUER")
        azp_text = env.get("THB_ALLOWED_AZP", "").strip()
        if not azp_text and mode != "local":
            missing.append("THB_ALLOWED_AZP")
        if missing:
            raise ConfigError(f"the gateway needs these environment variables: {', '.join(missing)}")
        config_path = Path(env.get("THB_CONFIG") or _default_config())
        platform = load_platform_config(config_path)
        # Local default: the realm's demo clients and one national system per configured partner country.
        allowed = _split(azp_text) if azp_text else tuple(sorted(local_clients(platform)))
        try:
            max_body = int(env.get("THB_MAX_BODY_BYTES", "1048576"))
            timeout = float(env.get("THB_UPSTREAM_TIMEOUT", "30"))
        except ValueError as exc:
            raise ConfigError("THB_MAX_BODY_BYTES and THB_UPSTREAM_TIMEOUT must be numbers") from exc
        return cls(
            upstreams=upstreams,
            issuer=issuer,
            public_issuer=env.get("OIDC_PUBLIC_ISSUER", "").strip() or issuer,
            allowed_azp=frozenset(allowed),
            public_urls=_split(env.get("THB_PUBLIC_URLS", "")) or ("/",),
            cors_origins=frozenset(_split(env.get("THB_CORS_ORIGINS", ""))),
            max_body_bytes=max_body,
            upstream_timeout=timeout,
            platform=platform,
        )


def _split(text: str) -> tuple[str, ...]:
    return tuple(part.strip() for part in text.split(",") if part.strip())


def _default_config() -> Path:
    for parent in Path(__file__).resolve().parents:
        candidate = parent / "config" / "platform.yaml"
        if candidate.exists():
            return candidate
    return Path("config/platform.yaml")
