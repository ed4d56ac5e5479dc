"""Exceptions the plumbing raises and the app factory maps to problems.

They carry no personal data in their messages: messages may reach logs and problem `detail`.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from plumbing.problems import FieldError, Problem


class PlumbingError(Exception):
    """Base class for errors raised by the shared plumbing."""


class NotFound(PlumbingError):
    """The record does not exist *or* is outside the caller's scope (-> 404; never reveals which)."""


class Conflict(PlumbingError):
    """Optimistic-concurrency conflict or an operation invalid in the record's current state (-> 409)."""


class StaleVersion(PlumbingError):
    """The record changed since the version the caller names in `If-Match` (-> 412 `precondition-failed`): read it
    again, look at what changed, and send the change again with the new version."""


class OutOfScope(PlumbingError):
    """The caller has no scope at all for this kind of record and tried to create one (-> 403)."""


class NotPermitted(PlumbingError):
    """The caller may not do this, for a reason named by a stable `code` (-> 403 `forbidden`, `errors` naming the
    code). Raised, for example, when Keycloak refuses to exchange the caller's token for another service's
    audience, or when that service answers 403 (plumbing.on_behalf). The message is for developers only."""

    def __init__(self, code: str, message: str | None = None) -> None:
        super().__init__(message or code)
        self.code = code


class DependencyUnavailable(PlumbingError):
    """A server this request needs (Keycloak, another service's API) is unreachable, timed out or failed
    (-> 503 `service-unavailable` with `Retry-After`). `dependency` names it for logs and metrics, never for the
    client."""

    def __init__(self, dependency: str, message: str | None = None) -> None:
        super().__init__(message or f"{dependency} unavailable")
        self.dependency = dependency


class ConfigError(PlumbingError):
    """Invalid or missing configuration: the process must refuse to start."""


class KeyConfigurationError(ConfigError):
    """Missing, malformed or insecure key material: the process must refuse to start."""


class DecryptionError(PlumbingError):
    """A ciphertext could not be authenticated/decrypted (wrong key, wrong record/field, tampering)."""


class AccessLogUnavailable(PlumbingError):
    """The access log entry could not be written durably (-> 503; no personal data may be sent)."""


class InvalidCursor(Problem, PlumbingError, ValueError):
    """A pagination cursor that this service did not issue or that was altered: 400 `bad-request` naming
    `/query/cursor` (plumbing.pagination raises it; the cursor itself is never echoed)."""

    def __init__(self) -> None:
        super().__init__("bad-request", errors=[FieldError("/query/cursor", "cursor")])


@dataclass(frozen=True)
class Violation:
    """One broken rule: a stable `code` and where, as a JSON pointer into the request body ("" = the body)."""

    code: str
    pointer: str = ""


class RuleViolation(PlumbingError):
    """Input breaks a rule of a service's domain (-> 422 `validation-failed`, every violation as {pointer,
    code} with the pointer under `/body`). A service's domain errors subclass it, so no handler needs a decorator:
    the app factory maps it (plumbing.error_handlers.handle_rule_violation). The message is for developers only
    and never reaches an answer; codes and pointers are public contract."""

    def __init__(self, message: str, details: Iterable[Violation]) -> None:
        super().__init__(message)
        self.details: tuple[Violation, ...] = tuple(details)
