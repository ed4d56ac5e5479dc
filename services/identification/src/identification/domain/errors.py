"""Domain errors with stable codes.

A :class:`DomainError` is a `plumbing.errors.RuleViolation`: the app factory answers it with problem+json 422,
one {pointer, code} per detail (pointers into the request body, under `/body`). ``code`` and ``pointer`` are part
of the public contract, the message is for developers only and must never contain submitted personal data.
"""

from __future__ import annotations

from plumbing.errors import RuleViolation, Violation

# One broken rule: a stable code and a JSON pointer into the request body ("" = the body as a whole).
ErrorDetail = Violation


class DomainError(RuleViolation):
    def __init__(
        self, code: str, message: str, *, pointer: str = "", details: tuple[ErrorDetail, ...] = ()
    ) -> None:
        # Several problems can be reported at once so that a client fixes a form in one round trip.
        super().__init__(message, details or (ErrorDetail(code, pointer),))
        self.code = code
        self.message = message
        self.pointer = pointer

    def __repr__(self) -> str:
        return f"DomainError(code={self.code!r}, pointer={self.pointer!r})"


def raise_all(details: list[ErrorDetail], message: str) -> None:
    """Raise one error carrying every detail, or do nothing when the list is empty."""
    if details:
        first = details[0]
        raise DomainError(first.code, message, pointer=first.pointer, details=tuple(details))
