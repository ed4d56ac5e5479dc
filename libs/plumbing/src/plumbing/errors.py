"""Exceptions the plumbing raises and the app factory maps to problems.

They carry no personal data in their messages: messages may reach logs and problem `detail`.

The coded errors (`CodedViolation` and `raise_all`, `CodedConflict`, `CodedForbidden`) are what every service's
`domain/errors.py` builds on: a refusal named by a stable public `code` (and, for a broken rule, a JSON pointer)
that a client can act on. They are written once here because the app factory (plumbing.app) maps them the same way
for every service; a service subclasses them only to give its errors their own class.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from pymongo.errors import ConnectionFailure, ExecutionTimeout, PyMongoError, WTimeoutError

from plumbing.problems import FieldError, Problem

# The database unreachable, the connection lost, or no answer in time: nothing wrong with the request or the
# event, only with the moment (`is_database_unavailability`). An API answers 503 with Retry-After; a consumer waits
# and tries the same record again, however long the outage, instead of dead-lettering it.
DATABASE_UNAVAILABLE: tuple[type[Exception], ...] = (ConnectionFailure, ExecutionTimeout, WTimeoutError)


def is_database_unavailability(exc: BaseException) -> bool:
    """A database error that is the moment's: no server, a lost connection, or a timeout (a budget spent,
    plumbing.mongo.request_budget, which pymongo reports as a timeout of whichever operation it ended)."""
    return isinstance(exc, DATABASE_UNAVAILABLE) or (
        isinstance(exc, PyMongoError) and bool(getattr(exc, "timeout", False))
    )


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


class CodedViolation(RuleViolation):
    """A `RuleViolation` named by a stable `code` (-> 422 `validation-failed` like any RuleViolation, one {pointer,
    code} per detail). Without `details` the error is the one violation (`code`, `pointer`); with them it reports
    every broken rule at once, so that a client fixes a form in one round trip, and `code`/`pointer` are those of
    the first. A service's `DomainError` subclasses it. `message` is for developers and never carries submitted
    values."""

    def __init__(
        self, code: str, message: str, *, pointer: str = "", details: Iterable[Violation] = ()
    ) -> None:
        super().__init__(message, tuple(details) or (Violation(code, pointer),))
        self.code = code
        self.pointer = pointer
        self.message = message

    @property
    def codes(self) -> set[tuple[str, str]]:
        """(code, pointer) pairs: what tests and clients compare."""
        return {(d.code, d.pointer) for d in self.details}

    def __repr__(self) -> str:
        return f"{type(self).__name__}({sorted(self.codes)!r})"

    @classmethod
    def raise_all(cls, details: Sequence[Violation], message: str) -> None:
        """Raise one error of this class carrying every collected violation, or do nothing when there is none.
        A subclass with another constructor overrides it."""
        if details:
            first = details[0]
            raise cls(first.code, message, pointer=first.pointer, details=details)


# Raises a plain CodedViolation. A service binds its own class instead: `raise_all = DomainError.raise_all`.
raise_all = CodedViolation.raise_all


class CodedConflict(Conflict):
    """A `Conflict` named by a stable `code` (-> 409 `conflict`, `errors` naming the code under `/body`): the
    action is not allowed in the record's current state, or its facts refuse it (`no_free_place`). A service's
    `InvalidTransition` subclasses it. The message, by default the code, is for developers only."""

    def __init__(self, code: str, message: str | None = None) -> None:
        super().__init__(message or code)
        self.code = code


class CodedForbidden(OutOfScope):
    """An `OutOfScope` named by a stable `code` (-> 403 `forbidden`, `errors` naming the code under `/body`): the
    caller sees the record, but this action belongs to another party or role (`not_the_referrer`). A service's
    `NotPermitted` subclasses it; unlike plumbing's `NotPermitted` (a refused call on behalf of the user) it is
    caught by `except OutOfScope`. The message, by default the code, is for developers only."""

    def __init__(self, code: str, message: str | None = None) -> None:
        super().__init__(message or code)
        self.code = code


def is_unavailability(exc: BaseException) -> bool:
    """True for a failure that is the moment's, not the input's: the database (is_database_unavailability) or a
    server a call depends on (DependencyUnavailable) not answering. Worth waiting for; never a dead letter."""
    return is_database_unavailability(exc) or isinstance(exc, DependencyUnavailable)
