"""The outbox relay alone draining a backlog on the embedded Mongo-wire server (context for figure 4's broker case;
run with `pytest -m bench bench/`, never by `make test`).

BENCH_RELAY_BACKLOG documents (5,000 by default, to keep `make bench` within its 15 minutes; 20,000 shows the
effect better) of ~2 kB, one pending event each, as a broker outage leaves them, are drained by one
`plumbing.outbox.Relay` whose producer acknowledges at once: what is measured is the relay's work on the
database (claims, read-back, finishing), not the broker's. Twice, on the same server in the same run: with the
candidate ids read ahead for ten batches (the relay as shipped, READ_AHEAD) and with a read per batch of 200 (the
relay before it), the baseline. The documents are not the identification service's (fewer indexes, no
encryption), so the rate is the relay's ceiling on this server, not the platform's catch-up: the catch-up figure
(bench/test_catch_up.py) measures that.

Results: printed, and written to .local/bench/relay_drain.json (with its rows of the summary table).
"""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from pymongo import MongoClient
from pymongo.collection import Collection
from pymongo.database import Database

from bench.figures import row, write_result
from plumbing.outbox import CLAIM_BATCH, MARK, PENDING, READ_AHEAD, Relay

pytestmark = pytest.mark.bench

BACKLOG = int(os.environ.get("BENCH_RELAY_BACKLOG", "5000"))


class _Acknowledged:
    def get(self, timeout: float | None = None) -> None:
        return None


class _InstantBroker:
    """A producer whose every send is acknowledged at once."""

    def send(self, topic: str, **record: Any) -> _Acknowledged:
        return _Acknowledged()

    def close(self, timeout: float | None = None) -> None:
        return None


@pytest.fixture
def database(mongo: Any) -> Iterator[Database]:
    client: MongoClient = MongoClient(mongo.env["MONGODB_URI"], tz_aware=True)
    name = f"bench_relay_{uuid.uuid4().hex[:8]}"
    yield client[name]
    client.drop_database(name)
    client.close()


def _outbox(database: Database, name: str) -> Collection:
    """A fresh collection per drain: a drained one keeps what its deletions left behind on this server."""
    collection = database[name]
    collection.create_index(MARK, sparse=True)
    collection.create_index([("owner_country", 1), ("updated_at", 1)])
    return collection


def _seed(collection: Collection, count: int) -> None:
    sealed = "x" * 1800  # about the size of a sealed person
    for start in range(0, count, 1000):
        docs = []
        for _ in range(start, min(count, start + 1000)):
            aggregate = str(uuid.uuid4())
            event = {
                "id": str(uuid.uuid4()),
                "specversion": "1.0",
                "source": "identification",
                "type": "identification.person.registered.v1",
                "subject": aggregate,
                "time": "2026-12-07T06:00:00.000Z",
                "data": {"person_id": aggregate, "country": "AL"},
            }
            now = datetime.now(UTC)
            docs.append(
                {
                    "_id": aggregate,
                    "owner_country": "AL",
                    "updated_at": now,
                    "sealed": sealed,
                    PENDING: [event],
                }
                | {MARK: True}
            )
        collection.insert_many(docs)


def _drain(collection: Collection, read_ahead: int) -> tuple[int, float]:
    relay = Relay([collection], _InstantBroker, topic_for=lambda envelope: "bench", read_ahead=read_ahead)
    started = time.perf_counter()
    published, broker_failed = (
        relay.run_once()
    )  # one pass: everything claimable now, as the relay's loop does
    assert not broker_failed
    return published, time.perf_counter() - started


def test_relay_drain_with_candidates_read_ahead_against_a_read_per_batch(database: Database) -> None:
    measured: dict[str, dict[str, float]] = {}
    for name, read_ahead in (("read ahead", READ_AHEAD), ("read per batch", CLAIM_BATCH)):
        outbox = _outbox(database, name.replace(" ", "_"))
        _seed(outbox, BACKLOG)
        published, seconds = _drain(outbox, read_ahead)
        assert published == BACKLOG and outbox.count_documents({MARK: True}) == 0
        measured[name] = {"seconds": round(seconds, 2), "events_per_s": round(published / seconds, 1)}
        database.drop_collection(outbox)
    before, after = measured["read per batch"], measured["read ahead"]
    write_result(
        "relay_drain",
        {"backlog": BACKLOG, "measured": measured},
        [
            row(
                "4",
                f"relay alone drains {BACKLOG} one-event documents (instant broker), candidates read ahead",
                f"{after['events_per_s']}/s ({after['seconds']} s)",
                f"{before['events_per_s']}/s read per batch",
                f"{after['events_per_s'] / before['events_per_s']:.2f}x",
                "context",
            )
        ],
    )
