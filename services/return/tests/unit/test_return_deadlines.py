"""Reintegration deadlines from the recorded reception: the plan within 30 days, follow-up reports at 90, 180
and 365 days (catalogue data), what is due next, and what is overdue at a fixed clock time."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from voluntary_return.domain import deadlines
from voluntary_return.domain.deadlines import ReintegrationState

RECEIVED = datetime(2026, 6, 12, 14, 0, tzinfo=UTC)
SECOND = timedelta(seconds=1)


def test_the_schedule_after_reception(build: Any) -> None:
    state = ReintegrationState("received", RECEIVED)
    items = deadlines.schedule(state, build.catalogue.reintegration)
    assert [(i.what, i.due_at) for i in items] == [
        ("reintegration_plan", datetime(2026, 7, 12, 14, 0, tzinfo=UTC)),
        ("follow_up_1", datetime(2026, 9, 10, 14, 0, tzinfo=UTC)),
        ("follow_up_2", datetime(2026, 12, 9, 14, 0, tzinfo=UTC)),
        ("follow_up_3", datetime(2027, 6, 12, 14, 0, tzinfo=UTC)),
    ]


def test_nothing_is_due_before_reception_or_after_the_end(build: Any) -> None:
    periods = build.catalogue.reintegration
    assert deadlines.next_due(ReintegrationState("planned", None), periods) is None
    for status in ("closed", "stopped"):
        ended = ReintegrationState(status, RECEIVED)
        assert deadlines.next_due(ended, periods) is None
        assert not deadlines.is_overdue(ended, RECEIVED + timedelta(days=400), periods)


def test_what_is_due_next_moves_on_as_reports_come_in(build: Any) -> None:
    periods = build.catalogue.reintegration
    state = ReintegrationState("received", RECEIVED)
    first = deadlines.next_due(state, periods)
    assert first is not None and (first.what, first.due_at) == (
        "reintegration_plan",
        RECEIVED + timedelta(days=30),
    )
    state = ReintegrationState("reintegrating", RECEIVED, RECEIVED + timedelta(days=20))
    second = deadlines.next_due(state, periods)
    assert second is not None and (second.what, second.due_at) == (
        "follow_up_1",
        RECEIVED + timedelta(days=90),
    )
    # The first report recorded (late or early) fulfils follow_up_1; the next is follow_up_2.
    state = ReintegrationState(
        "following_up", RECEIVED, RECEIVED + timedelta(days=20), (RECEIVED + timedelta(days=95),)
    )
    third = deadlines.next_due(state, periods)
    assert third is not None and third.what == "follow_up_2"


def test_overdue_is_strictly_after_the_deadline(build: Any) -> None:
    periods = build.catalogue.reintegration
    state = ReintegrationState("received", RECEIVED)
    plan_due = RECEIVED + timedelta(days=30)
    assert deadlines.overdue(state, plan_due, periods) == ()
    late = deadlines.overdue(state, plan_due + SECOND, periods)
    assert [i.what for i in late] == ["reintegration_plan"]
    assert [i.what for i in deadlines.overdue(state, RECEIVED + timedelta(days=91), periods)] == [
        "reintegration_plan",
        "follow_up_1",
    ]
    done = ReintegrationState("reintegrating", RECEIVED, plan_due + timedelta(days=2))
    assert [i.what for i in deadlines.overdue(done, RECEIVED + timedelta(days=91), periods)] == [
        "follow_up_1"
    ]


def test_on_time_is_judged_against_each_deadline(build: Any) -> None:
    state = ReintegrationState(
        "following_up",
        RECEIVED,
        RECEIVED + timedelta(days=31),  # a day late
        (RECEIVED + timedelta(days=88),),  # early
    )
    by_name = {i.what: i for i in deadlines.schedule(state, build.catalogue.reintegration)}
    assert by_name["reintegration_plan"].on_time is False
    assert by_name["follow_up_1"].on_time is True
    assert by_name["follow_up_2"].on_time is None


def test_the_periods_are_catalogue_data(build: Any) -> None:
    documents = build.documents()
    documents["deadlines"]["reintegration"] = {"plan_within_days": 14, "follow_up_days": [60, 30]}
    periods = build.load(documents).reintegration
    items = deadlines.schedule(ReintegrationState("received", RECEIVED), periods)
    assert [(i.what, (i.due_at - RECEIVED).days) for i in items] == [
        ("reintegration_plan", 14),
        ("follow_up_1", 30),
        ("follow_up_2", 60),
    ]
