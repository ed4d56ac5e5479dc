"""One statistics row per return case for the coordinators' reports: codes, counts and instants only - never a
name, a date of birth, a document or a narrative. Small counts are suppressed where rows become tables (the
shared `plumbing.suppression`, applied by the service layer), not here.

A row says which country pair, whether the person was treated as a child, how the case ended (status, stop or
close reason), how many whole days each stage took, and whether the reintegration plan and follow-up reports came
on time. Everything is read from the case's own timeline (the entries `lifecycle.timeline_entry` writes), so a
row can be rebuilt for any past case.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from statistics import median
from typing import Any

from plumbing.clock import as_utc
from plumbing.suppression import Medians, RawSeries, RawTable, S, SuppressSeries, SuppressTable, T
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
GROUPS = (CHILD, ADULT)
STATUSES = tuple(str(status) for status in Status)
ON_TIME, LATE = "on_time", "late"
MIN_N = 5  # a median over fewer cases is withheld (the counts' own suppression says how many there were)


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


# ------------------------------------------------------------------------------------------ the report


@dataclass(frozen=True)
class RawReport:
    by_pair: RawSeries  # returns by country pair, "<left>-<returned to>"
    pair_by_group: RawTable  # ... by children and adults
    group_by_status: RawTable  # where the cases are (or how they ended)
    stopped_by_reason: RawSeries
    closed_by_reason: RawSeries
    stage_days: Medians  # median whole days per stage (the status a case spends it in)
    reintegration_plans: RawSeries  # on time / late, of the plans whose deadline has a verdict
    follow_ups: RawSeries  # on time / late, of the follow-up reports due


def pairs(countries: Sequence[str]) -> list[str]:
    """Every ordered pair of partner countries, as the report labels them."""
    return [f"{a}-{b}" for a in countries for b in countries if a != b]


def raw_report(
    rows: Iterable[StatRow],
    *,
    countries: Sequence[str],
    stop_reasons: Sequence[str],
    close_reasons: Sequence[str],
    min_n: int = MIN_N,
) -> RawReport:
    """Every table before suppression, over the full code lists (a zero shows as a zero)."""
    cases = list(rows)
    pair_labels = pairs(sorted(countries))

    def pair(row: StatRow) -> str:
        return f"{row.origin_country}-{row.destination_country}"

    plans = [row.reintegration_plan_on_time for row in cases if row.reintegration_plan_on_time is not None]
    on_time = sum(row.follow_ups_on_time for row in cases)
    due = sum(row.follow_ups_due for row in cases)
    return RawReport(
        by_pair=RawSeries.count(pair_labels, (pair(row) for row in cases)),
        pair_by_group=RawTable.count(pair_labels, GROUPS, ((pair(row), row.group) for row in cases)),
        group_by_status=RawTable.count(GROUPS, STATUSES, ((row.group, row.status) for row in cases)),
        stopped_by_reason=RawSeries.count(stop_reasons, (row.stop_reason for row in cases)),
        closed_by_reason=RawSeries.count(close_reasons, (row.close_reason for row in cases)),
        stage_days=_stage_days(cases, min_n),
        reintegration_plans=RawSeries((ON_TIME, LATE), (plans.count(True), plans.count(False))),
        follow_ups=RawSeries((ON_TIME, LATE), (on_time, due - on_time)),
    )


def _stage_days(cases: Sequence[StatRow], min_n: int) -> Medians:
    stages = tuple(str(stage) for stage in STAGES)
    spans = {stage: [row.stage_days[stage] for row in cases if stage in row.stage_days] for stage in stages}
    return Medians(
        stages,
        tuple(len(spans[stage]) for stage in stages),
        tuple(float(median(spans[stage])) if len(spans[stage]) >= min_n else None for stage in stages),
        "days",
    )


def publish(
    raw: RawReport, suppress_series: SuppressSeries[S], suppress_table: SuppressTable[T]
) -> dict[str, Any]:
    """The report as published: every count through the given suppression (the platform's one,
    plumbing.suppression, passed in by the wiring), medians as computed."""
    series = {
        "by_pair": raw.by_pair,
        "stopped_by_reason": raw.stopped_by_reason,
        "closed_by_reason": raw.closed_by_reason,
        "reintegration_plans": raw.reintegration_plans,
        "follow_ups": raw.follow_ups,
    }
    tables = {"pair_by_group": raw.pair_by_group, "group_by_status": raw.group_by_status}
    out: dict[str, Any] = {name: suppress_series(s.labels, s.counts) for name, s in series.items()}
    out.update({name: suppress_table(t.rows, t.columns, t.counts) for name, t in tables.items()})
    out["stage_days"] = raw.stage_days
    return out
