"""The connexion app factory every service uses (CONVENTIONS.md "HTTP API", "Identity", "Readiness").

    app = create_app("identification", SPEC, settings=settings, validator=validator, access_log=access_log,
                     clock=SystemClock())

The ASGI stack, outermost first (connexion's own layers in brackets):

    [ServerError]            last resort: 500 problem, logged without the exception message
    ObservabilityMiddleware  identity headers stripped, request id, language, server span, one JSON log line,
                             metrics; answers /healthz, /readyz and /metrics itself (outside /v1, no auth)
    [Exception]              every exception -> problem+json (our catalogue; nothing the client sent is echoed)
    [SwaggerUI]              off unless asked for
    BodyLimitMiddleware      413 before anything reads an oversized body
    [Routing]                operationId of the contract
    [Security]               bearer token -> Caller (TokenValidator)
    AuthorizationMiddleware  x-roles (403) and X-Purpose (422) from the contract
    [RequestValidation]      our validators: 422 with errors [{pointer, code}], 400 malformed, 415
    [ResponseValidation]     on in tests
    IdempotencyMiddleware    Idempotency-Key on contract POSTs (after validation: bad input uses no key)
    [Context]                -> Flask handlers (connexion's thread pool)

Nothing here opens a connection: the Mongo client, the JWKS refresh thread and the span processors are made by
the lifespan (or gunicorn's post_fork hook) inside each worker process, after the fork.

FlaskApp rather than AsyncApp: handlers are plain synchronous code against pymongo/mongoengine, which is what
FlaskApp's thread pool is for; AsyncApp would run them on the event loop or need every adapter made async.
ENGINEERING.md measured FlaskApp at ~3x plain Flask CPU; at this platform's volumes that cost is acceptable
for the services (the gateway, which sees all traffic, chooses separately).
"""

from __future__ import annotations

import contextlib
import functools
import json
import logging
import os
import re
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterable, Iterator, Mapping, Sequence
from datetime import UTC, date, datetime, timedelta
from functools import partial
from pathlib import Path
from typing import IO, Any

import connexion
import flask
from connexion import NoContent
from connexion.datastructures import MediaTypeDict
from connexion.exceptions import ProblemException
from connexion.json_schema import Draft4RequestValidator
from connexion.lifecycle import ConnexionRequest, ConnexionResponse
from connexion.middleware import MiddlewarePosition
from connexion.middleware.server_error import ServerErrorMiddleware
from connexion.options import SwaggerUIOptions
from connexion.resolver import Resolver
from connexion.spec import Specification
from connexion.validators import VALIDATOR_MAP, JSONRequestBodyValidator, ParameterValidator
from connexion.validators.parameter import draft4_format_checker
from jsonschema import Draft4Validator, ValidationError, validators
from opentelemetry import propagate, trace
from opentelemetry.trace import SpanKind, Status, StatusCode
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from plumbing import health, i18n, json_input, metrics, request_context, telemetry
from plumbing.auth import AuthError
from plumbing.clock import Clock
from plumbing.errors import AccessLogUnavailable, Conflict, InvalidCursor, NotFound, OutOfScope
from plumbing.idempotency import (
    COLLECTION,
    Fingerprinter,
    IdempotencyMiddleware,
    IdempotencyStore,
    Sealer,
)
from plumbing.logging import REQUEST_LOGGER, configure_logging, safe_stack
from plumbing.problems import PROBLEM_JSON, FieldError, Problem, catalogue
from plumbing.security import (
    KNOWN_ROLES,
    AuthorizationMiddleware,
    ContractError,
    OperationPolicy,
    Validator,
    make_security_map,
    read_policies,
    strip_identity_headers,
)

DEFAULT_MAX_BODY = 1024 * 1024
HEALTH_PATH, READY_PATH, METRICS_PATH = "/healthz", "/readyz", "/metrics"
_STANDARD_METHODS = frozenset({"GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"})

logger = logging.getLogger(__name__)
request_logger = logging.getLogger(REQUEST_LOGGER)

# Callables run in each worker right after gunicorn forks (gunicorn_conf.post_fork). They only matter when the
# app is preloaded in the master; otherwise the app is built after the fork and the lifespan does the same work.
_after_fork_hooks: list[Callable[[], None]] = []


