"""A country's persons read window by window of `updated_at`, for the tasks that must look at every person without
a query for what they look for: re-keying (adapters/person_keys.py) and the count of common keys
(adapters/common_keys.py).

Why windows: the embedded Mongo-wire server reads every index entry a filter selects before it applies a limit, so
"the next 200 persons such that..." costs all persons that match (at a million persons, every one stale: 61 s for
a batch; docs/performance.md, end of Scale). A window `{owner_country, updated_at: {$gte, $lt}}` on the scope index
(owner_country, updated_at, id) costs what it holds: 10 ms for up to 400 persons at a million. Its width is halved
when it holds more than MOST (and read again narrower), doubled when it held fewer than FEWEST."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from identification.adapters.documents import PersonDocument

# Before any record: every `updated_at` is the platform's own stamp (plumbing.repository), from 2026 on; a seeded
# or migrated history goes back a few years. From here, ~1,400 empty windows of WIDEST to 2026 (about 2 s).
BEGINNING = datetime(2000, 1, 1, tzinfo=UTC)
FIRST_WIDTH = timedelta(minutes=1)
# BSON dates keep milliseconds. Why not wider than a week: a window reached across empty years lands on the first
# records at its full width and is read whole before it is narrowed. At a year wide that read took 6.9 s at 1M
# (the bench's 1M spans two years: ~166,000 persons a country-year) and held a point read up to 4.6 s; a week
# holds ~3,200 there.
NARROWEST, WIDEST = timedelta(milliseconds=1), timedelta(days=7)
FEWEST, MOST = 100, 400


@dataclass(frozen=True)
class Span:
    """The persons of `country` changed in [start, end) (their `rows`, as projected), read at `width`; `at_present`
    when it ends at the horizon asked for: once it is passed, the walk is there."""

    country: str
    start: datetime
    end: datetime
    width: timedelta
    rows: list[dict[str, Any]]
    at_present: bool

    def next_width(self) -> timedelta:
        """The width of the window after this one."""
        if len(self.rows) < FEWEST:
            return min(WIDEST, self.width * 2)
        if len(self.rows) > MOST:
            return max(NARROWEST, self.width // 2)
        return self.width


def read_window(
    country: str, start: datetime, width: timedelta, horizon: datetime, projection: dict[str, int]
) -> Span:
    """The window from `start`, at most `width` wide and ending at `horizon` at the latest, narrowed until it holds
    at most MOST persons (or is a millisecond wide)."""
    while True:
        end = min(start + width, horizon)
        rows = list(
            PersonDocument._get_collection().find(
                {"owner_country": country, "updated_at": {"$gte": start, "$lt": end}}, projection
            )
        )
        if len(rows) <= MOST or width <= NARROWEST:
            return Span(country, start, end, width, rows, end == horizon)
        width = max(NARROWEST, width // 2)
