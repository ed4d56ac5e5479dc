"""A statistics row per case: country pair, child or adult, how it ended, days per stage and follow-ups on
time - codes, counts and instants only, never personal data."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta
from typing import Any

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
