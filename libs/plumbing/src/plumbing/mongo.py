"""MongoDB connections: one pymongo client per process and alias, created lazily *after* fork. The one path.

`connect(settings, alias)` registers the alias (mongoengine documents name it in `meta["db_alias"]`, the default
alias otherwise) and returns its pymongo client; `get_database(alias)` is the pymongo Database of that alias,
for code without documents (stores, inboxes, the access log). `MongoProvider` is the same registration as a
callable `() -> Database`, what the app factory, the idempotency store and the readiness check take. So the API
of a service, its workers and its documents share one client per process and alias, whichever they use.

Why after fork: a `MongoClient` owns background monitor threads, a connection pool and locks. `fork()` copies
the memory but not the threads, so a client created in the gunicorn master (or any parent) is broken in the
workers: monitors are gone, pooled sockets are shared between processes, a lock held at fork time is held
forever. Each worker (gunicorn `post_fork`, or the worker/relay entry point) calls `connect()` itself;
`connect=False` also defers the first network round trip to the first operation, so importing or configuring
an app never touches the network. A registration found in a child process (pid changed) is replaced, never
reused: by `connect()`, and by `get_database()` / `MongoProvider` with the settings it was registered with.
"""

from __future__ import annotations

import dataclasses
import os
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import mongoengine
import pymongo
from mongoengine.connection import DEFAULT_CONNECTION_NAME, ConnectionFailure
from pymongo import MongoClient
from pymongo.database import Database
from pymongo.errors import PyMongoError

from plumbing.errors import ConfigError

_lock = threading.RLock()

# How long a client waits for a server it cannot reach: a server that is down is given up after the selection
# timeout, a connection that cannot be opened after the connect timeout (also how soon a hung server is marked
# unknown by the monitor). A URI's own options win. No socket timeout for every operation: a bulk write or a
# long scan of a worker or a test may take longer; what a request may spend is its budget below.
DATABASE_TIMEOUTS = {
    "serverSelectionTimeoutMS": 5000,
    "connectTimeoutMS": 5000,
}
# What one API request may spend on the database in all (pymongo's client-side operation timeout: every
# operation in the request, its retries and server selection included). A server that holds connections without
# answering (hung) fails the request after this instead of holding it until the gateway gives up (30 s), and
# the API answers 503 with Retry-After (plumbing.error_handlers.handle_database_error).
REQUEST_DATABASE_BUDGET_S = 10.0


def request_budget() -> Any:
    """The context every API handler runs in (plumbing.resolver, the idempotency store's calls)."""
    return pymongo.timeout(REQUEST_DATABASE_BUDGET_S)


@dataclass(frozen=True)
class _Registration:
    pid: int  # the process that created the client
    uri: str
    database: str
    settings: Any
    options: tuple[tuple[str, Any], ...]


_owners: dict[str, _Registration] = {}  # alias -> its registration


def connect(settings: Any, alias: str = DEFAULT_CONNECTION_NAME, **client_options: Any) -> MongoClient:
    """Register `alias` for mongoengine (documents use it) and return its pymongo client.

    `settings` is a `plumbing.config.Settings` (uses `mongodb_uri`, `mongodb_db`, `service`). Datetimes come
    back timezone-aware UTC; UUIDs use the standard representation. Calling it again with the same server and
    database in the same process returns the client already registered.
    """
    uri = getattr(settings, "mongodb_uri", None)
    if not uri:
        raise ConfigError(f"{getattr(settings, 'service', 'service')}: MONGODB_URI is not set")
    with _lock:
        pid = os.getpid()
        owner = _owners.get(alias)
        if owner is not None and (owner.pid, owner.uri, owner.database) == (pid, uri, settings.mongodb_db):
            return mongoengine.get_connection(alias)
        if owner and owner.pid == pid:
            mongoengine.disconnect(alias)  # same process, other server or database: replace it
        elif owner:
            # Inherited from a parent process: forget it without using it (closing would touch shared sockets).
            mongoengine.connection._connections.pop(alias, None)
            mongoengine.connection._dbs.pop(alias, None)
            mongoengine.connection._connection_settings.pop(alias, None)
        options: dict[str, Any] = {
            "tz_aware": True,
            "uuidRepresentation": "standard",
            "connect": False,
            "appname": getattr(settings, "service", None) or "thb",
            **{key: value for key, value in DATABASE_TIMEOUTS.items() if key.lower() not in uri.lower()},
        }
        options.update(client_options)
        mongoengine.connect(db=settings.mongodb_db, host=uri, alias=alias, **options)
        _owners[alias] = _Registration(
            pid, uri, settings.mongodb_db, settings, tuple(sorted(client_options.items()))
        )
        return mongoengine.get_connection(alias)


