"""The count of common keys (service_layer/common_keys_count.py) on fake windows: tokens held by more than
COMMON_KEY persons of a country are recorded, a count cut by the pass's budget goes on where it stopped in the next
pass, and a country is counted only when due. The windows themselves are read on the real server in
tests/integration/test_identification_common_keys.py."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import pytest

from identification.adapters.common_keys import HolderCounts
from identification.adapters.person_windows import Span
from identification.service_layer import common_keys_count, duplicates
from plumbing.clock import FixedClock
from services.identification.tests.unit.fakes import NOW, FakeStore, build_deps


class FakeCounts(HolderCounts):
    """Each country's windows: lists of persons, each the list of her tokens; the last one ends at the present."""

    def __init__(self, windows: dict[str, list[list[list[str]]]], due: set[str]) -> None:
        super().__init__(windows, FixedClock(NOW))
        self.windows, self.due_now = windows, due
        self.read: list[tuple[str, datetime]] = []
        self.finished_at: dict[str, datetime] = {}

    def due(self, country: str) -> bool:
        return country in self.due_now

    def window(self, country: str, start: datetime, width: timedelta) -> Span:
        index = len([c for c, _ in self.read if c == country])
        self.read.append((country, start))
        rows: list[dict[str, Any]] = [{"blocking_keys": keys} for keys in self.windows[country][index]]
        end = start + timedelta(hours=1)
        return Span(country, start, end, width, rows, index == len(self.windows[country]) - 1)

    def finished(self, country: str) -> None:
        self.due_now.discard(country)
        self.finished_at[country] = self.clock.now()


def test_tokens_held_by_more_than_common_key_persons_of_a_country_are_recorded(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(duplicates, "COMMON_KEY", 2)
    deps = build_deps(FakeStore())
    counts = FakeCounts(
        {
            # "hoxha" is held by three persons across two windows; "arben" by two (not more than 2); a person
            # holding a token twice counts once.
            "AL": [[["hoxha", "arben"], ["hoxha", "hoxha"]], [["hoxha", "arben", "zana"]]],
            "XK": [[["hoxha"]]],
            "ME": [[["krasniqi"], ["krasniqi"], ["krasniqi"]]],
        },
        due={"AL", "XK"},
    )

    assert common_keys_count.count_task(deps, counts, budget_s=60)() == 1
    assert deps.common_keys.known(["hoxha", "arben", "zana", "krasniqi"], NOW) == {"hoxha"}
    assert {c for c, _ in counts.read} == {"AL", "XK"}  # ME is not due: not read
    assert set(counts.finished_at) == {"AL", "XK"}
    assert common_keys_count.count_task(deps, counts, budget_s=60)() == 0  # nothing due any more


def test_a_count_cut_by_the_budget_goes_on_where_it_stopped(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(duplicates, "COMMON_KEY", 2)
    ticks = iter(range(1_000))
    monkeypatch.setattr(common_keys_count.time, "monotonic", lambda: float(next(ticks)))
    deps = build_deps(FakeStore())
    counts = FakeCounts({"AL": [[["rama"]], [["rama"]], [["rama"]], [["gashi"]]]}, due={"AL"})
    count = common_keys_count.count_task(deps, counts, budget_s=2.5)  # two windows a pass

    assert count() == 0 and len(counts.read) == 2
    assert count() == 1  # the last two windows: "rama" held by three, counted across the passes
    starts = [start for _, start in counts.read]
    assert starts == sorted(set(starts)) and len(starts) == 4  # each window read once, in order
    assert deps.common_keys.known(["rama", "gashi"], NOW) == {"rama"}
    assert "AL" in counts.finished_at
