"""Small-cell suppression: primary "<5", complementary "x", and no hidden value recoverable from the totals."""

from __future__ import annotations

import random
from collections.abc import Sequence

import pytest

from identification.domain.errors import DomainError
from identification.domain.statistics import (
    HIDDEN,
    SMALL,
    Cell,
    SuppressedTable,
    determined_cells,
    suppress_series,
    suppress_table,
)


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
    with pytest.raises(DomainError) as caught:
        suppress_table(
            [str(i) for i in range(len(counts))], ["x", "y"][: len(counts[0]) if counts else 0], counts
        )
    assert caught.value.code == "statistics_table_invalid"


def test_audit_catches_disclosure_by_combining_lines() -> None:
    # Two closed cycles of hidden cells joined by one more hidden cell: every row and column has 0 or at
    # least 2 hidden entries, yet the joining cell is fixed because each cycle balances on its own.
    counts = [[7, 8, 6, 9], [6, 9, 5, 7], [8, 6, 9, 5], [9, 7, 6, 8]]
    truth = full_grid(counts)
    lines = [[(i, j) for j in range(5)] for i in range(5)] + [[(i, j) for i in range(5)] for j in range(5)]
    grid = {(i, j): v for i, row in enumerate(truth) for j, v in enumerate(row)}
    cycles = {(0, 0), (0, 1), (1, 0), (1, 1), (2, 2), (2, 3), (3, 2), (3, 3)}
    bridge = (1, 2)
    hidden = cycles | {bridge}
    for line in lines:
        assert sum(1 for p in line if p in hidden) != 1
    assert determined_cells(lines, grid, cycles) == set()
    assert determined_cells(lines, grid, hidden) == {bridge}


def test_suppression_never_leaves_a_bridge() -> None:
    counts = [[7, 8, 6, 9], [3, 9, 2, 7], [8, 6, 9, 5], [9, 7, 6, 8]]
    table = suppress_table(["a", "b", "c", "d"], ["w", "x", "y", "z"], counts)
    lines = [[(i, j) for j in range(5)] for i in range(5)] + [[(i, j) for i in range(5)] for j in range(5)]
    grid = {(i, j): v for i, row in enumerate(full_grid(counts)) for j, v in enumerate(row)}
    assert table.cells[1][0] == SMALL and table.cells[1][2] == SMALL
    assert determined_cells(lines, grid, set(table.hidden)) == set()


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
        grid = {(i, j): v for i, row in enumerate(truth) for j, v in enumerate(row)}
        assert determined_cells(lines, grid, set(table.hidden)) == set()


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