def run_after_fork_hooks() -> None:
    for hook in list(_after_fork_hooks):
        hook()


class MongoProvider:
    """One MongoClient per process, created on first use (so never in the gunicorn master)."""

    def __init__(self, uri: str | None, database: str, timeout_ms: int = 2000) -> None:
        self.uri = uri
        self.name = database
        self.timeout_ms = timeout_ms
        self._client: Any = None
        self._pid: int | None = None
        self._lock = threading.Lock()

    def __call__(self) -> Any:
        return self.database()

    def database(self) -> Any:
        with self._lock:
            if self._client is None or self._pid != os.getpid():
                if not self.uri:
                    raise RuntimeError("MONGODB_URI is not set")
                from pymongo import MongoClient

                self._client = MongoClient(
                    self.uri,
                    serverSelectionTimeoutMS=self.timeout_ms,
                    connectTimeoutMS=self.timeout_ms,
                    tz_aware=True,
                )
                self._pid = os.getpid()
            return self._client[self.name]

    def reset_after_fork(self) -> None:
        # The parent's client (sockets, monitor threads) is unusable in the child; drop it without closing.
        with self._lock:
            self._client, self._pid = None, None

    def close(self) -> None:
        with self._lock:
            if self._client is not None:
                self._client.close()
            self._client, self._pid = None, None


# ------------------------------------------------------------------------------------------------ validation


def _declared_pointer(prefix: str, error: ValidationError) -> str:
    """A JSON pointer built only from the contract: array indexes and property names the schema declares.

    A name that is not declared (an extra property, a map key) was typed by the client, so the pointer stops at
    its parent object instead of echoing it.
    """
    schema_path = list(error.absolute_schema_path)
    declared = {str(schema_path[i + 1]) for i, part in enumerate(schema_path[:-1]) if part == "properties"}
    parts = [prefix]
    for element in error.absolute_path:
        if isinstance(element, int):
            parts.append(str(element))
        elif element in declared:
            parts.append(str(element).replace("~", "~0").replace("/", "~1"))
        else:
            break
    return "/".join(parts)


def _schema_errors(prefix: str, validator: Any, instance: Any) -> list[FieldError]:
    errors: list[FieldError] = []
    for error in sorted(validator.iter_errors(instance), key=lambda e: [str(p) for p in e.absolute_path]):
        if error.validator == "required" and isinstance(error.instance, dict):
            base = _declared_pointer(prefix, error)
            for name in error.validator_value:
                if name not in error.instance:
                    errors.append(FieldError(f"{base}/{name}", "required"))
        else:
            errors.append(FieldError(_declared_pointer(prefix, error), str(error.validator)))
    return errors


EARLIEST_PLAUSIBLE_YEAR = 1900
CLOCK_SKEW = timedelta(days=1)


def _past_date(validator: Any, enabled: Any, instance: Any, schema: Any) -> Iterator[ValidationError]:
    """`x-past-date: true` on a (partial) date of the contract: something that has happened — a date of birth,
    a screening, a decision. Not before 1900 and not after today (a day of clock skew allowed); a partial date
    (YYYY, YYYY-MM) counts from its first day. Malformed values are left to `pattern`/`format`."""
    if not enabled or not isinstance(instance, str):
        return
    match = re.match(r"^([0-9]{4})(?:-([0-9]{2})(?:-([0-9]{2}))?)?", instance)
    if match is None:
        return
    try:
        earliest = date(int(match[1]), int(match[2] or 1), int(match[3] or 1))
    except ValueError:
        return
    context = request_context.current()
    now = context.received_at if context is not None and context.received_at else datetime.now(UTC)
    if earliest.year < EARLIEST_PLAUSIBLE_YEAR or earliest > (now + CLOCK_SKEW).date():
        yield ValidationError("date outside the plausible range", validator="date-range")


BodySchemaValidator = validators.extend(Draft4RequestValidator, {"x-past-date": _past_date})


