"""Which case records still hold envelopes to deliver: the relay's system query and its claim.

A named system API (docs/conventions.md: unscoped access only for jobs, explicitly): it reads nothing but the
record id and the owning country. The relay then reads and writes the record through the owning country's
scoped repository (`records.inbox_caller`), as the inbox does.

The query is an equality on the indexed `outgoing.recipient` (one value per partner country, `$in`) with a
range on `updated_at`, so it reads the index entries of records with envelopes waiting and nothing else: no
sort, no `$or`, no range on `_id`, no count. Measured on the embedded Mongo-wire server (SecantusDB 0.7.0b3,
6,000 records): that find takes 3-5 ms, while any `$or`, and any find-and-modify that changes a record, scans
the whole collection (350-700 ms, growing with it). So the claim is two steps, each one cheap:

- **Grace**: a record written less than `grace_s` ago is left alone; the request that wrote it is delivering
  its envelopes itself right now (outgoing.deliver runs after the store).
- **Lease**: `claim` takes the first candidate whose lease is free or expired with the platform's claim
  (`plumbing.leases.claim`: candidate ids from that find, then a conditional `update_one` by `_id`), atomic, so
  two relay replicas never both take a record (the second finds the lease taken). `release` frees it; `hold`
  keeps it as that record's back-off after a failed delivery. The lease does not change the record's version,
  so it never makes a command conflict.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from pymongo.collection import Collection

from exchange.adapters.documents import ExchangeCaseDocument
from plumbing.clock import Clock, to_millis
from plumbing.leases import claim

LEASE = "delivery_lease_until"


@dataclass(frozen=True)
class Claimed:
    record_id: str
    owner_country: str


class UndeliveredRecords:
    def __init__(
        self,
        countries: Iterable[str],
        clock: Clock,
        *,
        grace_s: float = 30.0,
        lease_s: float = 120.0,
        collection: Callable[[], Collection] = ExchangeCaseDocument._get_collection,
    ) -> None:
        self.countries = sorted(countries)
        self.clock = clock
        self.grace = timedelta(seconds=grace_s)
        self.lease = timedelta(seconds=lease_s)
        self._collection = collection

    def query(self) -> dict[str, Any]:
        """The selection: records with an envelope for any partner, written before the grace period."""
        now = to_millis(self.clock.now())
        return {"outgoing.recipient": {"$in": self.countries}, "updated_at": {"$lte": now - self.grace}}

    def claim(self) -> Claimed | None:
        """Take one record whose envelopes wait and whose lease is free (or expired); None when there is none."""
        now = to_millis(self.clock.now())
        taken = claim(
            self._collection(),
            self.query(),
            LEASE,
            now,
            {"$set": {LEASE: now + self.lease}},
            {"owner_country": 1},
        )
        return None if taken is None else Claimed(str(taken["_id"]), str(taken["owner_country"]))

    def release(self, record_id: str) -> None:
        self._collection().update_one({"_id": record_id}, {"$set": {LEASE: None}})

    def hold(self, record_id: str, seconds: float) -> None:
        """Keep the record claimed for `seconds` more: its back-off after a delivery that failed."""
        until = to_millis(self.clock.now()) + timedelta(seconds=seconds)
        self._collection().update_one({"_id": record_id}, {"$set": {LEASE: until}})
