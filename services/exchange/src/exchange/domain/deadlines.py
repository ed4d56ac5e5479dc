"""Reply deadlines of a transnational case: which reminders and escalations are due, decided from the case alone.

A form that awaits a response (`Form.awaits_response`: an answer, or the acknowledgement of a form nothing
answers) has two deadline actions. Both countries hold the form and its deadline, and each country's scheduler
acts on its own record, so each office is told about its own side:

- `overdue:<form id>` at the form's deadline: its Contact Points are reminded (direction `out`: the partner owes
  the reply; `in`: we owe it);
- `escalated:<form id>` the form type's `escalate_after_days` later: its coordinator is told.

An answer, the acknowledgement, a withdrawal or a restriction (consent withdrawn) ends the wait: actions not done
by then are dropped. `due_actions` is pure and idempotent with the record of what was done (`done`, the keys),
which the scheduler writes with the actions' events in one write, so a restart never repeats one.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from exchange.domain.case import Form, TransnationalCase
from exchange.domain.catalogue import CONTROL, FormCatalogue
from plumbing.clock import as_utc


class DueKind(StrEnum):
    OVERDUE = "overdue"  # the Contact Points are reminded
    ESCALATED = "escalated"  # the coordinator is told


@dataclass(frozen=True)
class DueAction:
    key: str  # `<kind>:<form id>`, recorded on the case when done
    kind: DueKind
    form: Form
    due_at: datetime


def scheduled(case: TransnationalCase, catalogue: FormCatalogue) -> list[DueAction]:
    """Every deadline action the case's forms imply now, done or not, in time order."""
    out: list[DueAction] = []
    for form in case.forms:
        kind = catalogue.types.get(form.form_type)
        if kind is None or kind.kind == CONTROL or not kind.reply_within_days or form.restricted:
            continue
        if not form.awaits_response(answerable=bool(catalogue.answered_by(kind.code))):
            continue
        deadline = as_utc(form.deadline)  # type: ignore[arg-type]  # awaits_response: it has one
        escalation = deadline + timedelta(days=kind.escalate_after_days or kind.reply_within_days)
        out += [
            DueAction(f"{DueKind.OVERDUE}:{form.id}", DueKind.OVERDUE, form, deadline),
            DueAction(f"{DueKind.ESCALATED}:{form.id}", DueKind.ESCALATED, form, escalation),
        ]
    return sorted(out, key=lambda action: (action.due_at, action.key))


def due_actions(
    case: TransnationalCase, catalogue: FormCatalogue, now: datetime, done: Collection[str]
) -> list[DueAction]:
    """What is due at `now` and not done yet, oldest first."""
    return [a for a in scheduled(case, catalogue) if a.due_at <= as_utc(now) and a.key not in done]


def next_due(case: TransnationalCase, catalogue: FormCatalogue, done: Collection[str]) -> datetime | None:
    """When the scheduler should look at this record again (None: nothing left to do)."""
    return min((a.due_at for a in scheduled(case, catalogue) if a.key not in done), default=None)
