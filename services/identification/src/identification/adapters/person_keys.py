"""Persons whose blocking keys were made under an older `names.KEY_SCHEME`, for the re-keying task
(service_layer/rekeying.py): a walk of each country's persons in order of `updated_at`, window after window.

Why a walk, not a query for the stale: on the embedded Mongo-wire server "the next 200 persons of an older scheme"
cost all of them (at a million persons, every one stale: 61 s for a batch's read, 55 s to ask whether any is left);
windows (adapters/person_windows.py) read each person once, the million in 79 s (docs/performance.md, end of Scale).

Where the walk stands is kept per country in WALKS: the scheme it walks for, its `position` (every person of the
country changed before it has been looked at under that scheme), the window's `width` and `caught_up`, set once
the walk reached the present. The walk
never ends: it follows `updated_at`, MARGIN behind the clock, so that a record stamped a little before it was
written (a slow request, another process's clock) is not passed before it exists. Who writes a person makes her
keys under its own scheme; only a process of an older release, still running during an upgrade, writes older
keys, and it stamps `updated_at` now: ahead of the walk, which reaches her within MARGIN and a scheduler pass. A
release with a new scheme starts its walk from the beginning.

A rewrite is one `update_one` that matches the ciphertext the keys were made from, so that a correction written
meanwhile (which makes its own keys) is never overwritten with keys of the old details, and keys of an older
scheme than today's, so that a walker of an older release never undoes a newer one's rewrite. It moves neither
`updated_at` nor `version`: the keys are derived from the record, not a change of it (a national system syncing
with `updated_since` does not receive every person again, an officer's If-Match stays valid)."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from pymongo.collection import Collection

from identification.adapters.documents import PersonDocument
from identification.adapters.person_windows import BEGINNING, FIRST_WIDTH, NARROWEST, Span, read_window
from plumbing.clock import Clock, as_utc, to_millis

WALKS = "rekeying_walks"
MARGIN = timedelta(seconds=60)


@dataclass(frozen=True)
class StalePerson:
    id: str
    owner_country: str
    owner_agency: str
    sealed: str


@dataclass(frozen=True)
class Window:
    """A window of the walk (`span`) and its persons of an older scheme: at most the `limit` asked for, and whether
    that is all of them."""

    span: Span
    stale: list[StalePerson]
    whole: bool

    @property
    def country(self) -> str:
        return self.span.country

    @property
    def at_present(self) -> bool:
        return self.span.at_present


class PersonKeys:
    def __init__(
        self, scheme: int, countries: Iterable[str], clock: Clock, *, margin: timedelta = MARGIN
    ) -> None:
        self.scheme, self.countries, self.clock, self.margin = scheme, sorted(countries), clock, margin

    def _walks(self) -> Collection[dict[str, Any]]:
        return PersonDocument._get_collection().database[WALKS]

    def next_window(self, country: str, limit: int) -> Window | None:
        """The window at the walk's position, with up to `limit` of its stale persons; None when the walk is at
        the present, or when a newer release walks for its own scheme. A walker passes a window that is
        `at_present` and stops there until its next pass: the present moves while it walks."""
        walk = self._walks().find_one({"_id": country})
        if walk is None or walk["scheme"] < self.scheme:
            walk = {"_id": country, "scheme": self.scheme, "position": BEGINNING, "caught_up": False}
            walk["width_ms"] = FIRST_WIDTH // NARROWEST
            self._walks().replace_one({"_id": country}, walk, upsert=True)
        elif walk["scheme"] > self.scheme:
            return None
        start, width = as_utc(walk["position"]), walk["width_ms"] * NARROWEST
        horizon = to_millis(self.clock.now() - self.margin)
        if start >= horizon:
            if not walk["caught_up"]:
                self._walks().update_one(
                    {"_id": country, "scheme": self.scheme}, {"$set": {"caught_up": True}}
                )
            return None
        span = read_window(country, start, width, horizon, {"owner_agency": 1, "sealed": 1, "keys_scheme": 1})
        stale = [
            StalePerson(str(r["_id"]), country, r["owner_agency"], r["sealed"])
            for r in span.rows
            if (r.get("keys_scheme") or 1) < self.scheme
        ]
        return Window(span, stale[:limit], len(stale) <= limit)

    def passed(self, window: Window) -> None:
        """Every stale person of `window` has been rewritten (or given up): the walk moves past it. `$max`: two
        walkers (an overlap of schedulers during a deployment) never move it back."""
        reached = {"caught_up": True} if window.at_present else {}
        width_ms = window.span.next_width() // NARROWEST
        self._walks().update_one(
            {"_id": window.country, "scheme": self.scheme},
            {"$max": {"position": window.span.end}, "$set": {"width_ms": width_ms, **reached}},
        )

    def any_stale(self) -> bool:
        """Whether some person may have keys of an older scheme: yes until the walk of today's scheme has reached
        the present in every configured country."""
        walks = {row["_id"]: row for row in self._walks().find({"_id": {"$in": self.countries}})}
        return not all(
            country in walks and walks[country]["scheme"] == self.scheme and walks[country]["caught_up"]
            for country in self.countries
        )

    def rewrite(self, person: StalePerson, blocking_keys: list[str], year_keys: list[str]) -> bool:
        """Store the keys of today's scheme, unless her details changed since the window was read or her keys are
        of this scheme or a newer one by now (a walker of a newer release, during an upgrade, got there first)."""
        result = PersonDocument._get_collection().update_one(
            self._unchanged(person),
            {"$set": {"blocking_keys": blocking_keys, "year_keys": year_keys, "keys_scheme": self.scheme}},
        )
        return result.modified_count == 1

    def give_up(self, person: StalePerson) -> None:
        """Mark her keys as of today's scheme as they are (her details cannot be opened), unless they changed."""
        PersonDocument._get_collection().update_one(
            self._unchanged(person), {"$set": {"keys_scheme": self.scheme}}
        )

    def _unchanged(self, person: StalePerson) -> dict[str, Any]:
        # `$not: {$gte}` also matches an unset `keys_scheme` (before schemes were numbered).
        return {"_id": person.id, "sealed": person.sealed, "keys_scheme": {"$not": {"$gte": self.scheme}}}


class OutdatedKeys:
    """`Deps.keys_outdated`: whether some person's keys may be of an older scheme, asked of the database (one
    small document per country) at most once every `every_s`. Every duplicate search asks; the answer changes
    when the walk of today's scheme has reached the present in every country, which the scheduler's first pass
    after an install does at once (a pass of empty windows)."""

    def __init__(
        self, keys: PersonKeys, every_s: float = 10.0, monotonic: Callable[[], float] = time.monotonic
    ) -> None:
        self.keys, self.every_s, self.monotonic = keys, every_s, monotonic
        self._answer: tuple[float, bool] | None = None  # (asked at, answer)

    def __call__(self) -> bool:
        now = self.monotonic()
        if self._answer is None or now - self._answer[0] >= self.every_s:
            self._answer = (now, self.keys.any_stale())
        return self._answer[1]
