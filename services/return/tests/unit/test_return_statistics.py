"""A statistics row per case: country pair, child or adult, how it ended, days per stage and follow-ups on
time - codes, counts and instants only, never personal data."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta
from typing import Any

from plumbing.suppression import suppress_series, suppress_table
from voluntary_return.domain import statistics
from voluntary_return.domain.statistics import StatRow, stat_row

T0 = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)


def entry(days: float, action: str, source: str, target: str, reason: str | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {
        "at": T0 + timedelta(days=days),
        "by": "u",
        "agency": "a",
        "action": action,
        "from": source,
        "to": target,
    }
    if reason:
        out["reason"] = reason
    return out


COMPLETED = [
    entry(2, "start_assessment", "requested", "assessing"),
    entry(40, "record_decision", "assessing", "decided"),
    entry(50.5, "approve_plan", "decided", "planned"),
    entry(60, "record_departure", "planned", "travelled"),
    entry(60.3, "record_reception", "travelled", "received"),
    entry(95, "record_reintegration_plan", "received", "reintegrating"),  # 34.7 days after reception: late
    entry(140, "record_follow_up", "reintegrating", "following_up"),  # follow_up_1 due at 150.3: on time
    entry(250, "record_follow_up", "following_up", "following_up"),  # follow_up_2 due at 240.3: late
    entry(300, "close", "following_up", "closed", "lost_contact"),
]


def test_a_completed_return(build: Any) -> None:
    row = stat_row(
        origin_country="XK",
        destination_country="ME",
        child=True,
        status="closed",
        requested_at=T0,
        timeline=COMPLETED,
        periods=build.catalogue.reintegration,
        now=T0 + timedelta(days=500),
    )
    assert (row.origin_country, row.destination_country, row.group, row.status) == (
        "XK",
        "ME",
        "child",
        "closed",
    )
    assert (row.stop_reason, row.close_reason) == (None, "lost_contact")
    assert row.ended_at == T0 + timedelta(days=300)
    assert row.stage_days == {
        "requested": 2,
        "assessing": 38,
        "decided": 10,
        "planned": 9,
        "travelled": 0,
        "received": 34,
        "reintegrating": 45,
        "following_up": 160,
    }
    assert row.reintegration_plan_on_time is False
    # follow_up_3 (day 425.3) fell after the case closed: it was never due.
    assert (row.follow_ups_due, row.follow_ups_on_time) == (2, 1)


def test_a_stopped_return(build: Any) -> None:
    timeline = [
        entry(1, "start_assessment", "requested", "assessing"),
        entry(9, "stop", "assessing", "stopped", "consent_withdrawn"),
    ]
    row = stat_row(
        origin_country="AL",
        destination_country="XK",
        child=False,
        status="stopped",
        requested_at=T0,
        timeline=timeline,
        periods=build.catalogue.reintegration,
        now=T0 + timedelta(days=30),
    )
    assert (row.group, row.stop_reason, row.close_reason) == ("adult", "consent_withdrawn", None)
    assert row.stage_days == {"requested": 1, "assessing": 8}
    assert (row.reintegration_plan_on_time, row.follow_ups_due, row.follow_ups_on_time) == (None, 0, 0)


def test_a_row_holds_codes_counts_and_instants_only() -> None:
    assert {f.name for f in dataclasses.fields(StatRow)} == {
        "origin_country",
        "destination_country",
        "group",
        "status",
        "stop_reason",
        "close_reason",
        "requested_at",
        "ended_at",
        "stage_days",
        "reintegration_plan_on_time",
        "follow_ups_due",
        "follow_ups_on_time",
    }


def completed(build: Any, *, child: bool = True, pair: tuple[str, str] = ("XK", "ME")) -> StatRow:
    return stat_row(
        origin_country=pair[0],
        destination_country=pair[1],
        child=child,
        status="closed",
        requested_at=T0,
        timeline=COMPLETED,
        periods=build.catalogue.reintegration,
        now=T0 + timedelta(days=500),
    )


def stopped(build: Any, reason: str = "consent_withdrawn") -> StatRow:
    return stat_row(
        origin_country="AL",
        destination_country="XK",
        child=False,
        status="stopped",
        requested_at=T0,
        timeline=[entry(1, "stop", "requested", "stopped", reason)],
        periods=build.catalogue.reintegration,
        now=T0 + timedelta(days=10),
    )


def report(build: Any, rows: list[StatRow]) -> Any:
    return statistics.raw_report(
        rows,
        countries=sorted(build.partners),
        stop_reasons=list(build.catalogue.reasons["stop"]),
        close_reasons=list(build.catalogue.reasons["close"]),
    )


def test_the_report_counts_pairs_groups_outcomes_and_reasons_over_the_full_lists(build: Any) -> None:
    raw = report(build, [completed(build), completed(build, child=False), stopped(build)])
    by_pair = dict(zip(raw.by_pair.labels, raw.by_pair.counts, strict=True))
    assert by_pair["XK-ME"] == 2 and by_pair["AL-XK"] == 1 and by_pair["ME-XK"] == 0
    assert len(raw.by_pair.labels) == len(build.partners) * (len(build.partners) - 1)
    cells = {
        (row, column): raw.pair_by_group.counts[i][j]
        for i, row in enumerate(raw.pair_by_group.rows)
        for j, column in enumerate(raw.pair_by_group.columns)
    }
    assert (
        cells[("XK-ME", "child")] == 1 and cells[("XK-ME", "adult")] == 1 and cells[("AL-XK", "adult")] == 1
    )
    stops = dict(zip(raw.stopped_by_reason.labels, raw.stopped_by_reason.counts, strict=True))
    assert stops["consent_withdrawn"] == 1 and sum(stops.values()) == 1
    closes = dict(zip(raw.closed_by_reason.labels, raw.closed_by_reason.counts, strict=True))
    assert closes["lost_contact"] == 2
    # Two completed returns: each plan late, each with one follow-up on time and one late.
    assert raw.reintegration_plans.counts == (0, 2) and raw.follow_ups.counts == (2, 2)


def test_a_stage_median_needs_five_cases(build: Any) -> None:
    four = report(build, [completed(build) for _ in range(4)])
    assessing = four.stage_days.labels.index("assessing")
    assert four.stage_days.n[assessing] == 4 and four.stage_days.medians[assessing] is None
    five = report(build, [completed(build) for _ in range(5)])
    assert five.stage_days.medians[assessing] == 38.0  # 2 -> 40 days


def test_published_counts_go_through_the_platforms_suppression(build: Any) -> None:
    raw = report(build, [completed(build) for _ in range(6)] + [stopped(build)])
    published = statistics.publish(raw, suppress_series, suppress_table)
    by_pair = dict(zip(published["by_pair"].labels, published["by_pair"].cells, strict=True))
    # One stopped return is a small count; the six beside it are hidden too, or the total would give it away.
    assert by_pair["AL-XK"] == "<5" and by_pair["XK-ME"] == "x" and by_pair["ME-XK"] == 0
    assert published["stage_days"] == raw.stage_days
