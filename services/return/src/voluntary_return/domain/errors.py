"""Domain errors with stable codes: plumbing's coded errors (plumbing.errors) under this service's own classes,
answered as problem+json by the app factory:

- `DomainError` -> 422 `validation-failed`, one {pointer, code} per broken rule (`raise_all` raises one carrying
  every detail collected);
- `InvalidTransition` -> 409 `conflict`: the action is not allowed in the return case's current state
  (`approve_plan_not_allowed_when_requested`, ...);
- `Refused` -> 409 `conflict`: the state allows the action but the case's facts do not
  (`no_determination_in_favour_of_return`, `consent_required`, ...);
- `NotPermitted` -> 403 `forbidden`: the caller sees the case but the action needs another role
  (`coordinator_approval_required`);
- `plumbing.errors.NotFound` (404) is raised, never a 403, when the record is outside the caller's scope.
"""

from __future__ import annotations

from typing import TypeAlias

from plumbing import catalogue_files
from plumbing.errors import CodedConflict, CodedForbidden, CodedViolation, Violation

ErrorDetail: TypeAlias = Violation


class DomainError(CodedViolation):
    """A broken rule of the return domain."""


raise_all = DomainError.raise_all


class InvalidTransition(CodedConflict):
    """The action is not allowed in the current state. `code` is stable: `<action>_not_allowed_when_<status>`."""


class Refused(CodedConflict):
    """The state allows the action, the case's facts do not, e.g. the child gate's
    `no_determination_in_favour_of_return`. `code` is stable."""


class NotPermitted(CodedForbidden):
    """The caller may see the case, but this action needs another role. `code` is stable."""


class CatalogueError(catalogue_files.CatalogueError):
    """The return catalogue breaks its schema or a cross-check: the process refuses to start. The message names
    the file and the JSON pointer of every problem."""
