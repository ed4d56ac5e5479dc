"""The gateway: a plain ASGI application that authenticates, authorises and forwards to the services.

Plain ASGI rather than connexion or Starlette routing because the gateway does little per request and that
little must be cheap: the measurements are in docs/performance.md. Routes come from the contracts
(gateway.contracts), never from a table written here.

Order of checks for an API request, each answering with a problem (RFC 9457) when it fails:
path (404) -> method (405) -> token (401; 403 when the token is not for the target service) -> role (403)
-> rate budget (429) -> body size (413) -> content type (415) -> forward (503 when the service cannot be reached).
Nothing is read from the body, and nothing reaches a service, before the caller is authenticated and authorised.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from gateway.auth import AuthError, Caller, EdgeAuthenticator, bearer_token
from gateway.contracts import Operation, RouteTable
from gateway.docs import DocsAssets
from gateway.headers import forwarded_headers, request_id, trace_context
from gateway.problem_pages import ProblemPages
from gateway.ratelimit import RateLimiter
from gateway.upstream import Forwarder, UpstreamError, UpstreamResponse
from plumbing import i18n
from plumbing.logging import safe_stack
from plumbing.problems import Problem

Scope = dict[str, Any]
Message = dict[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

access_log = logging.getLogger("gateway.access")
log = logging.getLogger("gateway")

RETRY_AFTER_UNAVAILABLE = 5
STATUS_CACHE_SECONDS = 2.0
# Security headers on every answer; documentation pages replace the CSP with their own.
_SECURITY_HEADERS: tuple[tuple[bytes, bytes], ...] = (
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
    (b"x-frame-options", b"DENY"),
    (b"strict-transport-security", b"max-age=31536000"),
    (b"cross-origin-opener-policy", b"same-origin"),
)
_API_CSP = b"default-src 'none'; frame-ancestors 'none'"
_CORS_ALLOW_HEADERS = (
    b"authorization, content-type, accept, accept-language, x-purpose, idempotency-key, x-request-id, "
    b"x-acting-user, traceparent, tracestate"
)
_CORS_EXPOSE_HEADERS = (
    b"x-request-id, retry-after, location, content-language, www-authenticate, idempotent-replayed, "
    b"ratelimit-limit, ratelimit-remaining, ratelimit-reset"
)
# Response headers of a service that the gateway replaces or that belong to one connection.
_RESPONSE_DROP = frozenset(
    {
        b"connection",
        b"keep-alive",
        b"transfer-encoding",
        b"upgrade",
        b"trailer",
        b"te",
        b"server",
        b"date",
        b"x-request-id",
        b"x-content-type-options",
        b"referrer-policy",
        b"x-frame-options",
        b"strict-transport-security",
        b"cross-origin-opener-policy",
        b"access-control-allow-origin",
        b"access-control-expose-headers",
        b"content-length",
    }
)


class ForwarderLike(Protocol):
    async def request(
        self, service: str, method: str, target: bytes, headers: list[tuple[bytes, bytes]], body: bytes
    ) -> UpstreamResponse: ...

    async def probe(self, service: str, path: bytes, timeout: float) -> int: ...

    async def aclose(self) -> None: ...


@dataclass
class _Request:
    """What one request carries through the checks (no body, no personal data)."""

    method: str
    path: str
    request_id: str
    traceparent: str
    trace_id: str
    tracestate: str | None
    origin: str | None
    accept_language: str | None
    started: float
    route: str = "-"
    service: str = "-"
    operation_id: str = "-"
    caller: Caller | None = None
    outcome: str = "-"
    upstream_ms: float | None = None
    accept: str | None = None


class Gateway:
    def __init__(
        self,
        *,
        routes: RouteTable,
        document: Mapping[str, Any],
        authenticator: EdgeAuthenticator,
        limiter: RateLimiter,
        upstreams: Mapping[str, str],
        docs: DocsAssets | None = None,
        cors_origins: frozenset[str] = frozenset(),
        max_body_bytes: int = 1_048_576,
        upstream_timeout: float = 30.0,
        forwarder: ForwarderLike | None = None,
        ready: Callable[[], bool] = lambda: True,
        on_startup: Callable[[], object] | None = None,
        on_shutdown: Callable[[], None] | None = None,
        problem_pages: ProblemPages | None = None,
    ) -> None:
        self.routes = routes
        self.document_bytes = json.dumps(document, ensure_ascii=False).encode("utf-8")
        self.authenticator = authenticator
        self.limiter = limiter
        self.upstreams = dict(upstreams)
        self.docs = docs
        self.cors_origins = cors_origins
        self.max_body_bytes = max_body_bytes
        self.upstream_timeout = upstream_timeout
        self.forwarder: ForwarderLike = forwarder or Forwarder(dict(upstreams), timeout=upstream_timeout)
        self.ready = ready
        self.on_startup = on_startup
        self.on_shutdown = on_shutdown
        self.problem_pages = problem_pages or ProblemPages()
        self._status_cache: tuple[float, bytes, int] | None = None

    # -- plumbing -----------------------------------------------------------------------------------------
    async def aclose(self) -> None:
        await self.forwarder.aclose()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind == "http":
            await self._http(scope, receive, send)
        elif kind == "lifespan":
            await self._lifespan(receive, send)
        elif kind == "websocket":
            await send({"type": "websocket.close", "code": 1008})

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                try:
                    if self.on_startup:
                        # The first JWKS fetch blocks: keep it off the event loop.
                        await asyncio.to_thread(self.on_startup)
                except Exception as exc:  # noqa: BLE001 - reported to the server, which stops
                    await send({"type": "lifespan.startup.failed", "message": str(exc)})
                    return
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await self.aclose()
                if self.on_shutdown:
                    self.on_shutdown()
                await send({"type": "lifespan.shutdown.complete"})
                return

    # -- one request --------------------------------------------------------------------------------------
    async def _http(self, scope: Scope, receive: Receive, send: Send) -> None:
        headers: dict[bytes, bytes] = {}
        for name, value in scope["headers"]:
            headers.setdefault(name, value)
        traceparent, trace_id = trace_context(_text(headers.get(b"traceparent")))
        continued = traceparent == _text(headers.get(b"traceparent"), strip=True)
        req = _Request(
            method=scope["method"],
            path=scope["path"],
            request_id=request_id(_text(headers.get(b"x-request-id"))),
            traceparent=traceparent,
            trace_id=trace_id,
            tracestate=_text(headers.get(b"tracestate")) if continued else None,
            origin=_text(headers.get(b"origin")),
            accept_language=_text(headers.get(b"accept-language")),
            started=time.perf_counter(),
            accept=_text(headers.get(b"accept")),
        )
        status = 500
        try:
            status = await self._dispatch(scope, receive, send, headers, req)
        except Exception as exc:  # noqa: BLE001 - a bug must still answer with a problem and a log line
            # One line, with where it failed but not the exception's message (it may quote what was sent).
            log.error(
                "gateway error (request %s): %s at %s",
                req.request_id,
                type(exc).__name__,
                " <- ".join(reversed(safe_stack(exc.__traceback__))),
            )
            req.outcome = "error"
            status = await self._problem(send, req, Problem("internal-error"))
        finally:
            self._log(req, status)

    async def _dispatch(
        self, scope: Scope, receive: Receive, send: Send, headers: dict[bytes, bytes], req: _Request
    ) -> int:
        path = req.path
        method = req.method
        if path.startswith("/v1/") and path != "/v1/status" and path != "/v1/openapi.json":
            return await self._api(scope, receive, send, headers, req)
        own = self._own_endpoint(path, method)
        if own is None:
            req.outcome = "no-route"
            return await self._problem(send, req, Problem("not-found"))
        if path.startswith("/docs/static/"):
            req.route = "/docs/static/{asset}"
        elif path.startswith("/problems/") and path != "/problems/":
            req.route = "/problems/{slug}"
        else:
            req.route = path
        req.outcome = "gateway"
        if method not in ("GET", "HEAD"):
            return await self._problem(send, req, Problem("method-not-allowed"), allow="GET, HEAD")
        return await own(send, req)

    def _own_endpoint(self, path: str, method: str) -> Callable[[Send, _Request], Awaitable[int]] | None:
        if path == "/healthz":
            return self._healthz
        if path == "/readyz":
            return self._readyz
        if path == "/v1/status":
            return self._status
        if path == "/v1/openapi.json":
            return self._openapi
        if self.docs is not None and (path == "/docs" or path.startswith("/docs/")):
            return self._docs
        if path == "/problems" or path.startswith("/problems/"):
            return self._problems
        return None

    async def _api(
        self, scope: Scope, receive: Receive, send: Send, headers: dict[bytes, bytes], req: _Request
    ) -> int:
        if not _plain_path(req.path, scope.get("raw_path")):
            req.outcome = "no-route"
            return await self._problem(send, req, Problem("not-found"))
        if req.method == "OPTIONS" and b"access-control-request-method" in headers:
            return await self._preflight(send, headers, req)
        match = self.routes.match(req.path, req.method)
        if match is None:
            req.outcome = "no-route"
            return await self._problem(send, req, Problem("not-found"))
        req.route, req.service = match.template, match.service
        op = match.operation
        if op is None:
            req.outcome = "method"
            return await self._problem(
                send, req, Problem("method-not-allowed"), allow=", ".join(match.allowed)
            )
        req.operation_id = op.operation_id
        try:
            caller = self.authenticator.authenticate(
                op.service, bearer_token(_text(headers.get(b"authorization")))
            )
        except AuthError as exc:
            req.outcome = f"auth:{exc.code}"
            if exc.code == "audience_invalid":
                # A valid realm token, but not one for this service: its client or group may not use it.
                return await self._problem(send, req, Problem("forbidden"))
            if exc.status == 503:
                # No signing key set loaded yet: `service-unavailable`, as the services answer it (`not-ready` is
                # the /readyz answer only).
                return await self._problem(
                    send, req, Problem("service-unavailable", retry_after=RETRY_AFTER_UNAVAILABLE)
                )
            return await self._problem(send, req, Problem("unauthorized"))
        req.caller = caller
        if caller.roles.isdisjoint(op.roles):
            req.outcome = "role"
            return await self._problem(send, req, Problem("forbidden"))
        decision = self.limiter.take(
            is_machine=caller.is_machine, key=caller.azp if caller.is_machine else caller.sub
        )
        if not decision.allowed:
            req.outcome = "rate"
            # Declared in the contracts (common.yaml TooManyRequests): the budget, nothing left, when it refills.
            limits = {
                "RateLimit-Limit": str(decision.limit),
                "RateLimit-Remaining": "0",
                "RateLimit-Reset": str(decision.retry_after),
            }
            problem = Problem("rate-limited", retry_after=decision.retry_after, headers=limits)
            return await self._problem(send, req, problem)
        rejection = _body_rejection(op, headers, self.max_body_bytes)
        if rejection is not None:
            req.outcome = "body"
            return await self._problem(send, req, Problem(rejection))
        body = await _read_body(receive, self.max_body_bytes)
        if body is _DISCONNECTED:
            # The client left, or the server cut a slow body off (408): a partial body is never forwarded.
            req.outcome = "body:incomplete"
            return await self._problem(send, req, Problem("request-timeout"))
        if body is None:
            req.outcome = "body"
            return await self._problem(send, req, Problem("payload-too-large"))
        if body and not op.body_types:
            req.outcome = "body"
            return await self._problem(send, req, Problem("unsupported-media-type"))
        return await self._forward(scope, send, req, op, body)

    async def _forward(self, scope: Scope, send: Send, req: _Request, op: Operation, body: bytes) -> int:
        upstream_headers = forwarded_headers(scope["headers"])
        upstream_headers.append((b"x-request-id", req.request_id.encode()))
        upstream_headers.append((b"traceparent", req.traceparent.encode()))
        if req.tracestate:
            upstream_headers.append((b"tracestate", req.tracestate.encode("latin-1")))
        client = scope.get("client")
        if client:
            upstream_headers.append((b"x-forwarded-for", str(client[0]).encode()))
        upstream_headers.append((b"x-forwarded-proto", str(scope.get("scheme", "http")).encode()))
        target = scope.get("raw_path") or req.path.encode()
        query = scope.get("query_string") or b""
        if query:
            target += b"?" + query
        started = time.perf_counter()
        try:
            response = await self.forwarder.request(op.service, req.method, target, upstream_headers, body)
        except UpstreamError as exc:
            req.outcome = f"upstream:{type(exc).__name__}"
            log.warning("service %s unavailable (request %s): %s", op.service, req.request_id, exc)
            return await self._problem(
                send, req, Problem("service-unavailable", retry_after=RETRY_AFTER_UNAVAILABLE)
            )
        req.upstream_ms = (time.perf_counter() - started) * 1000
        out = [
            (name, value)
            for name, value in response.headers
            if name not in _RESPONSE_DROP and name != b"content-security-policy"
        ]
        out.append((b"content-length", str(len(response.body)).encode()))
        out.append((b"content-security-policy", _API_CSP))
        if not any(name == b"cache-control" for name, _ in out):
            out.append((b"cache-control", b"no-store"))
        self._common_headers(out, req)
        await send({"type": "http.response.start", "status": response.status, "headers": out})
        await send({"type": "http.response.body", "body": response.body if req.method != "HEAD" else b""})
        req.outcome = "forwarded"
        return response.status

    async def _preflight(self, send: Send, headers: dict[bytes, bytes], req: _Request) -> int:
        requested = (_text(headers.get(b"access-control-request-method")) or "").upper()
        match = self.routes.match(req.path, requested)
        req.outcome = "preflight"
        if match is None or match.operation is None or req.origin not in self.cors_origins:
            return await self._problem(send, req, Problem("forbidden"))
        req.route = match.template
        out: list[tuple[bytes, bytes]] = [
            (b"access-control-allow-methods", ", ".join(match.allowed).encode()),
            (b"access-control-allow-headers", _CORS_ALLOW_HEADERS),
            (b"access-control-max-age", b"600"),
            (b"content-security-policy", _API_CSP),
        ]
        self._common_headers(out, req)
        await send({"type": "http.response.start", "status": 204, "headers": out})
        await send({"type": "http.response.body", "body": b""})
        return 204

    # -- the gateway's own endpoints ---------------------------------------------------------------------
    async def _healthz(self, send: Send, req: _Request) -> int:
        return await self._json(send, req, 200, b'{"status":"ok"}')

    async def _readyz(self, send: Send, req: _Request) -> int:
        ready = self.ready()
        body = json.dumps(
            {
                "status": "ready" if ready else "unready",
                "checks": {"keys": ready, "routes": len(self.routes.operations)},
            }
        ).encode()
        return await self._json(send, req, 200 if ready else 503, body)

    async def _openapi(self, send: Send, req: _Request) -> int:
        return await self._json(send, req, 200, self.document_bytes, cache=b"public, max-age=60")

    async def _status(self, send: Send, req: _Request) -> int:
        # Answers are kept for a moment so that polling the gateway does not multiply into polling every service.
        now = time.monotonic()
        if self._status_cache and now - self._status_cache[0] < STATUS_CACHE_SECONDS:
            _, body, status = self._status_cache
            return await self._json(send, req, status, body)
        results = await asyncio.gather(*(self._probe(service) for service in self.upstreams))
        services = dict(zip(self.upstreams, results, strict=True))
        overall = "ok" if all(r["status"] == "ready" for r in services.values()) else "degraded"
        body = json.dumps(
            {"status": overall, "gateway": "ready" if self.ready() else "unready", "services": services}
        ).encode()
        # 200 whenever the gateway can answer: the document says which service is down.
        self._status_cache = (now, body, 200)
        return await self._json(send, req, 200, body)

    async def _probe(self, service: str) -> dict[str, Any]:
        try:
            status = await self.forwarder.probe(service, b"/readyz", 2.0)
        except UpstreamError:
            return {"status": "unreachable"}
        # Only the verdict is passed on: a service's readiness details are for its operators, not for callers.
        return {"status": "ready" if status == 200 else "unready", "http_status": status}

    async def _docs(self, send: Send, req: _Request) -> int:
        assert self.docs is not None
        if req.path == "/docs":
            out = [(b"location", b"/docs/"), (b"content-length", b"0")]
            self._common_headers(out, req)
            await send({"type": "http.response.start", "status": 308, "headers": out})
            await send({"type": "http.response.body", "body": b""})
            return 308
        found = self.docs.get(req.path[len("/docs/") :])
        if found is None:
            req.outcome = "no-route"
            return await self._problem(send, req, Problem("not-found"))
        body, content_type = found
        out = [
            (b"content-type", content_type.encode()),
            (b"content-length", str(len(body)).encode()),
            (b"content-security-policy", self.docs.csp.encode()),
            (b"cache-control", b"public, max-age=300"),
        ]
        self._common_headers(out, req)
        # The page opens the realm's login in a popup, and the popup hands the token back through
        # `window.opener` from oauth2-redirect.html. `same-origin` would cut the popup off from its opener, so the
        # page allows its popups, and the redirect page (reached from the realm's origin) sets no policy.
        out = [(name, value) for name, value in out if name != b"cross-origin-opener-policy"]
        if not req.path.endswith("/oauth2-redirect.html"):
            out.append((b"cross-origin-opener-policy", b"same-origin-allow-popups"))
        await send({"type": "http.response.start", "status": 200, "headers": out})
        await send({"type": "http.response.body", "body": body if req.method == "GET" else b""})
        return 200

    async def _problems(self, send: Send, req: _Request) -> int:
        """The problem catalogue at the problem `type` URIs (gateway.problem_pages)."""
        slug = req.path[len("/problems/") :] if req.path.startswith("/problems/") else ""
        language = i18n.negotiate(req.accept_language)
        page = self.problem_pages.render(slug or None, req.accept, language)
        if page is None:
            req.outcome = "no-route"
            return await self._problem(send, req, Problem("not-found"))
        out = [
            (b"content-type", page.content_type.encode()),
            (b"content-length", str(len(page.body)).encode()),
            (b"content-language", language.encode()),
            (b"vary", b"Accept, Accept-Language"),
            (b"cache-control", b"public, max-age=300"),
            (b"content-security-policy", _API_CSP),
        ]
        self._common_headers(out, req)
        await send({"type": "http.response.start", "status": 200, "headers": out})
        await send({"type": "http.response.body", "body": page.body if req.method == "GET" else b""})
        return 200

    # -- answers ------------------------------------------------------------------------------------------
    def _common_headers(self, out: list[tuple[bytes, bytes]], req: _Request) -> None:
        out.extend(_SECURITY_HEADERS)
        out.append((b"x-request-id", req.request_id.encode()))
        if req.origin is not None and req.origin in self.cors_origins:
            out.append((b"access-control-allow-origin", req.origin.encode()))
            out.append((b"access-control-expose-headers", _CORS_EXPOSE_HEADERS))
            out.append((b"vary", b"Origin"))

    async def _json(
        self, send: Send, req: _Request, status: int, body: bytes, cache: bytes = b"no-store"
    ) -> int:
        out = [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
            (b"cache-control", cache),
            (b"content-security-policy", _API_CSP),
        ]
        self._common_headers(out, req)
        await send({"type": "http.response.start", "status": status, "headers": out})
        await send({"type": "http.response.body", "body": body if req.method != "HEAD" else b""})
        return status

    async def _problem(self, send: Send, req: _Request, problem: Problem, allow: str | None = None) -> int:
        language = i18n.negotiate(req.accept_language)
        status, headers, body = problem.render(language, req.request_id)
        out = [(b"content-type", b"application/problem+json"), (b"content-length", str(len(body)).encode())]
        out.extend((name.lower().encode(), value.encode()) for name, value in headers.items())
        if allow is not None:
            out.append((b"allow", allow.encode()))
        out.append((b"cache-control", b"no-store"))
        out.append((b"content-security-policy", _API_CSP))
        self._common_headers(out, req)
        await send({"type": "http.response.start", "status": status, "headers": out})
        await send({"type": "http.response.body", "body": body if req.method != "HEAD" else b""})
        return status

    def _log(self, req: _Request, status: int) -> None:
        # No personal data: the route template (never the raw path), no query, no sub; client and scope only.
        if not access_log.isEnabledFor(logging.INFO):
            return
        caller = req.caller
        entry: dict[str, Any] = {
            "request_id": req.request_id,
            "trace_id": req.trace_id,
            "method": req.method,
            "route": req.route,
            "service": req.service,
            "operation": req.operation_id,
            "status": status,
            "outcome": req.outcome,
            "duration_ms": round((time.perf_counter() - req.started) * 1000, 2),
        }
        if req.upstream_ms is not None:
            entry["upstream_ms"] = round(req.upstream_ms, 2)
        if caller is not None:
            entry.update(
                azp=caller.azp, machine=caller.is_machine, country=caller.country, agency=caller.agency
            )
        access_log.info(json.dumps(entry, separators=(",", ":")))


# -- helpers ------------------------------------------------------------------------------------------------
def _text(value: bytes | None, strip: bool = False) -> str | None:
    if value is None:
        return None
    text = value.decode("latin-1")
    return text.strip() if strip else text


def _plain_path(path: str, raw_path: bytes | None) -> bool:
    """Refuse paths whose meaning could differ between the gateway and the service behind it."""
    if "\\" in path or "//" in path:
        return False
    if any(segment in (".", "..") for segment in path.split("/")):
        return False
    if raw_path is not None:
        lowered = raw_path.lower()
        # An encoded slash or backslash would make one segment here and two at the service.
        if b"%2f" in lowered or b"%5c" in lowered or b"%00" in lowered:
            return False
    return True


def _media_type(content_type: str | None) -> str | None:
    if not content_type:
        return None
    return content_type.split(";", 1)[0].strip().lower() or None


def _accepts(declared: frozenset[str], media_type: str) -> bool:
    if media_type in declared or "*/*" in declared:
        return True
    major = media_type.split("/", 1)[0]
    return f"{major}/*" in declared


def _body_rejection(op: Operation, headers: Mapping[bytes, bytes], limit: int) -> str | None:
    """Slug of the problem when the headers alone show the body cannot be accepted."""
    length_text = _text(headers.get(b"content-length"))
    chunked = b"chunked" in (headers.get(b"transfer-encoding") or b"").lower()
    if length_text is not None:
        if not length_text.strip().isdigit():
            return "bad-request"
        length = int(length_text)
        if length > limit:
            return "payload-too-large"
        has_body = length > 0
    else:
        has_body = chunked
    if has_body and op.body_types:
        media_type = _media_type(_text(headers.get(b"content-type")))
        if media_type is None or not _accepts(op.body_types, media_type):
            return "unsupported-media-type"
    return None


_DISCONNECTED = b"<disconnected>"  # compared by identity: the body never arrived whole


async def _read_body(receive: Receive, limit: int) -> bytes | None:
    """The whole body; None once it grows past `limit` (a chunked body has no length to check first);
    `_DISCONNECTED` when the connection ended before the body did."""
    parts: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return _DISCONNECTED
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            return None
        parts.append(chunk)
        if not message.get("more_body", False):
            break
    return b"".join(parts)
