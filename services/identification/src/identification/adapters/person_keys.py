"""Persons whose blocking keys were made under an older `names.KEY_SCHEME`, for the re-keying task
(service_layer/rekeying.py).

Found by the `keys_scheme` index with equality (unset, or each older number), a limit and no sort: a range or a
sort would read the whole collection on the embedded server (docs/performance.md). Rewritten with one
`update_one` that matches the ciphertext the keys were made from, so that a correction written meanwhile (which
makes its own keys) is never overwritten with keys of the old details. The rewrite moves neither `updated_at`
nor `version`: the keys are derived from the record, not a change of it (a national system syncing with
`updated_since` does not receive every person again, an officer's If-Match stays valid)."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from identification.adapters.documents import PersonDocument


@dataclass(frozen=True)
class StalePerson:
    id: str
    owner_country: str
    owner_agency: str
    sealed: str


class PersonKeys:
    def __init__(self, scheme: int) -> None:
        self.scheme = scheme
        # What `keys_scheme` holds for a person of an older scheme: unset (before schemes were numbered) or each
        # older number, each asked as an equality.
        self.older: tuple[int | None, ...] = (None, *range(1, scheme))

    def stale(self, limit: int) -> list[StalePerson]:
        """Up to `limit` persons whose keys are of an older scheme."""
        collection = PersonDocument._get_collection()
        found: list[StalePerson] = []
        for older in self.older:
            if len(found) >= limit:
                break
            rows = collection.find(
                {"keys_scheme": older},
                {"owner_country": 1, "owner_agency": 1, "sealed": 1},
                limit=limit - len(found),
            )
            found.extend(
                StalePerson(str(r["_id"]), r["owner_country"], r["owner_agency"], r["sealed"]) for r in rows
            )
        return found

    def any_stale(self) -> bool:
        """Whether some person's keys are of an older scheme (one indexed equality per older scheme)."""
        collection = PersonDocument._get_collection()
        return any(
            collection.find_one({"keys_scheme": older}, {"_id": 1}) is not None for older in self.older
        )

    def rewrite(self, person: StalePerson, blocking_keys: list[str], year_keys: list[str]) -> bool:
        """Store the keys of today's scheme, unless her details changed since `stale` read them."""
        result = PersonDocument._get_collection().update_one(
            {"_id": person.id, "sealed": person.sealed},
            {"$set": {"blocking_keys": blocking_keys, "year_keys": year_keys, "keys_scheme": self.scheme}},
        )
        return result.modified_count == 1

    def give_up(self, person: StalePerson) -> None:
        """Mark her keys as of today's scheme as they are (her details cannot be opened), unless they changed."""
        PersonDocument._get_collection().update_one(
            {"_id": person.id, "sealed": person.sealed}, {"$set": {"keys_scheme": self.scheme}}
        )


class OutdatedKeys:
    """`Deps.keys_outdated`: whether some person's keys are of an older scheme, asked of the database at most once
    every `every_s`. Every duplicate search asks; the answer changes when re-keying has finished, or (for at most
    `every_s`) when a process of an older release, still running during an upgrade, registers someone."""

    def __init__(
        self, keys: PersonKeys, every_s: float = 60.0, monotonic: Callable[[], float] = time.monotonic
    ) -> None:
        self.keys, self.every_s, self.monotonic = keys, every_s, monotonic
        self._answer: tuple[float, bool] | None = None  # (asked at, answer)

    def __call__(self) -> bool:
        now = self.monotonic()
        if self._answer is None or now - self._answer[0] >= self.every_s:
            self._answer = (now, self.keys.any_stale())
        return self._answer[1]
