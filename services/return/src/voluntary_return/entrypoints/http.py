"""The return service's API (skeleton). `app` is built on first access, inside the gunicorn worker."""

from pathlib import Path
from typing import Any

from plumbing.received_events import create_http_app, list_received_events

SPEC = Path(__file__).resolve().parents[5] / "openapi" / "return.yaml"

__all__ = ["list_received_events"]


def __getattr__(name: str) -> Any:
    if name == "app":
        built = create_http_app("return", SPEC)
        globals()["app"] = built
        return built
    raise AttributeError(name)
