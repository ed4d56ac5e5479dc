"""/healthz, /readyz and /metrics of an API process, answered by the outermost middleware (no auth, no
routing): readiness is the database and a loaded key set; Kafka is reported by the workers, never here."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.types import Send

from plumbing import health, metrics
from plumbing.clock import Clock
from plumbing.problems import PROBLEM_JSON, Problem
from plumbing.security import (
    OperationPolicy,
)

HEALTH_PATH, READY_PATH, METRICS_PATH = "/healthz", "/readyz", "/metrics"


class AppState:
    """What the middlewares, probes and lifespan share for one app."""

    def __init__(
        self,
        service: str,
        policies: Mapping[str, OperationPolicy],
        checks: Sequence[health.Check],
        jwks: Any,
        readiness_timeout: float,
        clock: Clock | None = None,
    ) -> None:
        self.clock = clock
        self.service = service
        self.policies = policies
        self.checks = list(checks)
        self.jwks = jwks
        self.readiness_timeout = readiness_timeout

    def update_gauges(self) -> None:
        if self.jwks is not None:
            age = self.jwks.age_seconds()
            if age is not None:
                metrics.JWKS_AGE.labels(self.service).set(age)

    async def answer_probe(self, path: str, context: Any, send: Send) -> None:
        status, content_type, body, extra = 200, "application/json", b'{"status":"ok"}', []
        if path == READY_PATH:
            ready, details = await run_in_threadpool(health.evaluate, self.checks, self.readiness_timeout)
            self.update_gauges()
            if ready:
                body = json.dumps({"status": "ready", "checks": details}).encode()
            else:
                problem = Problem("not-ready", extensions={"checks": details})
                status, headers, body = problem.render(context.language, context.request_id)
                content_type = PROBLEM_JSON
                extra = [(k.lower().encode(), v.encode()) for k, v in headers.items()]
        elif path == METRICS_PATH:
            body = await run_in_threadpool(metrics.exposition, self.update_gauges)
            content_type = metrics.CONTENT_TYPE
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [
                    (b"content-type", content_type.encode()),
                    (b"cache-control", b"no-store"),
                    (b"x-request-id", context.request_id.encode()),
                    *extra,
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})
