"""The re-keying task (service_layer/rekeying.py) on a fake walk: the countries take turns, a window is passed
only once every stale person in it was handled, a crowded window is asked again until it is, and a pass ends when
every walk has reached the present (which moves on meanwhile) or its time is spent. The walk itself runs on the real server in
tests/integration/test_identification_rekeying.py."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from identification.adapters.person_keys import PersonKeys, StalePerson, Window
from identification.adapters.person_windows import Span
from identification.service_layer import rekeying
from plumbing.clock import FixedClock
from services.identification.tests.unit.fakes import FakeStore, build_deps

T0 = datetime(2026, 1, 1, tzinfo=UTC)


class FakeWalk(PersonKeys):
    """Each country's windows, a list of lists of stale persons' ids. Their details are `sealed` (by id), or a
    value that cannot be opened; a rewrite finds that her details changed meanwhile."""

    def __init__(self, windows: dict[str, list[list[str]]], sealed: dict[str, str] | None = None) -> None:
        super().__init__(3, windows, FixedClock(T0))
        self.windows, self.sealed = windows, sealed or {}
        self.moving_present = False
        self.rewritten: set[str] = set()
        self.asked: list[str] = []
        self.passed_windows: list[tuple[str, int]] = []

    def next_window(self, country: str, limit: int) -> Window | None:
        self.asked.append(country)
        start = T0 + timedelta(minutes=len(self.passed_windows))
        if not self.windows[country]:
            if self.moving_present:  # the clock moved since: an empty window up to the present, every time
                return Window(Span(country, start, start, timedelta(minutes=1), [], True), [], True)
            return None
        stale = [p for p in self.windows[country][0] if p not in self.rewritten]
        people = [StalePerson(p, country, "state-police", self.sealed.get(p, "v1:damaged")) for p in stale]
        whole = len(people) <= limit
        return Window(Span(country, start, start, timedelta(minutes=1), [], False), people[:limit], whole)

    def passed(self, window: Window) -> None:
        self.passed_windows.append((window.country, len(self.windows[window.country])))
        if self.windows[window.country]:
            self.windows[window.country].pop(0)

    def give_up(self, person: StalePerson) -> None:
        self.rewritten.add(person.id)

    def rewrite(self, person: StalePerson, blocking_keys: list[str], year_keys: list[str]) -> bool:
        return False


class NoLog:
    def __init__(self) -> None:
        self.batches: list[tuple[str, ...]] = []

    def record_read(
        self, caller: object, purpose: str, operation: str, kind: str, ids: list[str], *_: object
    ) -> None:
        self.batches.append(tuple(ids))


def test_the_countries_take_turns_and_a_crowded_window_is_asked_again_until_it_is_done(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(rekeying, "BATCH", 2)
    walk = FakeWalk({"AL": [["a1", "a2", "a3"], [], ["a4"]], "XK": [["x1"]], "ME": []})
    log = NoLog()

    rekeying.rekey_task(build_deps(FakeStore()), log, walk, budget_s=60)()

    # Every stale person's details were asked for once (here they cannot be opened, so each is given up), in
    # batches of two, each batch logged before; each window passed once all of its stale persons were handled.
    assert walk.rewritten == {"a1", "a2", "a3", "a4", "x1"}
    assert log.batches == [("a1", "a2"), ("x1",), ("a3",), ("a4",)]
    assert walk.passed_windows == [("XK", 1), ("AL", 3), ("AL", 2), ("AL", 1)]
    assert walk.asked[:3] == ["AL", "ME", "XK"]  # in turn; ME is at the present at once
    assert walk.windows == {"AL": [], "XK": [], "ME": []}


def test_a_window_whose_persons_all_changed_meanwhile_waits_for_the_next_pass(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(rekeying, "BATCH", 1)
    deps = build_deps(FakeStore())
    details = {"given_names": ["Ilir"], "surnames": ["Gashi"], "date_of_birth": "2010"}
    sealed = {p: deps.sealer.seal("AL", p, details) for p in ("a1", "a2")}
    walk = FakeWalk({"AL": [["a1", "a2"]]}, sealed)
    # Each rewrite finds her details changed: the window is neither passed nor read again in this pass (which
    # would go round without end); the next pass reads it again.

    assert rekeying.rekey_task(deps, NoLog(), walk, budget_s=60)() == 0
    assert walk.passed_windows == [] and walk.asked == ["AL"]


def test_a_pass_stops_at_the_present_though_the_clock_moves_on() -> None:
    walk = FakeWalk({"AL": [["a1"]], "XK": []})
    walk.moving_present = True

    assert rekeying.rekey_task(build_deps(FakeStore()), NoLog(), walk, budget_s=60)() == 0  # a1 is given up
    assert walk.asked == ["AL", "XK", "AL"]  # AL's window of a1, then each walk's window up to the present
    assert walk.rewritten == {"a1"}
