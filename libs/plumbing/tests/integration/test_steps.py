"""Follow-up steps against the real Mongo-wire server: stored with the first write, completed by the request or,
after a crash, by the runner; never twice; a failing step is retried after its lease."""

import uuid
from datetime import UTC, datetime, timedelta

import pytest
from mongoengine import StringField

from plumbing.auth import Caller
from plumbing.clock import FixedClock
from plumbing.documents import OwnedDocument
from plumbing.errors import Conflict
from plumbing.repository import ScopedRepository, SystemRepository
from plumbing.steps import StepRunner, new_step, perform

pytestmark = pytest.mark.integration

ALIAS = "plumbing-steps-tests"


class Parcel(OwnedDocument):
    meta = {"collection": "parcels", "db_alias": ALIAS}
    RETENTION_CLASS = "case"
    note = StringField()


class Receipt(OwnedDocument):
    meta = {"collection": "receipts", "db_alias": ALIAS}
    RETENTION_CLASS = "case"
    parcel_id = StringField()


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
    return FixedClock(datetime(2026, 3, 1, 9, 0, tzinfo=UTC))


@pytest.fixture(autouse=True)
def clean(database):
    Parcel.objects.delete()
    Receipt.objects.delete()


def write_receipt(parcel: Parcel, step) -> None:
    """An idempotent second write: the receipt's id is fixed in the step."""
    try:
        SystemRepository(Receipt, actor=step["by"]).insert(
            Receipt(id=step["receipt_id"], parcel_id=parcel.id),
            owner_country=parcel.owner_country,
            owner_agency=parcel.owner_agency,
        )
    except Conflict:
        pass


def store_parcel(clock) -> tuple[Parcel, dict]:
    step = new_step("write_receipt", clock.now(), by=CALLER.sub, receipt_id=str(uuid.uuid4()))
    parcel = ScopedRepository(Parcel, CALLER, clock).insert(Parcel(note="n"), steps=[step])
    return parcel, step


def test_the_request_completes_its_step_and_removes_it(database, clock):
    parcel, step = store_parcel(clock)
    assert database.parcels.find_one({"_id": parcel.id})["pending_steps"][0]["id"] == step["id"]
    assert perform(Parcel, parcel, step, write_receipt)
    assert database.parcels.find_one({"_id": parcel.id})["pending_steps"] == []
    assert database.receipts.count_documents({"parcel_id": parcel.id}) == 1


def test_after_a_crash_the_runner_completes_the_step_once_due_and_only_once(database, clock):
    parcel, step = store_parcel(clock)  # ... and the process died before perform()
    runner = StepRunner({Parcel: {"write_receipt": write_receipt}}, clock=clock.now)
    assert runner.run_once() == 0  # not due: the request may still be completing it
    assert database.receipts.count_documents({}) == 0

    clock.advance(timedelta(seconds=31))
    assert runner.run_once() == 1
    receipt = database.receipts.find_one({"parcel_id": parcel.id})
    assert (receipt["_id"], receipt["owner_country"], receipt["owner_agency"]) == (
        step["receipt_id"],
        "AL",
        "al-police",
    )
    assert receipt["created_by"] == "officer-1"
    assert database.parcels.find_one({"_id": parcel.id})["pending_steps"] == []
    assert runner.run_once() == 0
    assert database.receipts.count_documents({}) == 1


def test_a_late_request_racing_the_runner_writes_one_receipt(database, clock):
    parcel, step = store_parcel(clock)
    clock.advance(timedelta(seconds=31))
    StepRunner({Parcel: {"write_receipt": write_receipt}}, clock=clock.now).run_once()
    assert perform(Parcel, parcel, step, write_receipt)  # the slow request finishes after the runner
    assert database.receipts.count_documents({}) == 1


def test_a_failing_step_stays_and_is_retried_after_its_lease(database, clock):
    parcel, _ = store_parcel(clock)
    attempts: list[str] = []

    def flaky(doc: Parcel, step) -> None:
        attempts.append(doc.id)
        if len(attempts) == 1:
            raise ConnectionError("second database write failed")
        write_receipt(doc, step)

    runner = StepRunner({Parcel: {"write_receipt": flaky}}, clock=clock.now, lease=timedelta(seconds=60))
    clock.advance(timedelta(seconds=31))
    assert runner.run_once() == 0
    assert len(database.parcels.find_one({"_id": parcel.id})["pending_steps"]) == 1
    assert runner.run_once() == 0 and len(attempts) == 1  # held by its lease
    clock.advance(timedelta(seconds=61))
    assert runner.run_once() == 1
    assert database.receipts.count_documents({}) == 1


def test_a_failed_step_in_the_request_does_not_fail_the_request(database, clock):
    parcel, step = store_parcel(clock)

    def down(doc: Parcel, step) -> None:
        raise ConnectionError("database gone")

    assert perform(Parcel, parcel, step, down) is False
    assert len(database.parcels.find_one({"_id": parcel.id})["pending_steps"]) == 1


def test_an_update_adds_steps_and_an_ordinary_update_keeps_them(database, clock):
    repo = ScopedRepository(Parcel, CALLER, clock)
    parcel = repo.insert(Parcel(note="first"))
    step = new_step("write_receipt", clock.now(), by=CALLER.sub, receipt_id=str(uuid.uuid4()))
    parcel.note = "second"
    repo.update(parcel, events=[{"id": "e1", "type": "t"}], steps=[step])
    raw = database.parcels.find_one({"_id": parcel.id})
    assert [s["id"] for s in raw["pending_steps"]] == [step["id"]]
    assert [e["id"] for e in raw["pending_events"]] == ["e1"]
    # A handler holding a copy read without the step must not erase it by saving its fields.
    stale = Parcel.objects(id=parcel.id).first()
    stale.pending_steps = []
    stale.note = "third"
    repo.update(stale)
    assert len(database.parcels.find_one({"_id": parcel.id})["pending_steps"]) == 1
