"""Claiming one document under a lease (outbox relay, follow-up steps, deadline scheduler), in a filter shape
the database serves by index.

A lease is free when its field is unset or has expired. Written as one filter that is `{"$or": [{field: None},
{field: {"$lte": now}}]}`; the embedded Mongo-wire server plans no index for a filter with a member starting
with `$`, so every claim scanned the whole collection (measured on the exchange relay: 19 ms per claim at a few
hundred records, the largest share of the server's time under load, and growing with the collection). Two plain
filters, tried one after the other, select the same documents, each led by the caller's indexed condition.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from pymongo import ReturnDocument
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
    atomically (find-and-modify), and return it as it is after the update; None when there is none. Documents
    never leased are taken before those whose lease expired. Put the most selective indexed condition first."""
    for free in (None, {"$lte": now}):
        found = collection.find_one_and_update(
            {**conditions, lease_field: free},
            dict(update),
            projection=dict(projection) if projection is not None else None,
            return_document=ReturnDocument.AFTER,
        )
        if found is not None:
            return dict(found)
    return None
