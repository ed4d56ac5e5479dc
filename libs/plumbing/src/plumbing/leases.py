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
"""

from __future__ import annotations

from collections.abc import Mapping
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
        for doc_id in _candidates(collection, conditions, lease_field, free, CANDIDATES):
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
) -> list[dict[str, Any]]:
    """Claim up to `limit` documents at once (see `claim`) and return them as they are after the update, never
    leased first. `mine` is a filter that only the documents carrying this very claim match (the claimer's name
    and the lease's end `update` sets): `update_many` says how many documents it updated, not which."""
    others = _beside_id(conditions)
    candidates: list[Any] = []
    claimed = 0
    for free in (None, {"$lte": now}):
        wanted = limit - claimed
        if wanted <= 0:
            break  # a full batch of never-leased documents: the expired ones wait for the next batch
        ids = _candidates(collection, conditions, lease_field, free, wanted)
        if not ids:
            continue
        # One update for them all, conditional on the lease being still free, which it checks and sets
        # atomically per document: of several claimers, exactly one takes each document. `_id` first: the
        # embedded server plans by the first member an index serves.
        matched = collection.update_many({"_id": {"$in": ids}, **others, lease_field: free}, dict(update))
        if matched.matched_count:
            claimed += matched.matched_count
            candidates.extend(ids)
    if not claimed:
        return []
    # Read after the claim: what another claimer may still have changed is over once the lease is ours.
    read = collection.find({"_id": {"$in": candidates}, **mine}, dict(projection) if projection else None)
    found = {row["_id"]: dict(row) for row in read}
    return [found[doc_id] for doc_id in candidates if doc_id in found]


def _candidates(
    collection: Collection, conditions: Mapping[str, Any], lease_field: str, free: Any, limit: int
) -> list[Any]:
    """The ids of up to `limit` documents matching `conditions` whose lease field matches `free` (unset, or
    expired): one read, the claimers' own conditional writes decide which of them each one takes."""
    return [row["_id"] for row in collection.find({**conditions, lease_field: free}, {"_id": 1}).limit(limit)]


def _beside_id(conditions: Mapping[str, Any]) -> dict[str, Any]:
    """The conditions other than `_id`, which a claim's write names itself, first."""
    return {name: value for name, value in conditions.items() if name != "_id"}
