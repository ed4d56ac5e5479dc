"""The platform's small-cell suppression (plumbing.suppression): primary "<5", complementary "x", and no hidden
value recoverable from the totals."""

from __future__ import annotations

import random
from collections.abc import Sequence

import pytest

from plumbing.errors import Violation
from plumbing.suppression import (
    HIDDEN,
    SMALL,
    Cell,
    InvalidTable,
    SuppressedTable,
    determined_cells,
    margins_free,
    published,
    render_series,
    report_header,
    series_pattern,
    suppress_series,
    suppress_table,
    table_lines,
    table_pattern,
)
from plumbing.suppression import grid_of as count_grid


def grid_of(table: SuppressedTable) -> list[list[Cell]]:
    rows: list[list[Cell]] = [[*row, total] for row, total in zip(table.cells, table.row_totals, strict=True)]
    rows.append([*table.column_totals, table.total])
    return rows


def full_grid(counts: Sequence[Sequence[int]]) -> list[list[int]]:
    rows = [[*row, sum(row)] for row in counts]
    rows.append([sum(col) for col in zip(*rows, strict=True)])
    return rows


def lines_of(grid: list[list[Cell]]) -> list[list[Cell]]:
    return [list(row) for row in grid] + [list(col) for col in zip(*grid, strict=True)]


def test_small_cells_and_their_complements() -> None:
    table = suppress_table(["AL", "XK", "ME"], ["female", "male"], [[12, 3], [20, 30], [7, 9]])
    assert table.cells == ((HIDDEN, SMALL), (20, 30), (HIDDEN, HIDDEN))
    assert table.row_totals == (15, 50, 16)
    assert table.column_totals == (39, 42)
    assert table.total == 81


def test_table_without_small_cells_is_unchanged() -> None:
    table = suppress_table(["a", "b"], ["x", "y"], [[10, 0], [5, 7]])
    assert table.cells == ((10, 0), (5, 7))
    assert table.hidden == frozenset()


def test_small_margin_is_suppressed_and_protected() -> None:
    table = suppress_table(["a", "b"], ["x", "y"], [[2, 1], [10, 20]])
    assert table.row_totals[0] == SMALL
    assert table.cells[0] == (SMALL, SMALL)
    for line in lines_of(grid_of(table)):
        assert sum(1 for v in line if isinstance(v, str)) != 1


def test_series() -> None:
    series = suppress_series(["sexual", "labour", "begging"], [3, 10, 20])
    assert series.cells == (SMALL, HIDDEN, 20)
    assert series.total == 33
    assert suppress_series(["a", "b"], [0, 12]).cells == (0, 12)
    only = suppress_series(["a", "b", "c"], [3, 0, 0])
    assert only.cells == (SMALL, 0, 0)
    assert only.total == SMALL


@pytest.mark.parametrize(
    "counts",
    [[], [[1, 2], [3]], [[-1, 5]], [[True, 5]]],
)
def test_invalid_tables(counts: list[list[int]]) -> None:
    with pytest.raises(InvalidTable) as caught:
        suppress_table(
            [str(i) for i in range(len(counts))], ["x", "y"][: len(counts[0]) if counts else 0], counts
        )
    # A RuleViolation: the app factory answers it 422 with this one code for the body as a whole.
    assert caught.value.code == "statistics_table_invalid"
    assert caught.value.details == (Violation("statistics_table_invalid", ""),)


def test_audit_catches_disclosure_by_combining_lines() -> None:
    # Two closed cycles of hidden cells joined by one more hidden cell: every row and column has 0 or at
    # least 2 hidden entries, yet the joining cell is fixed because each cycle balances on its own.
    lines = [[(i, j) for j in range(5)] for i in range(5)] + [[(i, j) for i in range(5)] for j in range(5)]
    cycles = {(0, 0), (0, 1), (1, 0), (1, 1), (2, 2), (2, 3), (3, 2), (3, 3)}
    bridge = (1, 2)
    hidden = cycles | {bridge}
    for line in lines:
        assert sum(1 for p in line if p in hidden) != 1
    assert determined_cells(lines, cycles) == set()
    assert determined_cells(lines, hidden) == {bridge}


