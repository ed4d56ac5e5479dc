"""`make run`: the real servers, every service's API and workers, supervised until Ctrl-C.

Servers named by KAFKA_BOOTSTRAP_SERVERS, MONGODB_URI or OIDC_ISSUER are used as they are, not started.
Ctrl-C (SIGINT) or SIGTERM stops the platform processes, then the servers, within 30 seconds.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

from devstack.keycloak import allow_docs_page, local_client_secret
from devstack.paths import REPO_ROOT, data_dir
from devstack.platform import SERVICES, ServiceProcesses
from devstack.process import ManagedProcess, Server, StackError, free_port, progress

STOP_BUDGET_SECONDS = 30
RESTART_BACKOFF_SECONDS = 2.0


def start_servers(started: list[Server]) -> dict[str, str]:
    """Start each server the environment does not already point at; return the combined environment."""
    env: dict[str, str] = {}
    factories: list[tuple[str, Callable[[], Server]]] = []
    if not os.environ.get("MONGODB_URI"):
        from devstack.mongo import MongoServer

        factories.append(("MONGODB_URI", MongoServer))
    if not os.environ.get("KAFKA_BOOTSTRAP_SERVERS"):
        from devstack.kafka import KafkaServer

        factories.append(("KAFKA_BOOTSTRAP_SERVERS", KafkaServer))
    if not os.environ.get("OIDC_ISSUER"):
        from devstack.keycloak import KeycloakServer

        factories.append(("OIDC_ISSUER", KeycloakServer))
    for variable in ("MONGODB_URI", "KAFKA_BOOTSTRAP_SERVERS", "OIDC_ISSUER"):
        if value := os.environ.get(variable):
            progress(f"using external {variable}={value}")
            env[variable] = value
    for _, factory in factories:
        server = factory()
        server.start()
        started.append(server)
        env.update(server.env())
    return env


def _ready(url: str) -> bool:
    with urllib.request.urlopen(url, timeout=2) as response:  # noqa: S310 - local URL we built
        return bool(response.status == 200)


class Supervised:
    """A platform process restarted with a short backoff if it dies (as Kubernetes would)."""

    def __init__(self, process: ManagedProcess, ready_url: str | None = None) -> None:
        self.process = process
        self.ready_url = ready_url
        self.restarts = 0
        self.next_restart = 0.0

    def check(self) -> None:
        if self.process.alive():
            return
        now = time.monotonic()
        if now < self.next_restart:
            return
        self.restarts += 1
        progress(
            f"{self.process.name} exited; restarting (restart #{self.restarts}), log: {self.process.log_path}"
        )
        self.process.start()
        self.next_restart = now + RESTART_BACKOFF_SECONDS * min(self.restarts, 10)


def platform_processes(
    base_env: dict[str, str], logs: Path, keys_file: Path | None = None
) -> tuple[list[Supervised], dict[str, str]]:
    """Every service's API and workers and the gateway, not yet started (also used by the platform tests)."""
    supervised: list[Supervised] = []
    urls: dict[str, str] = {}
    gunicorn = str(Path(sys.executable).with_name("gunicorn"))
    base_env = {
        **base_env,
        # Local mode: keys are generated once into the ignored data folder; production refuses to start without.
        "THB_MODE": "local",
        "THB_KEYS_FILE": str(keys_file or data_dir("keys") / "keys.json"),
    }
    # Ports first: every service learns the others' addresses (THB_UPSTREAM_<NAME>) for calls on behalf of the
    # user (plumbing.on_behalf), as the gateway does.
    ports = {service.name: free_port() for service in SERVICES}
    for name, port in ports.items():
        urls[name] = f"http://127.0.0.1:{port}"
    for service in SERVICES:
        port = ports[service.name]
        peers = {name: url for name, url in urls.items() if name != service.name}
        env = {**base_env, **_service_env(service, peers)}
        api = ManagedProcess(
            f"{service.name}-api",
            [
                gunicorn,
                "-c",
                "python:plumbing.gunicorn_conf",
                "--bind",
                f"127.0.0.1:{port}",
                service.asgi_app,
            ],
            logs / f"{service.name}-api.log",
            env=env,
            cwd=REPO_ROOT,
        )
        supervised.append(Supervised(api, ready_url=f"http://127.0.0.1:{port}/readyz"))
        for module in service.workers:
            worker_port = free_port()
            worker = ManagedProcess(
                module.rsplit(".", 1)[-1] + f"-{service.name}",
                [sys.executable, "-m", module],
                logs / f"{service.name}-{module.rsplit('.', 1)[-1]}.log",
                env={**env, "THB_WORKER_PORT": str(worker_port)},
                cwd=REPO_ROOT,
            )
            # A worker is ready once connected to Kafka (its /readyz on THB_WORKER_PORT).
            supervised.append(Supervised(worker, ready_url=f"http://127.0.0.1:{worker_port}/readyz"))
    gateway_port = free_port()
    gateway_env = {
        **base_env,
        "THB_SERVICE": "gateway",
        "PYTHONUNBUFFERED": "1",
        **{f"THB_UPSTREAM_{name.upper()}": url for name, url in urls.items()},
    }
    gateway = ManagedProcess(
        "gateway",
        [sys.executable, "-m", "gateway", "--port", str(gateway_port)],
        logs / "gateway.log",
        env=gateway_env,
        cwd=REPO_ROOT,
    )
    supervised.append(Supervised(gateway, ready_url=f"http://127.0.0.1:{gateway_port}/readyz"))
    urls["gateway"] = f"http://127.0.0.1:{gateway_port}"
    if base_env.get("KEYCLOAK_ADMIN_PASSWORD"):  # our own Keycloak (not one given through OIDC_ISSUER)
        allow_docs_page(base_env, urls["gateway"])
    return supervised, urls


