"""Exchange statistics for the coordinator's office and analysts: the caller's country's own records only
(domain/statistics.py), counts suppressed by plumbing's suppression, the platform's one."""

from __future__ import annotations

from typing import Any

from exchange.domain import statistics
from exchange.domain.catalogue import CONTROL
from exchange.service_layer.deps import Deps
from exchange.service_layer.records import cases, to_case
from plumbing.auth import Caller
from plumbing.suppression import RULES, published, suppress_series, suppress_table


def exchange_statistics(deps: Deps, caller: Caller, *, period: str) -> dict[str, Any]:
    """The report of one calendar year (`period` "2026", its form checked by the contract) for the caller's
    country; a year without forms is a report of zeros."""
    now, own = deps.clock.now(), caller.country
    facts = [
        fact
        for doc in cases(deps, caller).find()  # the scoped repository: this country's records only
        for fact in statistics.form_facts(to_case(doc), own, deps.catalogue, now)
    ]
    form_types = sorted(code for code, kind in deps.catalogue.types.items() if kind.kind != CONTROL)
    raw = statistics.raw_report(
        facts,
        year=int(period),
        form_types=form_types,
        columns=statistics.pairs(own, deps.config.country_codes - {own}),
    )
    report = statistics.publish(raw, suppress_series, suppress_table)
    return {"period": period, "country": own, "suppression": dict(RULES), **published(report)}