def test_suppression_never_leaves_a_bridge() -> None:
    counts = [[7, 8, 6, 9], [3, 9, 2, 7], [8, 6, 9, 5], [9, 7, 6, 8]]
    table = suppress_table(["a", "b", "c", "d"], ["w", "x", "y", "z"], counts)
    lines = [[(i, j) for j in range(5)] for i in range(5)] + [[(i, j) for i in range(5)] for j in range(5)]
    assert table.cells[1][0] == SMALL and table.cells[1][2] == SMALL
    assert determined_cells(lines, set(table.hidden)) == set()


def _random_table(rng: random.Random) -> list[list[int]]:
    rows, cols = rng.randint(1, 6), rng.randint(1, 6)
    # Mostly small counts, so that suppression patterns are dense and interesting.
    return [[rng.choice([0, 0, 1, 2, 3, 4, 5, 6, 9, 14, 30, 120]) for _ in range(cols)] for _ in range(rows)]


@pytest.mark.parametrize("seed", range(40))
def test_random_tables_leak_nothing(seed: int) -> None:
    rng = random.Random(seed)
    for _ in range(10):
        counts = _random_table(rng)
        table = suppress_table(
            [f"r{i}" for i in range(len(counts))], [f"c{j}" for j in range(len(counts[0]))], counts
        )
        shown = grid_of(table)
        truth = full_grid(counts)
        for i, row in enumerate(shown):
            for j, value in enumerate(row):
                true = truth[i][j]
                if 1 <= true <= 4:
                    assert value == SMALL
                elif isinstance(value, int):
                    assert value == true
                else:
                    assert value == HIDDEN and (i, j) in table.hidden
        # No single row or column equation has exactly one unknown.
        for line in lines_of(shown):
            assert sum(1 for v in line if isinstance(v, str)) != 1, (counts, shown)
        # And no combination of equations pins a hidden value down.
        lines = [[(i, j) for j in range(len(truth[0]))] for i in range(len(truth))]
        lines += [[(i, j) for i in range(len(truth))] for j in range(len(truth[0]))]
        assert determined_cells(lines, set(table.hidden)) == set()


@pytest.mark.parametrize("seed", range(20))
def test_random_series_leak_nothing(seed: int) -> None:
    rng = random.Random(1000 + seed)
    counts = [rng.choice([0, 1, 2, 3, 4, 5, 8, 40]) for _ in range(rng.randint(1, 8))]
    series = suppress_series([str(i) for i in range(len(counts))], counts)
    line = [*series.cells, series.total]
    assert sum(1 for v in line if isinstance(v, str)) != 1
    for value, true in zip(line, [*counts, sum(counts)], strict=True):
        assert value == (SMALL if 1 <= true <= 4 else value)
        if isinstance(value, int):
            assert value == true


# ------------------------------------------------------------------------- linked tables: margins, periods
# A reader combines every published table. These tests write all the equations such a reader has - each table's
# lines, plus the links between tables (a shared margin is one unknown; a quarter cell is the sum of its month
# cells) - and require that no hidden value is determined by the combined system.

Key = tuple[object, ...]


def _table_equations(
    name: object, counts: Sequence[Sequence[int]], margin: dict[str, object]
) -> list[list[Key]]:
    """The lines of one table, with its row totals named `margin["rows"]`, its column totals
    `margin["columns"]` and its grand total `margin["total"]`, so that tables sharing them share unknowns."""
    rows, cols = len(counts), len(counts[0])

    def key(i: int, j: int) -> Key:
        if i == rows and j == cols:
            return (margin["total"],)
        if j == cols:
            return (margin["rows"], i)
        if i == rows:
            return (margin["columns"], j)
        return (name, i, j)

    return [[key(i, j) for j in range(cols + 1)] for i in range(rows + 1)] + [
        [key(i, j) for i in range(rows + 1)] for j in range(cols + 1)
    ]


