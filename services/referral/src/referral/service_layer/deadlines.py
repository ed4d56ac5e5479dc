"""Deadline actions, for the scheduler (shared plumbing, later): `due_referrals(deps)` finds the referrals
whose next deadline has come, `run_due_actions(deps, referral_id)` performs what is due for one of them in ONE
version-guarded write (overdue mark, events for the reminder, the escalation and follow-ups, or expiry) and
records the keys done, so a restarted or second scheduler never repeats an action."""

from __future__ import annotations

from typing import Any

from plumbing.errors import Conflict
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


def due_referrals(deps: Deps, *, limit: int = 100) -> list[str]:
    """Ids of referrals with a deadline action due now (selective: status and next_due_at are indexed)."""
    found = deps.system_repository(ReferralDocument, ACTOR).find(
        limit=limit, status__in=list(SCHEDULED_STATUSES), next_due_at__lte=deps.clock.now()
    )
    return [doc.id for doc in found]


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


def run_deadlines(deps: Deps, *, limit: int = 100) -> int:
    """One pass of the deadline job: every referral with an action due now, performed once each; the number of
    referrals changed. Run by the relay process between its passes (entrypoints/relay.py); what it did is on the
    referrals (`deadline_actions_done`), so a restart resumes where it stopped and repeats nothing."""
    return sum(1 for referral_id in due_referrals(deps, limit=limit) if run_due_actions(deps, referral_id))
