"""Domain errors with stable codes.

A :class:`DomainError` (``raise_all`` raises one carrying every detail collected) is a
`plumbing.errors.CodedViolation`: the app factory answers it with problem+json 422, one {pointer, code} per
detail. ``code`` and ``pointer`` are part of the public contract, the message is for developers only and must never
contain submitted personal data.
"""

from __future__ import annotations

from typing import TypeAlias

from plumbing.errors import CodedViolation, Violation

ErrorDetail: TypeAlias = Violation


class DomainError(CodedViolation):
    """A broken rule of the identification domain."""


raise_all = DomainError.raise_all
