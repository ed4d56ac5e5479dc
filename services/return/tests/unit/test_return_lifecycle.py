"""The return case lifecycle: every allowed move, every refused one with its stable code, the reasons a stop
or close must carry, the timeline entry each transition writes, and that the gated transitions cannot be made
without the child gate."""

from __future__ import annotations

from typing import Any

import pytest

from voluntary_return.domain import case as cases
from voluntary_return.domain import child_gate, lifecycle
from voluntary_return.domain.errors import DomainError, InvalidTransition, Refused
from voluntary_return.domain.lifecycle import Action, Status

ACTIVE = [
    "requested",
    "assessing",
    "decided",
    "planned",
    "travelled",
    "received",
    "reintegrating",
    "following_up",
]
# Written out by hand from the process (issue 14), not copied from the code's table.
ALLOWED = {
    ("requested", "start_assessment"): "assessing",
    ("assessing", "record_decision"): "decided",
    ("decided", "approve_plan"): "planned",
    ("planned", "record_departure"): "travelled",
    ("travelled", "record_reception"): "received",
    ("received", "record_reintegration_plan"): "reintegrating",
    ("reintegrating", "record_follow_up"): "following_up",
    ("following_up", "record_follow_up"): "following_up",
    ("received", "close"): "closed",
    ("reintegrating", "close"): "closed",
    ("following_up", "close"): "closed",
    **{(status, "stop"): "stopped" for status in ACTIVE},
}


def adult_clearance(build: Any) -> child_gate.Clearance:
    return child_gate.require_clearance(build.adult, determination=None, consent=build.consent())


@pytest.mark.parametrize("status", list(Status))
@pytest.mark.parametrize("action", list(Action))
def test_every_status_and_action(build: Any, status: Status, action: Action) -> None:
    expected = ALLOWED.get((str(status), str(action)))
    clearance = adult_clearance(build)
    if expected is None:
        with pytest.raises(InvalidTransition) as error:
            lifecycle.plan(status, action, clearance=clearance)
        assert error.value.code == f"{action}_not_allowed_when_{status}"
    else:
        transition = lifecycle.plan(status, action, clearance=clearance)
        assert (transition.source, transition.target) == (status, expected)


def test_closed_and_stopped_cases_allow_nothing() -> None:
    assert lifecycle.allowed_actions("closed") == []
    assert lifecycle.allowed_actions("stopped") == []
    assert set(lifecycle.allowed_actions("following_up")) == {"record_follow_up", "close", "stop"}


@pytest.mark.parametrize(
    ("status", "action"), [("assessing", "record_decision"), ("decided", "approve_plan")]
)
def test_gated_transitions_cannot_be_made_without_the_gate(status: str, action: Action) -> None:
    with pytest.raises(TypeError):
        lifecycle.plan(status, Action(action))


def test_a_clearance_cannot_be_made_outside_the_gate(build: Any) -> None:
    with pytest.raises(TypeError):
        child_gate.Clearance(True, "best_interests_determination", build.today)


def test_a_step_never_approves_a_plan(build: Any) -> None:
    case = build.case(subject=build.child, determination=build.determination())
    with pytest.raises(TypeError):
        cases.step(case, Action.APPROVE_PLAN, catalogue=build.catalogue)


def test_the_timeline_entry_names_who_when_what_and_why(build: Any) -> None:
    case = build.case(Status.PLANNED, build.adult, consent=build.consent())
    transition = cases.step(case, Action.STOP, catalogue=build.catalogue, reason="travel_not_possible")
    entry = lifecycle.timeline_entry(transition, at=build.now, by="xk-coordinator", agency="xk-onatc")
    assert entry == {
        "at": build.now,
        "by": "xk-coordinator",
        "agency": "xk-onatc",
        "action": "stop",
        "from": "planned",
        "to": "stopped",
        "reason": "travel_not_possible",
    }
    forward = cases.step(
        build.case(Status.PLANNED, build.adult), Action.RECORD_DEPARTURE, catalogue=build.catalogue
    )
    assert "reason" not in lifecycle.timeline_entry(forward, at=build.now, by="u", agency="a")


