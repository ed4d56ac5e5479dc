"""JSON log lines without personal data.

A line carries its message plus the fields a caller passed explicitly in `extra={"fields": {...}}`; the request
id and trace id are added from the request context (outside a request, e.g. in a consumer, the trace id of the
active span). Exceptions are logged as their type and stack frames only:
an exception *message* can hold whatever value failed (a name, a document number), so it is never written.
Uvicorn's own access line is switched off because it prints the raw path and query string; the app writes one
line per request instead (plumbing.app), with the route template.
"""

from __future__ import annotations

import json
import logging
import sys
import traceback
from datetime import UTC, datetime
from typing import IO, Any

from opentelemetry import trace

from plumbing import request_context

REQUEST_LOGGER = "plumbing.http"


class JsonFormatter(logging.Formatter):
    def __init__(self, service: str) -> None:
        super().__init__()
        self.service = service

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC)
            .isoformat(timespec="milliseconds")
            .replace("+00:00", "Z"),
            "level": record.levelname.lower(),
            "service": self.service,
            "logger": record.name,
            "msg": record.getMessage(),
        }
        context = request_context.current()
        if context is not None:
            line["request_id"] = context.request_id
            if context.trace_id:
                line["trace_id"] = context.trace_id
        else:
            # Outside a request (a consumer handling an event in its CONSUMER span): the active span's trace.
            span_context = trace.get_current_span().get_span_context()
            if span_context.is_valid:
                line["trace_id"] = format(span_context.trace_id, "032x")
        fields = getattr(record, "fields", None)
        if isinstance(fields, dict):
            line.update(fields)
        if record.exc_info and record.exc_info[0] is not None:
            line["exc_type"] = record.exc_info[0].__name__
            line["stack"] = safe_stack(record.exc_info[2])
        return json.dumps(line, ensure_ascii=False, default=str)


def safe_stack(tb: Any) -> list[str]:
    """file:line in function, for each frame: where it failed, never with what values."""
    return [f"{frame.filename}:{frame.lineno} in {frame.name}" for frame in traceback.extract_tb(tb)]


def configure_logging(
    service: str, level: str | int = "INFO", stream: IO[str] | None = None
) -> logging.Handler:
    """Route every logger through one JSON handler on stdout (idempotent: a second call replaces it)."""
    root = logging.getLogger()
    for handler in list(root.handlers):
        if getattr(handler, "_plumbing", False):
            root.removeHandler(handler)
    handler = logging.StreamHandler(stream or sys.stdout)
    handler.setFormatter(JsonFormatter(service))
    handler._plumbing = True  # type: ignore[attr-defined]
    root.addHandler(handler)
    root.setLevel(level)
    access = logging.getLogger("uvicorn.access")
    access.handlers = []
    access.propagate = False
    access.disabled = True
    # connexion logs validation messages that quote the rejected value; our validators do not call it, and
    # anything left at INFO/DEBUG there is noise. Warnings and errors still reach the JSON handler.
    logging.getLogger("connexion").setLevel(logging.WARNING)
    # httpx logs every call's full URL at INFO (service-to-service calls carry ids in paths).
    for name in ("httpx", "httpcore"):
        logging.getLogger(name).setLevel(logging.WARNING)
    return handler
