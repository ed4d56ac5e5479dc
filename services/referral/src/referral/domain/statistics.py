"""Referral statistics for the coordinators' reports: codes only, never personal data, small counts suppressed.

This module builds the RAW tables (labels and counts) from statistic rows - one per referral sent, codes and
instants only (service type, provider kind, outcome, decline reason, overdue, requested/answered/started at) -
and hands them to suppression functions it is GIVEN (`publish(raw, suppress_series, suppress_table)`). It does
not import or copy a suppression algorithm: the platform must suppress every service's tables the same way,
so the one implementation (`plumbing.suppression`: `suppress_series`, `suppress_table`, which keep a table's
margins equal to the series of its dimensions) is passed in by the wiring.

Medianss (time to answer, time to start) are medians in hours per service type; a median over fewer than
`min_n` referrals is withheld (None), with the count itself left to the count tables' suppression.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from statistics import median
from typing import Any

from plumbing.clock import as_utc
from plumbing.suppression import Medians, RawSeries, RawTable, S, SuppressSeries, SuppressTable, T
from referral.domain.lifecycle import Status

# Outcomes of referrals that were sent (proposals never sent are not counted), in report order.
OUTCOMES: tuple[str, ...] = (
    Status.REQUESTED,
    Status.ACCEPTED,
    Status.IN_PROGRESS,
    Status.COMPLETED,
    Status.DECLINED,
    Status.CANCELLED,
    Status.REVOKED,
    Status.EXPIRED,
)
MIN_N = 5


@dataclass(frozen=True)
class RawReport:
    by_service_type: RawSeries
    by_provider_kind: RawSeries
    service_type_by_outcome: RawTable
    provider_kind_by_outcome: RawTable
    declined_by_reason: RawSeries
    overdue_by_service_type: RawSeries
    time_to_answer: Medians
    time_to_start: Medians


def _hours(start: datetime | None, end: datetime | None) -> float | None:
    if start is None or end is None:
        return None
    return (as_utc(end) - as_utc(start)).total_seconds() / 3600


def _duration(
    labels: Sequence[str], rows: Sequence[Mapping[str, Any]], start: str, end: str, min_n: int
) -> Medians:
    spans: dict[str, list[float]] = {label: [] for label in labels}
    for row in rows:
        hours = _hours(row.get(start), row.get(end))
        if hours is not None and row["service_type"] in spans:
            spans[row["service_type"]].append(hours)
    return Medians(
        tuple(labels),
        tuple(len(spans[label]) for label in labels),
        tuple(round(median(spans[label]), 1) if len(spans[label]) >= min_n else None for label in labels),
        "hours",
    )


def raw_report(
    rows: Iterable[Mapping[str, Any]],
    *,
    service_types: Sequence[str],
    provider_kinds: Sequence[str],
    decline_reasons: Sequence[str],
    min_n: int = MIN_N,
) -> RawReport:
    """Every table before suppression. Row labels are the catalogue's full lists, so a zero is shown as a zero
    and a table's shape does not reveal which codes occurred."""
    sent = [row for row in rows if row.get("outcome") in OUTCOMES]
    return RawReport(
        by_service_type=RawSeries.count(service_types, (r["service_type"] for r in sent)),
        by_provider_kind=RawSeries.count(provider_kinds, (r["provider_kind"] for r in sent)),
        service_type_by_outcome=RawTable.count(
            service_types, OUTCOMES, ((r["service_type"], r["outcome"]) for r in sent)
        ),
        provider_kind_by_outcome=RawTable.count(
            provider_kinds, OUTCOMES, ((r["provider_kind"], r["outcome"]) for r in sent)
        ),
        declined_by_reason=RawSeries.count(
            decline_reasons,
            (r.get("decline_reason") for r in sent if r["outcome"] == Status.DECLINED),
        ),
        overdue_by_service_type=RawSeries.count(
            service_types, (r["service_type"] for r in sent if r.get("overdue"))
        ),
        time_to_answer=_duration(service_types, sent, "requested_at", "answered_at", min_n),
        time_to_start=_duration(service_types, sent, "requested_at", "started_at", min_n),
    )


def publish(
    raw: RawReport, suppress_series: SuppressSeries[S], suppress_table: SuppressTable[T]
) -> dict[str, Any]:
    """The report as published: every count through the given suppression, durations as computed."""
    series = {
        "by_service_type": raw.by_service_type,
        "by_provider_kind": raw.by_provider_kind,
        "declined_by_reason": raw.declined_by_reason,
        "overdue_by_service_type": raw.overdue_by_service_type,
    }
    tables = {
        "service_type_by_outcome": raw.service_type_by_outcome,
        "provider_kind_by_outcome": raw.provider_kind_by_outcome,
    }
    out: dict[str, Any] = {name: suppress_series(s.labels, s.counts) for name, s in series.items()}
    out.update({name: suppress_table(t.rows, t.columns, t.counts) for name, t in tables.items()})
    out["time_to_answer"] = raw.time_to_answer
    out["time_to_start"] = raw.time_to_start
    return out
