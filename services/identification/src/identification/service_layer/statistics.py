"""Statistics tables with small-cell and complementary suppression."""

from __future__ import annotations

import csv
import io
import re
from collections import Counter
from datetime import UTC, datetime
from typing import Any

from identification.adapters import statistics_source
from identification.domain.errors import DomainError, ErrorDetail, raise_all
from identification.domain.statistics import suppress_series, suppress_table
from identification.service_layer.deps import Deps
from plumbing.auth import Caller

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


def parse_period(text: str) -> tuple[datetime, datetime]:
    match = _PERIOD.match(text)
    if not match:
        raise DomainError("period_invalid", "period must be YYYY, YYYY-Qn or YYYY-MM", pointer="/period")
    year, part = int(match.group(1)), match.group(2)
    if not FIRST_YEAR <= year <= LAST_YEAR:
        # Also keeps the period's end representable (datetime stops at year 9999).
        raise DomainError("period_invalid", "year out of range", pointer="/period")
    if part is None:
        return datetime(year, 1, 1, tzinfo=UTC), datetime(year + 1, 1, 1, tzinfo=UTC)
    if part.startswith("Q"):
        first = 3 * (int(part[1]) - 1) + 1
        months = (first, first + 3)
    else:
        month = int(part)
        if not 1 <= month <= 12:
            raise DomainError("period_invalid", "month out of range", pointer="/period")
        months = (month, month + 1)
    start = datetime(year, months[0], 1, tzinfo=UTC)
    end = datetime(year + (months[1] > 12), (months[1] - 1) % 12 + 1, 1, tzinfo=UTC)
    return start, end


def _value(stat: dict[str, Any], dimension: str) -> str:
    if dimension == "form":
        forms = stat.get("forms") or []
        return str(forms[0]) if forms else "unknown"
    return str(stat.get(dimension) or "unknown")


def table(
    deps: Deps, caller: Caller, *, period: str, rows: str, columns: str | None, scope: str
) -> dict[str, Any]:
    errors: list[ErrorDetail] = []
    if rows not in DIMENSIONS:
        errors.append(ErrorDetail("unknown_dimension", "/rows"))
    if columns is not None and (columns not in DIMENSIONS or columns == rows):
        errors.append(ErrorDetail("unknown_dimension", "/columns"))
    raise_all(errors, "bad dimensions")
    start, end = parse_period(period)
    country = None if scope == "regional" else caller.country
    facts = list(statistics_source.decision_facts(start, end, country))
    row_dim = DIMENSIONS[rows]
    body: dict[str, Any] = {
        "period": period,
        "scope": "regional" if country is None else country,
        "rows": rows,
        "suppression": {"small": "<5", "complementary": "x", "threshold": 5},
    }
    if columns is None:
        counts = Counter(_value(f, row_dim) for f in facts)
        labels = sorted(counts)
        if not labels:
            return {**body, "labels": [], "cells": [], "total": 0}
        series = suppress_series(labels, [counts[label] for label in labels])
        return {**body, "labels": list(series.labels), "cells": list(series.cells), "total": series.total}
    col_dim = DIMENSIONS[columns]
    pairs = Counter((_value(f, row_dim), _value(f, col_dim)) for f in facts)
    row_labels = sorted({r for r, _ in pairs})
    col_labels = sorted({c for _, c in pairs})
    body["columns"] = columns
    if not pairs:
        return {
            **body,
            "row_labels": [],
            "column_labels": [],
            "cells": [],
            "row_totals": [],
            "column_totals": [],
            "total": 0,
        }
    result = suppress_table(row_labels, col_labels, [[pairs[(r, c)] for c in col_labels] for r in row_labels])
    return {
        **body,
        "row_labels": list(result.rows),
        "column_labels": list(result.columns),
        "cells": [list(r) for r in result.cells],
        "row_totals": list(result.row_totals),
        "column_totals": list(result.column_totals),
        "total": result.total,
    }


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
