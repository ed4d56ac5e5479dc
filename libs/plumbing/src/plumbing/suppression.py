"""Small-cell suppression for published tables with margins, consistent across linked tables: the platform's one
suppression, used by every service (identification, referral, exchange, return) for the statistics it publishes,
so that every service's tables are suppressed the same way.

A table is a grid of counts with its row totals, column totals and grand total (a one-dimensional table, a
*series*, is one row of counts with its total). Its *lines* are the equations a reader knows: each row with its
total, each column with its total, the row totals with the grand total, the column totals with the grand total.

Within one table (docs/identification-domain.md has the full text):

1. Primary: every entry - interior or margin - with a count from 1 to 4 is shown as ``"<5"``.
2. Complementary: while a line has exactly one hidden entry, another entry of that line is hidden (``"x"``),
   preferring non-zero cells, then the smallest count.
3. Audit: the line equations are solved over the hidden entries with exact rational arithmetic; an entry that is
   still determined gets a further complement, and the audit runs again.

Across tables, so that no hidden value follows from *other* tables either:

- Margins: a two-dimensional table's row and column totals are the one-dimensional tables of its dimensions, so
  its margins are hidden exactly as those series are (`series_pattern`), and only interior cells are added as
  complements. Its audit also requires that the table says nothing more about the hidden margins than the two
  series lines do (`margins_free`), so that combining two tables that share a dimension pins nothing down.
- Periods: a quarter is the sum of its months, a year of its quarters. Sibling periods (the four quarters of a
  year, the three months of a quarter) share one hidden pattern, which contains the parent period's. Then the
  parent's visible values constrain the siblings only in directions each sibling's own audit already allows.
  The caller (a service layer) builds the family: `series_pattern` / `table_pattern` take every sibling's
  counts and the parent's pattern.

Zeros are published: they are not small cells. Bounds that follow from counts being non-negative (interval
disclosure) are not audited; see the docs for why this is acceptable for the published tables.

A table the caller built wrong (not a rectangle, negative counts, labels or siblings that do not match) raises
`InvalidTable`: a `plumbing.errors.RuleViolation` with the stable code ``statistics_table_invalid``, which the app
factory answers 422 `validation-failed` like any broken rule. It is an invariant of the caller, never the client's
input: a service may map it to its own domain error where it places a request's rules elsewhere.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from fractions import Fraction
from typing import Any, TypeVar

from plumbing.errors import RuleViolation, Violation

SMALL = "<5"
HIDDEN = "x"
MIN_SHOWN = 5

Cell = int | str
Position = tuple[int, int]
Counts = Sequence[Sequence[int]]


class InvalidTable(RuleViolation):
    """A table the caller built wrong: 422 `validation-failed` with the code ``statistics_table_invalid`` for the
    body as a whole. The message is for developers only."""

    code = "statistics_table_invalid"

    def __init__(self, message: str) -> None:
        super().__init__(message, (Violation(self.code),))


@dataclass(frozen=True)
class SuppressedTable:
    """A published table: interior cells, margins and the grand total, each an int or a marker string."""

    rows: tuple[str, ...]
    columns: tuple[str, ...]
    cells: tuple[tuple[Cell, ...], ...]
    row_totals: tuple[Cell, ...]
    column_totals: tuple[Cell, ...]
    total: Cell
    # Grid positions hidden, with margins at index len(rows) / len(columns).
    hidden: frozenset[Position]

    def as_json(self) -> dict[str, Any]:
        """The table as every service's API publishes it (which positions are hidden is not published)."""
        return {
            "row_labels": list(self.rows),
            "column_labels": list(self.columns),
            "cells": [list(row) for row in self.cells],
            "row_totals": list(self.row_totals),
            "column_totals": list(self.column_totals),
            "total": self.total,
        }


@dataclass(frozen=True)
class SuppressedSeries:
    """A published one-dimensional table."""

    labels: tuple[str, ...]
    cells: tuple[Cell, ...]
    total: Cell
    hidden: frozenset[int]

    def as_json(self) -> dict[str, Any]:
        return {"labels": list(self.labels), "cells": list(self.cells), "total": self.total}


# ------------------------------------------------------------------------------------------------ shapes