def _hidden_keys(
    name: object, pattern: frozenset, rows: int, cols: int, margin: dict[str, object]
) -> set[Key]:
    out: set[Key] = set()
    for i, j in pattern:
        if i == rows and j == cols:
            out.add((margin["total"],))
        elif j == cols:
            out.add((margin["rows"], i))
        elif i == rows:
            out.add((margin["columns"], j))
        else:
            out.add((name, i, j))
    return out


def test_a_two_dimensional_table_hides_its_margins_as_the_one_dimensional_tables_do() -> None:
    rng = random.Random(7)
    for _ in range(300):
        counts = _random_table(rng)
        table = suppress_table(
            [f"r{i}" for i in range(len(counts))], [f"c{j}" for j in range(len(counts[0]))], counts
        )
        rows = suppress_series([f"r{i}" for i in range(len(counts))], [sum(r) for r in counts])
        columns = suppress_series(
            [f"c{j}" for j in range(len(counts[0]))], [sum(c) for c in zip(*counts, strict=True)]
        )
        assert table.row_totals == rows.cells and table.column_totals == columns.cells, counts
        assert table.total == rows.total == columns.total, counts


@pytest.mark.parametrize("seed", range(40))
def test_three_tables_sharing_their_dimensions_disclose_nothing_together(seed: int) -> None:
    # People by A x B, A x C and B x C: one set of facts, three tables, each margin shared by two of them.
    rng = random.Random(500 + seed)
    sizes = {"A": rng.randint(2, 4), "B": rng.randint(2, 4), "C": rng.randint(2, 4)}
    facts = [tuple(rng.randrange(sizes[d]) for d in "ABC") for _ in range(rng.randint(3, 30))]

    def cross(x: int, y: int) -> list[list[int]]:
        n_x, n_y = sizes["ABC"[x]], sizes["ABC"[y]]
        return [[sum(1 for f in facts if (f[x], f[y]) == (i, j)) for j in range(n_y)] for i in range(n_x)]

    series = {d: [sum(1 for f in facts if f[k] == i) for i in range(sizes[d])] for k, d in enumerate("ABC")}
    lines: list[list[Key]] = []
    hidden: set[Key] = set()
    shown_patterns = {}
    for x, y in ((0, 1), (0, 2), (1, 2)):
        rows, columns = "ABC"[x], "ABC"[y]
        counts = cross(x, y)
        row_pattern, column_pattern = series_pattern([series[rows]]), series_pattern([series[columns]])
        for name, pattern in ((rows, row_pattern), (columns, column_pattern)):
            assert shown_patterns.setdefault(name, pattern) == pattern  # a series shows one way everywhere
        margin = {"rows": rows, "columns": columns, "total": "T"}
        lines += _table_equations(rows + columns, counts, margin)
        pattern = table_pattern([counts], row_pattern, column_pattern)
        hidden |= _hidden_keys(rows + columns, pattern, sizes[rows], sizes[columns], margin)
    assert determined_cells(lines, hidden) == set(), facts


def test_a_table_never_ties_hidden_margins_together() -> None:
    # [[3, 0], [0, 2]]: hiding only the small cells and their margins would tell that the first row total equals
    # the first column total - nothing a series says, and enough to combine with a third table.
    rng = random.Random(11)
    for counts in [[[3, 0], [0, 2]], *(_random_table(rng) for _ in range(400))]:
        rows, cols = len(counts), len(counts[0])
        row_pattern = series_pattern([[sum(r) for r in counts]])
        column_pattern = series_pattern([[sum(c) for c in zip(*counts, strict=True)]])
        pattern = table_pattern([counts], row_pattern, column_pattern)
        assert margins_free(table_lines(rows, cols), set(pattern), rows, cols), counts


