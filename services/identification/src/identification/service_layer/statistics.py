"""Statistics tables with small-cell and complementary suppression, consistent across the tables a reader can
combine: a table is suppressed together with its period's parent and siblings (year, quarters, months), its
margins as the one-dimensional tables of its dimensions, and - in regional tables - against each partner country
knowing its own part (the platform's one suppression, plumbing.suppression; docs/identification-domain.md)."""

from __future__ import annotations

import csv
import io
import re
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from identification.adapters import statistics_source
from identification.domain.errors import DomainError, ErrorDetail, raise_all
from identification.service_layer.deps import Deps
from plumbing.auth import Caller
from plumbing.suppression import (
    InvalidTable,
    render_series,
    render_table,
    report_header,
    series_pattern,
    table_pattern,
)

DIMENSIONS = {
    "country": "country",
    "category": "category",
    "sex": "sex",
    "age_group": "age_group",
    "form_of_exploitation": "form",
    "nationality": "nationality",
    "agency": "agency",
}
_PERIOD = re.compile(r"^(\d{4})(?:-(Q[1-4]|\d{2}))?$")


FIRST_YEAR, LAST_YEAR = 1900, 2999


@dataclass(frozen=True)
class Period:
    year: int
    quarter: int | None = None  # 1-4
    month: int | None = None  # 1-12

    def months(self) -> range:
        if self.month is not None:
            return range(self.month, self.month + 1)
        if self.quarter is not None:
            return range(3 * self.quarter - 2, 3 * self.quarter + 1)
        return range(1, 13)


