"""The platform's contracts as an installable package (`thb_contracts`): the service registry
(`services.toml`), the OpenAPI contracts, the AsyncAPI document and the event schemas.

Found by package (`importlib.resources`), not by path, so an installed service or gateway reads the same files
as a checkout. Standard library only: the Makefile and tools read the registry before anything is installed
(tools/services.py loads `registry.py` by its path)."""

from __future__ import annotations

import os
from importlib import resources
from importlib.resources.abc import Traversable
from pathlib import Path

from thb_contracts.registry import Service, load_registry


def files() -> Traversable:
    """The folder of the contracts: `THB_OPENAPI_DIR` when set (another set of contracts, e.g. a test's),
    else this package's (openapi/ in a checkout)."""
    configured = os.environ.get("THB_OPENAPI_DIR")
    return Path(configured) if configured else resources.files(__name__)


def contract(service: str) -> Traversable:
    """The OpenAPI document of one service."""
    return files() / f"{service}.yaml"


def event_schemas() -> Traversable:
    return files() / "events"


def asyncapi() -> Traversable:
    return files() / "asyncapi.yaml"


def services() -> tuple[Service, ...]:
    """The registry's services, in the registry's order."""
    return load_registry((files() / "services.toml").read_text(encoding="utf-8"))


__all__ = ["Service", "asyncapi", "contract", "event_schemas", "files", "services"]