ACCESS_LOG_ALIAS = "access-log"


def access_log_alias(settings: Any, env: Mapping[str, str]) -> str:
    """The alias of the database a service writes its access log to, registered: THB_ACCESS_LOG_MONGODB_URI when
    set (a separate audit store, which the service's own database user cannot rewrite), else the service's own
    database. The database name is the service's either way. Every service's bootstrap asks here, so each can
    be given an audit store, and each refuses personal data when that store cannot be written (503)."""
    uri = env.get("THB_ACCESS_LOG_MONGODB_URI", "").strip()
    if not uri:
        return DEFAULT_CONNECTION_NAME
    connect(dataclasses.replace(settings, mongodb_uri=uri), alias=ACCESS_LOG_ALIAS)
    return ACCESS_LOG_ALIAS


def get_database(alias: str = DEFAULT_CONNECTION_NAME) -> Database:
    """The pymongo Database registered under `alias` by connect(); in a forked child, registered again first."""
    with _lock:
        owner = _owners.get(alias)
        if owner is not None and owner.pid != os.getpid():
            connect(owner.settings, alias, **dict(owner.options))
    return mongoengine.get_db(alias)


def disconnect(alias: str = DEFAULT_CONNECTION_NAME) -> None:
    with _lock:
        owner = _owners.pop(alias, None)
        if owner and owner.pid == os.getpid():
            mongoengine.disconnect(alias)


def ping(alias: str = DEFAULT_CONNECTION_NAME, timeout_ms: int = 1000) -> bool:
    """Readiness: True when the database answers `ping` within `timeout_ms`. Never raises."""
    try:
        client = mongoengine.get_connection(alias)
        # pymongo.timeout bounds server selection too, so a down server answers False quickly.
        with pymongo.timeout(timeout_ms / 1000):
            client.admin.command("ping")
        return True
    except (PyMongoError, ConnectionFailure):
        return False


@dataclass(frozen=True)
class _ProviderSettings:
    mongodb_uri: str | None
    mongodb_db: str
    service: str


class MongoProvider:
    """A database as a callable `() -> pymongo Database`: connect() on first use in each process (so never in
    the gunicorn master, and again after a fork), then get_database(). Its alias is named after the database
    (`db:<name>`), so providers of different databases in one process never replace each other's registration;
    with the client options connect() always uses, mongoengine shares one MongoClient between the aliases of a
    server (a service's documents on the default alias and its app's provider use the same client)."""

    def __init__(
        self, uri: str | None, database: str, *, alias: str | None = None, service: str = "thb"
    ) -> None:
        self.uri = uri
        self.name = database
        self.alias = alias or f"db:{database}"
        self._settings = _ProviderSettings(uri, database, service)

    @classmethod
    def for_settings(cls, settings: Any) -> MongoProvider:
        """The service's own database (`mongodb_uri`, `mongodb_db` of a plumbing.config.Settings)."""
        service = str(getattr(settings, "service", None) or "thb")
        database = getattr(settings, "mongodb_db", None) or service
        return cls(getattr(settings, "mongodb_uri", None), database, service=service)

    def __call__(self) -> Database:
        connect(self._settings, self.alias)  # raises ConfigError without a URI
        return get_database(self.alias)

    def close(self) -> None:
        disconnect(self.alias)
