"""Statistics: the raw tables from codes only, published through whatever suppression the wiring passes (the
platform's one implementation), durations withheld below the minimum count."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from referral.domain import statistics
from referral.domain.errors import NotPermitted
from referral.service_layer import referrals
from referral.service_layer.statistics import referral_statistics, statistics_report
from services.referral.tests.unit.conftest import send
from services.referral.tests.unit.fakes import World, user

T0 = datetime(2026, 3, 1, tzinfo=UTC)
TYPES = ["shelter", "medical"]
KINDS = ["state", "ngo"]
REASONS = ["no_capacity", "other"]


def row(service_type: str, kind: str, outcome: str, **extra: Any) -> dict[str, Any]:
    return {"service_type": service_type, "provider_kind": kind, "outcome": outcome, **extra}


def report(rows: list[dict[str, Any]], min_n: int = 5) -> statistics.RawReport:
    return statistics.raw_report(
        rows, service_types=TYPES, provider_kinds=KINDS, decline_reasons=REASONS, min_n=min_n
    )


def test_counts_by_service_type_provider_kind_and_outcome() -> None:
    rows = [
        row("shelter", "ngo", "completed"),
        row("shelter", "ngo", "declined", decline_reason="no_capacity", overdue=True),
        row("medical", "state", "accepted"),
        row("medical", "state", "proposed"),  # never sent: not counted
    ]
    raw = report(rows)
    assert raw.by_service_type.counts == (2, 1)
    assert raw.by_provider_kind.counts == (1, 2)
    shelter_row = raw.service_type_by_outcome.counts[0]
    assert dict(zip(raw.service_type_by_outcome.columns, shelter_row, strict=True))["declined"] == 1
    assert raw.declined_by_reason.counts == (1, 0)
    assert raw.overdue_by_service_type.counts == (1, 0)


def test_median_times_only_from_the_minimum_count() -> None:
    rows = [
        row(
            "shelter",
            "ngo",
            "completed",
            requested_at=T0,
            answered_at=T0 + timedelta(hours=h),
            started_at=None,
        )
        for h in (1, 2, 3, 4, 10)
    ] + [row("medical", "state", "accepted", requested_at=T0, answered_at=T0 + timedelta(hours=1))]
    raw = report(rows)
    assert raw.time_to_answer.medians == (3.0, None)  # medical: one referral, withheld
    assert raw.time_to_answer.n == (5, 1)
    assert raw.time_to_start.medians == (None, None)


def test_publish_passes_every_count_through_the_given_suppression() -> None:
    seen: list[tuple[Any, ...]] = []

    def series(labels: Sequence[str], counts: Sequence[int]) -> dict[str, Any]:
        seen.append(("series", tuple(labels)))
        return {"cells": ["<5" if 0 < c < 5 else c for c in counts]}

    def table(rows: Sequence[str], columns: Sequence[str], counts: Sequence[Sequence[int]]) -> str:
        seen.append(("table", tuple(rows)))
        return "suppressed"

    out = statistics.publish(report([row("shelter", "ngo", "completed")]), series, table)
    assert out["by_service_type"] == {"cells": ["<5", 0]}
    assert out["service_type_by_outcome"] == "suppressed"
    assert len([s for s in seen if s[0] == "series"]) == 4 and len([s for s in seen if s[0] == "table"]) == 2


def test_service_layer_reads_codes_only_and_is_for_analysts_and_coordinators(
    world: World, shelter: dict[str, Any]
) -> None:
    sent = send(world, shelter["id"])
    referrals.decline(world.deps, user("al-shelter"), sent["id"], {"reason": "no_capacity"})
    rows = list(world.deps.statistics_source("AL"))
    assert set(rows[0]) == {
        "country",
        "service_type",
        "provider_kind",
        "outcome",
        "decline_reason",
        "overdue",
        "requested_at",
        "answered_at",
        "started_at",
    }

    def identity(labels: Sequence[str], counts: Sequence[int]) -> tuple[int, ...]:
        return tuple(counts)

    def grid(rows: Sequence[str], columns: Sequence[str], counts: Sequence[Sequence[int]]) -> int:
        return sum(map(sum, counts))

    out = referral_statistics(world.deps, user("al-analyst"), suppress_series=identity, suppress_table=grid)
    assert out["declined_by_reason"][0] == 1 and out["provider_kind_by_outcome"] == 1
    with pytest.raises(NotPermitted):
        referral_statistics(
            world.deps, user("al-case-manager"), suppress_series=identity, suppress_table=grid
        )
    assert (
        referral_statistics(
            world.deps, user("xk-coordinator"), suppress_series=identity, suppress_table=grid
        )["provider_kind_by_outcome"]
        == 0
    )


def test_the_published_report_is_a_year_through_plumbings_suppression(
    world: World, shelter: dict[str, Any]
) -> None:
    for n in range(6):
        sent = send(world, shelter["id"])
        world.clock.advance(hours=1)
        if n < 5:
            referrals.decline(world.deps, user("al-shelter"), sent["id"], {"reason": "no_capacity"})
    year = world.clock.now().year
    report = statistics_report(world.deps, user("al-analyst"), period=str(year))
    assert report["countries"] == ["AL"] and report["suppression"]["small"] == "<5"
    by_type = dict(zip(report["by_service_type"]["labels"], report["by_service_type"]["cells"], strict=True))
    assert by_type["shelter"] == 6
    declined = report["declined_by_reason"]
    assert dict(zip(declined["labels"], declined["cells"], strict=True))["no_capacity"] == 5
    assert report["service_type_by_outcome"]["row_totals"] == report["by_service_type"]["cells"]
    assert report["time_to_answer"]["median_hours"]["shelter"] is not None
    assert (
        statistics_report(world.deps, user("al-analyst"), period=str(year - 1))["by_service_type"]["total"]
        == 0
    )
    regional = statistics_report(world.deps, user("xk-coordinator"), period=str(year), scope="regional")
    assert regional["countries"] == ["AL", "ME", "XK"] and regional["by_service_type"]["total"] == 6
    assert (
        statistics_report(world.deps, user("xk-coordinator"), period=str(year))["by_service_type"]["total"]
        == 0
    )