def _check(counts: Counts) -> tuple[int, int]:
    rows = len(counts)
    cols = len(counts[0]) if rows else 0
    if rows == 0 or cols == 0 or any(len(r) != cols for r in counts):
        raise InvalidTable("table must be a non-empty rectangle")
    if any(not isinstance(v, int) or isinstance(v, bool) or v < 0 for r in counts for v in r):
        raise InvalidTable("counts must be non-negative integers")
    return rows, cols


def grid_of(counts: Counts) -> dict[Position, int]:
    """Interior cells, row totals at column `cols`, column totals at row `rows`, the grand total at the corner."""
    rows, cols = _check(counts)
    grid: dict[Position, int] = {}
    for i, row in enumerate(counts):
        for j, value in enumerate(row):
            grid[(i, j)] = value
        grid[(i, cols)] = sum(row)
    for j in range(cols):
        grid[(rows, j)] = sum(counts[i][j] for i in range(rows))
    grid[(rows, cols)] = sum(grid[(i, cols)] for i in range(rows))
    return grid


def table_lines(rows: int, cols: int) -> list[list[Position]]:
    """Each line lists its entries with the total last."""
    lines = [[(i, j) for j in range(cols + 1)] for i in range(rows + 1)]
    lines += [[(i, j) for i in range(rows + 1)] for j in range(cols + 1)]
    return lines


# ----------------------------------------------------------------------------------------------- algebra


def _equations(lines: Iterable[list[Position]], unknowns: Sequence[Position]) -> list[list[Fraction]]:
    """Each line as "sum of entries - total = published part", over the unknown (hidden) entries."""
    index = {p: k for k, p in enumerate(unknowns)}
    matrix: list[list[Fraction]] = []
    for line in lines:
        row = [Fraction(0)] * len(unknowns)
        for position in line:
            if position in index:
                row[index[position]] += -1 if position == line[-1] else 1
        if any(row):
            matrix.append(row)
    return matrix


def _rref(matrix: list[list[Fraction]], width: int) -> tuple[list[list[Fraction]], list[int]]:
    rows = [list(r) for r in matrix]
    pivots: list[int] = []
    rank = 0
    for col in range(width):
        pivot = next((r for r in range(rank, len(rows)) if rows[r][col] != 0), None)
        if pivot is None:
            continue
        rows[rank], rows[pivot] = rows[pivot], rows[rank]
        lead = rows[rank][col]
        rows[rank] = [v / lead for v in rows[rank]]
        for r in range(len(rows)):
            if r != rank and rows[r][col] != 0:
                factor = rows[r][col]
                rows[r] = [a - factor * b for a, b in zip(rows[r], rows[rank], strict=True)]
        pivots.append(col)
        rank += 1
    return rows[:rank], pivots


def _rank(matrix: list[list[Fraction]], width: int) -> int:
    return len(_rref(matrix, width)[1])


def determined_cells(lines: list[list[Position]], hidden: set[Position]) -> set[Position]:
    """Hidden entries whose value follows from the published values and the line equations.

    An unknown is determined exactly when every solution of the homogeneous system keeps it at zero: in reduced
    row echelon form, a pivot whose row has no entry in any free column.
    """
    unknowns = sorted(hidden)
    rows, pivots = _rref(_equations(lines, unknowns), len(unknowns))
    free = [c for c in range(len(unknowns)) if c not in set(pivots)]
    return {unknowns[col] for row, col in zip(rows, pivots, strict=True) if all(row[f] == 0 for f in free)}


def margins_free(lines: list[list[Position]], hidden: set[Position], rows: int, cols: int) -> bool:
    """True when the table constrains its hidden margins no more than the two margin lines alone do.

    The solutions of the table, projected on the hidden margins, span |M| - rank(A) + rank(A without M)
    dimensions; the margin lines alone leave |M| - rank(margin lines over M).
    """
    margins = sorted(p for p in hidden if p[0] == rows or p[1] == cols)
    if not margins:
        return True
    unknowns = sorted(hidden)
    inner = [p for p in unknowns if p not in set(margins)]
    full = _rank(_equations(lines, unknowns), len(unknowns))
    without = _rank(_equations(lines, inner), len(inner))
    margin_lines = [[(i, cols) for i in range(rows + 1)], [(rows, j) for j in range(cols + 1)]]
    allowed = len(margins) - _rank(_equations(margin_lines, margins), len(margins))
    return len(margins) - full + without == allowed


