"""The return service's events: types and payloads, ids and codes only (docs/conventions.md).

Every event is about one return case: its subject and partition key is the case id, and its payload carries the
case's ids and codes (`CASE_FIELDS`) plus what its type adds (a reason, the decision, which deadline). Never a
name, a date of birth, a narrative or anything sealed: a consumer that needs more reads the case through the API
on its user's behalf. The JSON Schemas are `openapi/events/return.*.json` (`additionalProperties: false`), the
topic `return.events.v1` (openapi/asyncapi.yaml); `PAYLOAD_FIELDS` is the same list, checked before an envelope
is built, so a member the type does not carry fails here with the type's name.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from voluntary_return.domain.lifecycle import Status
from voluntary_return.domain.subject import treated_as_child

REQUESTED = "return.case.requested.v1"
DETERMINATION_RECORDED = "return.determination.recorded.v1"
APPROVED = "return.case.approved.v1"
STOPPED = "return.case.stopped.v1"
COMPLETED = "return.case.completed.v1"
RECEPTION_RECORDED = "return.reception.recorded.v1"
REINTEGRATION_DUE = "return.reintegration.due.v1"
REINTEGRATION_OVERDUE = "return.reintegration.overdue.v1"

# Common to every return event.
CASE_FIELDS = (
    "return_case_id",
    "owner_country",
    "owner_agency",
    "side",
    "origin_country",
    "host_country",
    "exchange_case_id",
    "treated_as_child",
    "status",
)
PAYLOAD_FIELDS: Mapping[str, frozenset[str]] = {
    REQUESTED: frozenset(CASE_FIELDS),
    DETERMINATION_RECORDED: frozenset({*CASE_FIELDS, "decision"}),
    APPROVED: frozenset(CASE_FIELDS),
    STOPPED: frozenset({*CASE_FIELDS, "reason"}),
    COMPLETED: frozenset({*CASE_FIELDS, "reason"}),
    RECEPTION_RECORDED: frozenset({*CASE_FIELDS, "reception_services"}),
    REINTEGRATION_DUE: frozenset({*CASE_FIELDS, "what", "due_at"}),
    REINTEGRATION_OVERDUE: frozenset({*CASE_FIELDS, "what", "due_at"}),
}
# The event a transition's target status emits (with the transition's coded reason); other steps emit none.
BY_TARGET: Mapping[Status, str] = {
    Status.STOPPED: STOPPED,
    Status.CLOSED: COMPLETED,
}


def case_data(record: Any, **extra: Any) -> dict[str, Any]:
    """The common payload of a return event from a stored case (ReturnCaseDocument), plus `extra` (codes
    only). Who is treated as a child is computed from the age facts, never stored (domain/subject.py)."""
    data = {
        "return_case_id": record.id,
        "owner_country": record.owner_country,
        "owner_agency": record.owner_agency,
        "side": record.side or "host",
        "origin_country": record.origin_country,
        "host_country": record.host_country,
        "exchange_case_id": record.exchange_case_id,
        "treated_as_child": treated_as_child(record.age_group, bool(record.age_uncertain)),
        "status": record.status,
    }
    data.update(extra)
    return data


def check_payload(event_type: str, data: Mapping[str, Any]) -> None:
    """Refuse a payload with a member its type does not list, or without one it does (a guard against
    personal data leaking sideways, before the schema is even asked)."""
    allowed = PAYLOAD_FIELDS.get(event_type)
    if allowed is None:
        raise ValueError(f"unknown return event type {event_type}")
    extra = set(data) - allowed
    if extra:
        raise ValueError(f"{event_type} does not carry {sorted(extra)}")
    missing = allowed - set(data)
    if missing:
        raise ValueError(f"{event_type} needs {sorted(missing)}")
