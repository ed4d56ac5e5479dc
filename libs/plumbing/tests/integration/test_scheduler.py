"""The deadline scheduler against the real Mongo-wire server, with the clock advanced instead of slept: what is
due is performed once, by one replica at a time, again after a restart only if not done; a failing document is
held by its lease and retried; a document whose act changes nothing is looked at once per pass, not forever."""

import threading
from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest
from mongoengine import IntField

from plumbing.auth import Caller
from plumbing.clock import FixedClock
from plumbing.documents import OwnedDocument
from plumbing.repository import ScopedRepository
from plumbing.scheduler import Claimed, DeadlineJob, DeadlineScheduler

pytestmark = pytest.mark.integration

ALIAS = "plumbing-scheduler-tests"
T0 = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)


class Reminder(OwnedDocument):
    """A record with one deadline: at `next_due_at` it is reminded once (`reminded` counts the reminders)."""

    meta = {"collection": "reminders", "db_alias": ALIAS, "indexes": [{"fields": ["next_due_at"]}]}
    RETENTION_CLASS = "case"
    reminded = IntField(default=0)


CALLER = Caller(
    sub="officer-1",
    azp="ui",
    country="AL",
    agency="al-police",
    roles=frozenset({"police-officer"}),
    acting_user=None,
    is_machine=False,
    token="not-a-token",
)


@pytest.fixture
def clock():
    return FixedClock(T0)


@pytest.fixture(autouse=True)
def clean(database):
    Reminder.objects.delete()


def store(clock, due_in: timedelta | None) -> str:
    doc = Reminder(next_due_at=None if due_in is None else clock.now() + due_in)
    return ScopedRepository(Reminder, CALLER, clock).insert(doc).id


def remind(database, clock, calls: list[str] | None = None):
    """The service's act: remind once, guarded by the deadline still being due (as a version guard would)."""

    def act(claimed: Claimed) -> bool:
        doc_id = claimed.id
        assert claimed.owner_country == "AL"
        if calls is not None:
            calls.append(doc_id)
        done = database.reminders.update_one(
            {"_id": doc_id, "next_due_at": {"$lte": clock.now()}},
            {"$inc": {"reminded": 1}, "$set": {"next_due_at": None}},
        )
        return done.modified_count == 1

    return act


def test_only_what_is_due_is_performed_and_only_once(database, clock):
    soon, later, never = store(clock, timedelta(hours=1)), store(clock, timedelta(days=2)), store(clock, None)
    scheduler = DeadlineScheduler([DeadlineJob("remind", Reminder, remind(database, clock))], clock=clock)
    assert scheduler.run_once() == 0
    clock.advance(hours=1)
    assert scheduler.run_once() == 1
    assert scheduler.run_once() == 0
    restarted = DeadlineScheduler([DeadlineJob("remind", Reminder, remind(database, clock))], clock=clock)
    clock.advance(days=2)
    assert restarted.run_once() == 1
    counts = {d["_id"]: d["reminded"] for d in database.reminders.find()}
    assert counts == {soon: 1, later: 1, never: 0}
    assert all(d.get("deadline_lease_until") is None for d in database.reminders.find())


def test_two_replicas_never_work_on_the_same_document(database, clock):
    ids = [store(clock, timedelta(minutes=5)) for _ in range(40)]
    clock.advance(minutes=5)
    calls: list[str] = []
    replicas = [
        DeadlineScheduler(
            [DeadlineJob("remind", Reminder, remind(database, clock, calls))], clock=clock, owner=n
        )
        for n in ("a", "b")
    ]
    threads = [threading.Thread(target=replica.run_once) for replica in replicas]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert Counter(calls) == {doc_id: 1 for doc_id in ids}  # the lease: each claimed by one replica
    assert {d["reminded"] for d in database.reminders.find()} == {1}


def test_a_failing_document_is_held_by_its_lease_and_the_others_go_on(database, clock):
    broken, fine = store(clock, timedelta(minutes=1)), store(clock, timedelta(minutes=1))
    attempts: list[str] = []
    healthy = remind(database, clock)

    def act(claimed: Claimed) -> bool:
        attempts.append(claimed.id)
        if claimed.id == broken and attempts.count(broken) == 1:
            raise ConnectionError("a write failed")
        return healthy(claimed)

    scheduler = DeadlineScheduler(
        [DeadlineJob("remind", Reminder, act)], clock=clock, lease=timedelta(minutes=2)
    )
    clock.advance(minutes=1)
    assert scheduler.run_once() == 1  # the fine one
    assert scheduler.run_once() == 0 and attempts.count(broken) == 1  # held: its lease is the back-off
    clock.advance(minutes=3)
    assert scheduler.run_once() == 1
    assert {d["_id"]: d["reminded"] for d in database.reminders.find()} == {broken: 1, fine: 1}


def test_a_document_its_job_leaves_due_is_looked_at_once_per_pass(database, clock):
    stuck = store(clock, timedelta(minutes=1))
    calls: list[str] = []

    def lost_race(claimed: Claimed) -> bool:
        calls.append(claimed.id)
        return False  # e.g. a version conflict: nothing changed, next_due_at still in the past

    scheduler = DeadlineScheduler([DeadlineJob("remind", Reminder, lost_race)], clock=clock)
    clock.advance(minutes=1)
    assert scheduler.run_once() == 0
    assert scheduler.run_once() == 0
    assert calls == [stuck, stuck]


def test_where_narrows_the_claim(database, clock):
    store(clock, timedelta(minutes=1))
    calls: list[str] = []
    job = DeadlineJob("remind", Reminder, remind(database, clock, calls), where={"reminded": {"$gt": 0}})
    clock.advance(minutes=1)
    assert DeadlineScheduler([job], clock=clock).run_once() == 0
    assert calls == []