# ------------------------------------------------------------------------------------------ suppression


def _pick(options: Iterable[Position], grid: dict[Position, int]) -> Position | None:
    return min(options, key=lambda p: (grid[p] == 0, grid[p], p), default=None)


def small(grid: dict[Position, int]) -> set[Position]:
    """Entries with a count from 1 to 4."""
    return {p for p, v in grid.items() if 1 <= v < MIN_SHOWN}


def sensitive(grid: dict[Position, int], parts: Sequence[dict[Position, int]] = ()) -> set[Position]:
    """Entries to hide from the start: small counts, and - where the table adds up several contributors (the
    partner countries of a regional table), each of whom knows its own part - entries whose count without one
    contributor's part is from 1 to 4 (that contributor could otherwise compute the others' small count)."""
    out = small(grid)
    for part in parts:
        out |= {p for p, v in grid.items() if 1 <= v - part.get(p, 0) < MIN_SHOWN}
    return out


def _leaks(
    lines: list[list[Position]],
    hidden: set[Position],
    views: Sequence[set[Position]],
    protected: set[Position],
) -> set[Position]:
    """Hidden entries a reader of the table can determine; and `protected` entries (the sensitive ones) a
    reader who also knows one view (a contributor's own entries) can determine."""
    leaks = determined_cells(lines, hidden)
    for view in views:
        leaks |= (determined_cells(lines, hidden - view) - view) & protected
    return leaks


def _protect(
    grid: dict[Position, int],
    lines: list[list[Position]],
    hidden: set[Position],
    addable: set[Position],
    *,
    shape: tuple[int, int] | None = None,
    views: Sequence[set[Position]] = (),
    protected: set[Position] | None = None,
) -> set[Position]:
    """Grow `hidden` with entries of `addable` until no line and no combination of lines discloses a hidden
    entry, nor a `protected` entry to a reader knowing one of `views`; given the table's `shape` (rows, cols), until the hidden
    margins stay as free as their series leave them."""
    hidden = set(hidden)
    while True:
        changed = True
        while changed:
            changed = False
            for line in lines:
                if sum(1 for p in line if p in hidden) == 1:
                    pick = _pick((p for p in line if p in addable and p not in hidden), grid)
                    if pick is not None:
                        hidden.add(pick)
                        changed = True
        leaks = _leaks(lines, hidden, views, hidden if protected is None else protected)
        if not leaks and (shape is None or margins_free(lines, hidden, *shape)):
            return hidden
        near = {p for line in lines if not leaks or min(leaks) in line for p in line}
        pick = _pick((p for p in near if p in addable and p not in hidden), grid) or _pick(
            (p for p in addable if p not in hidden), grid
        )
        if pick is None:
            return hidden  # everything that may be hidden is hidden
        hidden.add(pick)


def _series_grid(series: Sequence[int]) -> dict[Position, int]:
    _check([list(series)])
    return {(0, j): v for j, v in enumerate([*series, sum(series)])}


def series_pattern(
    family: Sequence[Sequence[int]],
    forced: Iterable[int] = (),
    *,
    parts: Sequence[Sequence[Sequence[int]]] = (),
    views: Sequence[set[int]] = (),
    total_addable: bool = False,
) -> frozenset[int]:
    """The hidden positions (index n = the total) shared by sibling series of equal length, containing
    `forced` (the parent period's pattern). A single series is a family of one.

    `parts[k]` are the contributors' series of `family[k]`; `views` are positions a contributor knows (its own
    entry in a series by country). The total is hidden only if it is sensitive, forced or - with
    `total_addable` - needed to protect a view; so every series of a family agrees on it."""
    if not family or not family[0] or any(len(s) != len(family[0]) for s in family):
        raise InvalidTable("labels do not match the counts")
    n = len(family[0])
    grids = [_series_grid(series) for series in family]
    part_grids = [[_series_grid(part) for part in member] for member in parts] or [[] for _ in family]
    lines = [[(0, j) for j in range(n + 1)]]
    hidden = {(0, j) for j in forced}
    protected: set[Position] = set()
    for grid, member_parts in zip(grids, part_grids, strict=True):
        protected |= sensitive(grid, member_parts)
    hidden |= protected
    addable = {(0, j) for j in range(n + (1 if total_addable else 0))}
    position_views = [{(0, j) for j in view} for view in views]
    while True:
        before = set(hidden)
        for grid in grids:
            hidden = _protect(grid, lines, hidden, addable, views=position_views, protected=protected)
        if hidden == before:
            return frozenset(j for _, j in hidden)


