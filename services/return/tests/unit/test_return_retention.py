"""Retention of return cases (service_layer/retention.py on plumbing.retention), on fakes: a case closed or stopped
more than five years ago (config/platform.yaml `retention.return-case`: P5Y from its end, anonymise) loses its
sealed records (consent, assessments, determination, plan), keeps its codes, countries, timeline and dates (the
statistics stay the same) and says when; a running case is looked at again a period later, an ended one on the day
its period ends; the views of an anonymised case still answer."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from connexion.json_schema import Draft4ResponseValidator, resolve_refs
from jsonschema import Draft4Validator

from plumbing.clock import as_utc
from plumbing.retention import RetentionJob
from plumbing.scheduler import Claimed
from tools.contracts import load_contract
from voluntary_return.adapters.documents import ConsentWithdrawalDocument, ReturnCaseDocument
from voluntary_return.domain.errors import Refused
from voluntary_return.service_layer import border, cases, subject_records
from voluntary_return.service_layer.retention import ended_at, retained
from voluntary_return.service_layer.statistics import stat_row, statistics_report

NOW = datetime(2026, 6, 1, 9, 30, tzinfo=UTC)  # the world's fixed clock (conftest)
FIVE_YEARS_LATER = datetime(2031, 6, 1, 9, 30, tzinfo=UTC)  # created + the period: the job's first look
ENDED = datetime(
    2026, 12, 18, 9, 30, tzinfo=UTC
)  # NOW + 200 days: when the cases below are closed or stopped
DUE = datetime(2031, 12, 18, 9, 30, tzinfo=UTC)  # ENDED + 5 years
ALL_RECORDS = {"family_assessment", "best_interests_assessment", "determination", "plan"}
# The members the job may change; every other member of the stored case stays exactly as it was.
CHANGED_BY_ANONYMISING = frozenset(
    {"sealed", "anonymised_at", "retention_due_at", "version", "updated_at", "updated_by"}
)
PERSON_ID, IDENTIFICATION_CASE_ID = "p-1", "b6a1d2e3-4f50-4a6b-9c7d-8e9f0a1b2c3d"
Logged = list[tuple[str, str, str]]


# ------------------------------------------------------------------------------------------------- helpers


def opened(world: Any, age_group: str = "child", **body: Any) -> str:
    manager = world.user("xk-case-manager")
    return str(
        cases.open_case(world.deps, manager, {"origin_country": "ME", "age_group": age_group, **body})["id"]
    )


def act(world: Any, case_id: str, action: str, who: str = "xk-case-manager", **body: Any) -> dict[str, Any]:
    return cases.transition(world.deps, world.user(who), case_id, {"action": action, **body})


def closed_child(world: Any, build: Any, **body: Any) -> str:
    """A child's return from opening to closure (every record recorded, the child's views among them), closed at
    ENDED."""
    case_id = opened(world, **body)
    manager, coordinator = world.user("xk-case-manager"), world.user("xk-coordinator")
    act(world, case_id, "start_assessment")
    cases.record_family_assessment(world.deps, manager, case_id, build.family_assessment_body())
    cases.record_best_interests_assessment(world.deps, manager, case_id, build.assessment_body())
    cases.assign_panel_member(world.deps, manager, case_id, "sub-xk-bid-panel")
    cases.record_determination(world.deps, world.user("xk-bid-panel"), case_id, build.determination_body())
    act(world, case_id, "record_decision")
    cases.approve_plan(world.deps, coordinator, case_id, build.plan_body())
    for action in ("record_departure", "record_reception", "record_reintegration_plan", "record_follow_up"):
        act(world, case_id, action, "xk-coordinator")
    world.clock.set(ENDED)
    act(world, case_id, "close", "xk-coordinator", reason=build.close_reason())
    world.clock.set(NOW)
    return case_id


def stopped_adult(world: Any, build: Any) -> str:
    """An adult's planned return stopped at ENDED by the withdrawal of her consent."""
    case_id = opened(world, "adult")
    manager = world.user("xk-case-manager")
    act(world, case_id, "start_assessment")
    cases.record_consent(world.deps, manager, case_id, build.consent_body())
    act(world, case_id, "record_decision")
    cases.approve_plan(world.deps, world.user("xk-coordinator"), case_id, build.plan_body(escort=None))
    world.clock.set(ENDED)
    cases.withdraw_consent(world.deps, manager, case_id)
    world.clock.set(NOW)
    return case_id


