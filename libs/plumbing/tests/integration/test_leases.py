"""plumbing.leases.claim on the real Mongo-wire server: the same documents the single `$or` filter selected -
never leased first, then expired leases, never a live one - each taken by one claimer only."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

import pytest

from plumbing.leases import ReadAhead, claim, claim_batch

pytestmark = pytest.mark.integration

ALIAS = "leases-test"
NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
LEASE = "lease_until"


def take(collection, now=NOW):
    return claim(
        collection, {"due": {"$lte": now}}, LEASE, now, {"$set": {LEASE: now + timedelta(minutes=1)}}
    )


def test_free_and_expired_leases_are_claimed_and_live_ones_are_not(database) -> None:
    collection = database["lease_claims"]
    collection.insert_many(
        [
            {"_id": "live", "due": NOW, LEASE: NOW + timedelta(seconds=5)},
            {"_id": "expired", "due": NOW, LEASE: NOW - timedelta(seconds=5)},
            {"_id": "never", "due": NOW},
            {"_id": "released", "due": NOW, LEASE: None},
            {"_id": "not-due", "due": NOW + timedelta(hours=1)},
        ]
    )
    taken = [take(collection) for _ in range(5)]
    names = [found["_id"] for found in taken if found is not None]
    assert sorted(names[:2]) == ["never", "released"] and names[2:] == ["expired"]
    assert taken[3:] == [None, None]
    assert collection.find_one({"_id": "expired"})[LEASE] == NOW + timedelta(minutes=1)


def test_concurrent_claimers_never_take_one_document_twice(database) -> None:
    collection = database["lease_race"]
    collection.insert_many([{"_id": f"d{n}", "due": NOW} for n in range(20)])
    taken: list[str] = []

    def claimer() -> None:
        while (found := take(collection)) is not None:
            taken.append(found["_id"])

    threads = [threading.Thread(target=claimer) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(taken) == sorted(f"d{n}" for n in range(20))


def take_batch(collection, owner: str, limit: int, now=NOW, read_ahead: ReadAhead | None = None):
    until = now + timedelta(minutes=1)
    update = {"$set": {LEASE: until, "owner": owner}}
    return claim_batch(
        collection,
        {"due": {"$lte": now}},
        LEASE,
        now,
        update,
        limit=limit,
        mine={"owner": owner, LEASE: until},
        read_ahead=read_ahead,
    )


def test_a_batch_claim_takes_never_leased_documents_first_then_expired_ones_never_live_ones(database) -> None:
    collection = database["lease_batch_claims"]
    collection.insert_many(
        [
            {"_id": "live", "due": NOW, LEASE: NOW + timedelta(seconds=5), "owner": "other"},
            {"_id": "expired", "due": NOW, LEASE: NOW - timedelta(seconds=5), "owner": "other"},
            {"_id": "never", "due": NOW},
            {"_id": "released", "due": NOW, LEASE: None},
            {"_id": "not-due", "due": NOW + timedelta(hours=1)},
        ]
    )
    first = take_batch(collection, "a", limit=2)
    assert sorted(found["_id"] for found in first) == ["never", "released"]  # a full batch: expired ones wait
    assert all(found[LEASE] == NOW + timedelta(minutes=1) and found["owner"] == "a" for found in first)
    assert [found["_id"] for found in take_batch(collection, "b", limit=5)] == ["expired"]
    assert take_batch(collection, "c", limit=5) == []
    assert collection.find_one({"_id": "live"})["owner"] == "other"


@pytest.mark.parametrize("window", [None, 20], ids=["read per batch", "read ahead"])
def test_concurrent_batch_claimers_never_take_one_document_twice(database, window) -> None:
    collection = database[f"lease_batch_race_{window}"]
    collection.insert_many([{"_id": f"d{n}", "due": NOW} for n in range(60)])
    taken: dict[str, list[str]] = {}

    def claimer(owner: str) -> None:
        taken[owner] = []
        ahead = ReadAhead(window) if window else None
        while batch := take_batch(collection, owner, limit=7, read_ahead=ahead):
            taken[owner].extend(found["_id"] for found in batch)

    threads = [threading.Thread(target=claimer, args=(f"claimer-{n}",)) for n in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    every = [doc_id for ids in taken.values() for doc_id in ids]
    assert sorted(every) == sorted(f"d{n}" for n in range(60))  # each once
    for owner, ids in taken.items():  # and each returned to the claimer whose lease it carries
        assert all(collection.find_one({"_id": doc_id})["owner"] == owner for doc_id in ids)


class CountingFinds:
    """The collection, counting the reads of candidates sent through it."""

    def __init__(self, collection) -> None:
        self.collection = collection
        self.finds = 0

    def find(self, *args, **kwargs):
        self.finds += 1
        return self.collection.find(*args, **kwargs)

    def __getattr__(self, name):
        return getattr(self.collection, name)


def test_ids_read_ahead_serve_the_next_batches_and_stale_ones_are_read_afresh(database) -> None:
    collection = database["lease_read_ahead"]
    collection.insert_many([{"_id": f"d{n:02}", "due": NOW} for n in range(12)])
    counted, ahead = CountingFinds(collection), ReadAhead(window=6)

    def batch() -> list[str]:
        return sorted(found["_id"] for found in take_batch(counted, "a", limit=2, read_ahead=ahead))

    # One read of candidates (6 ids) serves three batches; each batch reads back what it claimed.
    assert [batch(), batch()] == [["d00", "d01"], ["d02", "d03"]] and counted.finds == 1 + 2
    # Another claimer takes the ids still kept: the next batch finds them stale and reads afresh instead of
    # answering "none" while documents are free.
    assert sorted(found["_id"] for found in take_batch(collection, "b", limit=2)) == ["d04", "d05"]
    assert batch() == ["d06", "d07"] and counted.finds == 1 + 2 + 2
    assert [batch(), batch(), batch()] == [["d08", "d09"], ["d10", "d11"], []]
    assert collection.count_documents({"owner": "a"}) == 10  # each document once: d04 and d05 are b's
