"""Domain errors with stable codes.

`DomainError` is a `plumbing.errors.RuleViolation`: the app factory answers it 422 with one {pointer, code} per
broken rule (pointers into the request body). `InvalidTransition` is a `plumbing.errors.Conflict` (409): the
action is not allowed in the form's or the case's current state. `NotPermitted` is a `plumbing.errors.OutOfScope`
(403): the caller sees the case, but the catalogue gives her roles no part in this form type's step. Each carries
its stable `code` into the problem's `errors`. Messages are for developers and never carry submitted values.
"""

from __future__ import annotations

from collections.abc import Iterable

from plumbing.errors import ConfigError, Conflict, OutOfScope, RuleViolation, Violation

ErrorDetail = Violation


class DomainError(RuleViolation):
    def __init__(self, message: str, details: Iterable[ErrorDetail]) -> None:
        super().__init__(message, details)
        if not self.details:
            raise ValueError("a DomainError names at least one broken rule")

    @property
    def codes(self) -> set[tuple[str, str]]:
        """(code, pointer) pairs: what tests and clients compare."""
        return {(d.code, d.pointer) for d in self.details}

    def __repr__(self) -> str:
        return f"DomainError({sorted(self.codes)!r})"


def raise_all(details: list[ErrorDetail], message: str) -> None:
    """Raise one error carrying every detail (a client fixes a form in one round trip), or do nothing."""
    if details:
        raise DomainError(message, details)


def violation(code: str, pointer: str = "") -> DomainError:
    return DomainError(code, [ErrorDetail(code, pointer)])


class InvalidTransition(Conflict):
    """The action is not allowed in the current state (-> 409). `code` is stable, e.g. `form_not_draft`."""

    def __init__(self, code: str) -> None:
        super().__init__(code)
        self.code = code


class NotPermitted(OutOfScope):
    """The form type's roles do not include the caller's (-> 403). `code` is stable, e.g. `role_may_not_send`."""

    def __init__(self, code: str) -> None:
        super().__init__(code)
        self.code = code


class CatalogueError(ConfigError):
    """The form catalogue breaks its schema or a rule: the process refuses to start. The message names the
    file and the JSON pointer."""