def running_child(world: Any, build: Any) -> str:
    """A child's case still being assessed (a sealed record on it)."""
    case_id = opened(world)
    act(world, case_id, "start_assessment")
    cases.record_family_assessment(
        world.deps, world.user("xk-case-manager"), case_id, build.family_assessment_body()
    )
    return case_id


def job(world: Any, logged: Logged) -> RetentionJob:
    """The service's one retained class as the scheduler runs it (entrypoints/scheduler.py), on the world's
    FixedClock, each action logged into `logged` as (record id, country, action)."""
    [case] = retained(world.deps)
    return RetentionJob(
        case,
        records=world.deps.system_repository,
        config=world.deps.config,
        clock=world.clock,
        log_action=lambda doc, action: logged.append((str(doc.id), doc.owner_country, action)),
    )


def run(world: Any, logged: Logged, case_id: str) -> bool:
    return job(world, logged).act(Claimed(case_id, "XK"))


def row(world: Any, case_id: str) -> dict[str, Any]:
    return world.store.raw(ReturnCaseDocument, case_id)


def instant(value: Any) -> datetime | None:
    return as_utc(value) if value is not None else None


def contract_errors(body: dict[str, Any]) -> list[str]:
    """What in an answer breaks the ReturnCase schema of openapi/return.yaml (`additionalProperties: false`)."""
    resolved = resolve_refs(load_contract("return"))["components"]["schemas"]["ReturnCase"]
    validator = Draft4ResponseValidator(resolved, format_checker=Draft4Validator.FORMAT_CHECKER)
    return [f"{list(e.absolute_path)}: {e.message}" for e in validator.iter_errors(body)]


# ------------------------------------------------------------------------------------------ what is retained


def test_the_return_case_is_the_one_class_retained(world: Any) -> None:
    assert [item.document_class for item in retained(world.deps)] == [ReturnCaseDocument]
    assert ConsentWithdrawalDocument not in {item.document_class for item in retained(world.deps)}
    assert job(world, []).name == "retention-return-case-ReturnCaseDocument"


def test_a_case_ends_when_it_is_closed_or_stopped_and_not_with_what_comes_after(
    world: Any, build: Any
) -> None:
    running = running_child(world, build)
    assert ended_at(world.store.load(ReturnCaseDocument, row(world, running))) is None
    closed = closed_child(world, build)
    assert ended_at(world.store.load(ReturnCaseDocument, row(world, closed))) == ENDED

    record = str(uuid.uuid4())
    stopped = opened(world, exchange_case_id=record)
    world.clock.set(ENDED)
    act(world, stopped, "stop", reason="person_left")
    world.clock.set(ENDED + timedelta(days=30))  # the exchange tells of a form after the stop: a later entry
    sent = {
        "id": str(uuid.uuid4()),
        "type": border.FORM_SENT,
        "data": {
            "case_id": record,
            "owner_country": "XK",
            "form_id": str(uuid.uuid4()),
            "form_type": "case-closure",
            "direction": "out",
            "counterpart": "ME",
        },
    }
    assert border.follow_exchange(world.deps, sent) == [stopped]
    doc = world.store.load(ReturnCaseDocument, row(world, stopped))
    assert [e["action"] for e in doc.timeline][-2:] == ["stop", "form_sent"]
    assert ended_at(doc) == ENDED


# ------------------------------------------------------------------------------------------------ the job


