"""Prometheus metrics named in docs/conventions.md that belong to the HTTP side.

Labels are operationIds, methods, status codes and service names only — never ids, paths or anything a client
typed. Other modules (outbox relay, consumers) register their own metrics on the default registry at import
time; `/metrics` exposes the whole default registry, so they appear without touching this module.

With several gunicorn workers set PROMETHEUS_MULTIPROC_DIR (gunicorn_conf does): each worker then writes its
samples to that directory and `/metrics` aggregates them, whichever worker answers the scrape.
"""

from __future__ import annotations

import os
from collections.abc import Callable

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)

HTTP_REQUESTS = Counter(
    "http_requests_total",
    "HTTP requests answered, by operation and status",
    ["service", "operation_id", "method", "status"],
)
HTTP_DURATION = Histogram(
    "http_request_duration_seconds",
    "Time to answer an HTTP request, by operation",
    ["service", "operation_id"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
)
JWKS_AGE = Gauge(
    "jwks_age_seconds",
    "Age of the signing key set in use (a growing value means refreshes fail)",
    ["service"],
    multiprocess_mode="mostrecent",
)
# access_log_write_failures_total is defined and counted by plumbing.access_log, where the write fails.
IDEMPOTENT_REPLAYS = Counter(
    "idempotency_replays_total", "POSTs answered from a stored first response", ["service"]
)

CONTENT_TYPE = CONTENT_TYPE_LATEST


def exposition(before_scrape: Callable[[], None] | None = None) -> bytes:
    if before_scrape is not None:
        before_scrape()
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        return generate_latest(registry)
    return generate_latest(REGISTRY)