class ProblemJSONBodyValidator(JSONRequestBodyValidator):
    """connexion's JSON body validator without its log line (it quotes the value) and with all errors listed."""

    async def _parse(self, stream: Any, scope: Scope) -> Any:
        raw = b"".join([message async for message in stream])
        if not raw:
            return None
        return json_input.parse_body(raw, self._encoding)

    def _validate(self, body: Any) -> dict | None:
        if not self._nullable and body is None:
            raise Problem("validation-failed", errors=[FieldError("/body", "required")])
        validator = BodySchemaValidator(self._schema, format_checker=Draft4Validator.FORMAT_CHECKER)
        errors = _schema_errors("/body", validator, body) or json_input.unsafe_text(body)
        if errors:
            raise Problem("validation-failed", errors=errors)
        return None


_IDEMPOTENCY_KEY_POINTER = "/header/Idempotency-Key"


class ProblemParameterValidator(ParameterValidator):
    """Parameters checked against the contract, every error reported as {pointer, code}, values never echoed."""

    def validate_request(self, request: Any) -> None:
        errors: list[FieldError] = []
        if self.strict_validation and self.validate_query_parameter_list(request, self.security_query_params):
            errors.append(FieldError("/query", "unknown-parameter"))
        sources = {
            "query": lambda p: request.query_params.get(p["name"]),
            "path": lambda p: request.path_params.get(p["name"].replace("-", "_")),
            "header": lambda p: request.headers.get(p["name"]),
            "cookie": lambda p: request.cookies.get(p["name"]),
        }
        for location, read in sources.items():
            for param in self.parameters.get(location, []):
                pointer = f"/{location}/{param['name']}"
                value = read(param)
                if value is None:
                    if param.get("required") and pointer == _IDEMPOTENCY_KEY_POINTER:
                        # Malformed rather than invalid: without it a retry could register a person twice.
                        raise Problem("idempotency-key-required", errors=[FieldError(pointer, "required")])
                    if param.get("required"):
                        errors.append(FieldError(pointer, "required"))
                    continue
                schema = param.get("schema", param)
                if schema.get("nullable") and value in ("null", "None"):
                    continue
                for error in Draft4Validator(schema, format_checker=draft4_format_checker).iter_errors(value):
                    errors.append(FieldError(pointer, str(error.validator)))
        if errors:
            raise Problem("validation-failed", errors=errors)


def _validator_map() -> dict[str, Any]:
    # MediaTypeDict matches wildcards such as */*json; a plain dict copy would silently match nothing.
    body = MediaTypeDict({**VALIDATOR_MAP["body"], "*/*json": ProblemJSONBodyValidator})
    return {"parameter": ProblemParameterValidator, "body": body}


# ---------------------------------------------------------------------------------------------- handlers


class JsonByDefaultResolver(Resolver):
    """Resolve operationIds as usual; handler results without a Content-Type are sent as application/json.

    Every operation documents its problem+json error responses, so connexion sees two content types and refuses
    to guess. Problems are rendered by the error handlers, never returned by handlers, so JSON is the answer.
    """

    def resolve_function_from_operation_id(self, operation_id: str) -> Callable[..., Any]:
        function = super().resolve_function_from_operation_id(operation_id)

        @functools.wraps(function)
        def json_by_default(*args: Any, **kwargs: Any) -> Any:
            result = function(*args, **kwargs)
            if isinstance(result, flask.Response):
                return result
            data, status, headers = _unpack(result)
            if data is None or data is NoContent:
                return result
            headers = dict(headers or {})
            if not any(name.lower() == "content-type" for name in headers):
                headers["Content-Type"] = "application/json"
            return data, status, headers

        return json_by_default


def _unpack(result: Any) -> tuple[Any, int | None, Any]:
    if not isinstance(result, tuple):
        return result, None, {}
    if len(result) == 1:
        return result[0], None, {}
    if len(result) == 2:
        data, second = result
        return (data, int(second), {}) if isinstance(second, int) else (data, None, second)
    data, status, headers = result
    return data, status, headers


# ---------------------------------------------------------------------------------------------- middlewares


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


# ------------------------------------------------------------------------------------------- error handling


async def send_problem(send: Send, problem: Problem, context: Any) -> None:
    """A problem answered by a middleware outside connexion's exception handling."""
    context.extra["problem"] = problem.slug
    status, headers, body = problem.render(context.language, context.request_id)
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", PROBLEM_JSON.encode()),
                *[(k.lower().encode(), v.encode()) for k, v in headers.items()],
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


