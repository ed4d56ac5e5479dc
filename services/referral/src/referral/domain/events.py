"""The referral service's events: types and payloads, ids and codes only (docs/conventions.md).

The JSON Schemas for these types belong in openapi/events/ (with `additionalProperties: false`) and the types
in openapi/asyncapi.yaml on a `referral.events.v1` topic; until they are added, `PAYLOAD_FIELDS` is the one list
of what each payload may carry, and the unit tests check every emitted payload against it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

PROPOSED = "referral.referral.proposed.v1"
REQUESTED = "referral.referral.requested.v1"
ACCEPTED = "referral.referral.accepted.v1"
DECLINED = "referral.referral.declined.v1"
STARTED = "referral.referral.started.v1"
COMPLETED = "referral.referral.completed.v1"
CANCELLED = "referral.referral.cancelled.v1"
REVOKED = "referral.referral.revoked.v1"
EXPIRED = "referral.referral.expired.v1"
OVERDUE = "referral.referral.overdue.v1"
ESCALATED = "referral.referral.escalated.v1"
FOLLOW_UP_DUE = "referral.referral.follow_up_due.v1"
CAPACITY_CHANGED = "referral.provider.capacity_changed.v1"

# Common to every referral event.
_REFERRAL = (
    "referral_id",
    "owner_country",
    "owner_agency",
    "case_id",
    "person_id",
    "service_type",
    "provider_agency",
    "status",
    "age_group",
)
PAYLOAD_FIELDS: Mapping[str, frozenset[str]] = {
    PROPOSED: frozenset({*_REFERRAL, "need", "candidate_service_types", "source_event_id", "return_case_id"}),
    REQUESTED: frozenset({*_REFERRAL, "urgent", "answer_due_at", "informed_agencies", "field_sets"}),
    ACCEPTED: frozenset({*_REFERRAL, "capacity_group"}),
    DECLINED: frozenset({*_REFERRAL, "reason"}),
    STARTED: frozenset(_REFERRAL),
    COMPLETED: frozenset({*_REFERRAL, "reason"}),
    CANCELLED: frozenset({*_REFERRAL, "reason"}),
    REVOKED: frozenset({*_REFERRAL, "reason"}),
    EXPIRED: frozenset(_REFERRAL),
    OVERDUE: frozenset({*_REFERRAL, "answer_due_at"}),
    ESCALATED: frozenset({*_REFERRAL, "answer_due_at"}),
    FOLLOW_UP_DUE: frozenset({*_REFERRAL, "follow_up"}),
    # `change` (-1 taken, +1 freed) for a place, `total` when the provider states its places; readers who need the
    # free count read the directory (the event is written in the same atomic update, before the count is known).
    CAPACITY_CHANGED: frozenset({"provider_id", "owner_country", "agency_id", "group", "change", "total"}),
}
# The event each transition's target status emits.
BY_STATUS: Mapping[str, str] = {
    "requested": REQUESTED,
    "accepted": ACCEPTED,
    "declined": DECLINED,
    "in_progress": STARTED,
    "completed": COMPLETED,
    "cancelled": CANCELLED,
    "revoked": REVOKED,
    "expired": EXPIRED,
}


def referral_data(record: Any, **extra: Any) -> dict[str, Any]:
    """The common payload of a referral event from a stored referral, plus `extra` (codes only)."""
    data = {
        "referral_id": record.id,
        "owner_country": record.owner_country,
        "owner_agency": record.owner_agency,
        "case_id": record.case_id,
        "person_id": record.person_id,
        "service_type": record.service_type,
        "provider_agency": record.provider_agency,
        "status": record.status,
        "age_group": record.age_group,
    }
    data.update(extra)
    return data


def check_payload(event_type: str, data: Mapping[str, Any]) -> None:
    """Refuse a payload with a member its type does not list (a guard against personal data leaking sideways)."""
    allowed = PAYLOAD_FIELDS.get(event_type)
    if allowed is None:
        raise ValueError(f"unknown referral event type {event_type}")
    extra = set(data) - allowed
    if extra:
        raise ValueError(f"{event_type} does not carry {sorted(extra)}")
