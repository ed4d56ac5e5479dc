"""The exchange service's API (skeleton): the identification events it received, for the caller's country.
`app` is built on first access, inside the gunicorn worker."""

from pathlib import Path
from typing import Any

import thb_contracts
from exchange.adapters import received_events
from plumbing import request_context
from plumbing.app import app_on_first_access, create_service_app, current_database
from plumbing.pagination import PageRequest

SPEC = Path(str(thb_contracts.contract("exchange")))  # found by package, not by the checkout's layout


def list_received_events(limit: int = 50, cursor: str | None = None) -> dict[str, Any]:
    """`GET /v1/exchange/received-events`: the caller's country only."""
    inbox = received_events.inbox(current_database())
    page = inbox.page(PageRequest.parse(limit, cursor), country=request_context.current_caller().country)
    return page.body(inbox.view)


__getattr__ = app_on_first_access(lambda: create_service_app(received_events.SERVICE, SPEC))
