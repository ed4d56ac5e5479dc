"""Domain errors with stable codes, mapped to problem+json by the app factory (plumbing.app):

- `DomainError` is a `plumbing.errors.RuleViolation` -> 422 `validation-failed`, one {pointer, code} per broken
  rule (pointers into the request body, under `/body`);
- `InvalidTransition` is a `plumbing.errors.Conflict` -> 409 `conflict`: the action is not allowed in the
  referral's current state (`referral_not_requested`, `no_free_place`, ...);
- `NotPermitted` is a `plumbing.errors.OutOfScope` -> 403 `forbidden`: the caller sees the record but the action
  belongs to the other side (a provider cannot revoke, a referrer cannot accept);
- `plumbing.errors.NotFound` (404) is raised, never a 403, when the record is outside the caller's scope.

`code` and `pointer` are public contract; messages are for developers and never carry submitted values.
"""

from __future__ import annotations

from typing import TypeAlias

from plumbing.errors import ConfigError, Conflict, OutOfScope, RuleViolation, Violation

# One broken rule: a stable code and a JSON pointer into the request body ("" = the body as a whole).
ErrorDetail: TypeAlias = Violation


class DomainError(RuleViolation):
    def __init__(
        self, code: str, message: str, *, pointer: str = "", details: tuple[ErrorDetail, ...] = ()
    ) -> None:
        # Several problems can be reported at once so that a client fixes a form in one round trip.
        super().__init__(message, details or (ErrorDetail(code, pointer),))
        self.code = code
        self.pointer = pointer

    @property
    def codes(self) -> set[tuple[str, str]]:
        """(code, pointer) pairs: what tests and clients compare."""
        return {(d.code, d.pointer) for d in self.details}

    def __repr__(self) -> str:
        return f"DomainError({sorted(self.codes)!r})"


def raise_all(details: list[ErrorDetail], message: str) -> None:
    """Raise one error carrying every detail, or do nothing when the list is empty."""
    if details:
        first = details[0]
        raise DomainError(first.code, message, pointer=first.pointer, details=tuple(details))


class InvalidTransition(Conflict):
    """The action is not allowed in the current state (-> 409). `code` is stable, e.g. `referral_not_requested`."""

    def __init__(self, code: str) -> None:
        super().__init__(code)
        self.code = code


class NotPermitted(OutOfScope):
    """The caller may see the record, but this action belongs to another party (-> 403). `code` is stable."""

    def __init__(self, code: str) -> None:
        super().__init__(code)
        self.code = code


class CatalogueError(ConfigError):
    """The referral catalogue breaks its schema or a cross-check: the process refuses to start. The message
    names the file and the JSON pointer of every problem."""


class AlreadyExists(Conflict):
    """A record with the same natural key exists (-> 409), e.g. `agency_already_registered`."""

    def __init__(self, code: str) -> None:
        super().__init__(code)
        self.code = code
