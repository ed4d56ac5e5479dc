"""Retention against the real Mongo-wire server, with the clock set instead of slept: the scheduler claims only
records whose `retention_due_at` has come, anonymises a closed record past its period once (logged in the access
log with purpose `retention`), looks again at an open one a period later, and the access log loses its old entries
from a checkpoint from which the chain still verifies."""

from datetime import UTC, datetime, timedelta

import pytest
from mongoengine import DateTimeField, StringField

from plumbing.access_log import AccessLog
from plumbing.auth import Caller
from plumbing.clock import FixedClock, as_utc
from plumbing.config import platform_config
from plumbing.documents import OwnedDocument
from plumbing.repository import ScopedRepository, SystemRepository
from plumbing.retention import ACTOR, PURPOSE, Retained, ServiceRetention
from plumbing.scheduler import DeadlineScheduler

pytestmark = pytest.mark.integration

ALIAS = "plumbing-retention-tests"
T0 = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)


class Dossier(OwnedDocument):
    """A record of type `referral` (P5Y from closed, anonymise): `note` is what anonymising removes."""

    meta = {"collection": "dossiers", "db_alias": ALIAS}
    RETENTION_CLASS = "referral"
    note = StringField()
    code = StringField()
    ended_at = DateTimeField(null=True)


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


def anonymise(doc: Dossier) -> None:
    doc.note = None


@pytest.fixture
def clock():
    return FixedClock(T0)


@pytest.fixture(autouse=True)
def clean(database):
    Dossier.objects.delete()
    database.drop_collection("access_log")
    database.drop_collection("access_log_head")


@pytest.fixture
def access_log(database, clock):
    log = AccessLog(database, clock, purposes=platform_config().purpose_codes)
    yield log
    # The head is moved by a thread after the answer: left pending, it would land after the next test dropped the
    # log and point that test's first append at an entry that is not there.
    assert log.flush()


@pytest.fixture
def retention(clock, access_log):
    return ServiceRetention(
        "plumbing-tests",
        [Retained(Dossier, closed_at=lambda doc: doc.ended_at, anonymise=anonymise)],
        records=lambda cls, actor: SystemRepository(cls, clock, actor=actor),
        config=platform_config(),
        clock=clock,
        access_log=access_log,
    )


def dossier(clock, *, ended: bool) -> Dossier:
    doc = Dossier(note="met at the bus station", code="shelter", ended_at=clock.now() if ended else None)
    return ScopedRepository(Dossier, CALLER, clock).insert(doc)


def test_a_closed_record_past_its_period_is_anonymised_once_and_logged(clock, retention, access_log):
    closed, still_open = dossier(clock, ended=True), dossier(clock, ended=False)
    assert as_utc(Dossier.objects.get(id=closed.id).retention_due_at) == T0.replace(year=2031)
    scheduler = DeadlineScheduler(retention.jobs(), clock=clock)

    clock.set(T0.replace(year=2031) - timedelta(days=1))
    assert scheduler.run_once() == 0  # nothing is due yet: neither is even claimed
    assert Dossier.objects.get(id=closed.id).note == "met at the bus station"

    clock.set(T0.replace(year=2031) + timedelta(days=1))
    assert scheduler.run_once() == 1
    assert scheduler.run_once() == 0  # once: an anonymised record is not due again

    done = Dossier.objects.get(id=closed.id)
    assert (done.note, done.code, done.updated_by) == (None, "shelter", ACTOR)
    assert done.retention_due_at is None and as_utc(done.anonymised_at) == clock.now()
    kept = Dossier.objects.get(id=still_open.id)
    assert kept.note == "met at the bus station"
    # The open record is looked at again a period later, without a new version.
    assert as_utc(kept.retention_due_at) == clock.now().replace(year=2036)
    assert kept.version == 1

    access_log.record_read(CALLER, "case-management", "getDossier", "referral", [closed.id], "ok", None, None)
    [entry] = access_log.query(person_id=closed.id, purpose=PURPOSE, country="AL")
    assert (entry.sub, entry.country, entry.ids, entry.outcome) == (ACTOR, "AL", (closed.id,), "anonymised")
    assert entry.operation_id == "retention.anonymise"


def test_a_record_changed_while_it_is_anonymised_is_left_for_the_next_pass(clock, retention, database):
    closed = dossier(clock, ended=True)
    clock.set(T0.replace(year=2032))
    [job] = retention.jobs()
    real_get = SystemRepository.get

    def changed_meanwhile(self, record_id):  # an officer's write lands between the job's read and its write
        doc = real_get(self, record_id)
        database.dossiers.update_one({"_id": record_id}, {"$inc": {"version": 1}})
        return doc

    SystemRepository.get = changed_meanwhile  # type: ignore[method-assign]
    try:
        assert DeadlineScheduler([job], clock=clock).run_once() == 0
    finally:
        SystemRepository.get = real_get  # type: ignore[method-assign]
    assert Dossier.objects.get(id=closed.id).note == "met at the bus station"
    assert DeadlineScheduler([job], clock=clock).run_once() == 1


def read(access_log: AccessLog, n: int) -> None:
    for i in range(n):
        access_log.record_read(CALLER, "case-management", "getThing", "thing", [f"id-{i}"], "ok", None, None)


def test_old_access_log_entries_are_removed_from_a_checkpoint_and_the_rest_still_verifies(
    clock, retention, access_log
):
    read(access_log, 3)  # written in 2026
    clock.set(T0.replace(year=2030))
    read(access_log, 2)  # written in 2030
    [prune] = retention.tasks()

    clock.set(
        T0.replace(year=2036) + timedelta(days=1)
    )  # the 2026 entries are past 10 years, not the 2030 ones
    assert prune() == 3
    assert prune() == 0
    assert access_log.checkpoint()[0] == 3
    assert [e.seq for e in access_log.query(limit=10)] == [4, 5]
    report = access_log.verify_chain()
    assert report.ok and report.checked == 2

    # New entries chain on; altering a kept one is still detected.
    read(access_log, 1)
    assert access_log.verify_chain().ok
    access_log.entries.update_one({"_id": 5}, {"$set": {"sub": "someone-else"}})
    assert access_log.verify_chain().first_bad_seq == 5


def test_the_last_entry_is_never_removed(clock, retention, access_log):
    read(access_log, 2)
    clock.set(T0.replace(year=2040))
    [prune] = retention.tasks()
    assert prune() == 1  # the tip stays: the chain continues from it
    assert [e.seq for e in access_log.query(limit=10)] == [2]
    read(access_log, 1)
    assert access_log.verify_chain().ok