def table_pattern(
    family: Sequence[Counts],
    row_margins: Iterable[int],
    column_margins: Iterable[int],
    forced: Iterable[Position] = (),
    *,
    parts: Sequence[Sequence[Counts]] = (),
    views: Sequence[set[Position]] = (),
) -> frozenset[Position]:
    """The hidden positions shared by sibling tables of one shape: margins exactly as their series patterns
    (index len = the total), interior complements added, containing `forced` (the parent period's pattern).
    `parts` and `views` as for `series_pattern` (a view: a contributor's row or column, with its total)."""
    n_rows, n_cols = _check(family[0])
    if any(_check(t) != (n_rows, n_cols) for t in family):
        raise InvalidTable("sibling tables differ in shape")
    grids = [grid_of(t) for t in family]
    part_grids = [[grid_of(part) for part in member] for member in parts] or [[] for _ in family]
    lines = table_lines(n_rows, n_cols)
    row_set, column_set = set(row_margins), set(column_margins)
    margins = {(i, n_cols) for i in row_set if i < n_rows} | {(n_rows, j) for j in column_set if j < n_cols}
    if (n_rows in row_set) != (n_cols in column_set):
        raise InvalidTable("the margin series disagree on the grand total")
    if n_rows in row_set:
        margins.add((n_rows, n_cols))
    interior = {(i, j) for i in range(n_rows) for j in range(n_cols)}
    hidden = margins | {p for p in forced if p in interior}
    protected: set[Position] = set()
    for grid, member_parts in zip(grids, part_grids, strict=True):
        protected |= sensitive(grid, member_parts)
    if not protected - interior <= margins:
        raise InvalidTable("margin patterns do not cover the sensitive margins")
    hidden |= protected
    while True:
        before = set(hidden)
        for grid in grids:
            hidden = _protect(
                grid, lines, hidden, interior, shape=(n_rows, n_cols), views=views, protected=protected
            )
        if hidden == before:
            return frozenset(hidden)


# ------------------------------------------------------------------------------------------- rendering


def _shown(value: int, hidden: bool) -> Cell:
    if 1 <= value < MIN_SHOWN:
        return SMALL
    return HIDDEN if hidden else value


def render_series(labels: Sequence[str], counts: Sequence[int], hidden: frozenset[int]) -> SuppressedSeries:
    if len(labels) != len(counts) or not counts:
        raise InvalidTable("labels do not match the counts")
    n = len(counts)
    return SuppressedSeries(
        labels=tuple(labels),
        cells=tuple(_shown(v, j in hidden) for j, v in enumerate(counts)),
        total=_shown(sum(counts), n in hidden),
        hidden=hidden,
    )


def render_table(
    rows: Sequence[str], columns: Sequence[str], counts: Counts, hidden: frozenset[Position]
) -> SuppressedTable:
    if len(rows) != len(counts) or any(len(columns) != len(r) for r in counts):
        raise InvalidTable("labels do not match the counts")
    grid = grid_of(counts)
    n_rows, n_cols = len(rows), len(columns)

    def show(p: Position) -> Cell:
        return _shown(grid[p], p in hidden)

    return SuppressedTable(
        rows=tuple(rows),
        columns=tuple(columns),
        cells=tuple(tuple(show((i, j)) for j in range(n_cols)) for i in range(n_rows)),
        row_totals=tuple(show((i, n_cols)) for i in range(n_rows)),
        column_totals=tuple(show((n_rows, j)) for j in range(n_cols)),
        total=show((n_rows, n_cols)),
        hidden=hidden,
    )


