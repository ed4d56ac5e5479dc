"""Domain errors with stable codes.

The API layer maps a :class:`DomainError` to problem+json 422; ``code`` and ``pointer`` are part of the public
contract, the message is for developers only and must never contain submitted personal data.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ErrorDetail:
    code: str
    pointer: str = ""


class DomainError(Exception):
    def __init__(
        self, code: str, message: str, *, pointer: str = "", details: tuple[ErrorDetail, ...] = ()
    ) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.pointer = pointer
        # Several problems can be reported at once so that a client fixes a form in one round trip.
        self.details: tuple[ErrorDetail, ...] = details or (ErrorDetail(code, pointer),)

    def __repr__(self) -> str:
        return f"DomainError(code={self.code!r}, pointer={self.pointer!r})"


def raise_all(details: list[ErrorDetail], message: str) -> None:
    """Raise one error carrying every detail, or do nothing when the list is empty."""
    if details:
        first = details[0]
        raise DomainError(first.code, message, pointer=first.pointer, details=tuple(details))
