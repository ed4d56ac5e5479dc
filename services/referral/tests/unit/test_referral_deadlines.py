"""Deadlines as data: the instants a referral's answer and follow-ups are due, what is due at a given clock
time, and the scheduler's step performing it once - also across a restart (a new process on the same store)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from plumbing.clock import as_utc
from referral.adapters.documents import ReferralDocument
from referral.domain import deadlines
from referral.domain.deadlines import DeadlineState, DueKind
from referral.service_layer import deadlines as jobs
from referral.service_layer import referrals
from services.referral.tests.unit.conftest import send
from services.referral.tests.unit.fakes import World, build_world, packaged_catalogue, user

T0 = datetime(2026, 6, 1, 9, 0, tzinfo=UTC)
URGENT = packaged_catalogue().deadline_profiles["urgent"]  # answer 4 h, escalate +4 h, expire +24 h


def kinds(state: DeadlineState, now: datetime) -> list[str]:
    return [a.key for a in deadlines.due_actions(state, now, URGENT)]


def test_answer_deadline_then_escalation_then_expiry() -> None:
    state = DeadlineState("requested", T0, None)
    assert kinds(state, T0 + timedelta(hours=3, minutes=59)) == []
    assert kinds(state, T0 + timedelta(hours=4)) == ["answer_overdue"]
    assert kinds(state, T0 + timedelta(hours=8)) == ["answer_overdue", "escalation"]
    # When expiry is due it is the only action: no reminder for a referral that is ending.
    assert kinds(state, T0 + timedelta(hours=28)) == ["expiry"]


def test_done_actions_are_not_due_again() -> None:
    state = DeadlineState("requested", T0, None, frozenset({"answer_overdue"}))
    assert kinds(state, T0 + timedelta(hours=9)) == ["escalation"]
    assert deadlines.next_due(state, URGENT) == T0 + timedelta(hours=8)


def test_follow_ups_while_in_progress_only() -> None:
    state = DeadlineState("in_progress", T0, T0 + timedelta(hours=1))
    assert kinds(state, T0 + timedelta(days=15)) == ["follow_up:1", "follow_up:2"]
    assert deadlines.due_actions(state, T0 + timedelta(days=15), URGENT)[0].recipient == "referrer"
    assert kinds(DeadlineState("completed", T0, T0), T0 + timedelta(days=400)) == []
    assert kinds(DeadlineState("accepted", T0, None), T0 + timedelta(days=400)) == []
    assert deadlines.next_due(DeadlineState("completed", T0, T0), URGENT) is None


def test_answered_in_time_nothing_is_due(world: World, shelter: dict[str, Any]) -> None:
    sent = send(world, shelter["id"])
    referrals.accept(world.deps, user("al-shelter"), sent["id"])
    world.clock.advance(hours=30)
    assert jobs.run_due_actions(world.deps, sent["id"]) == []
    assert world.store.raw(ReferralDocument, sent["id"])["next_due_at"] is None  # the scheduler never looks


def test_missed_deadline_overdue_escalation_expiry_once_each_across_a_restart(
    world: World, shelter: dict[str, Any]
) -> None:
    rid = send(world, shelter["id"])["id"]
    assert as_utc(world.store.raw(ReferralDocument, rid)["next_due_at"]) == world.clock.now() + timedelta(
        hours=4
    )
    assert jobs.run_due_actions(world.deps, rid) == []
    world.clock.advance(hours=4)
    assert jobs.run_due_actions(world.deps, rid) == ["answer_overdue"]
    assert jobs.run_due_actions(world.deps, rid) == []  # a second scheduler run repeats nothing
    assert world.store.raw(ReferralDocument, rid)["overdue"] is True

    # The scheduler restarts: a new process (new deps) on the same database, the clock moved on.
    world.clock.advance(hours=4)
    restarted = build_world(world.clock)
    restarted.store.collections = world.store.collections
    assert jobs.run_due_actions(restarted.deps, rid) == ["escalation"]
    world.clock.advance(hours=24)
    assert jobs.run_due_actions(restarted.deps, rid) == ["expiry"]
    assert world.store.raw(ReferralDocument, rid)["next_due_at"] is None

    stored = world.store.raw(ReferralDocument, rid)
    assert stored["status"] == "expired" and stored["deadline_actions_done"] == [
        "answer_overdue",
        "escalation",
        "expiry",
    ]
    types = [e["type"] for e in world.store.events() if e["subject"] == rid]
    assert types[-3:] == [
        "referral.referral.overdue.v1",
        "referral.referral.escalated.v1",
        "referral.referral.expired.v1",
    ]
    assert [e["action"] for e in stored["timeline"]][-3:] == [
        str(DueKind.ANSWER_OVERDUE),
        "escalation",
        "expire",
    ]


def test_follow_ups_are_due_to_the_referrer_after_start(world: World, shelter: dict[str, Any]) -> None:
    rid = send(world, shelter["id"])["id"]
    referrals.accept(world.deps, user("al-shelter"), rid)
    referrals.start(world.deps, user("al-shelter"), rid)
    world.clock.advance(days=2)
    assert jobs.run_due_actions(world.deps, rid) == ["follow_up:1"]
    assert [e["data"]["follow_up"] for e in world.store.events("referral.referral.follow_up_due.v1")] == [
        "follow_up:1"
    ]
