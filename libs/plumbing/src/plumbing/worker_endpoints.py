"""Health, readiness and metrics of a worker process (outbox relay, consumer), on THB_WORKER_PORT.

Workers are not web apps, but Kubernetes probes and Prometheus still need to reach them. A worker is ready
while it is connected to Kafka (the `ready` event its loop sets and clears); its metrics are the process's
Prometheus registry: outbox backlog and oldest age, consumer lag, dead letters.
"""

from __future__ import annotations

import os
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Protocol

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest


class Readiness(Protocol):
    """What /readyz asks: a loop's `ready` event, or anything that answers the same question."""

    def is_set(self) -> bool: ...


def serve(ready: Readiness, port: int | None = None, host: str = "127.0.0.1") -> ThreadingHTTPServer | None:
    """Start the endpoints in a daemon thread; without a port (THB_WORKER_PORT unset) nothing is served."""
    if port is None:
        configured = os.environ.get("THB_WORKER_PORT")
        if not configured:
            return None
        port = int(configured)

    class Endpoints(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - the name http.server dispatches to
            if self.path == "/healthz":
                self._answer(200, b"ok\n", "text/plain")
            elif self.path == "/readyz":
                is_ready = ready.is_set()
                self._answer(
                    200 if is_ready else 503, b"ready\n" if is_ready else b"not connected\n", "text/plain"
                )
            elif self.path == "/metrics":
                self._answer(200, generate_latest(), CONTENT_TYPE_LATEST)
            else:
                self._answer(404, b"not found\n", "text/plain")

        def _answer(self, status: int, body: bytes, content_type: str) -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - signature of the base class
            # Probes every few seconds would drown the worker's own log lines.
            return

    server = ThreadingHTTPServer((host, port), Endpoints)
    threading.Thread(target=server.serve_forever, name="worker-endpoints", daemon=True).start()
    return server
