"""The count of common keys: every COUNT_EVERY (adapters/common_keys.py) the identification scheduler reads each
country's persons window by window, counts how many hold each blocking-key token, and records those held by more
than `duplicates.COMMON_KEY` in the record of common keys, as a search that meets one does. A search then finds
the common keys of its name already known, instead of reading their holders on the request path (at a million
persons 100-630 ms for each common key met the first time: docs/performance.md, Scale).

It reads tokens only (HMACs under the country's index key): no detail is decrypted, nothing about a person is
kept, and the record holds tokens and when, as before. The counts live in the process for as long as a country's
count runs (some 200,000 tokens for a country of 330,000 persons), PASS_BUDGET_S of each scheduler pass, one
country after the other."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from identification.adapters.common_keys import HolderCounts
from identification.adapters.person_windows import BEGINNING, FIRST_WIDTH
from identification.service_layer import duplicates
from identification.service_layer.deps import Deps

PASS_BUDGET_S = 10.0  # of the scheduler's 30 s between passes, beside re-keying's 20


@dataclass
class _Count:
    position: datetime = BEGINNING
    width: timedelta = FIRST_WIDTH
    holders: Counter[str] = field(default_factory=Counter)


def count_task(
    deps: Deps, counts: HolderCounts | None = None, *, budget_s: float = PASS_BUDGET_S
) -> Callable[[], int]:
    """The scheduler task: go on with the count of each country that is due, window after window, until
    `budget_s` is spent; a count that reached the present records its common tokens. Answers how many tokens
    were recorded."""
    source = counts or HolderCounts(deps.config.country_codes, deps.clock)
    running: dict[str, _Count] = {}

    def count() -> int:
        started, recorded = time.monotonic(), 0
        for country in source.countries:
            if country not in running:
                if not source.due(country):
                    continue
                running[country] = _Count()
            progress = running[country]
            while time.monotonic() - started < budget_s:
                span = source.window(country, progress.position, progress.width)
                for row in span.rows:
                    progress.holders.update(set(row.get("blocking_keys") or ()))
                progress.position, progress.width = span.end, span.next_width()
                if span.at_present:
                    common = [t for t, n in progress.holders.items() if n > duplicates.COMMON_KEY]
                    deps.common_keys.add(common, deps.clock.now())
                    source.finished(country)
                    del running[country]
                    recorded += len(common)
                    break
            if country in running:
                break  # the budget is spent: this country goes on next pass
        return recorded

    return count
