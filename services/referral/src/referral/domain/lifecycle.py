"""The referral lifecycle, as a transition table.

    proposed --request--> requested --accept--> accepted --start--> in_progress --complete--> completed
                              |--decline (coded reason)--> declined
                              |--expire (answer deadline long past)--> expired
    proposed, requested --cancel (referrer, coded reason)--> cancelled
    accepted, in_progress --revoke (referrer, coded reason)--> revoked

Each action belongs to one side: the referrer requests, cancels and revokes; the provider accepts, declines,
starts and completes; only the scheduler expires. An action the current state does not allow raises
`InvalidTransition` (409) with the stable code `<action>_not_allowed_when_<status>`. Accepting a referral of a
service type with capacity takes a place; leaving accepted or in_progress for an end state frees it.

No referral is requested without a basis: an adult's consent, or for a child (presumed children included) a
legal basis the country's rules list; a child's consent is not the basis (docs/conventions.md).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from referral.domain.catalogue import ADULT, CANCEL, CHILD, COMPLETE, DECLINE, REVOKE, CountryRules
from referral.domain.errors import ErrorDetail, InvalidTransition


class Status(StrEnum):
    PROPOSED = "proposed"
    REQUESTED = "requested"
    ACCEPTED = "accepted"
    DECLINED = "declined"
    IN_PROGRESS = "in_progress"
    COMPLETED = "completed"
    CANCELLED = "cancelled"
    REVOKED = "revoked"
    EXPIRED = "expired"


class Action(StrEnum):
    REQUEST = "request"
    ACCEPT = "accept"
    DECLINE = "decline"
    START = "start"
    COMPLETE = "complete"
    CANCEL = "cancel"
    REVOKE = "revoke"
    EXPIRE = "expire"


class Side(StrEnum):
    REFERRER = "referrer"
    PROVIDER = "provider"
    SYSTEM = "system"


TRANSITIONS: Mapping[tuple[Status, Action], Status] = {
    (Status.PROPOSED, Action.REQUEST): Status.REQUESTED,
    (Status.REQUESTED, Action.ACCEPT): Status.ACCEPTED,
    (Status.REQUESTED, Action.DECLINE): Status.DECLINED,
    (Status.ACCEPTED, Action.START): Status.IN_PROGRESS,
    (Status.IN_PROGRESS, Action.COMPLETE): Status.COMPLETED,
    (Status.PROPOSED, Action.CANCEL): Status.CANCELLED,
    (Status.REQUESTED, Action.CANCEL): Status.CANCELLED,
    (Status.ACCEPTED, Action.REVOKE): Status.REVOKED,
    (Status.IN_PROGRESS, Action.REVOKE): Status.REVOKED,
    (Status.REQUESTED, Action.EXPIRE): Status.EXPIRED,
}
SIDE_OF: Mapping[Action, Side] = {
    Action.REQUEST: Side.REFERRER,
    Action.CANCEL: Side.REFERRER,
    Action.REVOKE: Side.REFERRER,
    Action.ACCEPT: Side.PROVIDER,
    Action.DECLINE: Side.PROVIDER,
    Action.START: Side.PROVIDER,
    Action.COMPLETE: Side.PROVIDER,
    Action.EXPIRE: Side.SYSTEM,
}
# The reason list (reasons.yaml) an action must name a code of; other actions take no reason.
REASON_LIST: Mapping[Action, str] = {
    Action.DECLINE: DECLINE,
    Action.CANCEL: CANCEL,
    Action.REVOKE: REVOKE,
    Action.COMPLETE: COMPLETE,
}
ACTIVE = frozenset({Status.PROPOSED, Status.REQUESTED, Status.ACCEPTED, Status.IN_PROGRESS})
HOLDING = frozenset({Status.ACCEPTED, Status.IN_PROGRESS})  # a capacity referral holds a place
ENDED = frozenset(Status) - ACTIVE
CONSENT_WITHDRAWN = "consent_withdrawn"


@dataclass(frozen=True)
class Transition:
    action: Action
    source: Status
    target: Status
    side: Side
    takes_place: bool
    frees_place: bool


def plan(status: str, action: Action, *, capacity: bool) -> Transition:
    """The transition `action` makes from `status`, or `InvalidTransition` (409)."""
    source = Status(status)
    target = TRANSITIONS.get((source, action))
    if target is None:
        raise InvalidTransition(f"{action}_not_allowed_when_{source}")
    return Transition(
        action=action,
        source=source,
        target=target,
        side=SIDE_OF[action],
        takes_place=capacity and target is Status.ACCEPTED,
        frees_place=capacity and source in HOLDING and target in ENDED,
    )


def allowed_actions(status: str) -> list[Action]:
    """What may be done next (for the views' `allowed_actions`)."""
    return [action for (source, action) in TRANSITIONS if source == Status(status)]


def timeline_entry(
    transition: Transition,
    *,
    at: datetime,
    by: str,
    agency: str,
    reason: str | None = None,
    **codes: Any,
) -> dict[str, Any]:
    """One append-only timeline entry: who, which agency, when, from/to, reason code. Codes only."""
    entry: dict[str, Any] = {
        "at": at,
        "by": by,
        "agency": agency,
        "action": str(transition.action),
        "from": str(transition.source),
        "to": str(transition.target),
    }
    if reason is not None:
        entry["reason"] = reason
    entry.update({k: v for k, v in codes.items() if v is not None})
    return entry


def withdrawal_action(status: str) -> Action | None:
    """How a withdrawal of consent ends a referral in `status`: cancel before acceptance, revoke after it."""
    source = Status(status)
    if source in (Status.PROPOSED, Status.REQUESTED):
        return Action.CANCEL
    if source in HOLDING:
        return Action.REVOKE
    return None


def basis_problems(
    age_group: str | None, consent: Any, legal_basis: str | None, rules: CountryRules
) -> list[ErrorDetail]:
    """Why a referral may not be requested yet: an adult's consent, or a child's legal basis, is missing.
    Age uncertain is sent as `child` (presumed a child until determined otherwise)."""
    if age_group not in (CHILD, ADULT):
        return [ErrorDetail("age_group_required", "/age_group")]
    if age_group == ADULT:
        given = isinstance(consent, Mapping) and consent.get("given") is True
        return [] if given else [ErrorDetail("consent_required", "/consent")]
    if not legal_basis:
        return [ErrorDetail("legal_basis_required", "/legal_basis")]
    if legal_basis not in rules.child_legal_bases:
        return [ErrorDetail("unknown_legal_basis", "/legal_basis")]
    return []
