"""The one unscoped read of the service, named so for review: decision facts for statistics.

It projects the `stat` codes of decided cases only (category, sex, age group, forms, nationality, agency,
country) and the month of the decision: no ids leave this module, no name or date, nothing to decrypt. Analysts of every partner country see
the regional tables, so the read cannot go through the caller-scoped repository (analysts have no scope there).
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import Any

from identification.adapters.documents import CaseDocument


def decision_facts(start: datetime, end: datetime, country: str | None) -> Iterator[dict[str, Any]]:
    where: dict[str, Any] = {"decided_at": {"$gte": start, "$lt": end}, "stat": {"$ne": None}}
    if country is not None:
        where["owner_country"] = country
    for row in CaseDocument._get_collection().find(where, projection={"_id": 0, "stat": 1, "decided_at": 1}):
        if row.get("stat"):
            yield {**row["stat"], "month": row["decided_at"].month}
