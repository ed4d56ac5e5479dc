"""Pytest plugin: the whole platform as real processes (every service's API and workers, and the gateway), once per session.

Cross-service tests use the `platform` fixture: the same process table as `make run`, started against the
session's real servers (Kafka, Mongo-wire, Keycloak). Tests may kill and restart single processes; the
fixture restarts anything a test left stopped before the next test runs.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import threading
import time
import urllib.request
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

import pytest
import yaml

from devstack.keycloak import password_grant
from devstack.paths import REPO_ROOT
from devstack.process import ManagedProcess, free_port
from devstack.pytest_plugin import ServerHandle
from devstack.run import Supervised, platform_processes

# A login costs Keycloak a password hash (the slowest call a test makes), so one token per user is reused for
# this long; the realm's tokens live 300 s (realm/base-realm.json), so a reused one is never near its expiry.
TOKEN_REUSE_S = 120.0


def _ready(url: str) -> bool:
    with urllib.request.urlopen(url, timeout=2) as response:  # noqa: S310 - local URL
        return bool(response.status == 200)


def login(issuer: str, username: str) -> str:
    """A demo user's access token from the realm at `issuer` (password grant of the test client)."""
    response = password_grant(issuer, username)
    if response.is_error:  # Keycloak says why (e.g. a concurrent login refused by brute-force protection)
        raise AssertionError(f"token for {username}: {response.status_code} {response.text}")
    return str(response.json()["access_token"])


@dataclass
class Platform:
    urls: dict[str, str]
    processes: dict[str, Supervised]
    logs: Path
    env: dict[str, str]
    _tokens: dict[str, tuple[float, str]] = field(default_factory=dict, repr=False)
    _token_lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @property
    def gateway(self) -> str:
        return self.urls["gateway"]

    @property
    def issuer(self) -> str:
        return self.env["OIDC_ISSUER"]

    def token(self, username: str, *, fresh: bool = False) -> str:
        """An access token of a demo user: the one fetched in the last TOKEN_REUSE_S seconds unless `fresh`.
        Logins are serialised, as Keycloak refuses a second login of a user while the first is in flight."""
        with self._token_lock:
            cached = self._tokens.get(username)
            if not fresh and cached and time.monotonic() - cached[0] < TOKEN_REUSE_S:
                return cached[1]
            token = self._login(username)
            self._tokens[username] = (time.monotonic(), token)
            return token

    def _login(self, username: str) -> str:
        return login(self.issuer, username)

    def log_text(self, name: str) -> str:
        """The log of one process, e.g. `identification-api` or `referral-consumer`."""
        path = self.logs / f"{name}.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def all_logs(self) -> str:
        return "\n".join(p.read_text(errors="replace") for p in sorted(self.logs.glob("*.log")))

    def start(self, name: str) -> None:
        item = self.processes[name]
        if not item.process.alive():
            item.process.start()
        if item.ready_url:
            url = item.ready_url
            item.process.wait_until(lambda: _ready(url), timeout=90, what="ready")

    def ensure_all_running(self) -> None:
        for name in self.processes:
            self.start(name)

    @contextlib.contextmanager
    def extra_apis(
        self, services: Iterable[str], env: Mapping[str, str | None], logs: Path
    ) -> Iterator[dict[str, str]]:
        """One more API process per service, for a fault drill that must not touch the platform's own: the
        same gunicorn command and environment, `env` laid over it (None removes a variable), a port of its own.
        Yields {service: base url} once every one is ready; stops them after."""
        started: dict[str, tuple[ManagedProcess, str]] = {}
        try:
            for service in services:
                template = self.processes[f"{service}-api"].process
                port = free_port()
                argv = list(template.argv)
                argv[argv.index("--bind") + 1] = f"127.0.0.1:{port}"
                changed = {**template.env, **env}
                process = ManagedProcess(
                    f"{service}-api-extra",
                    argv,
                    logs / f"{service}-api-extra.log",
                    env={k: v for k, v in changed.items() if v is not None},
                    cwd=template.cwd,
                )
                process.start()
                started[service] = (process, f"http://127.0.0.1:{port}")
            for process, url in started.values():
                process.wait_until(partial(_ready, f"{url}/readyz"), timeout=120, what="ready")
            yield {service: url for service, (_, url) in started.items()}
        finally:
            for process, _ in started.values():
                process.stop(timeout=10)


@pytest.fixture(scope="session")
def platform(
    kafka: ServerHandle, mongo: ServerHandle, keycloak: ServerHandle, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Platform]:
    root = tmp_path_factory.mktemp("platform")
    env = {**os.environ, **kafka.env, **mongo.env, **keycloak.env, "THB_CONFIG": str(_unlimited_config(root))}
    supervised, urls = platform_processes(env, root / "logs", keys_file=root / "keys.json")
    processes = {_name(item): item for item in supervised}
    handle = Platform(urls, processes, root / "logs", {**env})
    try:
        for item in supervised:
            item.process.start()
        handle.ensure_all_running()
        yield handle
    finally:
        for item in supervised:
            item.process.stop(timeout=10)


def _unlimited_config(root: Path) -> Path:
    """The platform configuration with rate budgets out of reach: tests that hammer the API (scope matrix,
    fuzzing) must see the behaviour under test, not 429s. The one test of budgets starts its own gateway with
    the real configuration."""
    config = yaml.safe_load((REPO_ROOT / "config" / "platform.yaml").read_text())
    unlimited = {"requests_per_minute": 10_000_000, "burst": 1_000_000}
    config["rate_budgets"] = {"interactive": unlimited, "machine_default": unlimited, "clients": {}}
    path = root / "platform.yaml"
    path.write_text(yaml.safe_dump(config, allow_unicode=True, sort_keys=False))
    shutil.copy(REPO_ROOT / "config" / "platform.schema.json", root / "platform.schema.json")
    return path


def _name(item: Supervised) -> str:
    return item.process.log_path.stem


@pytest.fixture
def running_platform(platform: Platform) -> Platform:
    """The platform with every process running (a previous test may have killed one)."""
    platform.ensure_all_running()
    return platform
