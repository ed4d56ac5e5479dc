"""Small-cell suppression for published tables with margins.

Algorithm (documented in docs/identification-domain.md):

1. Primary: every cell - interior or margin - with a count from 1 to 4 is shown as ``"<5"``.
2. Complementary: a table with margins is a set of *lines* (each row with its row total, each column with
   its column total, the row totals with the grand total, the column totals with the grand total; a
   one-dimensional table is a single line). A line with exactly one hidden entry would give it away by
   subtraction, so another entry of that line is hidden (shown as ``"x"``), preferring interior cells, then
   non-zero cells, then the smallest count. This repeats until no line has exactly one hidden entry.
3. Audit: the whole system of line equations is solved over the hidden cells with exact rational
   arithmetic; a hidden cell that is still uniquely determined (by combining several lines) gets a further
   complement in its row or column, and the audit runs again.

Zeros are published: they are not small cells. Bounds that follow from counts being non-negative (interval
disclosure) are not audited; see the docs for why this is acceptable for the published tables.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction

from .errors import DomainError

SMALL = "<5"
HIDDEN = "x"
MIN_SHOWN = 5

Cell = int | str
Position = tuple[int, int]


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


def _grid(counts: Sequence[Sequence[int]]) -> tuple[dict[Position, int], list[list[Position]], int, int]:
    rows = len(counts)
    cols = len(counts[0]) if rows else 0
    if rows == 0 or cols == 0 or any(len(r) != cols for r in counts):
        raise DomainError("statistics_table_invalid", "table must be a non-empty rectangle")
    if any(not isinstance(v, int) or isinstance(v, bool) or v < 0 for r in counts for v in r):
        raise DomainError("statistics_table_invalid", "counts must be non-negative integers")
    grid: dict[Position, int] = {}
    for i, row in enumerate(counts):
        for j, value in enumerate(row):
            grid[(i, j)] = value
        grid[(i, cols)] = sum(row)
    for j in range(cols):
        grid[(rows, j)] = sum(counts[i][j] for i in range(rows))
    grid[(rows, cols)] = sum(grid[(i, cols)] for i in range(rows))
    lines = [[(i, j) for j in range(cols + 1)] for i in range(rows + 1)]
    lines += [[(i, j) for i in range(rows + 1)] for j in range(cols + 1)]
    return grid, lines, rows, cols


def _choose(
    line: list[Position], grid: dict[Position, int], hidden: set[Position], interior: set[Position]
) -> Position | None:
    options = [p for p in line if p not in hidden]
    if not options:
        return None
    return min(options, key=lambda p: (p not in interior, grid[p] == 0, grid[p], p))


def _close_lines(
    lines: list[list[Position]], grid: dict[Position, int], hidden: set[Position], interior: set[Position]
) -> None:
    changed = True
    while changed:
        changed = False
        for line in lines:
            if sum(1 for p in line if p in hidden) == 1:
                pick = _choose(line, grid, hidden, interior)
                if pick is not None:
                    hidden.add(pick)
                    changed = True


def determined_cells(
    lines: list[list[Position]], grid: dict[Position, int], hidden: set[Position]
) -> set[Position]:
    """Hidden cells whose value follows from the published values and the line equations.

    Each line says: sum of its entries except the last equals the last. With published values moved to the
    right-hand side, a hidden cell is determined exactly when dropping its column lowers the rank of the
    coefficient matrix over the hidden cells.
    """
    unknowns = sorted(hidden)
    index = {p: k for k, p in enumerate(unknowns)}
    matrix: list[list[Fraction]] = []
    for line in lines:
        row = [Fraction(0)] * len(unknowns)
        for position in line:
            if position in index:
                row[index[position]] += -1 if position == line[-1] else 1
        if any(row):
            matrix.append(row)
    full = _rank(matrix)
    return {p for p in unknowns if _rank([r[: index[p]] + r[index[p] + 1 :] for r in matrix]) < full}


def _rank(matrix: list[list[Fraction]]) -> int:
    rows = [list(r) for r in matrix]
    rank = 0
    width = len(rows[0]) if rows else 0
    for col in range(width):
        pivot = next((r for r in range(rank, len(rows)) if rows[r][col] != 0), None)
        if pivot is None:
            continue
        rows[rank], rows[pivot] = rows[pivot], rows[rank]
        for r in range(len(rows)):
            if r != rank and rows[r][col] != 0:
                factor = rows[r][col] / rows[rank][col]
                rows[r] = [a - factor * b for a, b in zip(rows[r], rows[rank], strict=True)]
        rank += 1
    return rank


def _suppress(
    grid: dict[Position, int], lines: list[list[Position]], interior: set[Position]
) -> tuple[set[Position], set[Position]]:
    primary = {p for p, v in grid.items() if 1 <= v < MIN_SHOWN}
    hidden = set(primary)
    while True:
        _close_lines(lines, grid, hidden, interior)
        leaks = determined_cells(lines, grid, hidden)
        if not leaks:
            return primary, hidden
        leak = min(leaks)
        # Another hidden entry in a line through the leaking cell breaks the combination that revealed it.
        through = [line for line in lines if leak in line]
        picks = [p for p in (_choose(line, grid, hidden, interior) for line in through) if p is not None]
        if not picks:
            return primary, hidden  # everything in reach is hidden already
        hidden.add(min(picks, key=lambda p: (p not in interior, grid[p] == 0, grid[p], p)))


def suppress_table(
    rows: Sequence[str], columns: Sequence[str], counts: Sequence[Sequence[int]]
) -> SuppressedTable:
    """Two-dimensional table ``counts[row][column]`` with row, column and grand totals."""
    if len(rows) != len(counts) or any(len(columns) != len(r) for r in counts):
        raise DomainError("statistics_table_invalid", "labels do not match the counts")
    grid, lines, n_rows, n_cols = _grid(counts)
    interior = {(i, j) for i in range(n_rows) for j in range(n_cols)}
    primary, hidden = _suppress(grid, lines, interior)

    def show(p: Position) -> Cell:
        if p in primary:
            return SMALL
        return HIDDEN if p in hidden else grid[p]

    return SuppressedTable(
        rows=tuple(rows),
        columns=tuple(columns),
        cells=tuple(tuple(show((i, j)) for j in range(n_cols)) for i in range(n_rows)),
        row_totals=tuple(show((i, n_cols)) for i in range(n_rows)),
        column_totals=tuple(show((n_rows, j)) for j in range(n_cols)),
        total=show((n_rows, n_cols)),
        hidden=frozenset(hidden),
    )


@dataclass(frozen=True)
class SuppressedSeries:
    """A published one-dimensional table."""

    labels: tuple[str, ...]
    cells: tuple[Cell, ...]
    total: Cell
    hidden: frozenset[int]


def suppress_series(labels: Sequence[str], counts: Sequence[int]) -> SuppressedSeries:
    """One-dimensional table with its total: a single line ``sum(cells) = total``."""
    if len(labels) != len(counts) or not counts:
        raise DomainError("statistics_table_invalid", "labels do not match the counts")
    if any(not isinstance(v, int) or isinstance(v, bool) or v < 0 for v in counts):
        raise DomainError("statistics_table_invalid", "counts must be non-negative integers")
    n = len(counts)
    grid = {(0, j): v for j, v in enumerate(counts)}
    grid[(0, n)] = sum(counts)
    lines = [[(0, j) for j in range(n + 1)]]
    primary, hidden = _suppress(grid, lines, {(0, j) for j in range(n)})

    def show(j: int) -> Cell:
        if (0, j) in primary:
            return SMALL
        return HIDDEN if (0, j) in hidden else grid[(0, j)]

    return SuppressedSeries(
        labels=tuple(labels),
        cells=tuple(show(j) for j in range(n)),
        total=show(n),
        hidden=frozenset(j for (_, j) in hidden),
    )
