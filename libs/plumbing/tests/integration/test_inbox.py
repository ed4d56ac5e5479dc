"""Apply-once against the Mongo-wire server, including racing duplicate deliveries."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from mongoengine import Document, ListField, StringField, connect, disconnect
from pymongo import MongoClient

from plumbing.inbox import Inbox, apply_once

pytestmark = pytest.mark.integration


@pytest.fixture()
def db(mongo: Any) -> Iterator[Any]:
    client: MongoClient = MongoClient(mongo.env["MONGODB_URI"])
    name = f"inbox_{uuid.uuid4().hex[:8]}"
    yield client[name]
    client.drop_database(name)
    client.close()


def event(event_id: str | None = None) -> dict[str, Any]:
    return {
        "id": event_id or str(uuid.uuid4()),
        "type": "identification.case.closed.v1",
        "subject": "s",
        "data": {},
    }


def race(times: int, action: Any) -> list[Any]:
    results: list[Any] = []
    barrier = threading.Barrier(times)

    def run() -> None:
        barrier.wait()
        results.append(action())

    threads = [threading.Thread(target=run) for _ in range(times)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results


def test_record_once_is_true_exactly_once_even_under_a_race(db) -> None:
    inbox = Inbox(db["inbox"], "exchange.identification-events")
    other = Inbox(db["inbox"], "return.identification-events")
    e = event()
    assert sorted(race(8, lambda: inbox.record_once(e))) == [False] * 7 + [True]
    assert other.record_once(e) is True  # the key is (consumer, event id): another consumer applies it too
    assert db["inbox"].count_documents({}) == 2


def test_apply_once_guards_an_aggregate_update(db) -> None:
    db["referrals"].insert_one({"_id": "r1", "n": 0})
    e = event()
    results = race(8, lambda: apply_once(db["referrals"], {"_id": "r1"}, e["id"], {"$inc": {"n": 1}}))
    assert sorted(results) == [False] * 7 + [True]
    assert db["referrals"].find_one({"_id": "r1"})["n"] == 1
    assert apply_once(db["referrals"], {"_id": "r1"}, str(uuid.uuid4()), {"$inc": {"n": 1}}) is True
    assert db["referrals"].find_one({"_id": "r1"})["n"] == 2


def test_apply_once_with_upsert_creates_once(db) -> None:
    e = event()
    results = race(
        6, lambda: apply_once(db["tallies"], {"_id": "t"}, e["id"], {"$inc": {"n": 1}}, upsert=True)
    )
    assert results.count(True) == 1
    assert db["tallies"].find_one({"_id": "t"})["n"] == 1


def test_apply_once_works_with_a_mongoengine_document_class(mongo, db) -> None:
    connect(db=db.name, host=mongo.env["MONGODB_URI"], alias="inbox-tests")
    try:

        class Referral(Document):
            meta = {"db_alias": "inbox-tests", "collection": "me_referrals"}
            status = StringField()
            applied_event_ids = ListField(StringField())

        referral = Referral(status="new").save()
        e = event()
        assert apply_once(Referral, {"_id": referral.pk}, e["id"], {"$set": {"status": "open"}}) is True
        assert apply_once(Referral, {"_id": referral.pk}, e["id"], {"$set": {"status": "again"}}) is False
        referral.reload()
        assert referral.status == "open" and referral.applied_event_ids == [e["id"]]
        with pytest.raises(ValueError):
            apply_once(Referral, {"_id": referral.pk}, e["id"], {"status": "replacement"})
    finally:
        disconnect("inbox-tests")


def test_records_expire_after_the_configured_retention_of_inbox_entries(db) -> None:
    inbox = Inbox(db["received_events"], "referral")
    assert inbox.record_once(event())
    indexes = {index["name"]: index for index in db["received_events"].list_indexes()}
    ttl = indexes["retention_received_at"]
    assert dict(ttl["key"]) == {"received_at": 1}
    assert ttl["expireAfterSeconds"] == 30 * 24 * 3600  # config/platform.yaml retention.inbox-entry: 30 days


def test_a_page_of_received_events_lists_one_countrys_records_by_index(db) -> None:
    """The listing a national system reads (`GET .../received-events`): one country's records of this consumer,
    oldest first, every one once across pages (records received in the same millisecond included), each query
    served by the page index and reading that country's records after the cursor, not the collection."""
    from datetime import UTC, datetime, timedelta

    from plumbing.pagination import PageRequest

    moments = iter([datetime(2026, 1, 1, tzinfo=UTC) + timedelta(milliseconds=n // 3) for n in range(90)])
    inbox = Inbox(
        db["received"],
        "referral",
        keep={"country": lambda e: e["data"]["country"]},
        clock=lambda: next(moments),
    )
    other = Inbox(db["received"], "return", keep={"country": lambda e: e["data"]["country"]})
    for n in range(90):
        record = {**event(), "data": {"country": ("AL", "XK", "ME")[n % 3] if n % 2 else "AL"}}
        inbox.record_once(record)
        other.record_once(record)
    expected = [
        row["_id"]
        for row in db["received"]
        .find({"consumer": "referral", "country": "XK"})
        .sort([("updated_at", 1), ("_id", 1)])
    ]
    seen: list[str] = []
    cursor = None
    db.command("profile", 2)  # this test's own database: only its queries are recorded
    try:
        while True:
            page = inbox.page(PageRequest.parse(4, cursor), country="XK")
            seen += [inbox.key(row["event_id"]) for row in page.items]
            if (cursor := page.next_cursor) is None:
                break
    finally:
        db.command("profile", 0)
    assert seen == expected and len(expected) == 15
    finds = [e["command"] for e in db.system.profile.find({"op": "query", "ns": f"{db.name}.received"})]
    assert finds
    for command in finds:
        plan = db["received"].find(command["filter"]).sort(list(command["sort"].items())).explain()
        assert "COLLSCAN" not in str(plan["queryPlanner"]["winningPlan"]), command["filter"]
        assert plan["executionStats"]["totalDocsExamined"] <= len(expected), command["filter"]