def parse_period(text: str) -> Period:
    match = _PERIOD.match(text)
    if not match:
        raise DomainError("period_invalid", "period must be YYYY, YYYY-Qn or YYYY-MM", pointer="/period")
    year, part = int(match.group(1)), match.group(2)
    if not FIRST_YEAR <= year <= LAST_YEAR:
        # Also keeps the period's end representable (datetime stops at year 9999).
        raise DomainError("period_invalid", "year out of range", pointer="/period")
    if part is None:
        return Period(year)
    if part.startswith("Q"):
        return Period(year, quarter=int(part[1]))
    month = int(part)
    if not 1 <= month <= 12:
        raise DomainError("period_invalid", "month out of range", pointer="/period")
    return Period(year, quarter=(month - 1) // 3 + 1, month=month)


def _value(stat: dict[str, Any], dimension: str) -> str:
    if dimension == "form":
        forms = stat.get("forms") or []
        return str(forms[0]) if forms else "unknown"
    return str(stat.get(dimension) or "unknown")


def _family(period: Period) -> list[list[range]]:
    """From the year down to the requested period, each level's sibling periods (as months): the year; the
    four quarters; the three months of the quarter. Siblings share one pattern that contains their parent's."""
    levels = [[range(1, 13)]]
    if period.quarter is not None:
        levels.append([range(3 * q - 2, 3 * q + 1) for q in range(1, 5)])
    if period.month is not None and period.quarter is not None:
        first = 3 * period.quarter - 2
        levels.append([range(m, m + 1) for m in range(first, first + 3)])
    return levels


class _Facts:
    """One year of decision facts (codes only), counted by months, dimension values and partner country.

    In a regional table the partners' parts add up, and each partner knows its own part (an insider): the
    parts feed `sensitive`, and a by-country table protects against each partner's view of its own entries."""

    def __init__(self, facts: list[dict[str, Any]], countries: list[str]) -> None:
        self.facts = facts
        self.countries = countries

    def labels(self, dimension: str) -> list[str]:
        values = {_value(f, dimension) for f in self.facts}
        if dimension == "country":
            values |= set(self.countries)
        return sorted(values)

    def _selected(self, months: range, country: str | None) -> list[dict[str, Any]]:
        return [f for f in self.facts if f["month"] in months and country in (None, f.get("country"))]

    def series(
        self, months: range, dimension: str, labels: list[str], country: str | None = None
    ) -> list[int]:
        counts = Counter(_value(f, dimension) for f in self._selected(months, country))
        return [counts[label] for label in labels]

    def table(
        self,
        months: range,
        dims: tuple[str, str],
        labels: tuple[list[str], list[str]],
        country: str | None = None,
    ) -> list[list[int]]:
        pairs = Counter((_value(f, dims[0]), _value(f, dims[1])) for f in self._selected(months, country))
        return [[pairs[(r, c)] for c in labels[1]] for r in labels[0]]

    def country_views(self, dimension: str, labels: list[str]) -> list[int]:
        """Positions of the partners in a series by country (each partner knows its own count)."""
        return (
            [j for j, label in enumerate(labels) if label in self.countries] if dimension == "country" else []
        )


def _series_levels(
    facts: _Facts, period: Period, dimension: str, labels: list[str], total_hidden: list[bool] | None
) -> list[frozenset[int]]:
    """The pattern of a series at each level of the family. `total_hidden` per level comes from the by-country
    series (`None`: this is the by-country series, which decides it)."""
    views = [{j} for j in facts.country_views(dimension, labels)]
    patterns: list[frozenset[int]] = []
    pattern: frozenset[int] = frozenset()
    for depth, siblings in enumerate(_family(period)):
        forced = set(pattern) | ({len(labels)} if total_hidden and total_hidden[depth] else set())
        pattern = series_pattern(
            [facts.series(months, dimension, labels) for months in siblings],
            forced,
            parts=[[facts.series(m, dimension, labels, c) for c in facts.countries] for m in siblings],
            views=views,
            total_addable=total_hidden is None,
        )
        patterns.append(pattern)
    return patterns


def _total_hidden(facts: _Facts, period: Period) -> list[bool]:
    """Whether the grand total is hidden at each level: decided once, by the by-country series, for every table
    of the level, so that all tables agree on it."""
    labels = facts.labels("country")
    return [len(labels) in p for p in _series_levels(facts, period, "country", labels, None)]


def _table_pattern(
    facts: _Facts, period: Period, dims: tuple[str, str], labels: tuple[list[str], list[str]]
) -> frozenset[tuple[int, int]]:
    totals = _total_hidden(facts, period)
    row_levels = _series_levels(facts, period, dims[0], labels[0], totals)
    column_levels = _series_levels(facts, period, dims[1], labels[1], totals)
    n_rows, n_cols = len(labels[0]), len(labels[1])
    views = [{(k, j) for j in range(n_cols + 1)} for k in facts.country_views(dims[0], labels[0])]
    views += [{(i, k) for i in range(n_rows + 1)} for k in facts.country_views(dims[1], labels[1])]
    pattern: frozenset[tuple[int, int]] = frozenset()
    for siblings, rows_hidden, columns_hidden in zip(_family(period), row_levels, column_levels, strict=True):
        pattern = table_pattern(
            [facts.table(months, dims, labels) for months in siblings],
            rows_hidden,
            columns_hidden,
            pattern,
            parts=[[facts.table(m, dims, labels, c) for c in facts.countries] for m in siblings],
            views=views,
        )
    return pattern


def table(
    deps: Deps, caller: Caller, *, period: str, rows: str, columns: str | None, scope: str
) -> dict[str, Any]:
    try:
        return _table(deps, caller, period=period, rows=rows, columns=columns, scope=scope)
    except InvalidTable as error:
        # A table this service built that the suppression refuses (an internal invariant): this service's
        # DomainError, as every rule of a statistics request, which the endpoint answers under `/query`.
        raise DomainError(error.code, str(error)) from error


def _table(
    deps: Deps, caller: Caller, *, period: str, rows: str, columns: str | None, scope: str
) -> dict[str, Any]:
    errors: list[ErrorDetail] = []
    if rows not in DIMENSIONS:
        errors.append(ErrorDetail("unknown_dimension", "/rows"))
    if columns is not None and (columns not in DIMENSIONS or columns == rows):
        errors.append(ErrorDetail("unknown_dimension", "/columns"))
    raise_all(errors, "bad dimensions")
    requested = parse_period(period)
    country = None if scope == "regional" else caller.country
    year = (datetime(requested.year, 1, 1, tzinfo=UTC), datetime(requested.year + 1, 1, 1, tzinfo=UTC))
    # The whole year is read: the requested period is suppressed together with its parent and siblings.
    facts = _Facts(
        list(statistics_source.decision_facts(*year, country)),
        sorted(deps.config.country_codes) if country is None else [],
    )
    row_dim = DIMENSIONS[rows]
    body: dict[str, Any] = {
        **report_header(period, scope, caller.country, deps.config.country_codes),
        "rows": rows,
    }
    months = requested.months()
    if columns is None:
        labels = facts.labels(row_dim)
        if not labels:
            return {**body, "labels": [], "cells": [], "total": 0}
        pattern = _series_levels(facts, requested, row_dim, labels, _total_hidden(facts, requested))[-1]
        series = render_series(labels, facts.series(months, row_dim, labels), pattern)
        return {**body, **series.as_json()}
    col_dim = DIMENSIONS[columns]
    body["columns"] = columns
    both = (facts.labels(row_dim), facts.labels(col_dim))
    if not both[0] or not both[1]:
        return {
            **body,
            "row_labels": [],
            "column_labels": [],
            "cells": [],
            "row_totals": [],
            "column_totals": [],
            "total": 0,
        }
    dims = (row_dim, col_dim)
    hidden_cells = _table_pattern(facts, requested, dims, both)
    result = render_table(both[0], both[1], facts.table(months, dims, both), hidden_cells)
    return {**body, **result.as_json()}


def as_csv(data: dict[str, Any]) -> str:
    out = io.StringIO()
    writer = csv.writer(out)
    if "labels" in data:
        writer.writerow([data["rows"], "count"])
        for label, cell in zip(data["labels"], data["cells"], strict=True):
            writer.writerow([label, cell])
        writer.writerow(["total", data["total"]])
    else:
        writer.writerow([f"{data['rows']}\\{data['columns']}", *data["column_labels"], "total"])
        for label, cells, total in zip(data["row_labels"], data["cells"], data["row_totals"], strict=True):
            writer.writerow([label, *cells, total])
        writer.writerow(["total", *data["column_totals"], data["total"]])
    return out.getvalue()
