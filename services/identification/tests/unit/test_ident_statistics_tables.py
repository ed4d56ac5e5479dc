"""Published statistics tables, as a reader who requests many of them can combine them: the months of a quarter
with the quarter, a two-dimensional table with the one-dimensional tables of its dimensions, a regional table
with what each partner knows of its own cases. The decision facts are fixed in memory (the Mongo read is the
one adapter replaced here)."""

from __future__ import annotations

import random
from types import SimpleNamespace
from typing import Any

import pytest

from identification.adapters import statistics_source
from identification.service_layer import statistics
from plumbing.suppression import HIDDEN, SMALL

COUNTRIES = frozenset({"AL", "XK", "ME"})
CATEGORIES = ("potential_victim", "person_at_risk", "victim")


def fact(
    month: int, country: str = "AL", category: str = "potential_victim", sex: str = "female"
) -> dict[str, Any]:
    return {
        "month": month,
        "country": country,
        "category": category,
        "sex": sex,
        "agency": "police",
        "forms": [],
    }


@pytest.fixture
def facts(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    stored: list[dict[str, Any]] = []

    def read(start: Any, end: Any, country: str | None):
        return [dict(f) for f in stored if country in (None, f["country"])]

    monkeypatch.setattr(statistics_source, "decision_facts", read)
    return stored


DEPS = SimpleNamespace(config=SimpleNamespace(country_codes=COUNTRIES))
ANALYST = SimpleNamespace(country="AL")


def table(period: str, rows: str, columns: str | None = None, scope: str = "country") -> dict[str, Any]:
    return statistics.table(DEPS, ANALYST, period=period, rows=rows, columns=columns, scope=scope)  # type: ignore[arg-type]


def hidden(cell: Any) -> bool:
    return cell in (HIDDEN, SMALL)


def test_a_month_cannot_be_worked_out_from_its_quarter_and_the_other_months(facts) -> None:
    # January: 2 potential victims (small); February 6, March 7; the quarter shows 15.
    facts += (
        [fact(1)] * 2
        + [fact(2)] * 6
        + [fact(3)] * 7
        + [fact(m, category="person_at_risk") for m in (1, 2, 3)] * 6
    )
    quarter = table("2026-Q1", "category")
    months = [table(f"2026-0{m}", "category") for m in (1, 2, 3)]
    assert months[0]["cells"][months[0]["labels"].index("potential_victim")] == SMALL
    for j, label in enumerate(quarter["labels"]):
        month_cells = [m["cells"][m["labels"].index(label)] for m in months]
        if not hidden(quarter["cells"][j]):
            assert sum(hidden(c) for c in month_cells) != 1, (label, quarter, months)
    # Each month alone would have shown February's and March's 6 and 7.
    assert all(hidden(m["cells"][m["labels"].index("potential_victim")]) for m in months)


def test_the_year_and_its_quarters_agree_with_every_month(facts) -> None:
    rng = random.Random(3)
    for _ in range(120):
        facts.append(
            fact(rng.randint(1, 12), category=rng.choice(CATEGORIES), sex=rng.choice(("female", "male")))
        )
    year = table("2026", "category", "sex")
    quarters = [table(f"2026-Q{q}", "category", "sex") for q in range(1, 5)]
    # Wherever the year shows a cell, the quarters hide none or at least two of its parts.
    for i in range(len(year["row_labels"])):
        for j in range(len(year["column_labels"])):
            if not hidden(year["cells"][i][j]):
                assert sum(hidden(q["cells"][i][j]) for q in quarters) != 1
    for q, quarter in enumerate(quarters, start=1):
        months = [table(f"2026-{m:02d}", "category", "sex") for m in range(3 * q - 2, 3 * q + 1)]
        patterns = {tuple(hidden(c) for row in m["cells"] for c in row) for m in months}
        assert len(patterns) == 1  # the months of a quarter share one pattern
        shown = patterns.pop()
        quarter_hidden = tuple(hidden(c) for row in quarter["cells"] for c in row)
        assert all(
            m or not qh for m, qh in zip(shown, quarter_hidden, strict=True)
        )  # ... containing the quarter's


def test_a_two_dimensional_table_shows_its_margins_as_the_one_dimensional_tables(facts) -> None:
    rng = random.Random(5)
    for _ in range(40):
        facts.append(
            fact(rng.randint(1, 12), category=rng.choice(CATEGORIES), sex=rng.choice(("female", "male")))
        )
    for period in ("2026", "2026-Q2", "2026-05"):
        both = table(period, "category", "sex")
        assert both["row_totals"] == table(period, "category")["cells"]
        assert both["column_totals"] == table(period, "sex")["cells"]
        assert both["total"] == table(period, "category")["total"] == table(period, "sex")["total"]


def test_a_partner_cannot_subtract_its_own_cases_from_a_regional_cell(facts) -> None:
    # 7 regional potential victims in 2026: AL has 5 of them and would learn that XK and ME had 2.
    facts += [fact(3, "AL")] * 5 + [fact(4, "XK")] * 2
    facts += [fact(5, c, "person_at_risk") for c in ("AL", "XK", "ME")] * 6
    regional = table("2026", "category", scope="regional")
    cell = regional["cells"][regional["labels"].index("potential_victim")]
    assert cell == HIDDEN


def test_a_regional_table_by_country_keeps_each_partners_small_counts_from_the_others(facts) -> None:
    facts += [fact(2, "AL")] * 7 + [fact(2, "XK")] * 2 + [fact(2, "ME")] * 9
    by_country = table("2026", "country", scope="regional")
    cells = dict(zip(by_country["labels"], by_country["cells"], strict=True))
    assert cells["XK"] == SMALL and cells["AL"] == HIDDEN  # AL's 7, the smallest complement
    # But AL knows its own 7: with ME and the total both visible, XK's 2 would follow.
    assert hidden(cells["ME"]) or hidden(by_country["total"])


def test_the_answer_repeats_the_requested_scope_and_names_the_countries_counted(facts) -> None:
    facts += [fact(2, "AL")] * 7
    own = table("2026", "category")
    regional = table("2026", "category", scope="regional")
    assert (own["scope"], own["countries"]) == ("country", [ANALYST.country])
    assert (regional["scope"], regional["countries"]) == ("regional", ["AL", "ME", "XK"])
