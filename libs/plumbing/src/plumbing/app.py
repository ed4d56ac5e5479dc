"""The connexion app factory every service uses (docs/conventions.md "HTTP API", "Identity", "Readiness").

    app = create_app("identification", SPEC, settings=settings, validator=validator, access_log=access_log,
                     clock=SystemClock())

The ASGI stack, outermost first (connexion's own layers in brackets):

    [ServerError]            never reached: ObservabilityMiddleware answers what escapes connexion
    ObservabilityMiddleware  identity headers stripped, request id, language, server span, one JSON log line,
                             metrics, last resort (500 problem with the request id, logged once with its
                             stack); answers /healthz, /readyz and /metrics itself (outside /v1, no auth)
    [Exception]              every exception -> problem+json (our catalogue; nothing the client sent is echoed)
    [SwaggerUI]              off unless asked for
    BodyLimitMiddleware      413 before anything reads an oversized body
    [Routing]                operationId of the contract
    [Security]               bearer token -> Caller (TokenValidator)
    AuthorizationMiddleware  x-roles (403), X-Purpose (422) and the body's media type (415) from the contract
    [RequestValidation]      our validators: 422 with errors [{pointer, code}], 400 malformed, 415
    [ResponseValidation]     on in tests
    IdempotencyMiddleware    Idempotency-Key on contract POSTs (after validation: bad input uses no key)
    [Context]                -> Flask handlers (connexion's thread pool)

The parts live by job: plumbing.middleware (the platform's middlewares), plumbing.validation (request
validation), plumbing.error_handlers (exceptions -> problems), plumbing.probes (/healthz, /readyz, /metrics),
plumbing.resolver (handlers), plumbing.mongo (the connection). This module only assembles them.

Nothing here opens a connection: the Mongo client, the JWKS refresh thread and the span processors are made by
the lifespan (or gunicorn's post_fork hook) inside each worker process, after the fork.

FlaskApp rather than AsyncApp: handlers are plain synchronous code against pymongo/mongoengine, which is what
FlaskApp's thread pool is for; AsyncApp would run them on the event loop or need every adapter made async.
docs/engineering.md measured FlaskApp at ~3x plain Flask CPU; at this platform's volumes that cost is acceptable
for the services (the gateway, which sees all traffic, chooses separately).
"""

from __future__ import annotations

import contextlib
import copy
import logging
from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from datetime import timedelta
from functools import partial
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, Generic, TypeVar

import connexion
import flask
from connexion.exceptions import ProblemException
from connexion.middleware import MiddlewarePosition
from connexion.middleware.server_error import ServerErrorMiddleware
from connexion.options import SwaggerUIOptions
from connexion.spec import Specification
from pymongo.errors import PyMongoError
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException

from plumbing import health, mongo, telemetry
from plumbing.auth import AuthError
from plumbing.clock import Clock
from plumbing.config import PlatformConfig, platform_config
from plumbing.crypto import RequestFingerprinter, ResponseSealer
from plumbing.error_handlers import (
    allowed_methods,
    handle_auth_error,
    handle_connexion_problem,
    handle_database_error,
    handle_problem,
    handle_rule_violation,
    handle_unexpected,
    make_http_exception_handler,
    plain_problem,
)
from plumbing.errors import (
    AccessLogUnavailable,
    Conflict,
    DependencyUnavailable,
    NotFound,
    NotPermitted,
    OutOfScope,
    RuleViolation,
    StaleVersion,
)
from plumbing.idempotency import (
    COLLECTION,
    Fingerprinter,
    IdempotencyMiddleware,
    IdempotencyStore,
    Sealer,
)
from plumbing.logging import configure_logging
from plumbing.middleware import BodyLimitMiddleware, ObservabilityMiddleware, OperationRecorder
from plumbing.mongo import MongoProvider
from plumbing.openapi_bundle import load_bundled
from plumbing.probes import AppState
from plumbing.problems import Problem
from plumbing.resolver import JsonByDefaultResolver
from plumbing.security import (
    AuthorizationMiddleware,
    ContractError,
    Validator,
    make_security_map,
    read_policies,
)
from plumbing.service_auth import service_validator
from plumbing.validation import validator_map

