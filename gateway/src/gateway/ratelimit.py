"""Rate budgets per client: one token bucket per person (`sub`) or per machine client (`azp`).

Each key has its own bucket, so a national system that bursts empties only its own budget and never the others'.
Budgets come from `rate_budgets` in config/platform.yaml: `interactive` for people, `machine_default` for
machine clients, and `clients.<azp>` to give one machine client its own figures. Time comes from an injectable
monotonic clock, so tests advance it instead of sleeping.

Buckets live in the gateway process: with N workers a client gets up to N times its budget. The gateway is
asynchronous and runs one worker per core; the documented budgets are therefore per gateway worker.
"""

from __future__ import annotations

import math
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from plumbing.config import RateBudget


class BudgetSource(Protocol):
    """plumbing.config.RateBudgets fits."""

    def for_caller(self, *, is_machine: bool, client_id: str) -> RateBudget: ...


@dataclass(frozen=True)
class Decision:
    allowed: bool
    retry_after: int  # whole seconds until one request fits again (0 when allowed)
    remaining: int
    limit: int = 0  # the budget's requests per minute (RateLimit-Limit on a 429)


class RateLimiter:
    def __init__(
        self,
        budgets: BudgetSource,
        clock: Callable[[], float] = time.monotonic,
        max_keys: int = 100_000,
    ) -> None:
        self.budgets = budgets
        self.clock = clock
        self.max_keys = max_keys
        # (kind, key) -> (tokens, last refill instant); ordered for least-recently-used eviction
        self._buckets: OrderedDict[tuple[str, str], tuple[float, float]] = OrderedDict()

    def take(self, *, is_machine: bool, key: str) -> Decision:
        """Spend one request of the budget of `key` (azp for machine clients, sub for people)."""
        budget = self.budgets.for_caller(is_machine=is_machine, client_id=key)
        rate = budget.requests_per_minute / 60.0
        now = self.clock()
        bucket_key = ("machine" if is_machine else "user", key)
        state = self._buckets.get(bucket_key)
        if state is None:
            tokens = float(budget.burst)
        else:
            tokens, last = state
            tokens = min(float(budget.burst), tokens + max(0.0, now - last) * rate)
            self._buckets.move_to_end(bucket_key)
        if tokens >= 1.0:
            tokens -= 1.0
            decision = Decision(True, 0, int(tokens), budget.requests_per_minute)
        else:
            wait = (1.0 - tokens) / rate
            decision = Decision(False, max(1, math.ceil(wait)), 0, budget.requests_per_minute)
        self._buckets[bucket_key] = (tokens, now)
        if len(self._buckets) > self.max_keys:
            # An evicted key starts again with a full burst; only the least recently seen keys are dropped.
            self._buckets.popitem(last=False)
        return decision
