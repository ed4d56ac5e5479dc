"""Shared gunicorn configuration: `gunicorn -c python:plumbing.gunicorn_conf <service>.entrypoints.asgi:app`.

Workers are uvicorn ASGI workers (connexion 3 is ASGI; `uvicorn.workers` is deprecated in favour of the
`uvicorn-worker` package) with the platform's HTTP limits: head and body timeouts, a head size cap, a
connection cap, and problem+json answers for protocol errors (plumbing.http_server, THB_HTTP_*, see
docs/http-limits.md). Everything that owns sockets or threads — Mongo clients, Kafka clients, OTel span
processors, the JWKS refresh thread — is created in the worker after the fork: by the app's lifespan, and by
`post_fork` for whatever a preloaded app registered. Settings come from the environment (THB_* / GUNICORN_*).
"""

from __future__ import annotations

import os
import tempfile
from typing import Any

from plumbing.http_server import HttpLimits

worker_class = "plumbing.http_server.LimitedUvicornWorker"
bind = os.environ.get("GUNICORN_BIND", f"0.0.0.0:{os.environ.get('PORT', '8000')}")
workers = int(os.environ.get("GUNICORN_WORKERS", "2"))
# A request still running after SIGTERM gets this long to finish (the outbox makes a cut-off write safe).
graceful_timeout = int(os.environ.get("GUNICORN_GRACEFUL_TIMEOUT", "20"))
timeout = int(os.environ.get("GUNICORN_TIMEOUT", "30"))
# The worker takes its keep-alive timeout from the same variable; this keeps gunicorn's setting truthful.
keepalive = HttpLimits.from_env().keepalive
# Off: uvicorn's access line holds the raw path and query; the app writes its own line with the route template.
accesslog = None
errorlog = "-"
preload_app = False
forwarded_allow_ips = os.environ.get("FORWARDED_ALLOW_IPS", "127.0.0.1")


def on_starting(server: Any) -> None:
    # Prometheus multiprocess mode: every worker writes samples to one directory that /metrics aggregates.
    directory = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if not directory:
        directory = tempfile.mkdtemp(prefix="thb-metrics-")
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = directory
    for name in os.listdir(directory):
        if name.endswith(".db"):
            os.unlink(os.path.join(directory, name))


def post_fork(server: Any, worker: Any) -> None:
    from plumbing import app
    from plumbing.logging import configure_logging

    configure_logging(os.environ.get("THB_SERVICE", "thb"), os.environ.get("THB_LOG_LEVEL", "INFO"))
    app.run_after_fork_hooks()


def worker_exit(server: Any, worker: Any) -> None:
    from plumbing import telemetry

    telemetry.shutdown()


def child_exit(server: Any, worker: Any) -> None:
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(worker.pid)