@pytest.mark.parametrize("seed", range(30))
def test_months_quarter_and_year_disclose_nothing_together(seed: int) -> None:
    # A year of one-dimensional tables: 12 months, 4 quarters, the year; every sum between them is known.
    rng = random.Random(900 + seed)
    n = rng.randint(2, 5)
    months = [[rng.choice([0, 0, 1, 2, 3, 6, 9]) for _ in range(n)] for _ in range(12)]
    quarters = [[sum(months[3 * q + k][j] for k in range(3)) for j in range(n)] for q in range(4)]
    year = [sum(q[j] for q in quarters) for j in range(n)]
    year_pattern = series_pattern([year])
    quarter_pattern = series_pattern(quarters, year_pattern)
    month_patterns = [series_pattern(months[3 * q : 3 * q + 3], quarter_pattern) for q in range(4)]

    def key(period: str, j: int) -> Key:
        return (period, j)

    lines: list[list[Key]] = []
    hidden: set[Key] = set()
    periods = [("Y", year, year_pattern)]
    periods += [(f"Q{q}", quarters[q], quarter_pattern) for q in range(4)]
    periods += [(f"M{m}", months[m], month_patterns[m // 3]) for m in range(12)]
    for name, _, pattern in periods:
        lines.append([key(name, j) for j in range(n + 1)])
        hidden |= {key(name, j) for j in pattern}
    for j in range(n + 1):  # each cell and the total: a quarter is its months, the year its quarters
        for q in range(4):
            lines.append([*(key(f"M{3 * q + k}", j) for k in range(3)), key(f"Q{q}", j)])
        lines.append([*(key(f"Q{q}", j) for q in range(4)), key("Y", j)])
    assert determined_cells(lines, hidden) == set(), months
    for name, counts, pattern in periods:  # and every small count is hidden where it is published
        assert all(j in pattern for j, v in enumerate([*counts, sum(counts)]) if 1 <= v <= 4), name


@pytest.mark.parametrize("seed", range(15))
def test_two_dimensional_months_and_their_quarter_disclose_nothing_together(seed: int) -> None:
    rng = random.Random(1300 + seed)
    n_rows, n_cols = rng.randint(2, 3), rng.randint(2, 3)
    months = [
        [[rng.choice([0, 0, 1, 2, 4, 7]) for _ in range(n_cols)] for _ in range(n_rows)] for _ in range(3)
    ]
    quarter = [[sum(m[i][j] for m in months) for j in range(n_cols)] for i in range(n_rows)]

    def margins(t: Sequence[Sequence[int]]) -> tuple[list[int], list[int]]:
        return [sum(r) for r in t], [sum(c) for c in zip(*t, strict=True)]

    q_rows, q_cols = series_pattern([margins(quarter)[0]]), series_pattern([margins(quarter)[1]])
    q_hidden = table_pattern([quarter], q_rows, q_cols)
    m_rows = series_pattern([margins(m)[0] for m in months], q_rows)
    m_cols = series_pattern([margins(m)[1] for m in months], q_cols)
    m_hidden = table_pattern(months, m_rows, m_cols, q_hidden)
    assert q_hidden <= m_hidden

    names = ["Q", "M0", "M1", "M2"]
    lines: list[list[Key]] = []
    hidden: set[Key] = set()
    for name, pattern in zip(names, [q_hidden, m_hidden, m_hidden, m_hidden], strict=True):
        margin = {"rows": f"{name}r", "columns": f"{name}c", "total": f"{name}t"}
        lines += _table_equations(name, quarter, margin)
        hidden |= _hidden_keys(name, pattern, n_rows, n_cols, margin)

    def at(name: str, i: int, j: int) -> Key:
        if i == n_rows and j == n_cols:
            return (f"{name}t",)
        if j == n_cols:
            return (f"{name}r", i)
        if i == n_rows:
            return (f"{name}c", j)
        return (name, i, j)

    for i in range(n_rows + 1):
        for j in range(n_cols + 1):
            lines.append([at("M0", i, j), at("M1", i, j), at("M2", i, j), at("Q", i, j)])
    assert determined_cells(lines, hidden) == set(), months


# ------------------------------------------------------------------ insiders: each country knows its own part


def test_a_regional_cell_is_hidden_when_it_minus_one_countrys_part_is_small() -> None:
    # Category counts of AL, XK and ME: AL knows its own 5, so a regional 7 would tell AL that XK and ME had 2.
    parts = [[5, 10, 0], [2, 0, 6], [0, 9, 6]]
    regional = [sum(p[j] for p in parts) for j in range(3)]
    pattern = series_pattern([regional], parts=[parts])
    assert 0 in pattern
    shown = render_series(["a", "b", "c"], regional, pattern)
    assert shown.cells[0] == HIDDEN  # 7 itself is not small: it is hidden, not "<5"
    assert series_pattern([regional]) == frozenset()  # without insiders nothing needed hiding


def test_with_two_partners_a_hidden_country_count_hides_the_total() -> None:
    # By country, AL 6 and XK 2: AL knows its 6, so XK's count follows from any visible total.
    assert series_pattern([[6, 2]], views=[{0}, {1}], total_addable=True) == frozenset({0, 1, 2})
    # With three, hiding all three countries leaves AL two unknowns for one sum: the total can stay.
    assert series_pattern([[6, 2, 9]], views=[{0}, {1}, {2}], total_addable=True) == frozenset({0, 1, 2})


@pytest.mark.parametrize("seed", range(30))
def test_a_regional_table_by_country_discloses_nothing_to_any_country_knowing_its_own_column(
    seed: int,
) -> None:
    rng = random.Random(2100 + seed)
    n_rows, countries = rng.randint(2, 5), rng.randint(2, 4)
    counts = [[rng.choice([0, 0, 1, 2, 3, 5, 8, 13]) for _ in range(countries)] for _ in range(n_rows)]
    views = [{(i, c) for i in range(n_rows + 1)} for c in range(countries)]
    # Country c's part of the table: its own column, zeros elsewhere.
    parts = [
        [[row[k] if k == c else 0 for k in range(countries)] for row in counts] for c in range(countries)
    ]
    country_pattern = series_pattern(
        [[sum(r[c] for r in counts) for c in range(countries)]],
        views=[{c} for c in range(countries)],
        total_addable=True,
    )
    total_hidden = {len(counts)} if countries in country_pattern else set()
    row_parts = [[sum(row) for row in part] for part in parts]
    row_pattern = series_pattern([[sum(r) for r in counts]], total_hidden, parts=[row_parts])
    pattern = table_pattern([counts], row_pattern, country_pattern, parts=[parts], views=views)
    lines = table_lines(n_rows, countries)
    grid = count_grid(counts)
    for c, view in enumerate(views):
        # What country c can work out: nothing small of the others, nor a count it could subtract its own from.
        own = count_grid(parts[c])
        others_small = {p for p, v in grid.items() if p not in view and 1 <= v - own[p] <= 4}
        assert not (determined_cells(lines, set(pattern) - view) - view) & others_small, (counts, c)
    assert determined_cells(lines, set(pattern)) == set()


def test_a_country_report_names_only_the_callers_country_and_a_regional_one_every_country() -> None:
    own = report_header("2026", "country", "XK", {"ME", "AL", "XK"})
    regional = report_header("2026", "regional", "XK", {"ME", "AL", "XK"})
    assert (own["countries"], regional["countries"]) == (["XK"], ["AL", "ME", "XK"])
    assert own["suppression"] == {"small": "<5", "complementary": "x", "threshold": 5}


def test_a_published_report_renders_its_tables_and_keeps_its_medians() -> None:
    body = published({"by_type": suppress_series(["a", "b"], [2, 9]), "median_days": {"a": None, "b": 3.0}})
    assert body["by_type"]["cells"] == ["<5", "x"] and body["median_days"] == {"a": None, "b": 3.0}
