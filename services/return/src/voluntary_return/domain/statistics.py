"""One statistics row per return case for the coordinators' reports: codes, counts and instants only - never a
name, a date of birth, a document or a narrative. Small counts are suppressed where rows become tables (the
shared `plumbing.suppression`, applied by the service layer), not here.

A row says which country pair, whether the person was treated as a child, how the case ended (status, stop or
close reason), how many whole days each stage took, and whether the reintegration plan and follow-up reports came
on time. Everything is read from the case's own timeline (the entries `lifecycle.timeline_entry` writes), so a
row can be rebuilt for any past case.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from plumbing.clock import as_utc
from voluntary_return.domain.catalogue import ReintegrationPeriods
from voluntary_return.domain.deadlines import REINTEGRATION_PLAN, DueItem, ReintegrationState, schedule
from voluntary_return.domain.lifecycle import TERMINAL, Action, Status

CHILD, ADULT = "child", "adult"
# Stages, named by the status the case spends them in, in process order.
STAGES: tuple[Status, ...] = (
    Status.REQUESTED,
    Status.ASSESSING,
    Status.DECIDED,
    Status.PLANNED,
    Status.TRAVELLED,
    Status.RECEIVED,
    Status.REINTEGRATING,
    Status.FOLLOWING_UP,
)
DAY_SECONDS = 86_400


@dataclass(frozen=True)
class StatRow:
    origin_country: str  # the country the person left
    destination_country: str  # the country they returned to
    group: str  # child | adult (as treated when the row was made)
    status: str
    stop_reason: str | None
    close_reason: str | None
    requested_at: datetime
    ended_at: datetime | None
    stage_days: Mapping[str, int]  # status -> whole days spent in it (stages the case has left)
    reintegration_plan_on_time: bool | None  # None: not due yet, or the case never reached reception
    follow_ups_due: int  # follow-up reports made, or whose deadline passed while the case ran
    follow_ups_on_time: int


def stat_row(
    *,
    origin_country: str,
    destination_country: str,
    child: bool,
    status: str,
    requested_at: datetime,
    timeline: Iterable[Mapping[str, Any]],
    periods: ReintegrationPeriods,
    now: datetime,
) -> StatRow:
    """The row for one case from its timeline entries (at, action, from, to, reason)."""
    entries = sorted(timeline, key=lambda e: as_utc(e["at"]))
    entered: dict[str, datetime] = {Status.REQUESTED: as_utc(requested_at)}
    left: dict[str, datetime] = {}
    for entry in entries:
        at, source, target = as_utc(entry["at"]), entry["from"], entry["to"]
        if source != target:
            left.setdefault(source, at)
            entered.setdefault(target, at)
    stage_days = {
        str(stage): int((left[stage] - entered[stage]).total_seconds() // DAY_SECONDS)
        for stage in STAGES
        if stage in entered and stage in left
    }
    final = next((e for e in reversed(entries) if e["to"] in TERMINAL), None)
    reason = final.get("reason") if final else None
    state = ReintegrationState(
        status=status,
        received_at=entered.get(Status.RECEIVED),
        reintegration_plan_at=entered.get(Status.REINTEGRATING),
        follow_ups_at=tuple(as_utc(e["at"]) for e in entries if e["action"] == Action.RECORD_FOLLOW_UP),
    )
    # A case that has ended is judged at its end: a deadline after a stop was never missed.
    until = as_utc(final["at"]) if final else as_utc(now)
    items = schedule(state, periods)
    plan_item = next((i for i in items if i.what == REINTEGRATION_PLAN), None)
    follow_ups = [i for i in items if i.what != REINTEGRATION_PLAN and (i.done or i.overdue(until))]
    return StatRow(
        origin_country=origin_country,
        destination_country=destination_country,
        group=CHILD if child else ADULT,
        status=str(Status(status)),
        stop_reason=reason if final and final["to"] == Status.STOPPED else None,
        close_reason=reason if final and final["to"] == Status.CLOSED else None,
        requested_at=as_utc(requested_at),
        ended_at=as_utc(final["at"]) if final else None,
        stage_days=stage_days,
        reintegration_plan_on_time=_on_time(plan_item, until),
        follow_ups_due=len(follow_ups),
        follow_ups_on_time=sum(1 for i in follow_ups if i.on_time),
    )


def _on_time(item: DueItem | None, until: datetime) -> bool | None:
    if item is None:
        return None
    if item.done:
        return bool(item.on_time)
    return False if item.overdue(until) else None
