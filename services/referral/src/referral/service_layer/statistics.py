"""Referral statistics for the coordinator's office and analysts: raw tables from the statistic rows (codes
and instants only), published through the suppression functions the caller passes (domain/statistics.py says
why the algorithm is a parameter: one suppression for every service, `plumbing.suppression`)."""

from __future__ import annotations

from typing import Any

from plumbing.auth import Caller
from plumbing.clock import as_utc
from plumbing.suppression import published, report_header, suppress_series, suppress_table
from referral.adapters.documents import ReferralDocument
from referral.domain import statistics
from referral.domain.directory import ProviderKind
from referral.domain.errors import NotPermitted
from referral.service_layer.deps import Deps

STATISTICS_ROLES = frozenset({"analyst", "coordinator"})


def stat_row(doc: ReferralDocument) -> dict[str, Any]:
    """What statistics read of a referral: codes and instants, nothing that identifies anyone."""
    return {
        "country": doc.owner_country,
        "service_type": doc.service_type,
        "provider_kind": doc.provider_kind,
        "outcome": doc.status,
        "decline_reason": doc.reason if doc.status == "declined" else None,
        "overdue": bool(doc.overdue),
        "requested_at": doc.requested_at,
        "answered_at": doc.answered_at,
        "started_at": doc.started_at,
    }


def referral_statistics(
    deps: Deps,
    caller: Caller,
    *,
    suppress_series: statistics.SuppressSeries[Any],
    suppress_table: statistics.SuppressTable[Any],
    regional: bool = False,
    year: int | None = None,
) -> dict[str, Any]:
    """The caller's country's report (or, with `regional`, every partner country's together), of the referrals
    requested in `year` (None: all)."""
    if not caller.roles & STATISTICS_ROLES:
        raise NotPermitted("statistics_not_permitted")
    rows = [
        row
        for row in deps.statistics_source(None if regional else caller.country)
        if year is None or (row.get("requested_at") is not None and as_utc(row["requested_at"]).year == year)
    ]
    raw = statistics.raw_report(
        rows,
        service_types=list(deps.catalogue.service_types),
        provider_kinds=[str(k) for k in ProviderKind],
        decline_reasons=list(deps.catalogue.reasons["decline"]),
    )
    return statistics.publish(raw, suppress_series, suppress_table)


def statistics_report(deps: Deps, caller: Caller, *, period: str, scope: str = "country") -> dict[str, Any]:
    """`GET /v1/referral/statistics`: one calendar year (smaller periods could be subtracted from one another),
    counts through plumbing.suppression, durations as their medians with the counts behind them suppressed."""
    regional = scope == "regional"
    report = referral_statistics(
        deps,
        caller,
        suppress_series=suppress_series,
        suppress_table=suppress_table,
        regional=regional,
        year=int(period),
    )
    return {
        **report_header(period, scope, caller.country, deps.config.country_codes),
        **published(report),
    }
