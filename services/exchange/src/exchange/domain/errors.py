"""Domain errors with stable codes: plumbing's coded errors (plumbing.errors) under this service's own classes,
answered as problem+json by the app factory:

- `DomainError` -> 422 `validation-failed`, one {pointer, code} per broken rule (`raise_all` raises one carrying
  every detail collected);
- `InvalidTransition` -> 409 `conflict`: the action is not allowed in the form's or the case's current state
  (`form_not_draft`, ...);
- `NotPermitted` -> 403 `forbidden`: the caller sees the case, but the catalogue gives her roles no part in this
  form type's step (`role_may_not_send`, ...).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import TypeAlias

from plumbing import catalogue_files
from plumbing.errors import CodedConflict, CodedForbidden, CodedViolation, Violation

ErrorDetail: TypeAlias = Violation


class DomainError(CodedViolation):
    """Broken rules of the exchange domain, always named by their details: `DomainError(message, details)`."""

    def __init__(self, message: str, details: Iterable[ErrorDetail]) -> None:
        named = tuple(details)
        if not named:
            raise ValueError("a DomainError names at least one broken rule")
        super().__init__(named[0].code, message, pointer=named[0].pointer, details=named)

    @classmethod
    def raise_all(cls, details: Sequence[ErrorDetail], message: str) -> None:
        """Raise one error carrying every detail (a client fixes a form in one round trip), or do nothing."""
        if details:
            raise cls(message, details)


raise_all = DomainError.raise_all


def violation(code: str, pointer: str = "") -> DomainError:
    return DomainError(code, [ErrorDetail(code, pointer)])


class InvalidTransition(CodedConflict):
    """The action is not allowed in the current state. `code` is stable, e.g. `form_not_draft`."""


class NotPermitted(CodedForbidden):
    """The form type's roles do not include the caller's. `code` is stable, e.g. `role_may_not_send`."""


class CatalogueError(catalogue_files.CatalogueError):
    """The form catalogue breaks its schema or a rule: the process refuses to start. The message names the
    file and the JSON pointer."""
