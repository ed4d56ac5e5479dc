"""Exceptions to RFC 9457 problems: what connexion's exception middleware calls, and `send_problem` for the
middlewares outside it. Nothing an exception says is copied into an answer (it may quote what was sent)."""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Mapping
from typing import Any

from connexion.exceptions import ProblemException
from connexion.lifecycle import ConnexionRequest, ConnexionResponse
from starlette.exceptions import HTTPException
from starlette.types import Send

from plumbing import i18n, request_context
from plumbing.errors import RuleViolation, is_database_unavailability
from plumbing.logging import safe_stack
from plumbing.problems import PROBLEM_JSON, FieldError, Problem, catalogue
from plumbing.security import (
    OperationPolicy,
)

logger = logging.getLogger("plumbing.app")  # the name the unhandled-exception lines always had


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


async def handle_rule_violation(_request: ConnexionRequest, exc: Exception) -> ConnexionResponse:
    # A domain rule broken (a service's DomainError): 422 with every {pointer, code}; the message, which is for
    # developers, and the values sent are never echoed.
    assert isinstance(exc, RuleViolation)
    errors = [FieldError("/body" + detail.pointer, detail.code) for detail in exc.details]
    return _problem_response(Problem("validation-failed", errors=errors))


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


_CODE = re.compile(r"^[a-z][a-z0-9_]*$")


def plain_problem(slug: str) -> Callable[[ConnexionRequest, Exception], Any]:
    """A problem of type `slug`; an exception carrying a stable `code` (a domain's 409 or 403: `no_free_place`,
    `not_the_referrer`) names it in `errors` with the pointer `/body`, so a client can tell one refusal from
    another. Only a code-shaped value is used: an exception's message never reaches the client."""

    async def handler(_request: ConnexionRequest, exc: Exception) -> ConnexionResponse:
        code = getattr(exc, "code", None)
        if isinstance(code, str) and _CODE.match(code):
            return _problem_response(Problem(slug, errors=[FieldError("/body", code)]))
        return _problem_response(Problem(slug))

    return handler


async def handle_auth_error(_request: ConnexionRequest, exc: Exception) -> ConnexionResponse:
    status = getattr(exc, "status", 401)
    return _problem_response(Problem("service-unavailable" if status == 503 else "unauthorized"))


async def handle_database_error(request: ConnexionRequest, exc: Exception) -> ConnexionResponse:
    """The database unreachable (no server within the selection timeout), the connection lost, or the request's
    database budget spent (a hung server: plumbing.mongo.request_budget): 503 with Retry-After, so a client
    retries (with its Idempotency-Key, a write that did land is answered from the store) instead of reading a 500
    as a defect. Any other database error is unexpected (500)."""
    if not is_database_unavailability(exc):
        return await handle_unexpected(request, exc)
    logger.warning("database unavailable", extra={"fields": {"exc_type": type(exc).__name__}})
    return _problem_response(Problem("service-unavailable"))


async def handle_unexpected(_request: ConnexionRequest, exc: Exception) -> ConnexionResponse:
    # Type and stack only: the message of an arbitrary exception may quote personal data.
    logger.error(
        "unhandled exception",
        extra={"fields": {"exc_type": type(exc).__name__, "stack": safe_stack(exc.__traceback__)}},
    )
    return _problem_response(Problem("internal-error"))


def allowed_methods(policies: Mapping[str, OperationPolicy]) -> Callable[[str], list[str]]:
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
