"""Reintegration deadlines as data (deadlines.yaml), counted from the recorded reception in the origin country.

A reintegration plan is due `plan_within` after reception (default 30 days); follow-up reports are due on each of
the `follow_ups` offsets after reception (default 90, 180 and 365 days), called `follow_up_1`, `follow_up_2`, ...
in that order. The n-th follow-up report recorded fulfils `follow_up_n`, early or late.

Everything here is pure: `schedule` lists every deadline the case implies with when it was met, `next_due` says
what the scheduler should look at next, `overdue` what is past its deadline and not done at `now`. A deadline is
overdue once `now` is strictly after it. A case that has ended (closed or stopped) has nothing due.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from plumbing.clock import as_utc
from voluntary_return.domain.catalogue import ReintegrationPeriods
from voluntary_return.domain.lifecycle import TERMINAL, Status

REINTEGRATION_PLAN = "reintegration_plan"


def follow_up_key(n: int) -> str:
    """`follow_up_1`, `follow_up_2`, ...: stable names for reminders, events and statistics."""
    return f"follow_up_{n}"


@dataclass(frozen=True)
class ReintegrationState:
    status: str
    received_at: datetime | None  # the reception recorded at arrival; nothing is due before it
    reintegration_plan_at: datetime | None = None
    follow_ups_at: tuple[datetime, ...] = ()  # the follow-up reports recorded, oldest first


@dataclass(frozen=True)
class DueItem:
    what: str  # reintegration_plan | follow_up_<n>
    due_at: datetime
    done_at: datetime | None = None

    @property
    def done(self) -> bool:
        return self.done_at is not None

    @property
    def on_time(self) -> bool | None:
        """Met by its deadline (None while not met)."""
        return None if self.done_at is None else self.done_at <= self.due_at

    def overdue(self, now: datetime) -> bool:
        return not self.done and as_utc(now) > self.due_at


def schedule(state: ReintegrationState, periods: ReintegrationPeriods) -> tuple[DueItem, ...]:
    """Every deadline the reception implies, met or not, in time order."""
    if state.received_at is None:
        return ()
    received = as_utc(state.received_at)
    done_plan = as_utc(state.reintegration_plan_at) if state.reintegration_plan_at else None
    items = [DueItem(REINTEGRATION_PLAN, received + periods.plan_within, done_plan)]
    reports = [as_utc(at) for at in state.follow_ups_at]
    for n, offset in enumerate(periods.follow_ups, start=1):
        done = reports[n - 1] if n <= len(reports) else None
        items.append(DueItem(follow_up_key(n), received + offset, done))
    return tuple(sorted(items, key=lambda item: item.due_at))


def pending(state: ReintegrationState, periods: ReintegrationPeriods) -> tuple[DueItem, ...]:
    """The deadlines not met yet, in time order; none once the case has ended."""
    if Status(state.status) in TERMINAL:
        return ()
    return tuple(item for item in schedule(state, periods) if not item.done)


def next_due(state: ReintegrationState, periods: ReintegrationPeriods) -> DueItem | None:
    """What is due next and when (None: nothing left to do)."""
    return next(iter(pending(state, periods)), None)


def overdue(state: ReintegrationState, now: datetime, periods: ReintegrationPeriods) -> tuple[DueItem, ...]:
    """What is past its deadline at `now` and not done, oldest first."""
    return tuple(item for item in pending(state, periods) if item.overdue(now))


def is_overdue(state: ReintegrationState, now: datetime, periods: ReintegrationPeriods) -> bool:
    return bool(overdue(state, now, periods))
