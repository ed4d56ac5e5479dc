"""Which blocking-key tokens duplicate searches found common (held by more than `duplicates.COMMON_KEY` people of
a country), so that the next search does not read their holders again.

Why a record, not a `limit`: the embedded Mongo-wire server collects every id an index holds for a value before
it applies a limit (measured 2026-12-07: 20,000 holders of one key, 583 ms for all of them, 300-350 ms with
`limit=51`), so asking for "the first 51 holders" of a common key costs all of them. What is stored is the token
(an HMAC under the country's index key, `adapters/sealing.py`) and when it was last found common, nothing else:
no person, no name. A key stays common as long as a country does not shrink by thousands; an entry older than
`TTL` is asked about again, so that one which became rare (after erasures) is read once more.

The record is also filled off the request path: every COUNT_EVERY the identification scheduler counts the holders
of every token among a country's persons (`HolderCounts` here, service_layer/common_keys_count.py), so that a
search meets a common key already known instead of paying for its holders (100-630 ms a key at a million)."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any

from pymongo import UpdateOne
from pymongo.collection import Collection

from identification.adapters.documents import PersonDocument
from identification.adapters.person_windows import Span, read_window
from plumbing.clock import Clock, as_utc, to_millis

COLLECTION = "common_blocking_keys"
TTL = timedelta(days=30)
COUNTS = "common_keys_counts"  # per country, when its holders were last counted to the end
# Weekly: the record's entries of keys still common are renewed long before their TTL, and a key that became
# common is known within a week (a search meeting it first until then pays for its holders, as before).
COUNT_EVERY = timedelta(days=7)


class CommonKeys:
    """The record, in the identification database beside the persons."""

    def _collection(self) -> Collection[dict[str, Any]]:
        return PersonDocument._get_collection().database[COLLECTION]

    def known(self, tokens: Iterable[str], now: datetime) -> set[str]:
        """Those of `tokens` found common within `TTL` before `now`."""
        wanted = sorted(set(tokens))
        if not wanted:
            return set()
        rows = self._collection().find({"_id": {"$in": wanted}}, {"seen_at": 1})
        return {row["_id"] for row in rows if as_utc(row["seen_at"]) > now - TTL}

    def add(self, tokens: Iterable[str], now: datetime) -> None:
        updates = [
            UpdateOne({"_id": t}, {"$set": {"seen_at": now}}, upsert=True) for t in sorted(set(tokens))
        ]
        if updates:
            self._collection().bulk_write(updates, ordered=False)


class HolderCounts:
    """What the count of holders reads and keeps: a country's persons window by window (adapters/person_windows.py:
    only their tokens, no detail, nothing decrypted) and, per country, when a count last reached the present. Where
    a count stands is the counting process's own: a count cut short (a restart) starts again."""

    def __init__(self, countries: Iterable[str], clock: Clock, every: timedelta = COUNT_EVERY) -> None:
        self.countries, self.clock, self.every = sorted(countries), clock, every

    def _counts(self) -> Collection[dict[str, Any]]:
        return PersonDocument._get_collection().database[COUNTS]

    def due(self, country: str) -> bool:
        last = self._counts().find_one({"_id": country})
        return last is None or as_utc(last["finished_at"]) <= self.clock.now() - self.every

    def window(self, country: str, start: datetime, width: timedelta) -> Span:
        """The tokens of the persons changed in the window from `start` (up to the present)."""
        return read_window(country, start, width, to_millis(self.clock.now()), {"blocking_keys": 1})

    def finished(self, country: str) -> None:
        self._counts().update_one({"_id": country}, {"$set": {"finished_at": self.clock.now()}}, upsert=True)


class InMemoryCommonKeys:
    """The same record in a dict (unit tests)."""

    def __init__(self) -> None:
        self.seen: dict[str, datetime] = {}

    def known(self, tokens: Iterable[str], now: datetime) -> set[str]:
        return {token for token in tokens if token in self.seen and self.seen[token] > now - TTL}

    def add(self, tokens: Iterable[str], now: datetime) -> None:
        self.seen.update(dict.fromkeys(tokens, now))
