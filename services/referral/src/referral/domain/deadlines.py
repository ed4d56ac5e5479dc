"""Deadlines as data (deadlines.yaml): when a provider must answer, when the referrer follows up, and which
reminder, escalation or expiry is due at a given instant.

From the moment a referral is requested: at `answer_within` the answer is overdue (the overdue mark and a
reminder to the provider); `escalate_after` later the coordinator's office is told; `expire_after` after the
deadline the referral expires. From the moment the service starts: a follow-up is due to the referrer on each
of `follow_up` days, while the service is in progress.

`due_actions(state, now, profile)` is pure and idempotent with the referral's record of what was done: a
scheduler (shared plumbing, later) calls it on each wake-up, performs what it returns, and records each action's
`key` on the referral in the same write, so a restart or a second replica never repeats one.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from plumbing.clock import as_utc
from referral.domain.catalogue import DeadlineProfile
from referral.domain.lifecycle import Status


class Recipient(StrEnum):
    PROVIDER = "provider"
    REFERRER = "referrer"
    COORDINATOR = "coordinator"


class DueKind(StrEnum):
    ANSWER_OVERDUE = "answer_overdue"  # the overdue event and a reminder to the provider
    ESCALATION = "escalation"  # to the coordinator's office
    EXPIRY = "expiry"  # the referral expires (system transition)
    FOLLOW_UP = "follow_up"  # a reminder to the referrer


@dataclass(frozen=True)
class DueAction:
    key: str  # stable per referral: recorded when done
    kind: DueKind
    due_at: datetime
    recipient: Recipient | None


@dataclass(frozen=True)
class DeadlineState:
    status: str
    requested_at: datetime | None
    started_at: datetime | None
    done: frozenset[str] = frozenset()


def answer_due(requested_at: datetime, profile: DeadlineProfile) -> datetime:
    return as_utc(requested_at) + profile.answer_within


def follow_up_dates(started_at: datetime, profile: DeadlineProfile) -> tuple[datetime, ...]:
    return tuple(as_utc(started_at) + delta for delta in profile.follow_up)


def scheduled(state: DeadlineState, profile: DeadlineProfile) -> list[DueAction]:
    """Every deadline action the referral's state implies, done or not, in time order."""
    out: list[DueAction] = []
    if state.status == Status.REQUESTED and state.requested_at is not None:
        due = answer_due(state.requested_at, profile)
        out += [
            DueAction(str(DueKind.ANSWER_OVERDUE), DueKind.ANSWER_OVERDUE, due, Recipient.PROVIDER),
            DueAction(
                str(DueKind.ESCALATION),
                DueKind.ESCALATION,
                due + profile.escalate_after,
                Recipient.COORDINATOR,
            ),
            DueAction(str(DueKind.EXPIRY), DueKind.EXPIRY, due + profile.expire_after, None),
        ]
    if state.status == Status.IN_PROGRESS and state.started_at is not None:
        for n, at in enumerate(follow_up_dates(state.started_at, profile), start=1):
            out.append(DueAction(f"{DueKind.FOLLOW_UP}:{n}", DueKind.FOLLOW_UP, at, Recipient.REFERRER))
    return sorted(out, key=lambda a: (a.due_at, a.key))


def due_actions(state: DeadlineState, now: datetime, profile: DeadlineProfile) -> list[DueAction]:
    """What is due at `now` and not done yet, oldest first. An expiry makes the other answer actions moot, so
    when it is due only it is returned (one write, no reminder for a referral that is ending)."""
    due = [a for a in scheduled(state, profile) if a.due_at <= as_utc(now) and a.key not in state.done]
    expiry = [a for a in due if a.kind is DueKind.EXPIRY]
    return expiry or due


def next_due(state: DeadlineState, profile: DeadlineProfile) -> datetime | None:
    """When the scheduler should look at this referral again (None: nothing left to do)."""
    pending = [a.due_at for a in scheduled(state, profile) if a.key not in state.done]
    return min(pending, default=None)


def is_overdue(state: DeadlineState, now: datetime, profile: DeadlineProfile) -> bool:
    return (
        state.status == Status.REQUESTED
        and state.requested_at is not None
        and answer_due(state.requested_at, profile) <= as_utc(now)
    )


def keys(actions: Iterable[DueAction]) -> list[str]:
    return [a.key for a in actions]
