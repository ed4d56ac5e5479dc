"""Calls to another service's API on behalf of the user (docs/on-behalf-calls.md).

A service that needs another service's personal data (exchange pre-filling a form from an identification case,
referral copying case fields into a referral) never reads it with a service account. It exchanges the caller's
own access token at Keycloak (OAuth 2.0 Token Exchange, RFC 8693; Keycloak's *standard token exchange* V2) for a
token whose only audience is the other service, and calls that service's API with it. The other service then
applies the user's own roles and scope, and its access log names the user (`sub`) and this service (`azp`).

    client = OnBehalfClient.from_settings(settings, targets=("identification",))   # once, at start-up
    case = client.get("identification", f"/v1/identification/cases/{case_id}")    # inside a request

What Keycloak checks (realm/README.md, "Calls on behalf of the user"): this service's client is confidential and
has standard token exchange switched on; the caller's token names this service in `aud`; the pair (this
service, target) is declared in the realm's `clientScopeMappings`; and the user holds the target's `access`
role. Otherwise there is no token, and the caller gets 403.

Errors, all without personal data, tokens or response bodies in their messages:

| what happened | raised | answered |
|---|---|---|
| Keycloak refuses the exchange (the user may not use that service, or the token was not issued for this one) | `NotPermitted("on_behalf_exchange_refused")` | 403 |
| the caller is a machine client (a national system): its token carries no person to act for | `NotPermitted("on_behalf_machine_caller")` | 403 |
| Keycloak says the caller's token is no longer valid (expired, session ended) | `AuthError("token_rejected_by_issuer")` | 401 |
| the other service answers 403 | `NotPermitted("on_behalf_forbidden")` | 403 |
| the other service answers 404 | `NotFound` | 404 |
| Keycloak or the other service unreachable, too slow, 5xx or 429 | `DependencyUnavailable` | 503 + Retry-After |
| Keycloak refuses this service's own credentials, or the other service rejects the exchanged token (401) | `OnBehalfConfigurationError` | 500 (an operator must act; logged at error level) |
| any other answer of the other service (400, 409, 422, ...) | `UnexpectedAnswer` (`status`, `problem` slug) | 500 unless the caller handles it |

Why httpx and not the pinned python-keycloak: `KeycloakOpenID.exchange_token` (7.1.1) defaults to the legacy V1
request (`requested_token_type=refresh_token`, `scope=openid`: V2 refuses a refresh token unless the client
allows it), sets and then resets the Content-Type header on the connection it shares between calls (not safe
from connexion's thread pool), goes through `requests` with a single timeout value instead of separate connect
and read bounds, and reports a refusal as a `KeycloakPostError` whose message is the raw response body. The
exchange is one form POST; with httpx it shares the connection pool and timeouts of the call that follows, and
tests drive both through one `httpx.MockTransport`.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import threading
from collections import OrderedDict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import httpx
from opentelemetry import propagate, trace
from prometheus_client import Counter

from plumbing import request_context
from plumbing.auth import AuthError, Caller
from plumbing.clock import Clock, SystemClock
from plumbing.config import Secret, Settings
from plumbing.errors import ConfigError, DependencyUnavailable, NotFound, NotPermitted, PlumbingError
from plumbing.telemetry import tracer

__all__ = [
    "ExchangedTokenCache",
    "HttpPool",
    "OnBehalfClient",
    "OnBehalfConfigurationError",
    "TokenExchanger",
    "UnexpectedAnswer",
]

log = logging.getLogger(__name__)

TOKEN_EXCHANGE_GRANT = "urn:ietf:params:oauth:grant-type:token-exchange"
ACCESS_TOKEN_TYPE = "urn:ietf:params:oauth:token-type:access_token"

# Bounds: the gateway gives a whole request 30 s (THB_UPSTREAM_TIMEOUT); a call made inside one must end well
# before that, so the caller can still answer 503 itself.
KEYCLOAK_TIMEOUT = httpx.Timeout(5.0, connect=2.0)
TARGET_TIMEOUT = httpx.Timeout(10.0, connect=2.0)
# An exchanged token is reused until this long before it expires (at most half its lifetime), so that it never
# expires between being taken from the cache and reaching the other service.
REFRESH_MARGIN = timedelta(seconds=30)
MAX_CACHED_TOKENS = 10_000

# Error codes Keycloak returns are a fixed OAuth vocabulary; anything else is logged as "other".
_OAUTH_ERROR = re.compile(r"^[a-z_]{1,40}$")
_PROBLEM_SLUG = re.compile(r"^[a-z][a-z0-9-]{0,60}$")

TOKEN_EXCHANGES = Counter(
    "token_exchanges_total",
    "Token exchanges for calls on behalf of the user, by target audience and outcome",
    ["service", "audience", "outcome"],
)
ON_BEHALF_CALLS = Counter(
    "on_behalf_calls_total",
    "Calls to another service's API on behalf of the user, by target and status (or `unavailable`)",
    ["service", "target", "status"],
)


class OnBehalfConfigurationError(PlumbingError):
    """The platform is misconfigured for this call: Keycloak refused this service's own client credentials, or
    the other service rejected the exchanged token (its THB_ALLOWED_AZP lacks this service's client). Not the
    user's fault and not transient: answered 500, logged at error level."""


class UnexpectedAnswer(PlumbingError):
    """The other service answered with a status this module does not map (400, 409, 412, 422, ...). `status` and
    `problem` (the slug of the problem `type`, if any) let a caller handle it; the body is not kept."""

    def __init__(self, target: str, status: int, problem: str | None) -> None:
        super().__init__(f"{target} answered {status}" + (f" ({problem})" if problem else ""))
        self.target = target
        self.status = status
        self.problem = problem


# ------------------------------------------------------------------------------------------------- caching


@dataclass(frozen=True)
class _Cached:
    token: str
    usable_until: datetime


class ExchangedTokenCache:
    """Exchanged tokens by (SHA-256 of the caller's token, audience), each until shortly before it expires.

    The caller's token itself is never a key: only its digest is kept. Bounded: expired entries go first, then
    the oldest. Thread-safe (connexion runs views in a thread pool)."""

    def __init__(
        self,
        clock: Clock,
        margin: timedelta = REFRESH_MARGIN,
        max_entries: int = MAX_CACHED_TOKENS,
    ) -> None:
        self.clock = clock
        self.margin = margin
        self.max_entries = max_entries
        self._entries: OrderedDict[tuple[str, str], _Cached] = OrderedDict()
        self._lock = threading.Lock()

    @staticmethod
    def key(subject_token: str, audience: str) -> tuple[str, str]:
        return hashlib.sha256(subject_token.encode()).hexdigest(), audience

    def get(self, subject_token: str, audience: str) -> str | None:
        key = self.key(subject_token, audience)
        now = self.clock.now()
        with self._lock:
            entry = self._entries.get(key)
            if entry is None:
                return None
            if now >= entry.usable_until:
                del self._entries[key]
                return None
            return entry.token

    def put(self, subject_token: str, audience: str, token: str, expires_in: float) -> None:
        """Keep `token` (valid for `expires_in` seconds from now) until the margin before its expiry."""
        lifetime = timedelta(seconds=expires_in)
        usable = lifetime - min(self.margin, lifetime / 2)
        if usable <= timedelta(0):
            return
        now = self.clock.now()
        key = self.key(subject_token, audience)
        with self._lock:
            self._entries[key] = _Cached(token, now + usable)
            self._entries.move_to_end(key)
            if len(self._entries) > self.max_entries:
                for stale in [k for k, v in self._entries.items() if now >= v.usable_until]:
                    del self._entries[stale]
                while len(self._entries) > self.max_entries:
                    self._entries.popitem(last=False)

    def forget(self, subject_token: str, audience: str) -> None:
        with self._lock:
            self._entries.pop(self.key(subject_token, audience), None)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()

    def __len__(self) -> int:
        with self._lock:
            return len(self._entries)


# ------------------------------------------------------------------------------------------------ exchange


class HttpPool:
    """One httpx.Client per process, made on first use: a pool opened before gunicorn forks would be shared by
    the workers' sockets (the same rule as Kafka and Mongo clients, docs/engineering.md). `transport` replaces
    the network in tests (httpx.MockTransport)."""

    def __init__(self, transport: httpx.BaseTransport | None = None) -> None:
        self._transport = transport
        self._client: httpx.Client | None = None
        self._pid = 0
        self._lock = threading.Lock()

    def client(self) -> httpx.Client:
        with self._lock:
            if self._client is None or self._pid != os.getpid():
                self._client = httpx.Client(transport=self._transport, follow_redirects=False)
                self._pid = os.getpid()
            return self._client

    def close(self) -> None:
        with self._lock:
            if self._client is not None and self._pid == os.getpid():
                self._client.close()
            self._client = None


class TokenExchanger:
    """Exchanges a user's access token at Keycloak's token endpoint for one whose audience is another service.

    The request is RFC 8693: `subject_token` = the caller's token, `subject_token_type` and
    `requested_token_type` = access token, `audience` = the target's client (`<service>-api`), and this
    service's client id and secret in the form (client_secret_post)."""

    def __init__(
        self,
        token_endpoint: str,
        client_id: str,
        client_secret: Secret,
        *,
        service: str,
        clock: Clock | None = None,
        cache: ExchangedTokenCache | None = None,
        http: HttpPool | None = None,
        timeout: httpx.Timeout = KEYCLOAK_TIMEOUT,
    ) -> None:
        if not client_secret:
            raise ConfigError(f"{service}: OIDC_CLIENT_SECRET is required for calls on behalf of the user")
        self.token_endpoint = token_endpoint
        self.client_id = client_id
        self._secret = client_secret
        self.service = service
        self.cache = cache or ExchangedTokenCache(clock or SystemClock())
        self.http = http or HttpPool()
        self.timeout = timeout

    def __repr__(self) -> str:
        return f"TokenExchanger(client_id={self.client_id!r}, token_endpoint={self.token_endpoint!r})"

    def token_for(self, subject_token: str, audience: str) -> str:
        """A token for `audience` carrying the same user: from the cache, or exchanged now."""
        cached = self.cache.get(subject_token, audience)
        if cached is not None:
            TOKEN_EXCHANGES.labels(self.service, audience, "cached").inc()
            return cached
        form = {
            "grant_type": TOKEN_EXCHANGE_GRANT,
            "client_id": self.client_id,
            "client_secret": self._secret.reveal(),
            "subject_token": subject_token,
            "subject_token_type": ACCESS_TOKEN_TYPE,
            "requested_token_type": ACCESS_TOKEN_TYPE,
            "audience": audience,
        }
        try:
            response = self.http.client().post(
                self.token_endpoint,
                data=form,
                headers={"Accept": "application/json"},
                timeout=self.timeout,
            )
        except httpx.HTTPError as exc:  # connect/read timeouts, refused connections, protocol errors
            self._count(audience, "unavailable")
            log.warning(
                "token exchange failed: Keycloak unreachable",
                extra={"fields": {"audience": audience, "exc_type": type(exc).__name__}},
            )
            raise DependencyUnavailable("keycloak") from None
        if response.status_code == 200:
            return self._accept(response, subject_token, audience)
        raise self._refusal(response, audience)

    def _accept(self, response: httpx.Response, subject_token: str, audience: str) -> str:
        try:
            body = response.json()
            token = body["access_token"]
            expires_in = body.get("expires_in")
        except (ValueError, KeyError, TypeError):
            self._count(audience, "unavailable")
            log.warning("token exchange answer unreadable", extra={"fields": {"audience": audience}})
            raise DependencyUnavailable("keycloak") from None
        if not isinstance(token, str) or token.count(".") != 2:
            self._count(audience, "unavailable")
            raise DependencyUnavailable("keycloak", "token exchange answer holds no access token")
        if isinstance(expires_in, int | float) and not isinstance(expires_in, bool) and expires_in > 0:
            self.cache.put(subject_token, audience, token, float(expires_in))
        self._count(audience, "issued")
        return token

    def _refusal(self, response: httpx.Response, audience: str) -> Exception:
        status = response.status_code
        error, description = _oauth_error(response)
        fields = {"audience": audience, "status": status, "oauth_error": error}
        if status >= 500 or status == 429:
            self._count(audience, "unavailable")
            log.warning("token exchange failed: Keycloak answered an error", extra={"fields": fields})
            return DependencyUnavailable("keycloak")
        if status == 401 or error in ("invalid_client", "unauthorized_client"):
            # Our own client id/secret, or standard token exchange not enabled on our client: config, not user.
            self._count(audience, "misconfigured")
            log.error(
                "token exchange refused this service's client credentials (check OIDC_CLIENT_ID/"
                "OIDC_CLIENT_SECRET and the client's standard token exchange switch)",
                extra={"fields": {**fields, "client_id": self.client_id}},
            )
            return OnBehalfConfigurationError(f"Keycloak refused client {self.client_id}")
        if error == "invalid_request" and "invalid token" in description:
            # The caller's token passed our checks (with their small leeway) but Keycloak no longer accepts it:
            # expired meanwhile, or its session ended. The user needs a new token.
            self._count(audience, "subject_invalid")
            log.info("token exchange: the caller's token is no longer valid", extra={"fields": fields})
            return AuthError("token_rejected_by_issuer", "token no longer accepted by the issuer")
        # "Requested audience not available" (the user holds no access role of the target, or this pair is not
        # declared in the realm), "Client is not within the token audience", anything else: refused, fail closed.
        self._count(audience, "refused")
        log.info("token exchange refused", extra={"fields": fields})
        return NotPermitted("on_behalf_exchange_refused", f"Keycloak refused an exchange for {audience}")

    def _count(self, audience: str, outcome: str) -> None:
        TOKEN_EXCHANGES.labels(self.service, audience, outcome).inc()


def _oauth_error(response: httpx.Response) -> tuple[str, str]:
    """The OAuth `error` code (only if code-shaped) and the lower-cased description, for mapping only."""
    try:
        body = response.json()
    except ValueError:
        return "other", ""
    if not isinstance(body, dict):
        return "other", ""
    error = body.get("error")
    description = body.get("error_description")
    return (
        error if isinstance(error, str) and _OAUTH_ERROR.match(error) else "other",
        description.lower() if isinstance(description, str) else "",
    )


# ------------------------------------------------------------------------------------------------ the call


class OnBehalfClient:
    """Calls other services' APIs with the caller's token exchanged for their audience.

    `upstreams` maps a service name (`identification`) to its API's base URL (THB_UPSTREAM_IDENTIFICATION). The
    request forwards the current request's `X-Request-Id` and `X-Purpose` (or the `purpose` given) and the trace
    context; it never forwards the caller's own token."""

    def __init__(
        self,
        exchanger: TokenExchanger,
        upstreams: Mapping[str, str],
        *,
        timeout: httpx.Timeout = TARGET_TIMEOUT,
    ) -> None:
        self.exchanger = exchanger
        self.upstreams = {name: url.rstrip("/") for name, url in upstreams.items()}
        self._http = exchanger.http  # one pool for Keycloak and the services
        self.timeout = timeout

    @classmethod
    def from_settings(
        cls,
        settings: Settings,
        *,
        targets: Iterable[str],
        clock: Clock | None = None,
        transport: httpx.BaseTransport | None = None,
    ) -> OnBehalfClient:
        """The client of a service that calls `targets` (service names). Raises ConfigError at start-up when
        OIDC_ISSUER, OIDC_CLIENT_SECRET or a target's THB_UPSTREAM_<NAME> is missing."""
        targets = tuple(targets)
        missing = [] if settings.oidc_issuer else ["OIDC_ISSUER"]
        if not settings.oidc_client_secret:
            missing.append("OIDC_CLIENT_SECRET")
        missing += [f"THB_UPSTREAM_{name.upper()}" for name in targets if name not in settings.upstreams]
        if missing:
            raise ConfigError(
                f"{settings.service}: calls on behalf of the user need these environment variables: "
                + ", ".join(missing)
            )
        assert settings.oidc_issuer is not None and settings.oidc_client_secret is not None
        exchanger = TokenExchanger(
            settings.oidc_issuer.rstrip("/") + "/protocol/openid-connect/token",
            settings.client_id,
            settings.oidc_client_secret,
            service=settings.service,
            clock=clock,
            http=HttpPool(transport),
        )
        return cls(exchanger, {name: settings.upstreams[name] for name in targets})

    def __repr__(self) -> str:
        return f"OnBehalfClient(client_id={self.exchanger.client_id!r}, targets={sorted(self.upstreams)!r})"

    def close(self) -> None:
        self._http.close()

    # -- public calls -------------------------------------------------------------------------------------
    def get(
        self,
        target: str,
        path: str,
        *,
        params: Mapping[str, str | int | Sequence[str]] | None = None,
        caller: Caller | None = None,
        purpose: str | None = None,
    ) -> Any:
        return self.request("GET", target, path, params=params, caller=caller, purpose=purpose)

    def post(
        self,
        target: str,
        path: str,
        *,
        json: Any,
        caller: Caller | None = None,
        purpose: str | None = None,
        idempotency_key: str | None = None,
    ) -> Any:
        """A POST (searches by name or date of birth are POSTs: the criteria stay in the body)."""
        return self.request(
            "POST", target, path, json=json, caller=caller, purpose=purpose, idempotency_key=idempotency_key
        )

    def request(
        self,
        method: str,
        target: str,
        path: str,
        *,
        params: Mapping[str, str | int | Sequence[str]] | None = None,
        json: Any = None,
        caller: Caller | None = None,
        purpose: str | None = None,
        idempotency_key: str | None = None,
    ) -> Any:
        """Call `target`'s API at `path` (`/v1/<target>/...`) as the caller; return the JSON body (None for 204).

        `caller` defaults to the verified caller of the current request; `purpose` to its X-Purpose."""
        base = self.upstreams.get(target)
        if base is None:
            raise ValueError(f"{target!r} is not a target of this client (from_settings(targets=...))")
        if not path.startswith(f"/v1/{target}/") or any(char in path for char in "?#\\") or ".." in path:
            raise ValueError(f"a path below /v1/{target}/ without query or fragment is required")
        who = caller if caller is not None else request_context.current_caller()
        if who.is_machine:
            # A national system's token names its service account, not a person; its country and agency come
            # from mappers of its own client, which an exchanged token does not carry.
            raise NotPermitted("on_behalf_machine_caller", "machine clients call the other service directly")
        audience = f"{target}-api"
        headers = {"Accept": "application/json"}
        request_id = request_context.current_request_id()
        if request_id:
            headers["X-Request-Id"] = request_id
        purpose = purpose if purpose is not None else request_context.current_purpose()
        if purpose:
            headers["X-Purpose"] = purpose
        if idempotency_key:
            headers["Idempotency-Key"] = idempotency_key
        with tracer("plumbing.on_behalf").start_as_current_span(
            f"{method} {target}",
            kind=trace.SpanKind.CLIENT,
            attributes={"thb.target_service": target, "http.request.method": method},
        ) as span:
            propagate.inject(headers)
            response = self._send(method, target, base + path, headers, who.token, audience, params, json)
            span.set_attribute("http.response.status_code", response.status_code)
        return self._answer(target, response)

    # -- internals ----------------------------------------------------------------------------------------
    def _send(
        self,
        method: str,
        target: str,
        url: str,
        headers: dict[str, str],
        subject_token: str,
        audience: str,
        params: Mapping[str, str | int | Sequence[str]] | None,
        body: Any,
    ) -> httpx.Response:
        for _attempt in range(2):
            token = self.exchanger.token_for(subject_token, audience)
            try:
                response = self._http.client().request(
                    method,
                    url,
                    params=params,
                    json=body,
                    headers={**headers, "Authorization": f"Bearer {token}"},
                    timeout=self.timeout,
                )
            except httpx.HTTPError as exc:
                ON_BEHALF_CALLS.labels(self.exchanger.service, target, "unavailable").inc()
                log.warning(
                    "call on behalf of the user failed: service unreachable",
                    extra={"fields": {"target": target, "method": method, "exc_type": type(exc).__name__}},
                )
                raise DependencyUnavailable(target) from None
            ON_BEHALF_CALLS.labels(self.exchanger.service, target, str(response.status_code)).inc()
            if response.status_code != 401:
                return response
            # A cached token the target no longer accepts (e.g. its keys rotated): exchange once more, then stop.
            # Either way a refused token is not kept.
            self.exchanger.cache.forget(subject_token, audience)
        log.error(
            "the target service rejected the exchanged token (check its THB_ALLOWED_AZP for this client)",
            extra={"fields": {"target": target, "client_id": self.exchanger.client_id}},
        )
        raise OnBehalfConfigurationError(f"{target} rejected the token exchanged for it")

    @staticmethod
    def _answer(target: str, response: httpx.Response) -> Any:
        status = response.status_code
        if 200 <= status < 300:
            if status == 204 or not response.content:
                return None
            try:
                return response.json()
            except ValueError:
                log.warning("answer of another service is not JSON", extra={"fields": {"target": target}})
                raise UnexpectedAnswer(target, status, None) from None
        if status == 404:
            raise NotFound(f"{target}: not found")
        if status == 403:
            raise NotPermitted("on_behalf_forbidden", f"{target} refused the operation for this caller")
        if status >= 500 or status == 429:
            log.warning(
                "another service answered an error", extra={"fields": {"target": target, "status": status}}
            )
            raise DependencyUnavailable(target)
        raise UnexpectedAnswer(target, status, _problem_slug(response))


def _problem_slug(response: httpx.Response) -> str | None:
    """The last segment of a problem's `type` (a catalogue slug, never personal data), if well-formed."""
    try:
        body = response.json()
    except ValueError:
        return None
    kind = body.get("type") if isinstance(body, dict) else None
    if not isinstance(kind, str):
        return None
    slug = kind.rstrip("/").rsplit("/", 1)[-1]
    return slug if _PROBLEM_SLUG.match(slug) else None
