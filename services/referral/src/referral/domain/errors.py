"""Domain errors with stable codes: plumbing's coded errors (plumbing.errors) under this service's own classes,
answered as problem+json by the app factory:

- `DomainError` -> 422 `validation-failed`, one {pointer, code} per broken rule (`raise_all` raises one carrying
  every detail collected);
- `InvalidTransition` -> 409 `conflict`: the action is not allowed in the referral's current state
  (`referral_not_requested`, `no_free_place`, ...);
- `AlreadyExists` -> 409 `conflict`: a record with the same natural key exists (`agency_already_registered`);
- `NotPermitted` -> 403 `forbidden`: the caller sees the record but the action belongs to the other side (a
  provider cannot revoke, a referrer cannot accept);
- `plumbing.errors.NotFound` (404) is raised, never a 403, when the record is outside the caller's scope.
"""

from __future__ import annotations

from typing import TypeAlias

from plumbing import catalogue_files
from plumbing.errors import CodedConflict, CodedForbidden, CodedViolation, Violation

ErrorDetail: TypeAlias = Violation


class DomainError(CodedViolation):
    """A broken rule of the referral domain."""


raise_all = DomainError.raise_all


class InvalidTransition(CodedConflict):
    """The action is not allowed in the current state. `code` is stable, e.g. `referral_not_requested`."""


class NotPermitted(CodedForbidden):
    """The caller may see the record, but this action belongs to another party. `code` is stable."""


class CatalogueError(catalogue_files.CatalogueError):
    """The referral catalogue breaks its schema or a cross-check: the process refuses to start. The message
    names the file and the JSON pointer of every problem."""


class AlreadyExists(CodedConflict):
    """A record with the same natural key exists, e.g. `agency_already_registered`."""
