"""A server process started by the local stack: free port, log file, readiness wait, graceful stop."""

from __future__ import annotations

import os
import random
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Protocol


class StackError(RuntimeError):
    """A local server could not be downloaded or started; the message says what failed and how to retry."""


# Ports handed out by this process: never twice, even once released and not yet taken by the server it was for.
_issued: set[int] = set()
# Below the kernel's ephemeral range: a port chosen now and bound seconds later (a worker starts after the
# servers) cannot have been taken meanwhile as the local end of an outgoing connection, which comes from that
# range. Picking from it made `make run` fail once with "Address already in use".
_QUIET_PORTS = range(15000, 32000)


def _ephemeral_range() -> range:
    try:
        low, high = Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()
        return range(int(low), int(high) + 1)
    except (OSError, ValueError):
        return range(32768, 61000)  # Linux's default


def free_port() -> int:
    """A port nothing listens on, outside the ephemeral range where it can be, never the same one twice."""
    ephemeral = _ephemeral_range()
    candidates = [port for port in _QUIET_PORTS if port not in ephemeral and port not in _issued]
    for port in random.sample(candidates, min(len(candidates), 50)):
        if _bindable(port):
            _issued.add(port)
            return port
    while True:  # the ephemeral range covers everything: let the kernel choose
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            sock.bind(("127.0.0.1", 0))
            port = int(sock.getsockname()[1])
        if port not in _issued:
            _issued.add(port)
            return port


def _bindable(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def port_open(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.5)
        return sock.connect_ex((host, port)) == 0


def progress(message: str) -> None:
    print(f"[stack] {message}", file=sys.stderr, flush=True)


class ManagedProcess:
    """One child process in its own process group, so stopping it also stops anything it spawned."""

    def __init__(
        self,
        name: str,
        argv: Sequence[str],
        log_path: Path,
        env: Mapping[str, str] | None = None,
        cwd: Path | None = None,
    ) -> None:
        self.name = name
        self.argv = list(argv)
        self.log_path = log_path
        self.env = dict(os.environ if env is None else env)
        self.cwd = cwd
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        log = open(self.log_path, "ab")  # noqa: SIM115 - the child owns the handle for its lifetime
        self.proc = subprocess.Popen(
            self.argv,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=self.env,
            cwd=self.cwd,
            start_new_session=True,
        )
        log.close()

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def wait_until(self, ready: Callable[[], bool], timeout: float, what: str) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self.alive():
                raise StackError(f"{self.name} exited while starting; see {self.log_path}\n{self.log_tail()}")
            try:
                if ready():
                    return
            except Exception:  # noqa: BLE001, S110 - any failure of the probe just means "not yet"
                pass
            time.sleep(0.3)
        raise StackError(
            f"{self.name} was not {what} within {timeout:.0f}s; see {self.log_path}\n{self.log_tail()}"
        )

    def log_tail(self, lines: int = 25) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def stop(self, timeout: float = 20.0) -> None:
        """SIGTERM the whole group, then SIGKILL what is left after the timeout."""
        if self.proc is None or self.proc.poll() is not None:
            return
        try:
            os.killpg(self.proc.pid, signal.SIGTERM)
        except ProcessLookupError:
            return
        try:
            self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            self.proc.wait(timeout=5)

    def kill(self) -> None:
        """Hard crash (SIGKILL), as a test of durability needs."""
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=10)


class Server(Protocol):
    """Interface every local server follows (Kafka, Keycloak, the Mongo-wire server)."""

    name: str

    def start(self) -> None:
        """Download if needed, start, and return once the server answers."""

    def stop(self) -> None:
        """Stop gracefully; kill after a timeout."""

    def env(self) -> dict[str, str]:
        """The environment variables services and tests use to reach this server."""


class ProcessServer:
    """Stop, crash and restart for a server that runs as one ManagedProcess (Kafka, the Mongo-wire server)."""

    process: ManagedProcess | None = None
    stop_timeout = 20.0

    def start(self) -> None:  # pragma: no cover - each server defines how it starts
        raise StackError(f"{type(self).__name__} does not define start()")

    def stop(self) -> None:
        if self.process:
            self.process.stop(timeout=self.stop_timeout)

    def kill(self) -> None:
        """A hard crash (SIGKILL), as durability tests need."""
        if self.process:
            self.process.kill()

    def restart(self) -> None:
        """Start again on the same ports and data (after stop or kill)."""
        self.start()