if TYPE_CHECKING:
    from plumbing.startup import Startup

DEFAULT_MAX_BODY = 1024 * 1024

logger = logging.getLogger(__name__)

# Callables run in each worker right after gunicorn forks (gunicorn_conf.post_fork). They only matter when the
# app is preloaded in the master; otherwise the app is built after the fork and the lifespan does the same work.
_after_fork_hooks: list[Callable[[], None]] = []


def run_after_fork_hooks() -> None:
    for hook in list(_after_fork_hooks):
        hook()


class _NoPosts:
    """The fingerprinter of a service without POST operations: never called."""

    def fingerprint(self, operation_id: str, body: bytes) -> str:
        raise RuntimeError("no POST operations")

    def matches(self, stored: str, operation_id: str, body: bytes) -> bool:
        raise RuntimeError("no POST operations")


# Response headers the contracts declare on every answer but that ObservabilityMiddleware adds, outside connexion's
# response validation: that validator would count them missing.
_HEADERS_ADDED_OUTSIDE = frozenset({"x-request-id"})


def _for_connexion(contract: dict[str, Any]) -> dict[str, Any]:
    """The contract as connexion validates against it: headers added outside its layers are not required there."""
    components: dict[str, Any] = contract.get("components") or {}
    headers: dict[str, Any] = components.get("headers") or {}
    responses: list[Any] = list((components.get("responses") or {}).values())
    for item in (contract.get("paths") or {}).values():
        for operation in item.values():
            if isinstance(operation, dict):
                responses += list((operation.get("responses") or {}).values())
    for response in responses:
        declared = response.get("headers") if isinstance(response, dict) else None
        if not isinstance(declared, dict):
            continue
        for name, header in list(declared.items()):
            if name.lower() in _HEADERS_ADDED_OUTSIDE:
                ref = str(header.get("$ref", ""))
                target = (headers.get(ref.rsplit("/", 1)[-1]) if ref else None) or header
                declared[name] = {**dict(target), "required": False}
    return contract


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
    config: PlatformConfig | None = None,
    max_body_bytes: int = DEFAULT_MAX_BODY,
    known_roles: Iterable[str] | None = None,
    validate_responses: bool = False,
    swagger_ui: bool = False,
    idempotency_ttl: timedelta | None = None,
    response_sealer: Sealer | None = None,
    request_fingerprinter: Fingerprinter | None = None,
    on_startup: Sequence[Callable[[], None]] = (),
    on_shutdown: Sequence[Callable[[], None]] = (),
    log_stream: IO[str] | None = None,
    tracing_exporter: Any = None,
    import_name: str | None = None,
) -> connexion.FlaskApp:
    """Build the service's connexion app from its contract; raises ContractError when the contract breaks a rule.

    `settings` is a plumbing.config.Settings (mongodb_uri, mongodb_db, config_path, log_level are read).
    `config` (default: the platform configuration at `settings.config_path`) gives the role catalogue x-roles
    are checked against, unless `known_roles` names them. `database` (default: the service's own database,
    plumbing.mongo.MongoProvider) is a callable returning a pymongo Database. `access_log` is kept on the app
    (`app.access_log`) for handlers; the factory maps its AccessLogUnavailable to 503. `jwks` (default:
    `validator.jwks`) is started in the lifespan and feeds the readiness check and the JWKS age gauge.
    A service's domain errors that subclass plumbing.errors.RuleViolation are answered 422 with their pointers.
    """
    # Bundled: references into the shared components (openapi/common.yaml) made local, the same document the
    # gateway and the tools read (plumbing.openapi_bundle); connexion gets it as a dict.
    contract = _for_connexion(load_bundled(spec_path))
    specification = Specification.load(copy.deepcopy(contract))
    config = config or platform_config(getattr(settings, "config_path", None))
    if known_roles is None:
        known_roles = config.roles
    if (
        idempotency_ttl is None
    ):  # how long a stored response may be replayed: the retention of `idempotency-key`
        idempotency_ttl = config.retention_for("idempotency-key").fixed_length()
    policies = read_policies(specification.spec, known_roles)

    configure_logging(service, getattr(settings, "log_level", "INFO"), stream=log_stream)
    if database is None:
        database = MongoProvider.for_settings(settings)
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
        ttl=idempotency_ttl,
        sealer=response_sealer,
        fingerprinter=request_fingerprinter or _NoPosts(),
    )

    def after_fork() -> None:
        # The Mongo registration of a parent is replaced on first use in the child (plumbing.mongo).
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
        validator_map=validator_map(),
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
    app.add_error_handler(HTTPException, make_http_exception_handler(allowed_methods(policies)))
    app.add_error_handler(NotFound, plain_problem("not-found"))
    app.add_error_handler(Conflict, plain_problem("conflict"))
    app.add_error_handler(StaleVersion, plain_problem("precondition-failed"))
    app.add_error_handler(OutOfScope, plain_problem("forbidden"))
    # Calls on behalf of the user (plumbing.on_behalf): refused by Keycloak or the other service -> 403 with its
    # code; Keycloak or the other service down or too slow -> 503 with Retry-After.
    app.add_error_handler(NotPermitted, plain_problem("forbidden"))
    app.add_error_handler(DependencyUnavailable, plain_problem("service-unavailable"))
    # A domain rule broken (a service's DomainError subclasses RuleViolation): 422 with every {pointer, code}.
    app.add_error_handler(RuleViolation, handle_rule_violation)
    app.add_error_handler(AuthError, handle_auth_error)

    # The failure is counted (access_log_write_failures_total) by plumbing.access_log where the write fails.
    app.add_error_handler(AccessLogUnavailable, plain_problem("access-log-unavailable"))
    # The database unreachable, hung or too slow (plumbing.mongo's timeouts and request budget) -> 503 with
    # Retry-After; any other database error stays a 500.
    app.add_error_handler(PyMongoError, handle_database_error)
    app.add_error_handler(Exception, handle_unexpected)
    app.add_api(copy.deepcopy(contract), validate_responses=validate_responses)

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


