"""Claiming one document under a lease (outbox relay, follow-up steps, deadline scheduler), in a filter shape
the database serves by index.

A lease is free when its field is unset or has expired. Written as one filter that is `{"$or": [{field: None},
{field: {"$lte": now}}]}`; the embedded Mongo-wire server plans no index for a filter with a member starting
with `$`, so every claim scanned the whole collection (measured on the exchange relay: 19 ms per claim at a few
hundred records, the largest share of the server's time under load, and growing with the collection). Two plain
filters, tried one after the other, select the same documents, each led by the caller's indexed condition.

A claim is a read of candidate ids and a conditional `update_one` by `_id` (the lease still free: exactly one
claimer's write matches), then a read of the claimed document by `_id`. Not `find_one_and_update`: on the
embedded server a findAndModify that matches costs a walk of the whole collection (measured: 2.9 ms at 300
documents, 21 ms at 3,000, whatever the filter), an `update_one` by `_id` 0.7-1.1 ms at either size.
`claim_batch` (the outbox relay's drain of a backlog) takes several documents from one read of candidates (that
read costs the size of the backlog on that server, once per batch instead of once per document), claims them in
one `update_many` on their ids and reads them back in one `_id` `$in` read: three statements for up to `limit`
documents. Measured on the embedded server at 3,000 documents of 3 kB: claiming 100 took 51 ms
with one `update_many`, 359 ms as a bulk write of 100 `update_one` (one commit, one journal sync, each), about
1.3 ms each one by one; an `$in` read of 25 ids 2.5 ms (a point lookup each), a `find_one` 0.5 ms.

A `ReadAhead` passed to `claim_batch` reads more candidate ids than one batch takes and keeps the rest for the
next calls, so a backlog is read once per several batches. Ids read ahead may be stale by the time they are used
(claimed by another claimer, finished, no longer matching): the conditional update skips those, and when none of
them could be claimed the candidates are read afresh in the same call, so an empty answer still means that no
document is claimable. Measured on the embedded server, an outbox of 20,000 one-event documents drained with an
instant broker: the candidate reads were 45 of 62 s with a read per batch of 200.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from pymongo.collection import Collection


def claim(
    collection: Collection,
    conditions: Mapping[str, Any],
    lease_field: str,
    now: datetime,
    update: Mapping[str, Any],
    projection: Mapping[str, Any] | None = None,
) -> dict[str, Any] | None:
    """Apply `update` (which sets the lease) to one document matching `conditions` whose lease is free at `now`,
    atomically (a conditional write), and return it as it is after the update; None when there is none.
    Documents never leased are taken before those whose lease expired. Put the most selective indexed condition
    first."""
    others = _beside_id(conditions)
    for free in (None, {"$lte": now}):
        for doc_id in _candidates(collection, conditions, lease_field, free, limit=CANDIDATES):
            # `_id` first: the embedded server plans by the first member an index serves.
            taken = collection.update_one({"_id": doc_id, **others, lease_field: free}, dict(update))
            if taken.matched_count != 1:
                continue  # another claimer's, or no longer matching: the next candidate
            found = collection.find_one({"_id": doc_id}, dict(projection) if projection is not None else None)
            if found is not None:
                return dict(found)
    return None


CANDIDATES = 10  # ids read per claim: a few, in case other claimers take the first ones meanwhile


def claim_batch(
    collection: Collection,
    conditions: Mapping[str, Any],
    lease_field: str,
    now: datetime,
    update: Mapping[str, Any],
    projection: Mapping[str, Any] | None = None,
    *,
    limit: int,
    mine: Mapping[str, Any],
    read_ahead: ReadAhead | None = None,
) -> list[dict[str, Any]]:
    """Claim up to `limit` documents at once (see `claim`) and return them as they are after the update, never
    leased first. `mine` is a filter that only the documents carrying this very claim match (the claimer's name
    and the lease's end `update` sets): `update_many` says how many documents it updated, not which.
    `read_ahead`: candidate ids kept between calls (see `ReadAhead`); one per claimer and collection."""
    candidates: list[Any] = []
    for kind, free in ((NEVER, None), (EXPIRED, {"$lte": now})):
        wanted = limit - len(candidates)
        if wanted <= 0:
            break
        ids, exhausted = _claim_some(
            collection, conditions, lease_field, free, update, wanted, read_ahead, kind
        )
        candidates.extend(ids)
        if not exhausted:
            break  # documents never leased remain: the expired ones wait for a later batch
    if not candidates:
        return []
    # Read after the claim: what another claimer may still have changed is over once the lease is ours.
    read = collection.find({"_id": {"$in": candidates}, **mine}, dict(projection) if projection else None)
    found = {row["_id"]: dict(row) for row in read}
    return [found[doc_id] for doc_id in candidates if doc_id in found]


def _claim_some(
    collection: Collection,
    conditions: Mapping[str, Any],
    lease_field: str,
    free: Any,
    update: Mapping[str, Any],
    wanted: int,
    read_ahead: ReadAhead | None,
    kind: str,
) -> tuple[list[Any], bool]:
    """Claim up to `wanted` documents of one kind (lease never set, or expired): the candidate ids the claim
    tried (those it took carry the claim; none when it took nothing), and whether a fresh read found fewer
    than wanted, so that no more documents of that kind are known."""
    others = _beside_id(conditions)
    fresh = read_ahead is None or not read_ahead.holds(kind)
    while True:
        if fresh:
            ids = _candidates(collection, conditions, lease_field, free, read_ahead, kind, wanted)
        else:
            assert read_ahead is not None
            ids = read_ahead.take(kind, wanted)
        if not ids:
            return [], True
        # One update for them all, conditional on the lease being still free, which it checks and sets
        # atomically per document: of several claimers, exactly one takes each document. `_id` first: the
        # embedded server plans by the first member an index serves.
        matched = collection.update_many({"_id": {"$in": ids}, **others, lease_field: free}, dict(update))
        if matched.matched_count:
            return ids, fresh and len(ids) < wanted
        if fresh:
            return [], len(ids) < wanted  # every one taken by other claimers meanwhile
        fresh = True  # every id read ahead was stale: read afresh before answering "none"


NEVER, EXPIRED = "never leased", "lease expired"


@dataclass
class ReadAhead:
    """Candidate ids read beyond a batch's need, kept for the next `claim_batch` calls: up to `window` ids per
    read (a read costs the backlog's size on the embedded server whatever its limit, see the module doc)."""

    window: int
    _ids: dict[str, list[Any]] = field(default_factory=dict)

    def holds(self, kind: str) -> bool:
        return bool(self._ids.get(kind))

    def take(self, kind: str, count: int) -> list[Any]:
        ids = self._ids.get(kind) or []
        taken, self._ids[kind] = ids[:count], ids[count:]
        return taken

    def keep(self, kind: str, ids: list[Any]) -> None:
        self._ids[kind] = ids


def _candidates(
    collection: Collection,
    conditions: Mapping[str, Any],
    lease_field: str,
    free: Any,
    read_ahead: ReadAhead | None = None,
    kind: str = NEVER,
    limit: int = 1,
) -> list[Any]:
    """The ids of up to `limit` documents matching `conditions` whose lease field matches `free` (unset, or
    expired): one read, the claimers' own conditional writes decide which of them each one takes. With
    `read_ahead`, up to its window are read and those beyond `limit` kept in it."""
    wanted = max(limit, read_ahead.window) if read_ahead is not None else limit
    ids = [row["_id"] for row in collection.find({**conditions, lease_field: free}, {"_id": 1}).limit(wanted)]
    if read_ahead is not None:
        read_ahead.keep(kind, ids[limit:])
    return ids[:limit]


def _beside_id(conditions: Mapping[str, Any]) -> dict[str, Any]:
    """The conditions other than `_id`, which a claim's write names itself, first."""
    return {name: value for name, value in conditions.items() if name != "_id"}
