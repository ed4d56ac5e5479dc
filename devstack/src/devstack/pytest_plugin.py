"""Session fixtures that start each real server once per test session (or use an external one).

When KAFKA_BOOTSTRAP_SERVERS, MONGODB_URI or OIDC_ISSUER is set, nothing is started for that server and the
tests run against it. Servers are started lazily: a unit-test run starts none of them.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest


@dataclass
class ServerHandle:
    """What tests see of a server: its environment and, when we started it, the server object itself."""

    env: dict[str, str]
    server: Any = None  # None when external: tests that stop a server skip themselves then
    extra: dict[str, Any] = field(default_factory=dict)


def _external(variable: str) -> ServerHandle | None:
    value = os.environ.get(variable)
    return ServerHandle(env={variable: value}) if value else None


@pytest.fixture(scope="session")
def kafka(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerHandle]:
    if handle := _external("KAFKA_BOOTSTRAP_SERVERS"):
        yield handle
        return
    from devstack.kafka import KafkaServer

    server = KafkaServer(data=tmp_path_factory.mktemp("kafka"))
    server.start()
    yield ServerHandle(env=server.env(), server=server)
    server.stop()


@pytest.fixture(scope="session")
def mongo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerHandle]:
    if handle := _external("MONGODB_URI"):
        yield handle
        return
    from devstack.mongo import MongoServer

    server = MongoServer(data=tmp_path_factory.mktemp("mongo"))
    server.start()
    yield ServerHandle(env=server.env(), server=server)
    server.stop()


@pytest.fixture(scope="session")
def keycloak(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerHandle]:
    if handle := _external("OIDC_ISSUER"):
        yield handle
        return
    from devstack.keycloak import KeycloakServer

    server = KeycloakServer()
    server.start()
    yield ServerHandle(env=server.env(), server=server)
    server.stop()