def _service_env(service: ServiceProcesses, peers: dict[str, str]) -> dict[str, str]:
    env = {
        "THB_SERVICE": service.name,
        "MONGODB_DB": service.database,
        "PYTHONUNBUFFERED": "1",
        **{f"THB_UPSTREAM_{name.upper()}": url for name, url in peers.items()},
    }
    # The service's own Keycloak client secret (token exchange, docs/on-behalf-calls.md): the local realm's, for
    # the clients that have one (a bearer-only client has none and exchanges nothing).
    secret = local_client_secret(f"{service.name}-api")
    if secret:
        env["OIDC_CLIENT_SECRET"] = secret
    return env


def demo_users() -> list[dict[str, Any]]:
    local = json.loads((REPO_ROOT / "realm" / "local-realm.json").read_text())
    return [
        {"username": user["username"], "groups": user.get("groups", []), "roles": user.get("realmRoles", [])}
        for user in local.get("users", [])
    ]


def print_banner(env: dict[str, str], urls: dict[str, str], servers: list[Server]) -> None:
    lines = ["", "The platform is running. Ctrl-C stops everything.", ""]
    gateway = urls.get("gateway")
    if gateway:
        lines += [
            f"  gateway         {gateway}   (the single entry: /v1/<service>/...)",
            f"  API reference   {gateway}/docs/   combined contract {gateway}/v1/openapi.json",
            f"  status          {gateway}/v1/status",
            "",
            "  Services (direct, for debugging):",
        ]
    for name, url in urls.items():
        if name != "gateway":
            lines.append(f"  {name:<15} {url}/v1/{name}/   (health: {url}/readyz)")
    lines += [
        "",
        f"  Kafka           {env.get('KAFKA_BOOTSTRAP_SERVERS')}",
        f"  Mongo-wire      {env.get('MONGODB_URI')}",
    ]
    lines.append(f"  Keycloak realm  {env.get('OIDC_ISSUER')}")
    for server in servers:
        server_env = server.env()
        if "KEYCLOAK_ADMIN_USER" in server_env:
            lines.append(
                f"  Keycloak admin  {server_env.get('KEYCLOAK_URL')}/admin/  user {server_env['KEYCLOAK_ADMIN_USER']}"
                f"  password {server_env.get('KEYCLOAK_ADMIN_PASSWORD')}"
            )
    lines += ["", "  Demo users (password in realm/README.md):"]
    for user in demo_users():
        lines.append(f"    {user['username']:<28} {', '.join(user['groups'])}")
    print("\n".join(lines), flush=True)


def _write_state(
    env: dict[str, str], urls: dict[str, str], servers: list[Server], supervised: list[Supervised]
) -> None:
    """Addresses and process ids for tools and the smoke test; written last, so it also means "ready"."""
    pids = [item.process.proc.pid for item in supervised if item.process.proc is not None]
    for server in servers:
        process = getattr(server, "process", None)
        if process is not None and process.proc is not None:
            pids.append(process.proc.pid)
    addresses = {k: env[k] for k in ("MONGODB_URI", "KAFKA_BOOTSTRAP_SERVERS", "OIDC_ISSUER") if k in env}
    state = {"services": urls, "env": addresses, "pids": pids}
    (data_dir("run") / "urls.json").write_text(json.dumps(state, indent=2))


def main() -> int:
    servers: list[Server] = []
    supervised: list[Supervised] = []
    stopping = False

    def request_stop(signum: int, _frame: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, request_stop)
    signal.signal(signal.SIGTERM, request_stop)
    logs = data_dir("logs")
    (data_dir("run") / "urls.json").unlink(missing_ok=True)
    try:
        env = {**os.environ, **start_servers(servers)}
        supervised, urls = platform_processes(env, logs)
        for item in supervised:
            item.process.start()
        for item in supervised:
            if item.ready_url and not stopping:
                url = item.ready_url
                item.process.wait_until(lambda url=url: _ready(url), timeout=90, what="ready")  # type: ignore[misc]
        _write_state(env, urls, servers, supervised)
        print_banner(env, urls, servers)
        while not stopping:
            for item in supervised:
                item.check()
            time.sleep(0.5)
    except StackError as exc:
        progress(f"error: {exc}")
        return 1
    finally:
        progress("stopping")
        deadline = time.monotonic() + STOP_BUDGET_SECONDS
        for item in supervised:
            item.process.stop(timeout=max(1.0, min(10.0, deadline - time.monotonic())))
        for server in reversed(servers):
            server.stop()
        progress("stopped")
    return 0
