"""Reply deadlines, for the shared scheduler (plumbing.scheduler): `deadline_job(deps)` is the exchange's job.

The scheduler claims a country's case record whose `next_due_at` has come; `run_due_actions` performs what is
due on it (domain/deadlines.py) in ONE version-guarded write: the `exchange.form.overdue.v1` and
`exchange.form.escalated.v1` events, an entry per action on the form's timeline (`deadline_actions_done`, the
keys done) and the next instant due. A restarted or second scheduler repeats nothing; a record changed by a
command meanwhile (an answer arrived) is looked at again next pass with what is due then.
"""

from __future__ import annotations

from exchange.adapters.documents import ExchangeCaseDocument
from exchange.domain import deadlines, events
from exchange.service_layer import outgoing
from exchange.service_layer.deps import Deps
from exchange.service_layer.records import cases, inbox_caller, to_case
from plumbing.errors import Conflict, NotFound
from plumbing.scheduler import DeadlineJob, DeadlineScheduler

ACTOR = "system:exchange-scheduler"
EVENT_OF = {
    deadlines.DueKind.OVERDUE: events.FORM_OVERDUE,
    deadlines.DueKind.ESCALATED: events.FORM_ESCALATED,
}


def deadline_job(deps: Deps) -> DeadlineJob:
    return DeadlineJob(
        "exchange-deadlines",
        ExchangeCaseDocument,
        lambda claimed: run_due_actions(deps, str(claimed.id), str(claimed.owner_country)),
    )


def run_due_actions(deps: Deps, record_id: str, country: str) -> bool:
    """Perform what is due now on `country`'s record; False when nothing was (or another scheduler, or a
    command, changed it first)."""
    caller = inbox_caller(country)  # the record's own country, through its scoped repository
    try:
        doc = cases(deps, caller).get(record_id)
    except NotFound:
        return False
    if doc.anonymised_at is not None:
        # Anonymised, `next_due_at` cleared (service_layer/retention.py): nothing is due on it any more.
        return False
    case = to_case(doc)
    done = list(doc.deadline_actions_done or ())
    due = deadlines.due_actions(case, deps.catalogue, deps.clock.now(), done)
    doc.deadline_actions_done = [*done, *(action.key for action in due)]
    extra = [(EVENT_OF[a.kind], events.form_data(a.form, deadline=a.form.deadline)) for a in due]
    try:
        outgoing.store(deps, caller, doc, case, new=False, extra_events=extra)
    except Conflict:
        return False
    return bool(due)


def run_deadlines(deps: Deps) -> int:
    """One pass of the scheduler over the exchange's records: the number changed."""
    return DeadlineScheduler([deadline_job(deps)], clock=deps.clock).run_once()
