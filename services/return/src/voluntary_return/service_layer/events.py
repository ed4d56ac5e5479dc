"""The events of a return case, built from its document for the write that changes it (the outbox).

A command that changes a case builds its events with `case_event` and hands them to the same single-document write
(`repository.insert(doc, events=[...])` / `update(doc, events=[...])`): stored and "will be published" are one
atomic fact, and the relay (entrypoints/relay.py) publishes them to `return.events.v1` in order per case. Build
them after the change is applied to `doc` (the payload carries the new status) and after every check passed (a
refused command builds none and writes nothing).

Which command emits what (domain/events.py has the types and their members):
- `return.case.requested.v1`: a case opened (`cases.open_case`; on the origin side, `border.py`);
- `return.determination.recorded.v1`: a best-interests determination recorded, with its decision code;
- `return.case.approved.v1`: the plan approved;
- `return.case.stopped.v1` / `return.case.completed.v1`: a stop (also the one an adult's consent withdrawal
  makes, reason `consent_withdrawn`) or a closure, with the coded reason (`transition_events`);
- `return.reception.recorded.v1`: either side recorded the person's reception, with the referral service types
  the origin country asked for (the origin country's referral service proposes one referral each);
- `return.reintegration.due.v1` / `.overdue.v1`: written by the scheduler (service_layer/deadlines.py).
"""

from __future__ import annotations

from typing import Any

from voluntary_return.adapters.documents import ReturnCaseDocument
from voluntary_return.domain import events
from voluntary_return.domain.lifecycle import Action, Transition
from voluntary_return.service_layer.deps import Deps


def case_event(deps: Deps, doc: ReturnCaseDocument, event_type: str, **extra: Any) -> dict[str, Any]:
    """The envelope of one event about `doc`, for its outbox: the case's ids and codes (return_case_id,
    owner_country, owner_agency, side, origin_country, host_country, exchange_case_id, treated_as_child, status)
    plus `extra`, the members the type adds (`reason`, `decision`, `what`, `due_at`; codes and instants only).

    Subject and partition key: the case id. Raises ValueError for a member the type does not carry or lacks, and
    plumbing.events.InvalidEventData when the payload fails the type's schema (openapi/events/<type>.json) -
    before anything is written. `doc` must hold its id and owner (set them before an insert)."""
    data = events.case_data(doc, **extra)
    events.check_payload(event_type, data)
    return deps.new_event(event_type, str(doc.id), data)


def transition_events(
    deps: Deps,
    doc: ReturnCaseDocument,
    transition: Transition | None,
    reception_services: tuple[str, ...] = (),
) -> list[dict[str, Any]]:
    """The events of a transition just applied to `doc`: a stop or a closure, with its coded reason; a
    reception, with the services asked for on arrival; the other steps emit none (their effect is on the case's
    timeline). None (nothing happened): no event."""
    if transition is None:
        return []
    if transition.action is Action.RECORD_RECEPTION:
        return [case_event(deps, doc, events.RECEPTION_RECORDED, reception_services=list(reception_services))]
    event_type = events.BY_TARGET.get(transition.target)
    if event_type is None:
        return []
    return [case_event(deps, doc, event_type, reason=transition.reason)]
