"""What one request knows about itself, readable from handlers, error handlers and log formatters.

The outermost middleware creates a `RequestContext` and puts it in a context variable; inner layers fill it in
(operation, caller, purpose). Context variables follow the request into connexion's Flask thread pool, so a
handler can call `current_caller()` instead of threading the caller through every signature.
"""

from __future__ import annotations

import re
import uuid
from contextvars import ContextVar
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from plumbing.auth import Caller

# A client-supplied request id is echoed back and written to logs, so only a short, plain token is accepted;
# anything else is replaced by a fresh id (never an error: the id is for correlation, not for the client).
_SAFE_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{8,128}$")


def accept_request_id(candidate: str | None) -> str:
    if candidate and _SAFE_REQUEST_ID.match(candidate):
        return candidate
    return str(uuid.uuid4())


@dataclass
class RequestContext:
    request_id: str
    method: str = ""
    route: str | None = None  # the path template from the contract, never the raw path
    operation_id: str | None = None
    language: str = "en"
    trace_id: str | None = None
    span_id: str | None = None
    caller: Any = None  # plumbing.auth.Caller once the bearer token was accepted
    purpose: str | None = None
    received_at: datetime | None = None  # from the app's clock: "today" for the contract's date rules
    extra: dict[str, Any] = field(default_factory=dict)


_current: ContextVar[RequestContext | None] = ContextVar("plumbing_request_context", default=None)


def current() -> RequestContext | None:
    return _current.get()


def set_current(context: RequestContext | None) -> Any:
    return _current.set(context)


def reset(token: Any) -> None:
    _current.reset(token)


def current_caller() -> Caller:
    """The verified caller of the current request (raises if called outside a secured operation)."""
    context = _current.get()
    if context is None or context.caller is None:
        raise RuntimeError("no authenticated caller in this context")
    return context.caller


def current_purpose() -> str | None:
    """The validated X-Purpose of the current request (operations with x-personal-data: true)."""
    context = _current.get()
    return context.purpose if context else None


def current_request_id() -> str | None:
    context = _current.get()
    return context.request_id if context else None


def current_trace_id() -> str | None:
    context = _current.get()
    return context.trace_id if context else None