def _problem_response(problem: Problem) -> ConnexionResponse:
    context = request_context.current()
    language = context.language if context else i18n.DEFAULT
    instance = context.request_id if context else None
    if context is not None:
        context.extra["problem"] = problem.slug
    status, headers, body = problem.render(language, instance)
    return ConnexionResponse(status_code=status, mimetype=PROBLEM_JSON, body=body, headers=headers)


def _problem_for_status(status: int, headers: Mapping[str, str] | None = None) -> Problem:
    kept = {k: v for k, v in (headers or {}).items() if k.lower() in ("allow", "retry-after")}
    return Problem(catalogue().slug_for_status(status), headers=kept)


async def handle_invalid_cursor(_request: ConnexionRequest, exc: Exception) -> ConnexionResponse:
    # A cursor matching the contract's pattern can still be one we never issued: opaque, so unreadable (400).
    return _problem_response(Problem("bad-request", errors=[FieldError("/query/cursor", "cursor")]))


async def handle_problem(_request: ConnexionRequest, exc: Exception) -> ConnexionResponse:
    assert isinstance(exc, Problem)
    return _problem_response(exc)


async def handle_connexion_problem(_request: ConnexionRequest, exc: Exception) -> ConnexionResponse:
    # connexion's title/detail can quote the request (a value, a content type): only the status is kept.
    assert isinstance(exc, ProblemException)
    return _problem_response(_problem_for_status(exc.status, exc.headers))


def make_http_exception_handler(
    allowed: Callable[[str], list[str]],
) -> Callable[[ConnexionRequest, Exception], Any]:
    async def handle_http_exception(request: ConnexionRequest, exc: Exception) -> ConnexionResponse:
        assert isinstance(exc, HTTPException)
        headers = dict(exc.headers or {})
        if exc.status_code == 405:
            # Starlette's router names only the methods of the first route it half-matched; Allow must list
            # every method the contract declares for the path.
            headers["Allow"] = ", ".join(allowed(request.url.path))
        return _problem_response(_problem_for_status(exc.status_code, headers))

    return handle_http_exception


def _plain(slug: str) -> Callable[[ConnexionRequest, Exception], Any]:
    async def handler(_request: ConnexionRequest, _exc: Exception) -> ConnexionResponse:
        return _problem_response(Problem(slug))

    return handler


async def handle_auth_error(_request: ConnexionRequest, exc: Exception) -> ConnexionResponse:
    status = getattr(exc, "status", 401)
    return _problem_response(Problem("service-unavailable" if status == 503 else "unauthorized"))


async def handle_unexpected(_request: ConnexionRequest, exc: Exception) -> ConnexionResponse:
    # Type and stack only: the message of an arbitrary exception may quote personal data.
    logger.error(
        "unhandled exception",
        extra={"fields": {"exc_type": type(exc).__name__, "stack": safe_stack(exc.__traceback__)}},
    )
    return _problem_response(Problem("internal-error"))


class _NoPosts:
    """The fingerprinter of a service without POST operations: never called."""

    def fingerprint(self, operation_id: str, body: bytes) -> str:
        raise RuntimeError("no POST operations")

    def matches(self, stored: str, operation_id: str, body: bytes) -> bool:
        raise RuntimeError("no POST operations")


# ---------------------------------------------------------------------------------------------------- state


class AppState:
    """What the middlewares, probes and lifespan share for one app."""

    def __init__(
        self,
        service: str,
        policies: Mapping[str, OperationPolicy],
        checks: Sequence[health.Check],
        jwks: Any,
        readiness_timeout: float,
        clock: Clock | None = None,
    ) -> None:
        self.clock = clock
        self.service = service
        self.policies = policies
        self.checks = list(checks)
        self.jwks = jwks
        self.readiness_timeout = readiness_timeout

    def update_gauges(self) -> None:
        if self.jwks is not None:
            age = self.jwks.age_seconds()
            if age is not None:
                metrics.JWKS_AGE.labels(self.service).set(age)

    async def answer_probe(self, path: str, context: Any, send: Send) -> None:
        status, content_type, body, extra = 200, "application/json", b'{"status":"ok"}', []
        if path == READY_PATH:
            ready, details = await run_in_threadpool(health.evaluate, self.checks, self.readiness_timeout)
            self.update_gauges()
            if ready:
                body = json.dumps({"status": "ready", "checks": details}).encode()
            else:
                problem = Problem("not-ready", extensions={"checks": details})
                status, headers, body = problem.render(context.language, context.request_id)
                content_type = PROBLEM_JSON
                extra = [(k.lower().encode(), v.encode()) for k, v in headers.items()]
        elif path == METRICS_PATH:
            body = await run_in_threadpool(metrics.exposition, self.update_gauges)
            content_type = metrics.CONTENT_TYPE
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [
                    (b"content-type", content_type.encode()),
                    (b"cache-control", b"no-store"),
                    (b"x-request-id", context.request_id.encode()),
                    *extra,
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})


