"""Exceptions the plumbing raises and the app factory maps to problems.

They carry no personal data in their messages: messages may reach logs and problem `detail`.
"""

from __future__ import annotations


class PlumbingError(Exception):
    """Base class for errors raised by the shared plumbing."""


class NotFound(PlumbingError):
    """The record does not exist *or* is outside the caller's scope (-> 404; never reveals which)."""


class Conflict(PlumbingError):
    """Optimistic-concurrency conflict or an operation invalid in the record's current state (-> 409)."""


class OutOfScope(PlumbingError):
    """The caller has no scope at all for this kind of record and tried to create one (-> 403)."""


class ConfigError(PlumbingError):
    """Invalid or missing configuration: the process must refuse to start."""


class KeyConfigurationError(ConfigError):
    """Missing, malformed or insecure key material: the process must refuse to start."""


class DecryptionError(PlumbingError):
    """A ciphertext could not be authenticated/decrypted (wrong key, wrong record/field, tampering)."""


class AccessLogUnavailable(PlumbingError):
    """The access log entry could not be written durably (-> 503; no personal data may be sent)."""


class InvalidCursor(PlumbingError, ValueError):
    """A pagination cursor that this service did not issue or that was altered (-> 400)."""