@pytest.mark.parametrize("ended", [closed_child, stopped_adult], ids=["closed", "stopped"])
def test_an_ended_case_past_its_period_loses_its_sealed_records_and_keeps_the_rest(
    world: Any, build: Any, ended: Any
) -> None:
    case_id = ended(world, build)
    before = row(world, case_id)
    expected_records = ALL_RECORDS if ended is closed_child else {"consent", "plan"}
    assert set(before["sealed"]) == expected_records
    world.clock.set(DUE)
    logged: Logged = []

    assert run(world, logged, case_id) is True

    after = row(world, case_id)
    assert after["sealed"] == {}
    assert instant(after["anonymised_at"]) == DUE
    assert after["retention_due_at"] is None
    assert after["version"] == before["version"] + 1 and after["updated_by"] == "system:retention-job"
    assert logged == [(case_id, "XK", "anonymised")]
    kept = {k: v for k, v in before.items() if k not in CHANGED_BY_ANONYMISING}
    assert {k: v for k, v in after.items() if k not in CHANGED_BY_ANONYMISING} == kept
    if ended is closed_child:
        assert (after["status"], after["reason"], after["decision"]) == (
            "closed",
            "reintegration_completed",
            "return",
        )
        assert instant(after["received_at"]) == NOW and [instant(t) for t in after["follow_ups_at"]] == [NOW]
        assert after["age_group"] == "child" and after["assigned_to"] == ["sub-xk-bid-panel"]
    else:
        assert (after["status"], after["reason"], after["consent_current"]) == (
            "stopped",
            "consent_withdrawn",
            False,
        )
        assert [e["action"] for e in after["timeline"]][-2:] == ["consent_withdrawn", "stop"]
    assert (after["side"], after["origin_country"], after["owner_country"]) == ("host", "ME", "XK")
    assert instant(after["timeline"][-1]["at"]) == ENDED

    # Looked at again (a stale claim): nothing more is done or logged.
    assert run(world, logged, case_id) is False
    assert len(logged) == 1 and row(world, case_id)["version"] == after["version"]


def test_a_running_case_is_not_touched_and_looked_at_again_a_period_later(world: Any, build: Any) -> None:
    case_id = running_child(world, build)
    before = row(world, case_id)
    assert instant(before["retention_due_at"]) == FIVE_YEARS_LATER  # set on insert: created + the period
    world.clock.set(FIVE_YEARS_LATER)
    logged: Logged = []

    assert run(world, logged, case_id) is False

    after = row(world, case_id)
    assert instant(after["retention_due_at"]) == datetime(2036, 6, 1, 9, 30, tzinfo=UTC)  # now + 5 years
    assert {k: v for k, v in after.items() if k != "retention_due_at"} == {
        k: v for k, v in before.items() if k != "retention_due_at"
    }
    assert set(after["sealed"]) == {"family_assessment"} and after["anonymised_at"] is None
    assert logged == []


def test_an_ended_case_not_yet_due_is_looked_at_again_when_its_period_ends(world: Any, build: Any) -> None:
    case_id = closed_child(world, build)
    before = row(world, case_id)
    world.clock.set(FIVE_YEARS_LATER)  # its first look: created + 5 years, before ENDED + 5 years
    logged: Logged = []

    assert run(world, logged, case_id) is False

    after = row(world, case_id)
    assert instant(after["retention_due_at"]) == DUE
    assert after["version"] == before["version"] and after["sealed"] == before["sealed"] and logged == []

    world.clock.set(DUE - timedelta(milliseconds=1))
    assert run(world, logged, case_id) is False and row(world, case_id)["sealed"] == before["sealed"]
    world.clock.set(DUE)
    assert run(world, logged, case_id) is True
    assert row(world, case_id)["sealed"] == {} and logged == [(case_id, "XK", "anonymised")]


