"""MongoDB connections: one pymongo client per process and alias, created lazily *after* fork.

Why after fork: a `MongoClient` owns background monitor threads, a connection pool and locks. `fork()` copies
the memory but not the threads, so a client created in the gunicorn master (or any parent) is broken in the
workers: monitors are gone, pooled sockets are shared between processes, a lock held at fork time is held
forever. Each worker (gunicorn `post_fork`, or the worker/relay entry point) calls `connect()` itself;
`connect=False` also defers the first network round trip to the first operation, so importing or configuring
an app never touches the network. A client found in a child process (pid changed) is replaced, never reused.
"""

from __future__ import annotations

import os
import threading
from typing import Any

import mongoengine
import pymongo
from mongoengine.connection import DEFAULT_CONNECTION_NAME, ConnectionFailure
from pymongo import MongoClient
from pymongo.database import Database
from pymongo.errors import PyMongoError

from plumbing.errors import ConfigError

_lock = threading.Lock()
_owners: dict[str, tuple[int, str, str]] = {}  # alias -> (pid that created its client, uri, database)


def connect(settings: Any, alias: str = DEFAULT_CONNECTION_NAME, **client_options: Any) -> MongoClient:
    """Register `alias` for mongoengine (documents use it) and return its pymongo client.

    `settings` is a `plumbing.config.Settings` (uses `mongodb_uri`, `mongodb_db`, `service`). Datetimes come
    back timezone-aware UTC; UUIDs use the standard representation.
    """
    uri = getattr(settings, "mongodb_uri", None)
    if not uri:
        raise ConfigError(f"{getattr(settings, 'service', 'service')}: MONGODB_URI is not set")
    with _lock:
        pid = os.getpid()
        wanted = (pid, uri, settings.mongodb_db)
        owner = _owners.get(alias)
        if owner == wanted:
            return mongoengine.get_connection(alias)
        if owner and owner[0] == pid:
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
            "serverSelectionTimeoutMS": 5000,
        }
        options.update(client_options)
        mongoengine.connect(db=settings.mongodb_db, host=uri, alias=alias, **options)
        _owners[alias] = wanted
        return mongoengine.get_connection(alias)


def get_database(alias: str = DEFAULT_CONNECTION_NAME) -> Database:
    return mongoengine.get_db(alias)


def disconnect(alias: str = DEFAULT_CONNECTION_NAME) -> None:
    with _lock:
        owner = _owners.pop(alias, None)
        if owner and owner[0] == os.getpid():
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


class MongoProvider:
    """One MongoClient per process, created on first use (so never in the gunicorn master)."""

    def __init__(self, uri: str | None, database: str, timeout_ms: int = 2000) -> None:
        self.uri = uri
        self.name = database
        self.timeout_ms = timeout_ms
        self._client: Any = None
        self._pid: int | None = None
        self._lock = threading.Lock()

    def __call__(self) -> Any:
        return self.database()

    def database(self) -> Any:
        with self._lock:
            if self._client is None or self._pid != os.getpid():
                if not self.uri:
                    raise RuntimeError("MONGODB_URI is not set")
                from pymongo import MongoClient

                self._client = MongoClient(
                    self.uri,
                    serverSelectionTimeoutMS=self.timeout_ms,
                    connectTimeoutMS=self.timeout_ms,
                    tz_aware=True,
                )
                self._pid = os.getpid()
            return self._client[self.name]

    def reset_after_fork(self) -> None:
        # The parent's client (sockets, monitor threads) is unusable in the child; drop it without closing.
        with self._lock:
            self._client, self._pid = None, None

    def close(self) -> None:
        with self._lock:
            if self._client is not None:
                self._client.close()
            self._client, self._pid = None, None