def suppress_series(labels: Sequence[str], counts: Sequence[int]) -> SuppressedSeries:
    """One series on its own (no sibling periods)."""
    if len(labels) != len(counts) or not counts:
        raise InvalidTable("labels do not match the counts")
    _check([list(counts)])
    return render_series(labels, counts, series_pattern([counts]))


def suppress_table(rows: Sequence[str], columns: Sequence[str], counts: Counts) -> SuppressedTable:
    """One two-dimensional table on its own (no sibling periods), margins as their series would show them."""
    if len(rows) != len(counts) or any(len(columns) != len(r) for r in counts):
        raise InvalidTable("labels do not match the counts")
    _check(counts)
    row_pattern = series_pattern([[sum(r) for r in counts]])
    column_pattern = series_pattern([[sum(c) for c in zip(*counts, strict=True)]])
    return render_table(rows, columns, counts, table_pattern([counts], row_pattern, column_pattern))


# ------------------------------------------------------------------------------------ what services hand in

# How a published report says it was suppressed (every service's statistics answer carries it).
RULES: dict[str, Any] = {"small": SMALL, "complementary": HIDDEN, "threshold": MIN_SHOWN}


def report_header(period: str, scope: str, caller_country: str, countries: Iterable[str]) -> dict[str, Any]:
    """What every statistics answer starts with: the period, the request's scope (``country`` or ``regional``),
    the countries it covers and the rules it was suppressed by."""
    regional = scope == "regional"
    return {
        "period": period,
        "scope": scope,
        "countries": sorted(countries) if regional else [caller_country],
        "suppression": dict(RULES),
    }


def published(report: dict[str, Any]) -> dict[str, Any]:
    """A published report's tables and series as JSON; other members (medians already withheld) as they are."""
    return {name: value.as_json() if hasattr(value, "as_json") else value for name, value in report.items()}


@dataclass(frozen=True)
class Medians:
    """A duration per label: its median over the cases that had it, withheld (None) under the threshold the
    service chose, and how many cases each rests on (published through `suppress_series`)."""

    labels: tuple[str, ...]
    n: tuple[int, ...]
    medians: tuple[float | None, ...]
    unit: str  # "hours", "days": the answer's member is `median_<unit>`

    def as_json(self) -> dict[str, Any]:
        return {
            "counts": suppress_series(self.labels, self.n).as_json(),
            f"median_{self.unit}": dict(zip(self.labels, self.medians, strict=True)),
        }


S = TypeVar("S")
T = TypeVar("T")
# The two entry points, as a service's domain receives them (its statistics never import an algorithm).
SuppressSeries = Callable[[Sequence[str], Sequence[int]], S]
SuppressTable = Callable[[Sequence[str], Sequence[str], Sequence[Sequence[int]]], T]


@dataclass(frozen=True)
class RawSeries:
    """A series before suppression: a service's domain builds it, `suppress_series` publishes it."""

    labels: tuple[str, ...]
    counts: tuple[int, ...]

    @classmethod
    def count(cls, labels: Sequence[str], values: Iterable[str | None]) -> RawSeries:
        """How many of `values` carry each label; the labels are the full code list (a zero shows as a zero,
        so the series' shape does not reveal which codes occurred), values outside it are not counted."""
        counts = dict.fromkeys(labels, 0)
        for value in values:
            if value in counts:
                counts[value] += 1
        return cls(tuple(labels), tuple(counts[label] for label in labels))


@dataclass(frozen=True)
class RawTable:
    """A table before suppression (`suppress_table`)."""

    rows: tuple[str, ...]
    columns: tuple[str, ...]
    counts: tuple[tuple[int, ...], ...]

    @classmethod
    def count(cls, rows: Sequence[str], columns: Sequence[str], pairs: Iterable[tuple[str, str]]) -> RawTable:
        """How many of `pairs` fall in each (row, column) cell of the full code lists."""
        grid = {(r, c): 0 for r in rows for c in columns}
        for pair in pairs:
            if pair in grid:
                grid[pair] += 1
        return cls(tuple(rows), tuple(columns), tuple(tuple(grid[(r, c)] for c in columns) for r in rows))
