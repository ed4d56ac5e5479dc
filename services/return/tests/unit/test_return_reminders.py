"""Reintegration reminders: a week before the reintegration plan or a follow-up report is due the case's office is
told it is coming due, once it has passed that it is overdue - each once, across a second scheduler run, a
restart and a race, and never for what was recorded in time or for a case that has ended."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from plumbing.clock import as_utc
from voluntary_return.adapters.documents import ReturnCaseDocument
from voluntary_return.domain import deadlines, events
from voluntary_return.domain.deadlines import ReintegrationState
from voluntary_return.domain.errors import CatalogueError
from voluntary_return.service_layer import cases
from voluntary_return.service_layer import deadlines as jobs

RECEIVED = datetime(2026, 6, 12, 14, 0, tzinfo=UTC)
MS = timedelta(milliseconds=1)
DUE, OVERDUE = events.REINTEGRATION_DUE, events.REINTEGRATION_OVERDUE


# ------------------------------------------------------------------------------------------ the rules


def keys(found: Any) -> list[str]:
    return [r.key for r in found]


def test_each_deadline_has_a_reminder_a_week_ahead_and_one_just_after_it(build: Any) -> None:
    periods = build.catalogue.reintegration
    assert periods.remind_before == timedelta(days=7)  # catalogue/deadlines.yaml
    found = deadlines.reminders(ReintegrationState("received", RECEIVED), periods)
    plan_due = RECEIVED + timedelta(days=30)
    assert [(r.key, r.at) for r in found[:2]] == [
        ("due:reintegration_plan", plan_due - timedelta(days=7)),
        ("overdue:reintegration_plan", plan_due + MS),
    ]
    assert {r.due_at for r in found[:2]} == {plan_due}
    assert keys(found[2:]) == [
        "due:follow_up_1",
        "overdue:follow_up_1",
        "due:follow_up_2",
        "overdue:follow_up_2",
        "due:follow_up_3",
        "overdue:follow_up_3",
    ]


def test_overdue_only_strictly_after_the_deadline_and_the_coming_due_reminder_then_moot(build: Any) -> None:
    periods = build.catalogue.reintegration
    state = ReintegrationState("received", RECEIVED)
    plan_due = RECEIVED + timedelta(days=30)
    assert keys(deadlines.due_reminders(state, plan_due - timedelta(days=7) - MS, periods, ())) == []
    assert keys(deadlines.due_reminders(state, plan_due - timedelta(days=7), periods, ())) == [
        "due:reintegration_plan"
    ]
    assert keys(deadlines.due_reminders(state, plan_due, periods, ())) == ["due:reintegration_plan"]
    # Past the deadline and never reminded: only that it is overdue (not that it is coming).
    assert keys(deadlines.due_reminders(state, plan_due + timedelta(seconds=1), periods, ())) == [
        "overdue:reintegration_plan"
    ]
    sent = {"due:reintegration_plan", "overdue:reintegration_plan"}
    assert keys(deadlines.due_reminders(state, plan_due + timedelta(days=1), periods, sent)) == []
    assert deadlines.next_reminder_at(state, plan_due + timedelta(days=1), periods, sent) == (
        RECEIVED + timedelta(days=83)
    )


def test_nothing_is_reminded_for_what_was_recorded_or_a_case_that_ended(build: Any) -> None:
    periods = build.catalogue.reintegration
    late = RECEIVED + timedelta(days=400)
    planned = ReintegrationState("reintegrating", RECEIVED, RECEIVED + timedelta(days=10))
    assert "reintegration_plan" not in {r.what for r in deadlines.due_reminders(planned, late, periods, ())}
    for status in ("closed", "stopped"):
        ended = ReintegrationState(status, RECEIVED)
        assert deadlines.due_reminders(ended, late, periods, ()) == ()
        assert deadlines.next_reminder_at(ended, RECEIVED, periods, ()) is None
    assert deadlines.next_reminder_at(ReintegrationState("planned", None), RECEIVED, periods, ()) is None


def test_the_lead_time_is_catalogue_data(build: Any) -> None:
    documents = build.documents()
    documents["deadlines"]["reintegration"]["remind_before_days"] = 0  # on the day itself
    periods = build.load(documents).reintegration
    first = deadlines.reminders(ReintegrationState("received", RECEIVED), periods)[0]
    assert first.key == "due:reintegration_plan" and first.at == first.due_at
    documents["deadlines"]["reintegration"]["remind_before_days"] = -1
    with pytest.raises(CatalogueError, match="remind_before_days: minimum failed"):
        build.load(documents)


# -------------------------------------------------------------------------------------- the scheduler


def received_case(world: Any, build: Any) -> str:
    """An adult's return, approved, travelled and received now (the world's clock)."""
    case_id = cases.open_case(
        world.deps, world.user("xk-case-manager"), {"origin_country": "ME", "age_group": "adult"}
    )["id"]
    cases.transition(world.deps, world.user("xk-case-manager"), case_id, {"action": "start_assessment"})
    cases.record_consent(world.deps, world.user("xk-case-manager"), case_id, build.consent_body())
    cases.transition(world.deps, world.user("xk-case-manager"), case_id, {"action": "record_decision"})
    coordinator = world.user("xk-coordinator")
    cases.approve_plan(world.deps, coordinator, case_id, build.plan_body(escort=None))
    for action in ("record_departure", "record_reception"):
        cases.transition(world.deps, coordinator, case_id, {"action": action})
    return str(case_id)


def stored(world: Any, case_id: str) -> dict[str, Any]:
    return world.store.raw(ReturnCaseDocument, case_id)


def reminders_sent(world: Any, case_id: str) -> list[tuple[str, str, str]]:
    return [
        (e["type"], e["data"]["what"], e["data"]["due_at"])
        for e in stored(world, case_id)["pending_events"]
        if e["type"] in (DUE, OVERDUE)
    ]


def next_due(world: Any, case_id: str) -> datetime | None:
    value = stored(world, case_id)["next_due_at"]
    return None if value is None else as_utc(value)


def restarted(world: Any) -> Any:
    """A new process (new wiring, nothing kept in memory) on the same database, at the same time."""
    again = type(world)()
    again.store.collections = world.store.collections
    again.clock.set(world.clock.now())
    return again


def test_the_reception_schedules_the_first_reminder_and_a_closure_clears_it(world: Any, build: Any) -> None:
    case_id = received_case(world, build)
    received = world.clock.now()
    assert next_due(world, case_id) == received + timedelta(days=23)
    assert jobs.run_due_actions(world.deps, case_id) == []  # not yet
    cases.transition(
        world.deps, world.user("xk-coordinator"), case_id, {"action": "close", "reason": build.close_reason()}
    )
    assert next_due(world, case_id) is None
    world.clock.advance(days=400)
    assert jobs.run_due_actions(world.deps, case_id) == []
    assert reminders_sent(world, case_id) == []


def test_coming_due_then_overdue_once_each_across_a_second_run_and_a_restart(world: Any, build: Any) -> None:
    case_id = received_case(world, build)
    plan_due = world.clock.now() + timedelta(days=30)
    world.clock.advance(days=23)
    assert jobs.run_due_actions(world.deps, case_id) == ["due:reintegration_plan"]
    assert jobs.run_due_actions(world.deps, case_id) == []  # a second run repeats nothing
    assert next_due(world, case_id) == plan_due + MS

    world.clock.set(plan_due)  # the deadline itself: not overdue yet
    second = restarted(world)
    assert jobs.run_due_actions(second.deps, case_id) == []
    world.clock.set(plan_due + timedelta(seconds=1))
    second.clock.set(world.clock.now())
    assert jobs.run_due_actions(second.deps, case_id) == ["overdue:reintegration_plan"]
    assert jobs.run_due_actions(restarted(world).deps, case_id) == []

    assert reminders_sent(world, case_id) == [
        (DUE, "reintegration_plan", "2026-07-01T09:30:00.000Z"),
        (OVERDUE, "reintegration_plan", "2026-07-01T09:30:00.000Z"),
    ]
    after = stored(world, case_id)
    assert after["deadline_actions_done"] == ["due:reintegration_plan", "overdue:reintegration_plan"]
    assert [(e["action"], e.get("what")) for e in after["timeline"][-2:]] == [
        ("reintegration_due", "reintegration_plan"),
        ("reintegration_overdue", "reintegration_plan"),
    ]
    overdue = after["pending_events"][-1]
    assert overdue["subject"] == case_id and overdue["data"]["status"] == "received"
    assert overdue["data"]["owner_country"] == "XK" and overdue["data"]["treated_as_child"] is False
    assert next_due(world, case_id) == plan_due - timedelta(days=30) + timedelta(days=83)  # follow_up_1


def test_a_plan_recorded_in_time_is_not_overdue_and_the_reports_come_next(world: Any, build: Any) -> None:
    case_id = received_case(world, build)
    received = world.clock.now()
    world.clock.advance(days=23)
    assert jobs.run_due_actions(world.deps, case_id) == ["due:reintegration_plan"]
    world.clock.advance(days=2)
    coordinator = world.user("xk-coordinator")
    cases.transition(world.deps, coordinator, case_id, {"action": "record_reintegration_plan"})
    assert next_due(world, case_id) == received + timedelta(days=83)
    world.clock.set(received + timedelta(days=60))
    assert jobs.run_due_actions(world.deps, case_id) == []  # the plan's deadline passed, the plan is there
    world.clock.set(received + timedelta(days=83))
    assert jobs.run_due_actions(world.deps, case_id) == ["due:follow_up_1"]
    world.clock.set(received + timedelta(days=89))
    cases.transition(world.deps, coordinator, case_id, {"action": "record_follow_up"})
    world.clock.set(received + timedelta(days=91))
    assert jobs.run_due_actions(world.deps, case_id) == []
    assert [(t, what) for t, what, _ in reminders_sent(world, case_id)] == [
        (DUE, "reintegration_plan"),
        (DUE, "follow_up_1"),
    ]


def test_a_scheduler_that_first_looks_after_the_deadline_says_overdue_only(world: Any, build: Any) -> None:
    case_id = received_case(world, build)
    world.clock.advance(days=40)
    assert jobs.run_due_actions(world.deps, case_id) == ["overdue:reintegration_plan"]
    world.clock.advance(days=100)  # 140 days: follow_up_1 (90) has passed as well
    assert jobs.run_due_actions(world.deps, case_id) == ["overdue:follow_up_1"]
    assert [t for t, _, _ in reminders_sent(world, case_id)] == [OVERDUE, OVERDUE]


def test_a_stopped_case_is_reminded_nothing(world: Any, build: Any) -> None:
    case_id = received_case(world, build)
    cases.transition(
        world.deps,
        world.user("xk-coordinator"),
        case_id,
        {"action": "close", "reason": build.close_reason()},
    )
    world.clock.advance(days=31)
    assert jobs.run_due_actions(world.deps, case_id) == []
    assert reminders_sent(world, case_id) == [] and next_due(world, case_id) is None


class StaleRepository:
    """A scheduler's view read before another scheduler wrote: its version-guarded write must lose."""

    def __init__(self, real: Any, doc: ReturnCaseDocument) -> None:
        self.real, self.doc = real, doc

    def get(self, record_id: str) -> ReturnCaseDocument:
        return self.doc

    def update(self, doc: ReturnCaseDocument, **kwargs: Any) -> ReturnCaseDocument:
        return self.real.update(doc, **kwargs)


def test_two_schedulers_racing_send_each_reminder_once(world: Any, build: Any) -> None:
    case_id = received_case(world, build)
    world.clock.advance(days=23)
    stale = world.store.load(ReturnCaseDocument, stored(world, case_id))
    assert jobs.run_due_actions(world.deps, case_id) == ["due:reintegration_plan"]  # the first one
    late = replace(
        world.deps,
        system_repository=lambda cls, actor: StaleRepository(world.deps.system_repository(cls, actor), stale),
    )
    assert jobs.run_due_actions(late, case_id) == []  # the second lost the race: nothing written
    assert len(reminders_sent(world, case_id)) == 1


def test_the_job_claims_cases_whose_person_is_home(world: Any) -> None:
    job = jobs.deadline_job(world.deps)
    assert job.document_class is ReturnCaseDocument
    assert set(job.where["status"]["$in"]) == {"received", "reintegrating", "following_up"}
