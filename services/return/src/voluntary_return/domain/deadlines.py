"""Reintegration deadlines as data (deadlines.yaml), counted from the recorded reception in the origin country.

A reintegration plan is due `plan_within` after reception (default 30 days); follow-up reports are due on each of
the `follow_ups` offsets after reception (default 90, 180 and 365 days), called `follow_up_1`, `follow_up_2`, ...
in that order. The n-th follow-up report recorded fulfils `follow_up_n`, early or late.

Everything here is pure: `schedule` lists every deadline the case implies with when it was met, `next_due` says
what the scheduler should look at next, `overdue` what is past its deadline and not done at `now`. A deadline is
overdue once `now` is strictly after it. A case that has ended (closed or stopped) has nothing due.

Reminders (what the scheduler sends, service_layer/deadlines.py): for each deadline not met, `due:<what>`
`remind_before` ahead of it (default 7 days: it is coming due) and `overdue:<what>` once it has passed. Each is
sent once: the scheduler records its key on the case (`sent`) in the write that carries its event. A deadline
that has already passed when the scheduler first looks gets its overdue reminder only (the coming-due one is
moot); a deadline met (the plan or the n-th report recorded), or a case ended, has none left.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

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


# ------------------------------------------------------------------------------------------------ reminders

# Instants are kept to the millisecond (MongoDB): the first instant strictly after a deadline.
JUST_AFTER = timedelta(milliseconds=1)


class ReminderKind(StrEnum):
    DUE = "due"  # the deadline is coming (`remind_before` ahead of it): return.reintegration.due.v1
    OVERDUE = "overdue"  # the deadline has passed, not met: return.reintegration.overdue.v1


@dataclass(frozen=True)
class Reminder:
    key: str  # `<kind>:<what>`, stable per case: recorded when sent
    kind: ReminderKind
    what: str  # reintegration_plan | follow_up_<n>
    due_at: datetime  # the deadline it is about
    at: datetime  # when it is to be sent

    def live(self, now: datetime) -> bool:
        """False for a coming-due reminder whose deadline has passed: the overdue one says it instead."""
        return not (self.kind is ReminderKind.DUE and as_utc(now) > self.due_at)


def reminders(state: ReintegrationState, periods: ReintegrationPeriods) -> tuple[Reminder, ...]:
    """Every reminder the deadlines not met yet imply, sent or not, in the order they are to be sent."""
    out: list[Reminder] = []
    for item in pending(state, periods):
        out += [
            Reminder(
                f"{ReminderKind.DUE}:{item.what}",
                ReminderKind.DUE,
                item.what,
                item.due_at,
                item.due_at - periods.remind_before,
            ),
            Reminder(
                f"{ReminderKind.OVERDUE}:{item.what}",
                ReminderKind.OVERDUE,
                item.what,
                item.due_at,
                item.due_at + JUST_AFTER,
            ),
        ]
    return tuple(sorted(out, key=lambda r: (r.at, r.key)))


def due_reminders(
    state: ReintegrationState, now: datetime, periods: ReintegrationPeriods, sent: Collection[str]
) -> tuple[Reminder, ...]:
    """What is to be sent at `now` and was not sent yet (`sent`: the keys recorded on the case), oldest first."""
    moment = as_utc(now)
    return tuple(
        r for r in reminders(state, periods) if r.at <= moment and r.key not in sent and r.live(moment)
    )


def next_reminder_at(
    state: ReintegrationState, now: datetime, periods: ReintegrationPeriods, sent: Collection[str]
) -> datetime | None:
    """When the scheduler should look at the case again (the case's `next_due_at`; None: nothing left)."""
    moment = as_utc(now)
    return min(
        (r.at for r in reminders(state, periods) if r.key not in sent and r.live(moment)), default=None
    )
