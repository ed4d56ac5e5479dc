"""The platform's ASGI middlewares around connexion's own (the order is in plumbing.app's docstring).

- `ObservabilityMiddleware`: identity headers stripped, request id, language, server span, one JSON log line,
  metrics, the last resort for unhandled errors; answers /healthz, /readyz and /metrics itself.
- `BodyLimitMiddleware`: 413 before anything reads an oversized body.
- `OperationRecorder`: the routed operation copied into the request context."""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from typing import Any

from opentelemetry import propagate, trace
from opentelemetry.trace import SpanKind, Status, StatusCode
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from plumbing import i18n, metrics, request_context, telemetry
from plumbing.error_handlers import send_problem
from plumbing.logging import REQUEST_LOGGER, safe_stack
from plumbing.probes import HEALTH_PATH, METRICS_PATH, READY_PATH, AppState
from plumbing.problems import FieldError, Problem
from plumbing.security import (
    OperationPolicy,
    strip_identity_headers,
)

_STANDARD_METHODS = frozenset({"GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"})
logger = logging.getLogger(__name__)
request_logger = logging.getLogger(REQUEST_LOGGER)


class BodyLimitMiddleware:
    """413 for bodies over the limit: by Content-Length up front, and by counting when the length is unknown."""

    def __init__(self, app: ASGIApp, max_body: int) -> None:
        self.app = app
        self.max_body = max_body

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        for name, value in scope.get("headers", []):
            if name.lower() == b"content-length":
                try:
                    declared = int(value)
                except ValueError:
                    raise Problem(
                        "bad-request", errors=[FieldError("/header/Content-Length", "type")]
                    ) from None
                if declared > self.max_body:
                    raise Problem("payload-too-large")
        received = 0

        async def counted() -> Message:
            nonlocal received
            message = await receive()
            received += len(message.get("body", b""))
            if received > self.max_body:
                raise Problem("payload-too-large")
            return message

        await self.app(scope, counted, send)


class OperationRecorder:
    """Copies the routed operation into the request context (right after routing, before security).

    The outer middleware cannot rely on reading connexion's routing extension from its own scope: under uvicorn
    the scope it holds is not always the dict the router annotates, while the context object is shared.
    """

    def __init__(self, app: ASGIApp, policies: Mapping[str, OperationPolicy]) -> None:
        self.app = app
        self.policies = policies

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        context = request_context.current()
        if scope["type"] == "http" and context is not None:
            operation_id = scope.get("extensions", {}).get("connexion_routing", {}).get("operation_id")
            policy = self.policies.get(operation_id) if operation_id else None
            if policy is not None:
                context.operation_id, context.route = policy.operation_id, policy.route
        await self.app(scope, receive, send)


class ObservabilityMiddleware:
    def __init__(self, app: ASGIApp, factory: AppState) -> None:
        self.app = app
        self.state = factory

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        strip_identity_headers(scope)
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}
        context = request_context.RequestContext(
            request_id=request_context.accept_request_id(headers.get("x-request-id")),
            method=scope["method"],
            language=i18n.negotiate(headers.get("accept-language")),
            received_at=self.state.clock.now() if self.state.clock is not None else None,
        )
        token = request_context.set_current(context)
        try:
            path = scope.get("path", "")
            if path in (HEALTH_PATH, READY_PATH, METRICS_PATH):
                await self.state.answer_probe(path, context, send)
                return
            await self._traced(scope, receive, send, headers, context)
        finally:
            request_context.reset(token)

    async def _traced(
        self, scope: Scope, receive: Receive, send: Send, headers: dict[str, str], context: Any
    ) -> None:
        started = time.perf_counter()
        parent = propagate.extract({k: v for k, v in headers.items() if k in ("traceparent", "tracestate")})
        span = telemetry.tracer().start_span(context.method, context=parent, kind=SpanKind.SERVER)
        span_context = span.get_span_context()
        if span_context.is_valid:
            context.trace_id = format(span_context.trace_id, "032x")
            context.span_id = format(span_context.span_id, "016x")
        status = 500
        status_sent = False

        async def send_with_id(message: Message) -> None:
            nonlocal status, status_sent
            if message["type"] == "http.response.start":
                status, status_sent = message["status"], True
                message["headers"] = [
                    *[(k, v) for k, v in message.get("headers", []) if k.lower() != b"x-request-id"],
                    (b"x-request-id", context.request_id.encode()),
                ]
            await send(message)

        try:
            with trace.use_span(span, end_on_exit=False):
                if "//" in scope.get("path", ""):
                    # An empty segment: the router would read "//host/..." as an authority and fail. No contract
                    # path has one, so it names nothing (the gateway refuses the same paths).
                    await send_problem(send_with_id, Problem("not-found"), context)
                else:
                    await self.app(scope, receive, send_with_id)
        except Exception as error:
            # The last resort for what escaped connexion's own handling: logged once with its stack, answered
            # as a 500 problem naming the request id, nothing of the error itself.
            logger.error(
                "unhandled exception",
                extra={
                    "fields": {"exc_type": type(error).__name__, "stack": safe_stack(error.__traceback__)}
                },
            )
            if status_sent:
                raise
            await send_problem(send_with_id, Problem("internal-error"), context)
        finally:
            self._finish(scope, context, span, status, time.perf_counter() - started)

    def _finish(self, scope: Scope, context: Any, span: Any, status: int, duration: float) -> None:
        span.update_name(f"{context.method} {context.route}" if context.route else context.method)
        span.set_attribute("http.request.method", context.method)
        span.set_attribute("http.response.status_code", status)
        if context.route:
            span.set_attribute("http.route", context.route)
            span.set_attribute("thb.operation_id", context.operation_id)
        span.set_attribute("thb.request_id", context.request_id)
        if status >= 500:
            span.set_status(Status(StatusCode.ERROR))
        span.end()
        method = context.method if context.method in _STANDARD_METHODS else "OTHER"
        label = context.operation_id or "unmatched"
        metrics.HTTP_REQUESTS.labels(self.state.service, label, method, str(status)).inc()
        metrics.HTTP_DURATION.labels(self.state.service, label).observe(duration)
        caller = context.caller
        fields: dict[str, Any] = {
            "method": method,
            "route": context.route,
            "operation_id": context.operation_id,
            "status": status,
            "duration_ms": round(duration * 1000, 2),
            "sub": getattr(caller, "sub", None),
            "azp": getattr(caller, "azp", None),
            "country": getattr(caller, "country", None),
        }
        if context.purpose:
            fields["purpose"] = context.purpose
        if "auth_error" in context.extra:
            fields["auth_error"] = context.extra["auth_error"]
        if "problem" in context.extra:
            fields["problem"] = context.extra["problem"]
        request_logger.info("request", extra={"fields": fields})
