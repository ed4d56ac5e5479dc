"""Reintegration reminders, for the shared scheduler (plumbing.scheduler): `deadline_job(deps)` is the return
service's job. Once the person has been received in the origin country, her reintegration plan and each
follow-up report have a deadline (catalogue/deadlines.yaml, domain/deadlines.py); the case's office is reminded
`remind_before_days` ahead of each one not met yet (`return.reintegration.due.v1`) and once more when it has
passed (`return.reintegration.overdue.v1`, strictly after the deadline).

The scheduler claims a case whose `next_due_at` has come and `run_due_actions(deps, case_id)` sends what is due
for it in ONE version-guarded write: the events, the reminders' keys (`deadline_actions_done`), a timeline entry
each, and the next instant. So a restarted or second scheduler never repeats a reminder, and a case changed
meanwhile (the plan recorded, the case closed) is looked at again on the next pass. Commands that change what is
due (reception, the plan, a report, closing, stopping) call `schedule(deps, doc)` before their write.
"""

from __future__ import annotations

from typing import Any

from plumbing.clock import as_utc
from plumbing.errors import Conflict
from plumbing.events import format_time
from plumbing.scheduler import DeadlineJob, DeadlineScheduler
from voluntary_return.adapters.documents import ReturnCaseDocument
from voluntary_return.domain import deadlines, events, lifecycle
from voluntary_return.domain.deadlines import ReintegrationState, ReminderKind
from voluntary_return.service_layer.deps import Deps
from voluntary_return.service_layer.events import case_event

ACTOR = "system:return-scheduler"
# Reintegration deadlines run once the person is home (and stop with the case).
SCHEDULED_STATUSES = tuple(sorted(str(status) for status in lifecycle.HOME))
EVENT_OF = {ReminderKind.DUE: events.REINTEGRATION_DUE, ReminderKind.OVERDUE: events.REINTEGRATION_OVERDUE}


def reintegration_state(doc: ReturnCaseDocument) -> ReintegrationState:
    """What the deadline rules read of a case: its status and the instants of reception, plan and reports."""
    return ReintegrationState(
        status=doc.status,
        received_at=doc.received_at,
        reintegration_plan_at=doc.reintegration_plan_at,
        follow_ups_at=tuple(doc.follow_ups_at or ()),
    )


def schedule(deps: Deps, doc: ReturnCaseDocument) -> None:
    """Set `doc.next_due_at` to when its next reminder is to be sent (None: none left), for the write a command
    is about to make. Every writer of a case whose reception, plan, reports or status change calls it."""
    doc.next_due_at = deadlines.next_reminder_at(
        reintegration_state(doc),
        deps.clock.now(),
        deps.catalogue.reintegration,
        frozenset(doc.deadline_actions_done or ()),
    )


def deadline_job(deps: Deps) -> DeadlineJob:
    """The return service's job for the scheduler: cases whose person is home (status and next_due_at are
    indexed together)."""
    return DeadlineJob(
        "return-reintegration-reminders",
        ReturnCaseDocument,
        lambda claimed: bool(run_due_actions(deps, str(claimed.id))),
        where={"status": {"$in": list(SCHEDULED_STATUSES)}},
    )


def run_due_actions(deps: Deps, case_id: str) -> list[str]:
    """Send the reminders due now for one case; the keys sent (empty when nothing was due or the case changed
    meanwhile: it is looked at again on the next pass)."""
    cases = deps.system_repository(ReturnCaseDocument, ACTOR)
    doc = cases.get(case_id)
    now = deps.clock.now()
    sent = list(doc.deadline_actions_done or ())
    due = deadlines.due_reminders(
        reintegration_state(doc), now, deps.catalogue.reintegration, frozenset(sent)
    )
    if not due:
        _reschedule(deps, cases, doc)
        return []
    out = [
        case_event(deps, doc, EVENT_OF[r.kind], what=r.what, due_at=format_time(as_utc(r.due_at)))
        for r in due
    ]
    doc.deadline_actions_done = [*sent, *(r.key for r in due)]
    doc.timeline = [
        *(doc.timeline or ()),
        *(
            {"at": now, "by": ACTOR, "agency": "system", "action": f"reintegration_{r.kind}", "what": r.what}
            for r in due
        ),
    ]
    schedule(deps, doc)
    try:
        cases.update(doc, events=out)
    except Conflict:
        return []  # changed meanwhile (a command, or another scheduler first): look again next time
    return [r.key for r in due]


def _reschedule(deps: Deps, cases: Any, doc: ReturnCaseDocument) -> None:
    """Nothing due now, yet the scheduler was sent here: set `next_due_at` to what the case says, so a stale
    instant is not claimed again every pass. Losing a race to a command is harmless: the command set it."""
    before = doc.next_due_at
    schedule(deps, doc)
    if _same(before, doc.next_due_at):
        return
    try:
        cases.update(doc, events=[])
    except Conflict:
        pass


def _same(a: Any, b: Any) -> bool:
    if a is None or b is None:
        return a is b
    # The database keeps milliseconds.
    return abs(as_utc(a) - as_utc(b)).total_seconds() < 0.001


def run_deadlines(deps: Deps) -> int:
    """One pass of the scheduler over the return cases (what the scheduler process does every interval): the
    number of cases changed. What was sent is on the cases, so a restart resumes and repeats nothing."""
    return DeadlineScheduler([deadline_job(deps)], clock=deps.clock).run_once()
