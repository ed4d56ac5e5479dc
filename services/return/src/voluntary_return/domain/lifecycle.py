"""The return case lifecycle, as a transition table.

    requested --start_assessment--> assessing --record_decision--> decided --approve_plan--> planned
      --record_departure--> travelled --record_reception--> received --record_reintegration_plan--> reintegrating
      --record_follow_up--> following_up (--record_follow_up--> following_up, repeatable)
    received, reintegrating, following_up --close (coded reason)--> closed
    any state but closed and stopped --stop (coded reason)--> stopped

Before the person is home a case can only stop; once they have been received it ends by closing (a follow-up
may also end it early: lost contact, moved abroad). An action the current state does not allow raises
`InvalidTransition` (409) with the stable code `<action>_not_allowed_when_<status>`.

The origin country's case (`Side.ORIGIN`, opened when the host's return request arrives through the exchange)
has a table of its own, `ORIGIN_TRANSITIONS`: it decides and plans nothing (that is the host's, through the child
gate), it waits in `requested` until it records the person's reception, then reintegrates, follows up and
closes like the host; it stops like any case.

Two actions are gated (`GATED`): deciding and approving the plan. `plan()` refuses to make their transition
without a `Clearance`, which only `child_gate.require_clearance` makes (a determination in favour of return for
a child, a current consent for an adult). `case.step` makes every other transition and refuses approve_plan,
which only `plan.approve_plan` performs; so no path reaches `planned` around the gate.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from voluntary_return.domain.catalogue import CLOSE, STOP
from voluntary_return.domain.child_gate import Clearance
from voluntary_return.domain.errors import InvalidTransition


class Status(StrEnum):
    REQUESTED = "requested"
    ASSESSING = "assessing"
    DECIDED = "decided"
    PLANNED = "planned"
    TRAVELLED = "travelled"
    RECEIVED = "received"
    REINTEGRATING = "reintegrating"
    FOLLOWING_UP = "following_up"
    CLOSED = "closed"
    STOPPED = "stopped"


class Side(StrEnum):
    HOST = "host"  # the country where the person is, which runs the return
    ORIGIN = "origin"  # the country she returns to


class Action(StrEnum):
    START_ASSESSMENT = "start_assessment"
    RECORD_DECISION = "record_decision"
    APPROVE_PLAN = "approve_plan"
    RECORD_DEPARTURE = "record_departure"
    RECORD_RECEPTION = "record_reception"
    RECORD_REINTEGRATION_PLAN = "record_reintegration_plan"
    RECORD_FOLLOW_UP = "record_follow_up"
    CLOSE = "close"
    STOP = "stop"


TERMINAL = frozenset({Status.CLOSED, Status.STOPPED})
ACTIVE = frozenset(Status) - TERMINAL
# The person is back in the country of origin: the case ends by closing, and reintegration deadlines run.
HOME = frozenset({Status.RECEIVED, Status.REINTEGRATING, Status.FOLLOWING_UP})

TRANSITIONS: Mapping[tuple[Status, Action], Status] = {
    (Status.REQUESTED, Action.START_ASSESSMENT): Status.ASSESSING,
    (Status.ASSESSING, Action.RECORD_DECISION): Status.DECIDED,
    (Status.DECIDED, Action.APPROVE_PLAN): Status.PLANNED,
    (Status.PLANNED, Action.RECORD_DEPARTURE): Status.TRAVELLED,
    (Status.TRAVELLED, Action.RECORD_RECEPTION): Status.RECEIVED,
    (Status.RECEIVED, Action.RECORD_REINTEGRATION_PLAN): Status.REINTEGRATING,
    (Status.REINTEGRATING, Action.RECORD_FOLLOW_UP): Status.FOLLOWING_UP,
    (Status.FOLLOWING_UP, Action.RECORD_FOLLOW_UP): Status.FOLLOWING_UP,
    **{(status, Action.CLOSE): Status.CLOSED for status in HOME},
    **{(status, Action.STOP): Status.STOPPED for status in ACTIVE},
}
# The origin country receives the person and reintegrates her; the host's steps reach it as exchange forms.
ORIGIN_TRANSITIONS: Mapping[tuple[Status, Action], Status] = {
    (Status.REQUESTED, Action.RECORD_RECEPTION): Status.RECEIVED,
    **{key: found for key, found in TRANSITIONS.items() if key[0] in HOME or key[1] is Action.STOP},
}
TABLES: Mapping[Side, Mapping[tuple[Status, Action], Status]] = {
    Side.HOST: TRANSITIONS,
    Side.ORIGIN: ORIGIN_TRANSITIONS,
}
# The reason list (reasons.yaml) an action must name a code of; other actions take no reason.
REASON_LIST: Mapping[Action, str] = {Action.STOP: STOP, Action.CLOSE: CLOSE}
# Actions whose transition needs the child gate's clearance.
GATED = frozenset({Action.RECORD_DECISION, Action.APPROVE_PLAN})


@dataclass(frozen=True)
class Transition:
    action: Action
    source: Status
    target: Status
    reason: str | None = None


def target(status: str, action: Action, side: str = Side.HOST) -> Status:
    """Where `action` leads from `status` on that side, or `InvalidTransition` (409) with its stable code."""
    source = Status(status)
    found = TABLES[Side(side)].get((source, action))
    if found is None:
        raise InvalidTransition(f"{action}_not_allowed_when_{source}")
    return found


def plan(
    status: str,
    action: Action,
    *,
    reason: str | None = None,
    clearance: Clearance | None = None,
    side: str = Side.HOST,
) -> Transition:
    """The transition `action` makes from `status`, or `InvalidTransition` (409). A gated action without the
    gate's clearance is a programming error (TypeError, a 500): the caller skipped `child_gate`."""
    found = target(status, action, side)
    if action in GATED and not isinstance(clearance, Clearance):
        raise TypeError(f"{action} needs the child gate's clearance (child_gate.require_clearance)")
    return Transition(action=action, source=Status(status), target=found, reason=reason)


def allowed_actions(status: str, side: str = Side.HOST) -> list[Action]:
    """What may be done next (for the views' `allowed_actions`), before the case's facts are considered."""
    return [action for (source, action) in TABLES[Side(side)] if source == Status(status)]


def timeline_entry(
    transition: Transition,
    *,
    at: datetime,
    by: str,
    agency: str,
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
    if transition.reason is not None:
        entry["reason"] = transition.reason
    entry.update({k: v for k, v in codes.items() if v is not None})
    return entry
