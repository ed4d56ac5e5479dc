"""The processes that make up the platform locally: one API per service, its workers, and the gateway.

The services come from the registry (openapi/services.toml, read through thb_contracts): each declares its API
(an ASGI app for gunicorn) and its worker entry points (relay, consumers); `make run` and the smoke test start
exactly this table.
"""

from __future__ import annotations

import thb_contracts
from thb_contracts.registry import Service

ServiceProcesses = Service  # the registry's entry says all the local stack needs to start a service

SERVICES: tuple[Service, ...] = thb_contracts.services()
