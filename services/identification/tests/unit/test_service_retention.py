"""Retention of identification's records on fakes (service_layer/retention.py on plumbing.retention): a person's
period starts when the last of her cases closes, a case's when it closes; what anonymising removes is gone, what
it keeps (the statistics' codes) is unchanged, and every anonymisation is logged."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import pytest

from identification.adapters.documents import CaseDocument, PersonDocument
from identification.service_layer import cases, persons
from identification.service_layer.deps import Deps
from identification.service_layer.retention import REMOVED, retained
from plumbing.clock import FixedClock, as_utc
from plumbing.documents import OwnedDocument
from plumbing.retention import RetentionJob
from plumbing.scheduler import Claimed
from services.identification.tests.unit.fakes import NOW, FakeStore, user

ADULT_LABOUR = [
    {"list_id": "A-LAB", "indicator_id": "A-LAB-DR-01"},
    {"list_id": "A-LAB", "indicator_id": "A-LAB-EX-01"},
    {"list_id": "A-LAB", "indicator_id": "A-LAB-CD-01"},
]
TEN_YEARS_AFTER_NOW = NOW.replace(year=NOW.year + 10)


def jobs(deps: Deps, logged: list[tuple[str, str]]) -> dict[type, RetentionJob]:
    def log_action(doc: OwnedDocument, action: str) -> None:
        logged.append((str(doc.id), action))

    return {
        item.document_class: RetentionJob(
            item, records=deps.system_repository, config=deps.config, clock=deps.clock, log_action=log_action
        )
        for item in retained(deps)
    }


def run(job: RetentionJob, doc_id: str, country: str = "AL") -> bool:
    return job.act(Claimed(doc_id, country))


@pytest.fixture
def closed_case(deps: Deps) -> dict[str, Any]:
    """An adult registered, screened, decided a victim and her case closed, all at NOW."""
    view, _ = persons.register_person(
        deps,
        user("al-police"),
        {"given_names": ["Ëngjëll"], "surnames": ["Hoxha"], "date_of_birth": "1990-03-04", "sex": "male"},
    )
    case_id = view["case_id"]
    cases.record_screening(
        deps,
        user("al-police"),
        {"case_id": case_id, "indicator_set_version": "2026.1", "answers": ADULT_LABOUR},
    )
    cases.decide_category(
        deps, user("al-case-manager"), case_id, {"category": "victim", "legal_reference": "decision 12/2026"}
    )
    cases.close_case(deps, user("al-case-manager"), case_id, {"reason": "returned_to_origin"})
    return view


def stored(store: FakeStore, cls: type, record_id: str) -> Any:
    return store.load(cls, store.raw(cls, record_id))


def utc(instant: datetime | None) -> datetime | None:
    return as_utc(instant) if instant is not None else None


def test_a_new_record_is_first_looked_at_one_period_after_its_creation(
    store: FakeStore, closed_case: dict[str, Any]
) -> None:
    person = stored(store, PersonDocument, closed_case["id"])
    case = stored(store, CaseDocument, closed_case["case_id"])
    assert utc(person.retention_due_at) == TEN_YEARS_AFTER_NOW
    assert utc(case.retention_due_at) == TEN_YEARS_AFTER_NOW


def test_a_closed_case_and_its_person_are_anonymised_once_the_period_has_passed(
    deps: Deps, store: FakeStore, clock: FixedClock, closed_case: dict[str, Any]
) -> None:
    logged: list[tuple[str, str]] = []
    by_class = jobs(deps, logged)
    case_before = stored(store, CaseDocument, closed_case["case_id"])
    clock.set(TEN_YEARS_AFTER_NOW + timedelta(days=1))

    assert run(by_class[CaseDocument], closed_case["case_id"])
    assert run(by_class[PersonDocument], closed_case["id"])

    case = stored(store, CaseDocument, closed_case["case_id"])
    # Kept: what the statistics read, the codes and the dates.
    assert (case.category, case.stat, case.decided_at) == (
        case_before.category,
        case_before.stat,
        case_before.decided_at,
    )
    assert case.closure["reason"] == "returned_to_origin"
    assert [s["result"] for s in case.screenings] == [s["result"] for s in case_before.screenings]
    # Removed: the officers and what the screening saw.
    assert case.responsible_officer == REMOVED and case.assigned_to == []
    assert {e["by"] for e in case.timeline} == {REMOVED} and case.closure["by"] == REMOVED
    assert [s["answers"] for s in case.screenings] == [[]]
    assert case.anonymised_at is not None and case.retention_due_at is None

    person = stored(store, PersonDocument, closed_case["id"])
    assert deps.sealer.open("AL", person.id, person.sealed) == {}
    assert person.blocking_keys == [] and person.year_keys == []
    assert (person.sex, person.nationalities) == ("male", [])  # codes kept as they were
    view = persons.person_view(deps, person)
    assert view["given_names"] == [] and view["surnames"] == [] and "date_of_birth" not in view
    assert view["anonymised_at"].startswith(str(TEN_YEARS_AFTER_NOW.year))
    assert cases.case_view(case)["anonymised_at"].startswith(str(TEN_YEARS_AFTER_NOW.year))
    assert logged == [(closed_case["case_id"], "anonymised"), (closed_case["id"], "anonymised")]


def test_nothing_is_anonymised_before_the_period_has_passed(
    deps: Deps, store: FakeStore, clock: FixedClock, closed_case: dict[str, Any]
) -> None:
    logged: list[tuple[str, str]] = []
    clock.set(TEN_YEARS_AFTER_NOW - timedelta(days=1))
    assert not run(jobs(deps, logged)[CaseDocument], closed_case["case_id"])
    case = stored(store, CaseDocument, closed_case["case_id"])
    assert case.anonymised_at is None and case.responsible_officer == "sub-al-police"
    assert logged == []


def test_an_open_case_stops_the_persons_clock_and_is_looked_at_again_a_period_later(
    deps: Deps, store: FakeStore, clock: FixedClock, closed_case: dict[str, Any]
) -> None:
    later = cases.open_case(deps, user("al-case-manager"), closed_case["id"])
    logged: list[tuple[str, str]] = []
    by_class = jobs(deps, logged)
    look = TEN_YEARS_AFTER_NOW + timedelta(days=1)
    clock.set(look)

    assert not run(by_class[PersonDocument], closed_case["id"])
    assert not run(by_class[CaseDocument], later.id)
    person = stored(store, PersonDocument, closed_case["id"])
    assert deps.sealer.open("AL", person.id, person.sealed)["surnames"] == ["Hoxha"]
    expected = look.replace(year=look.year + 10)
    assert utc(person.retention_due_at) == expected
    assert utc(stored(store, CaseDocument, later.id).retention_due_at) == expected
    assert logged == []
    # Looking again is not a change a national system syncing with updated_since would see.
    assert person.version == stored(store, PersonDocument, closed_case["id"]).version


def test_a_case_closed_later_than_the_first_look_is_kept_its_full_period(
    deps: Deps, store: FakeStore, clock: FixedClock
) -> None:
    view, _ = persons.register_person(
        deps, user("al-police"), {"given_names": ["Arta"], "surnames": ["Gashi"]}
    )
    clock.set(NOW + timedelta(days=400))
    closed_on: datetime = clock.now()
    cases.close_case(deps, user("al-police"), view["case_id"], {"reason": "lost_contact"})
    logged: list[tuple[str, str]] = []
    clock.set(TEN_YEARS_AFTER_NOW + timedelta(days=1))  # the first look: created + 10 years

    assert not run(jobs(deps, logged)[CaseDocument], view["case_id"])
    due = stored(store, CaseDocument, view["case_id"]).retention_due_at
    assert utc(due) == closed_on.replace(year=closed_on.year + 10)