def test_the_statistics_are_the_same_after_anonymisation(world: Any, build: Any) -> None:
    ended = [closed_child(world, build) for _ in range(4)] + [stopped_adult(world, build) for _ in range(2)]
    running = running_child(world, build)
    world.clock.set(datetime(2032, 1, 1, tzinfo=UTC))
    coordinator, analyst = world.user("xk-coordinator"), world.user("al-analyst")

    def rows() -> list[Any]:
        return [stat_row(world.deps, doc) for doc in world.statistics_source("XK")]

    rows_before = rows()
    country_before = statistics_report(world.deps, coordinator, period="2026")
    region_before = statistics_report(world.deps, analyst, period="2026", scope="regional")
    by_pair = country_before["by_pair"]
    # Not an empty report: 4 closed, 2 stopped, 1 running, shown (five or more).
    assert dict(zip(by_pair["labels"], by_pair["cells"], strict=True))["XK-ME"] == 7

    logged: Logged = []
    acted = {case_id: run(world, logged, case_id) for case_id in [*ended, running]}

    assert [case_id for case_id, done in acted.items() if done] == ended and len(logged) == 6
    assert all(row(world, case_id)["sealed"] == {} for case_id in ended)
    assert rows() == rows_before
    assert statistics_report(world.deps, coordinator, period="2026") == country_before
    assert statistics_report(world.deps, analyst, period="2026", scope="regional") == region_before


# ---------------------------------------------------------------------------------------------------- views


def test_the_contract_check_finds_an_undeclared_member() -> None:
    assert contract_errors({"id": "x", "not_declared": 1}) != []


def test_the_views_of_an_anonymised_case_work_and_say_when(world: Any, build: Any) -> None:
    world.deps.identification = FakeIdentification()
    case_id = closed_child(world, build, identification_case_id=IDENTIFICATION_CASE_ID)
    coordinator = world.user("xk-coordinator")
    before = cases.get_case(world.deps, coordinator, case_id)
    assert "gjyshja" in before["determination"]["child_views"]["text"]
    assert "anonymised_at" not in before and contract_errors(before) == []
    world.clock.set(datetime(2032, 3, 4, 5, 6, 7, 250000, tzinfo=UTC))
    assert run(world, [], case_id) is True

    view = cases.get_case(world.deps, coordinator, case_id)

    assert view["anonymised_at"] == "2032-03-04T05:06:07.250000+00:00"
    assert contract_errors(view) == []
    removed = ("consent", "family_assessment", "best_interests_assessment", "determination", "plan")
    assert all(view[name] is None for name in removed) and "gjyshja" not in repr(view)
    kept = {k: v for k, v in before.items() if k not in {*removed, "anonymised_at"}}
    assert {k: v for k, v in view.items() if k not in {*removed, "anonymised_at"}} == kept
    assert (view["status"], view["reason"], view["allowed_actions"]) == (
        "closed",
        "reintegration_completed",
        [],
    )
    assert [item["anonymised_at"] for item in cases.list_cases(world.deps, coordinator)["items"]] == [
        view["anonymised_at"]
    ]
    [record] = subject_records.records_about(world.deps, world.user("xk-dpo"), PERSON_ID, [])
    assert (record.id, record.content) == (case_id, view)  # her request of access still finds it, anonymised


class FakeIdentification:
    """Identification read on the caller's behalf: the case names her, a child."""

    def case_and_person(self, case_id: str) -> dict[str, dict[str, Any]]:
        return {"case": {"id": case_id, "person_id": PERSON_ID}, "person": {"id": PERSON_ID, "child": True}}


def test_a_command_on_an_anonymised_case_is_refused_not_failed(world: Any, build: Any) -> None:
    case_id = stopped_adult(world, build)
    world.clock.set(DUE)
    assert run(world, [], case_id) is True
    with pytest.raises(Refused) as refused:
        cases.withdraw_consent(world.deps, world.user("xk-case-manager"), case_id)
    assert refused.value.code == "no_consent_recorded"
    with pytest.raises(Refused) as closed:
        cases.record_consent(world.deps, world.user("xk-case-manager"), case_id, build.consent_body())
    assert closed.value.code == "case_stopped"
