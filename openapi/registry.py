"""The service registry (services.toml) as values. Standard library only (see thb_contracts)."""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass

_NAME = re.compile(r"^[a-z][a-z0-9]*$")
_MODULE = re.compile(r"^[a-z_][a-z0-9_]*(\.[a-z_][a-z0-9_]*)*$")


@dataclass(frozen=True)
class Service:
    name: str  # path segment under /v1, contract file name, Keycloak client prefix
    package: str  # the Python package in services/<name>/src/
    workers: tuple[str, ...] = ()  # modules run with `python -m`

    @property
    def folder(self) -> str:
        return f"services/{self.name}"

    @property
    def database(self) -> str:
        return f"thb_{self.name}"

    @property
    def asgi_app(self) -> str:
        return f"{self.package}.entrypoints.http:app"


class RegistryError(ValueError):
    """services.toml is not a valid registry: nothing that reads it may start."""


def load_registry(text: str) -> tuple[Service, ...]:
    try:
        document = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise RegistryError(f"services.toml: {error}") from None
    entries = document.get("services")
    if not isinstance(entries, dict) or not entries:
        raise RegistryError("services.toml: no [services.<name>] entries")
    services: list[Service] = []
    for name, entry in entries.items():
        where = f"services.toml [services.{name}]"
        if not _NAME.match(name):
            raise RegistryError(f"{where}: a service name is lower-case letters and digits")
        if not isinstance(entry, dict) or set(entry) - {"package", "workers"}:
            raise RegistryError(f"{where}: only `package` and `workers` may be set")
        package, workers = entry.get("package"), entry.get("workers", [])
        if not isinstance(package, str) or not _MODULE.match(package):
            raise RegistryError(f"{where}: `package` must name a Python package")
        if not isinstance(workers, list) or not all(isinstance(w, str) and _MODULE.match(w) for w in workers):
            raise RegistryError(f"{where}: `workers` must be a list of module names")
        services.append(Service(name, package, tuple(workers)))
    return tuple(services)
