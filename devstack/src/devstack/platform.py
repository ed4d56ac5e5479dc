"""The processes that make up the platform locally: one API per service, its workers, and the gateway.

Each service declares its API (an ASGI app for gunicorn) and its worker entry points (relay, consumers);
`make run` and the smoke test start exactly this table.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class ServiceProcesses:
    name: str  # path segment under /v1 and the Keycloak client prefix
    package: str  # Python package (the return service's package cannot be called `return`)
    workers: tuple[str, ...] = field(default=())  # modules run with `python -m`

    @property
    def asgi_app(self) -> str:
        return f"{self.package}.entrypoints.http:app"

    @property
    def database(self) -> str:
        return f"thb_{self.name}"


SERVICES: tuple[ServiceProcesses, ...] = (
    ServiceProcesses(
        "identification",
        "identification",
        workers=("identification.entrypoints.relay",),
    ),
    ServiceProcesses("referral", "referral", workers=("referral.entrypoints.consumer",)),
    ServiceProcesses("exchange", "exchange", workers=("exchange.entrypoints.consumer",)),
    ServiceProcesses("return", "voluntary_return", workers=("voluntary_return.entrypoints.consumer",)),
)
