"""The exchange's events: what happened to a country's record of a transnational case, ids and codes only.

Types (schemas in openapi/events/, topic `exchange.events.v1` in openapi/asyncapi.yaml; subject and partition
key: the country's record id, so a record's events stay in order):

- `exchange.form.sent.v1`, `exchange.form.received.v1`: a form (not a control message) left or arrived;
- `exchange.form.acknowledged.v1`: an officer acknowledged it (ours: direction `in`; theirs: `out`);
- `exchange.form.withdrawn.v1`: withdrawn by its sender, with the coded reason (a correction withdraws what it
  supersedes with `superseded-by-correction`);
- `exchange.form.overdue.v1`, `exchange.form.escalated.v1`: written by the scheduler (domain/deadlines.py), to
  the Contact Points and to the coordinator;
- `exchange.case.consent_withdrawn.v1`: the person withdrew consent; `out` with the countries notified, `in`
  when the notice arrived.

Commands never name their events: `changes(before, after)` derives them from what a command did to the case,
so every path that stores a case (sending, receiving, receipts) emits the same facts the same way.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

from exchange.domain.case import Direction, Form, Status, TransnationalCase
from exchange.domain.catalogue import CONSENT_WITHDRAWN as CONSENT_NOTICE
from exchange.domain.catalogue import CONTROL
from plumbing.clock import rfc3339

SOURCE = "/exchange"

FORM_SENT = "exchange.form.sent.v1"
FORM_RECEIVED = "exchange.form.received.v1"
FORM_ACKNOWLEDGED = "exchange.form.acknowledged.v1"
FORM_WITHDRAWN = "exchange.form.withdrawn.v1"
FORM_OVERDUE = "exchange.form.overdue.v1"
FORM_ESCALATED = "exchange.form.escalated.v1"
CONSENT_WITHDRAWN = "exchange.case.consent_withdrawn.v1"

# (event type, data without the record's own fields)
Change = tuple[str, dict[str, Any]]
# (event type, record id, data) -> a validated envelope for the outbox: plumbing.events.event_factory with SOURCE
# (each payload checked against its schema before any write)
EventFactory = Callable[[str, str, Mapping[str, Any]], dict[str, Any]]


def record_data(record_id: str, reference: str, owner_country: str) -> dict[str, Any]:
    """What every exchange event says about the record it concerns."""
    return {"case_id": record_id, "reference": reference, "owner_country": owner_country}


def form_data(form: Form, **extra: Any) -> dict[str, Any]:
    return {
        "form_id": form.id,
        "form_type": form.form_type,
        "version": form.version,
        "direction": str(form.direction),
        "counterpart": form.counterpart,
        **{key: rfc3339(value) if isinstance(value, datetime) else value for key, value in extra.items()},
    }


def changes(before: TransnationalCase | None, after: TransnationalCase) -> list[Change]:
    """The events a command's change of the case means, in the order of the case's forms."""
    old = {form.id: form for form in (before.forms if before else [])}
    out: list[Change] = []
    for form in after.forms:
        if form.kind == CONTROL:
            continue
        was = old.get(form.id)
        status = was.status if was else None
        if form.status is status:
            continue
        if form.direction is Direction.OUT and status is Status.DRAFT and form.status is not Status.DRAFT:
            out.append((FORM_SENT, form_data(form)))
        if form.direction is Direction.IN and was is None:
            out.append((FORM_RECEIVED, form_data(form)))
        if form.status is Status.ACKNOWLEDGED:
            out.append((FORM_ACKNOWLEDGED, form_data(form)))
        if form.status is Status.WITHDRAWN:
            out.append((FORM_WITHDRAWN, form_data(form, reason=form.withdrawal_reason)))
    if after.consent_withdrawn_at and not (before and before.consent_withdrawn_at):
        out.append((CONSENT_WITHDRAWN, _consent_data(before, after)))
    return out


def _consent_data(before: TransnationalCase | None, after: TransnationalCase) -> dict[str, Any]:
    known = {form.id for form in (before.forms if before else [])}
    notices = [f for f in after.forms if f.form_type == CONSENT_NOTICE and f.id not in known]
    direction = Direction.IN if any(f.direction is Direction.IN for f in notices) else Direction.OUT
    notified = sorted({f.counterpart for f in notices if f.direction is Direction.OUT})
    return {
        "direction": str(direction),
        "countries": notified if direction is Direction.OUT else sorted({f.counterpart for f in notices}),
        "forms_restricted": sum(1 for f in after.forms if f.restricted and f.kind != CONTROL),
    }