def create_service_app(spec_path: str | Path, startup: Startup, **options: Any) -> connexion.FlaskApp:
    """The app of a service over what its process read at start (plumbing.startup): the token validator of
    `<service>-api` (its allowed clients and partner countries, from the same environment), the service's own
    database, its access log and clock, and the Idempotency-Key store's response sealer and request fingerprinter
    over its keys; `options` go to create_app (validate_responses, ...)."""
    validator, jwks = service_validator(startup.settings, startup.config, startup.environ)
    return create_app(
        startup.service,
        spec_path,
        settings=startup.settings,
        validator=validator,
        jwks=jwks,
        config=startup.config,
        clock=startup.clock,
        access_log=startup.access_log,
        database=mongo.get_database,
        response_sealer=ResponseSealer(startup.keys),
        request_fingerprinter=RequestFingerprinter(startup.keys, startup.service),
        **options,
    )


def app_on_first_access(build: Callable[[], Any]) -> Callable[[str], Any]:
    """A module `__getattr__` for an entry point (`__getattr__ = app_on_first_access(...)`): its `app` is built on
    first access, i.e. inside the gunicorn worker, so importing the module has no side effects."""
    built: list[Any] = []

    def module_getattr(name: str) -> Any:
        if name != "app":
            raise AttributeError(name)
        if not built:
            built.append(build())
        return built[0]

    return module_getattr


R = TypeVar("R")


class AppRuntime(Generic[R]):
    """What an entry point's app was built over (its service's Runtime): its `create_http_app` sets `runtime`, a
    test sets its own, its handlers `get` it. Reading it before the app was built is a programming error, not a
    request's: RuntimeError."""

    def __init__(self, service: str) -> None:
        self.service = service
        self.runtime: R | None = None

    def get(self) -> R:
        if self.runtime is None:
            raise RuntimeError(f"the {self.service} app was not built")
        return self.runtime


def current_database() -> Any:
    """Inside a handler: the pymongo Database of the app (create_app's `database`)."""
    return flask.current_app.extensions["plumbing"]["database"]()