@pytest.mark.parametrize(
    ("status", "action", "reason", "code"),
    [
        ("assessing", "stop", None, "reason_required"),
        ("assessing", "stop", "lost_contact", "unknown_reason"),  # a close reason, not a stop reason
        ("received", "close", "travel_not_possible", "unknown_reason"),  # a stop reason, not a close reason
        ("received", "close", None, "reason_required"),
        ("planned", "record_departure", "other", "not_allowed"),  # a departure takes no reason
    ],
)
def test_stop_and_close_need_a_reason_of_their_own_list(
    build: Any, status: str, action: str, reason: str | None, code: str
) -> None:
    case = build.case(Status(status), build.adult, consent=build.consent())
    with pytest.raises(DomainError) as error:
        cases.step(case, Action(action), catalogue=build.catalogue, reason=reason)
    assert error.value.codes == {(code, "/reason")}


def test_a_case_closes_with_a_coded_reason_once_the_person_is_home(build: Any) -> None:
    case = build.case(Status.FOLLOWING_UP, build.adult, consent=build.consent())
    transition = cases.step(case, Action.CLOSE, catalogue=build.catalogue, reason="reintegration_completed")
    assert (transition.target, transition.reason) == ("closed", "reintegration_completed")
    with pytest.raises(InvalidTransition) as error:
        cases.step(
            build.case(Status.PLANNED, build.adult), Action.CLOSE, catalogue=build.catalogue, reason="other"
        )
    assert error.value.code == "close_not_allowed_when_planned"


def test_follow_ups_repeat(build: Any) -> None:
    case = build.case(Status.FOLLOWING_UP, build.adult)
    transition = cases.step(case, Action.RECORD_FOLLOW_UP, catalogue=build.catalogue)
    assert (transition.source, transition.target) == ("following_up", "following_up")


def test_deciding_needs_the_adults_consent(build: Any) -> None:
    without = build.case(Status.ASSESSING, build.adult)
    with pytest.raises(Refused) as error:
        cases.step(without, Action.RECORD_DECISION, catalogue=build.catalogue)
    assert error.value.code == "consent_required"
    with_consent = build.case(Status.ASSESSING, build.adult, consent=build.consent())
    assert cases.step(with_consent, Action.RECORD_DECISION, catalogue=build.catalogue).target == "decided"


def test_deciding_a_childs_return_needs_a_determination_in_favour(build: Any) -> None:
    without = build.case(Status.ASSESSING, build.child, consent=build.consent())
    with pytest.raises(Refused) as error:
        cases.step(without, Action.RECORD_DECISION, catalogue=build.catalogue)
    assert error.value.code == "no_determination_in_favour_of_return"
    case = build.case(Status.ASSESSING, build.child, determination=build.determination())
    assert cases.step(case, Action.RECORD_DECISION, catalogue=build.catalogue).target == "decided"


@pytest.mark.parametrize("action", ["start_assessment", "record_decision"])
def test_after_another_durable_solution_nothing_but_the_stop_goes_on(build: Any, action: str) -> None:
    status = Status.REQUESTED if action == "start_assessment" else Status.ASSESSING
    case = build.case(status, build.child, determination=build.refusing_determination())
    with pytest.raises(Refused) as error:
        cases.step(case, Action(action), catalogue=build.catalogue)
    assert error.value.code == "no_determination_in_favour_of_return"


def test_after_another_durable_solution_the_case_stops_with_that_reason_only(build: Any) -> None:
    case = build.case(Status.ASSESSING, build.child, determination=build.refusing_determination())
    with pytest.raises(Refused) as error:
        cases.step(case, Action.STOP, catalogue=build.catalogue, reason="other")
    assert error.value.code == "stop_reason_must_be_other_durable_solution"
    transition = cases.step(case, Action.STOP, catalogue=build.catalogue, reason="other_durable_solution")
    assert (transition.target, transition.reason) == ("stopped", "other_durable_solution")
