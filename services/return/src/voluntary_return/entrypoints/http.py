"""The return service's API (skeleton). `app` is built on first access, inside the gunicorn worker."""

from pathlib import Path
from typing import Any

import thb_contracts
from plumbing.received_events import create_http_app, list_received_events

SPEC = Path(str(thb_contracts.contract("return")))  # found by package, not by the checkout's layout

__all__ = ["list_received_events"]


def __getattr__(name: str) -> Any:
    if name == "app":
        built = create_http_app("return", SPEC)
        globals()["app"] = built
        return built
    raise AttributeError(name)
