"""Security from the contract: bearer tokens through TokenValidator, `x-roles` per operation, `X-Purpose`.

Contract rules, checked when the app is built (a service with a bad contract does not start):
- every operation has an operationId, is secured (no `security: []`), declares `x-roles` (a non-empty list of
  realm roles) and `x-personal-data` (boolean) — default deny, nothing is implied;
- an operation with `x-personal-data: true` declares the header parameter `X-Purpose` whose schema is an enum
  (the purpose vocabulary, a component of the contract) and does not grant `analyst` or `auditor`, who never
  read personal data.

At run time the bearer handler (called by connexion's SecurityMiddleware) turns the token into a `Caller`,
`AuthorizationMiddleware` (after security, before validation, so a caller without the role learns nothing about
the request shape) answers 403 unless the caller holds one of the operation's roles, and checks `X-Purpose`.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from connexion.security import BearerSecurityHandler
from starlette.types import ASGIApp, Receive, Scope, Send

from plumbing import request_context
from plumbing.config import platform_config
from plumbing.identity_headers import is_identity_header
from plumbing.problems import FieldError, Problem

NEVER_PERSONAL_DATA = frozenset({"analyst", "auditor"})
PURPOSE_HEADER = "X-Purpose"
ACTING_USER_HEADER = "X-Acting-User"
_METHODS = ("get", "put", "post", "delete", "patch", "head", "options", "trace")

_ACTING_USER = re.compile(r"^[A-Za-z0-9._@:-]{1,128}$")


class ContractError(ValueError):
    """The OpenAPI document breaks a platform rule; the service must not start."""


class Validator(Protocol):
    def validate(self, token: str) -> Any: ...


@dataclass(frozen=True)
class OperationPolicy:
    operation_id: str
    method: str
    route: str
    roles: frozenset[str]
    personal_data: bool
    purposes: frozenset[str] = frozenset()
    body_types: frozenset[str] = (
        frozenset()
    )  # media types of the requestBody; empty: the operation takes none
    body_required: bool = False


def strip_identity_headers(scope: Scope) -> None:
    """Identity must come from the verified token only: every header of plumbing.identity_headers (the list the
    gateway strips too) is removed before anything reads the request (the second line behind the gateway)."""
    scope["headers"] = [
        (name, value) for name, value in scope.get("headers", []) if not is_identity_header(name)
    ]


def read_policies(
    spec: Mapping[str, Any], known_roles: Iterable[str] | None = None
) -> dict[str, OperationPolicy]:
    """Policies by operationId from a resolved OpenAPI document; raises ContractError on any rule broken.

    `known_roles` (default: `roles` of the process's platform configuration, the realm's roles) are the names
    x-roles may use: a typo would silently deny everyone, so an unknown name refuses start-up instead."""
    known = frozenset(platform_config().roles if known_roles is None else known_roles)
    global_security = spec.get("security")
    policies: dict[str, OperationPolicy] = {}
    problems: list[str] = []
    for route, path_item in (spec.get("paths") or {}).items():
        shared_params = path_item.get("parameters", [])
        for method in _METHODS:
            operation = path_item.get(method)
            if operation is None:
                continue
            where = f"{method.upper()} {route}"
            operation_id = operation.get("operationId")
            if not operation_id:
                problems.append(f"{where}: no operationId")
                continue
            security = operation.get("security", global_security)
            if not security or any(not requirement for requirement in security):
                problems.append(f"{where}: not secured (every contract operation needs the bearer scheme)")
            roles = operation.get("x-roles")
            if not isinstance(roles, list) or not roles or not all(isinstance(r, str) for r in roles):
                problems.append(f"{where}: x-roles must be a non-empty list of role names (default deny)")
                continue
            unknown = set(roles) - known
            if unknown:
                problems.append(f"{where}: unknown roles in x-roles: {sorted(unknown)}")
            personal = operation.get("x-personal-data")
            if not isinstance(personal, bool):
                problems.append(f"{where}: x-personal-data must be declared true or false")
                continue
            purposes: frozenset[str] = frozenset()
            if personal:
                leaking = set(roles) & NEVER_PERSONAL_DATA
                if leaking:
                    problems.append(f"{where}: personal data must not be granted to {sorted(leaking)}")
                purposes = _purpose_enum(list(shared_params) + list(operation.get("parameters", [])))
                if not purposes:
                    problems.append(
                        f"{where}: x-personal-data: true needs a required header parameter {PURPOSE_HEADER} "
                        "whose schema is an enum of purposes"
                    )
            body = operation.get("requestBody") or {}
            policies[operation_id] = OperationPolicy(
                operation_id,
                method.upper(),
                route,
                frozenset(roles),
                personal,
                purposes,
                frozenset(str(media).lower() for media in (body.get("content") or {})),
                bool(body.get("required", False)),
            )
    if problems:
        raise ContractError("the contract breaks platform rules:\n  " + "\n  ".join(problems))
    return policies


def _purpose_enum(parameters: list[dict[str, Any]]) -> frozenset[str]:
    for parameter in parameters:
        if (
            parameter.get("in") == "header"
            and str(parameter.get("name", "")).lower() == PURPOSE_HEADER.lower()
        ):
            enum = (parameter.get("schema") or {}).get("enum")
            if parameter.get("required") and isinstance(enum, list) and enum:
                return frozenset(str(value) for value in enum)
    return frozenset()


def make_security_map(validator: Validator, auth_errors: tuple[type[BaseException], ...]) -> dict[str, type]:
    """A connexion security_map whose bearer handler uses our validator (any `x-bearerInfoFunc` is ignored)."""
    bearer_info = make_bearer_info(validator, auth_errors)

    class ContractBearerHandler(BearerSecurityHandler):
        def _resolve_func(self, security_scheme: Any) -> Callable[..., Any]:
            return bearer_info

    return {"bearer": ContractBearerHandler}


def make_bearer_info(
    validator: Validator, auth_errors: tuple[type[BaseException], ...]
) -> Callable[..., dict[str, Any]]:
    # Runs on the event loop: TokenValidator.validate is CPU-only (keys are refreshed by auth.py's own thread).
    def bearer_info(token: str, request: Any) -> dict[str, Any]:
        context = request_context.current()
        try:
            caller = validator.validate(token)
        except auth_errors as error:
            if context is not None:
                context.extra["auth_error"] = str(getattr(error, "code", type(error).__name__))
            raise Problem("unauthorized") from None
        acting_user = request.headers.get(ACTING_USER_HEADER)
        if acting_user is not None:
            if not _ACTING_USER.match(acting_user):
                raise Problem("bad-request", errors=[FieldError("/header/X-Acting-User", "pattern")])
            # Recorded for the access log only, and only for machine clients; never used for authorisation.
            if getattr(caller, "is_machine", False):
                caller = dataclasses.replace(caller, acting_user=acting_user)
        if context is not None:
            context.caller = caller
        return {"sub": caller.sub, "caller": caller}

    return bearer_info


def bearer_info(token: str) -> dict[str, Any]:
    """Named by contracts as `x-bearerInfoFunc`; the app factory replaces it with one bound to the validator."""
    raise RuntimeError("build the app with plumbing.app.create_app: it binds the token validator")


class AuthorizationMiddleware:
    """x-roles and X-Purpose enforcement, after connexion's routing and security, before validation."""

    def __init__(self, app: ASGIApp, policies: Mapping[str, OperationPolicy]) -> None:
        self.app = app
        self.policies = policies

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            operation_id = scope.get("extensions", {}).get("connexion_routing", {}).get("operation_id")
            policy = self.policies.get(operation_id) if operation_id else None
            if policy is not None:
                self.authorize(policy, scope)
                check_media_type(policy, scope)
        await self.app(scope, receive, send)

    @staticmethod
    def authorize(policy: OperationPolicy, scope: Scope) -> None:
        context = request_context.current()
        token_info = scope.get("extensions", {}).get("connexion_context", {}).get("token_info") or {}
        caller = token_info.get("caller") or (context.caller if context else None)
        if caller is None:
            raise Problem("unauthorized")
        if not (frozenset(caller.roles) & policy.roles):
            raise Problem("forbidden")
        if policy.personal_data:
            purpose = _header(scope, PURPOSE_HEADER.lower().encode())
            if purpose is None:
                raise Problem("validation-failed", errors=[FieldError("/header/X-Purpose", "required")])
            if purpose not in policy.purposes:
                raise Problem("validation-failed", errors=[FieldError("/header/X-Purpose", "enum")])
            if context is not None:
                context.purpose = purpose


def check_media_type(policy: OperationPolicy, scope: Scope) -> None:
    """415 unless a body sent to an operation that takes one is of a media type it declares (a body without a
    Content-Type would otherwise reach the handler unparsed). An optional body may be left out entirely."""
    if not policy.body_types:
        return
    content_type = _header(scope, b"content-type")
    if content_type is None:
        length = (_header(scope, b"content-length") or "0").strip()
        has_body = length not in ("", "0") or _header(scope, b"transfer-encoding") is not None
        if has_body or policy.body_required:
            raise Problem("unsupported-media-type")
        return
    if content_type.split(";", 1)[0].strip().lower() not in policy.body_types:
        raise Problem("unsupported-media-type")


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", []):
        if key.lower() == name:
            return value.decode("latin-1")
    return None
