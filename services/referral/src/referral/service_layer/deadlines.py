"""Deadline actions, for the shared scheduler (plumbing.scheduler): `deadline_job(deps)` is the referral's job;
the scheduler claims a referral whose `next_due_at` has come and `run_due_actions(deps, referral_id)` performs
what is due for it in ONE version-guarded write (overdue mark, events for the reminder, the escalation and
follow-ups, or expiry), records the keys done and moves `next_due_at` on, so a restarted or second scheduler
never repeats an action."""

from __future__ import annotations

from typing import Any

from plumbing.errors import Conflict
from plumbing.scheduler import DeadlineJob, DeadlineScheduler
from referral.adapters.documents import ReferralDocument
from referral.domain import deadlines, events, lifecycle
from referral.domain.deadlines import DueKind
from referral.domain.lifecycle import Action
from referral.service_layer.deps import Deps
from referral.service_layer.records import instant
from referral.service_layer.referrals import (
    apply_transition,
    deadline_state,
    referral_event,
    transition_event,
)

ACTOR = "system:referral-scheduler"
SCHEDULED_STATUSES = (str(lifecycle.Status.REQUESTED), str(lifecycle.Status.IN_PROGRESS))


def deadline_job(deps: Deps) -> DeadlineJob:
    """The referral's job for the scheduler: referrals awaiting an answer or in progress (status and
    next_due_at are indexed together)."""
    return DeadlineJob(
        "referral-deadlines",
        ReferralDocument,
        lambda claimed: bool(run_due_actions(deps, str(claimed.id))),
        where={"status": {"$in": list(SCHEDULED_STATUSES)}},
    )


def run_due_actions(deps: Deps, referral_id: str) -> list[str]:
    """Perform the actions due now for one referral; the keys done (empty when nothing was due or another
    scheduler did it first)."""
    referrals = deps.system_repository(ReferralDocument, ACTOR)
    doc = referrals.get(referral_id)
    if not doc.service_type:
        return []
    profile = deps.catalogue.deadline_profile(doc.service_type)
    due = deadlines.due_actions(deadline_state(doc), deps.clock.now(), profile)
    if not due:
        _reschedule(referrals, doc, profile)
        return []
    out: list[dict[str, Any]] = []
    for action in due:
        if action.kind is DueKind.ANSWER_OVERDUE:
            doc.overdue = True
            out.append(referral_event(deps, doc, events.OVERDUE, answer_due_at=instant(doc.answer_due_at)))
        elif action.kind is DueKind.ESCALATION:
            out.append(referral_event(deps, doc, events.ESCALATED, answer_due_at=instant(doc.answer_due_at)))
        elif action.kind is DueKind.FOLLOW_UP:
            out.append(referral_event(deps, doc, events.FOLLOW_UP_DUE, follow_up=action.key))
        elif action.kind is DueKind.EXPIRY:
            doc.overdue = True
            transition = lifecycle.plan(doc.status, Action.EXPIRE, capacity=False)
            apply_transition(deps, doc, transition, by=ACTOR, agency="system", reason=None)
            out.append(transition_event(deps, doc, None))
    doc.deadline_actions_done = [*(doc.deadline_actions_done or ()), *(a.key for a in due)]
    doc.timeline = [
        *doc.timeline,
        *(
            {"at": deps.clock.now(), "by": ACTOR, "agency": "system", "action": str(a.kind), "key": a.key}
            for a in due
            if a.kind is not DueKind.EXPIRY
        ),
    ]
    doc.next_due_at = deadlines.next_due(deadline_state(doc), profile)
    try:
        referrals.update(doc, events=out)
    except Conflict:
        return []  # the referral changed meanwhile (answered, or another scheduler): look again next time
    return [a.key for a in due]


def _reschedule(referrals: Any, doc: ReferralDocument, profile: Any) -> None:
    """Nothing due now, yet the scheduler was sent here: set `next_due_at` to what the referral's state says
    (so a stale instant is not claimed again every pass). Losing a race to a command is harmless: the command
    set it."""
    wanted = deadlines.next_due(deadline_state(doc), profile)
    if instant(doc.next_due_at) != instant(wanted):
        doc.next_due_at = wanted
        try:
            referrals.update(doc, events=[])
        except Conflict:
            pass


def run_deadlines(deps: Deps) -> int:
    """One pass of the scheduler over the referrals (what the scheduler process does every interval): the
    number of referrals changed. What was done is on the referrals (`deadline_actions_done`), so a restart
    resumes where it stopped and repeats nothing."""
    return DeadlineScheduler([deadline_job(deps)], clock=deps.clock).run_once()