def _allowed_methods(policies: Mapping[str, OperationPolicy]) -> Callable[[str], list[str]]:
    """Methods the contract declares for a concrete path (405 must carry Allow)."""
    patterns: dict[str, set[str]] = {}
    for policy in policies.values():
        patterns.setdefault(policy.route, set()).add(policy.method)
    compiled = [
        (re.compile("^" + re.sub(r"\\\{[^/]+?\\\}", "[^/]+", re.escape(route)) + "$"), methods)
        for route, methods in patterns.items()
    ]

    def allowed(path: str) -> list[str]:
        methods: set[str] = set()
        for pattern, declared in compiled:
            if pattern.match(path):
                methods |= declared
        if "GET" in methods:
            methods.add("HEAD")
        return sorted(methods)

    return allowed


def create_app(
    service: str,
    spec_path: str | Path,
    *,
    settings: Any,
    validator: Validator,
    access_log: Any = None,
    clock: Clock,
    readiness_checks: Sequence[health.Check] = (),
    jwks: Any = None,
    database: Callable[[], Any] | None = None,
    max_body_bytes: int = DEFAULT_MAX_BODY,
    known_roles: Iterable[str] = KNOWN_ROLES,
    validate_responses: bool = False,
    swagger_ui: bool = False,
    idempotency_ttl_hours: int = 24,
    response_sealer: Sealer | None = None,
    request_fingerprinter: Fingerprinter | None = None,
    on_startup: Sequence[Callable[[], None]] = (),
    on_shutdown: Sequence[Callable[[], None]] = (),
    log_stream: IO[str] | None = None,
    tracing_exporter: Any = None,
    import_name: str | None = None,
) -> connexion.FlaskApp:
    """Build the service's connexion app from its contract; raises ContractError when the contract breaks a rule.

    `settings` is a plumbing.config.Settings (mongodb_uri, mongodb_db, log_level are read). `access_log` is kept on
    the app (`app.access_log`) for handlers; the factory maps its AccessLogUnavailable to 503. `jwks` (default:
    `validator.jwks`) is started in the lifespan and feeds the readiness check and the JWKS age gauge.
    """
    specification = Specification.load(str(spec_path))
    policies = read_policies(specification.spec, known_roles)

    configure_logging(service, getattr(settings, "log_level", "INFO"), stream=log_stream)
    if database is None:
        database = MongoProvider(
            getattr(settings, "mongodb_uri", None), getattr(settings, "mongodb_db", service)
        )
    jwks = jwks if jwks is not None else getattr(validator, "jwks", None)
    checks = [health.mongo_check(database)]
    if jwks is not None:
        checks.append(health.keys_check(jwks))
    checks.extend(readiness_checks)
    state = AppState(service, policies, checks, jwks, readiness_timeout=2.0, clock=clock)
    personal_posts = sorted(op for op, p in policies.items() if p.method == "POST" and p.personal_data)
    if personal_posts and response_sealer is None:
        # Replayable responses are stored: where they can hold personal data they must be encrypted at rest.
        raise ContractError(
            f"{service}: POST operations return personal data ({', '.join(personal_posts)}) "
            "but no response_sealer was given for the Idempotency-Key store"
        )
    posts = {op_id: policy for op_id, policy in policies.items() if policy.method == "POST"}
    if posts and request_fingerprinter is None:
        # Request bodies (names, dates of birth) are fingerprinted for Idempotency-Key: only with a secret key.
        raise ContractError(
            f"{service}: POST operations ({', '.join(sorted(posts))}) need a request_fingerprinter "
            "(plumbing.crypto.RequestFingerprinter) for the Idempotency-Key store"
        )
    store = IdempotencyStore(
        lambda: database()[COLLECTION],
        clock,
        ttl=timedelta(hours=idempotency_ttl_hours),
        sealer=response_sealer,
        fingerprinter=request_fingerprinter or _NoPosts(),
    )

    def after_fork() -> None:
        if isinstance(database, MongoProvider):
            database.reset_after_fork()
        telemetry.setup_tracing(service, tracing_exporter)

    _after_fork_hooks.append(after_fork)

    @contextlib.asynccontextmanager
    async def lifespan(_app: Any) -> AsyncIterator[None]:
        telemetry.setup_tracing(service, tracing_exporter)
        if jwks is not None and hasattr(jwks, "start"):
            await run_in_threadpool(jwks.start)
        try:
            await run_in_threadpool(store.ensure_indexes)
        except Exception as error:  # noqa: BLE001 - the database may be down at start; /readyz says so
            logger.warning(
                "idempotency index not ensured", extra={"fields": {"exc_type": type(error).__name__}}
            )
        for hook in on_startup:
            await run_in_threadpool(hook)
        try:
            yield
        finally:
            for hook in on_shutdown:
                await run_in_threadpool(hook)
            if jwks is not None and hasattr(jwks, "stop"):
                await run_in_threadpool(jwks.stop)
            if isinstance(database, MongoProvider):
                database.close()
            await run_in_threadpool(telemetry.flush)

    middlewares = [
        partial(ServerErrorMiddleware, handler=handle_unexpected) if m is ServerErrorMiddleware else m
        for m in connexion.ConnexionMiddleware.default_middlewares
    ]
    app = connexion.FlaskApp(
        import_name or f"thb_{service}",
        lifespan=lifespan,
        middlewares=middlewares,
        validator_map=_validator_map(),
        security_map=make_security_map(validator, (AuthError,)),
        strict_validation=True,
        resolver=JsonByDefaultResolver(),
        validate_responses=validate_responses,
        swagger_ui_options=SwaggerUIOptions(swagger_ui=swagger_ui, serve_spec=swagger_ui),
    )
    app.add_middleware(ObservabilityMiddleware, position=MiddlewarePosition.BEFORE_EXCEPTION, factory=state)
    app.add_middleware(
        BodyLimitMiddleware, position=MiddlewarePosition.BEFORE_ROUTING, max_body=max_body_bytes
    )
    app.add_middleware(OperationRecorder, position=MiddlewarePosition.BEFORE_SECURITY, policies=policies)
    app.add_middleware(
        AuthorizationMiddleware, position=MiddlewarePosition.BEFORE_VALIDATION, policies=policies
    )
    app.add_middleware(
        IdempotencyMiddleware,
        position=MiddlewarePosition.BEFORE_CONTEXT,
        store=store,
        post_operations=posts,
        service=service,
        access_log=access_log,
    )
    app.add_error_handler(Problem, handle_problem)
    app.add_error_handler(ProblemException, handle_connexion_problem)
    app.add_error_handler(HTTPException, make_http_exception_handler(_allowed_methods(policies)))
    app.add_error_handler(NotFound, _plain("not-found"))
    app.add_error_handler(Conflict, _plain("conflict"))
    app.add_error_handler(OutOfScope, _plain("forbidden"))
    app.add_error_handler(InvalidCursor, handle_invalid_cursor)
    app.add_error_handler(AuthError, handle_auth_error)

    # The failure is counted (access_log_write_failures_total) by plumbing.access_log where the write fails.
    app.add_error_handler(AccessLogUnavailable, _plain("access-log-unavailable"))
    app.add_error_handler(Exception, handle_unexpected)
    app.add_api(Path(spec_path), validate_responses=validate_responses)

    # Handlers reach these through `flask.current_app` is not needed: they are on the connexion app object.
    app.service = service
    app.settings = settings
    app.access_log = access_log
    app.clock = clock
    app.database = database
    app.policies = policies
    app.app.extensions["plumbing"] = {
        "service": service,
        "access_log": access_log,
        "clock": clock,
        "database": database,
        "settings": settings,
    }
    return app
