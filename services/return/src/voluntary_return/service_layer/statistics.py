"""Return statistics for the coordinator's office and analysts (`GET /v1/return/statistics`): one calendar year of
return cases, counts through the platform's suppression (plumbing.suppression), stage medians withheld under five
cases. Codes, counts and instants only (domain/statistics.py builds the rows and the raw tables).

Which cases count: a country's report counts its own cases, both sides - the returns it runs as the host and
those of its people coming home (the origin side, where reintegration is followed up); each row names the pair
as host-origin. The regional report counts each return once, by its host-side case.
"""

from __future__ import annotations

from typing import Any

from plumbing.auth import Caller
from plumbing.clock import as_utc
from plumbing.suppression import published, report_header, suppress_series, suppress_table
from voluntary_return.adapters.documents import ReturnCaseDocument
from voluntary_return.domain import statistics
from voluntary_return.domain.errors import NotPermitted
from voluntary_return.domain.lifecycle import Side
from voluntary_return.domain.subject import treated_as_child
from voluntary_return.service_layer.deps import Deps

STATISTICS_ROLES = frozenset({"analyst", "coordinator"})


def stat_row(deps: Deps, doc: ReturnCaseDocument) -> statistics.StatRow:
    """What statistics read of a case: its pair, group, status and the steps of its timeline (instants, codes)."""
    origin_side = doc.side == Side.ORIGIN
    host = (doc.host_country or "") if origin_side else doc.owner_country
    steps = [entry for entry in doc.timeline or () if "from" in entry and "to" in entry]
    return statistics.stat_row(
        origin_country=host,
        destination_country=doc.origin_country,
        child=treated_as_child(doc.age_group, bool(doc.age_uncertain)),
        status=doc.status,
        requested_at=as_utc(doc.created_at),
        timeline=steps,
        periods=deps.catalogue.reintegration,
        now=deps.clock.now(),
    )


def statistics_report(deps: Deps, caller: Caller, *, period: str, scope: str = "country") -> dict[str, Any]:
    if not caller.roles & STATISTICS_ROLES:
        raise NotPermitted("statistics_not_permitted")
    regional = scope == "regional"
    year = int(period)
    docs = [
        doc
        for doc in deps.statistics_source(None if regional else caller.country)
        if as_utc(doc.created_at).year == year and (not regional or doc.side != Side.ORIGIN)
    ]
    raw = statistics.raw_report(
        (stat_row(deps, doc) for doc in docs),
        countries=sorted(deps.config.country_codes),
        stop_reasons=list(deps.catalogue.reasons["stop"]),
        close_reasons=list(deps.catalogue.reasons["close"]),
    )
    report = statistics.publish(raw, suppress_series, suppress_table)
    return {
        **report_header(period, scope, caller.country, deps.config.country_codes),
        **published(report),
    }
