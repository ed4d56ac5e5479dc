"""Liveness and readiness (docs/conventions.md "Readiness").

`/healthz` answers 200 while the process can serve at all: no dependency is consulted, so a database outage
never makes Kubernetes restart healthy workers. `/readyz` is 200 when every *critical* check passes — the
database answers and a key set (current or last good) is loaded. Non-critical checks (Kafka) appear in the
details and in metrics but never make the API unready: the outbox keeps accepted writes until the broker is back.
"""

from __future__ import annotations

import concurrent.futures
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import pymongo

# A probe answers True/False, or a dict with at least {"ok": bool} and any non-personal details.
Probe = Callable[[], bool | dict[str, Any]]


@dataclass(frozen=True)
class Check:
    name: str
    probe: Probe
    critical: bool = True


_pool = concurrent.futures.ThreadPoolExecutor(max_workers=4, thread_name_prefix="readyz")


def evaluate(checks: Sequence[Check], timeout: float = 2.0) -> tuple[bool, dict[str, Any]]:
    """Run the probes concurrently, each bounded by `timeout`; a probe that raises or hangs is a failure."""
    futures = {check.name: _pool.submit(check.probe) for check in checks}
    details: dict[str, Any] = {}
    ready = True
    for check in checks:
        try:
            outcome = futures[check.name].result(timeout=timeout)
            result = dict(outcome) if isinstance(outcome, dict) else {"ok": bool(outcome)}
        except concurrent.futures.TimeoutError:
            result = {"ok": False, "error": "timeout"}
        except Exception as error:  # noqa: BLE001 - any failure of a probe means "not ok", reported by type only
            result = {"ok": False, "error": type(error).__name__}
        result["critical"] = check.critical
        details[check.name] = result
        if check.critical and not result.get("ok"):
            ready = False
    return ready, details


def mongo_check(database: Callable[[], Any], timeout_s: float = 2.0) -> Check:
    """The service database answers `ping` (the client is created lazily, after fork) within `timeout_s`,
    server selection included, so a probe of an unreachable server never outlives its answer."""

    def probe() -> bool:
        with pymongo.timeout(timeout_s):
            database().command("ping")
        return True

    return Check("mongo", probe)


def keys_check(jwks: Any) -> Check:
    """A signing key set is loaded — the current one or the last good one kept through an outage."""

    def probe() -> dict[str, Any]:
        age = jwks.age_seconds()
        return {"ok": age is not None, "age_seconds": None if age is None else round(float(age), 1)}

    return Check("keys", probe)
