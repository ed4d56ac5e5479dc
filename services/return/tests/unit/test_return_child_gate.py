"""THE CHILD GATE: no return plan is approved for a person treated as a child without a best-interests
determination in favour of return - not without one, not with one for another durable solution, not for an
age-uncertain person recorded as adult, whatever the caller's roles - and it passes with one in favour."""

from __future__ import annotations

from typing import Any

import pytest

from voluntary_return.domain.errors import DomainError, InvalidTransition, NotPermitted, Refused
from voluntary_return.domain.lifecycle import Status
from voluntary_return.domain.plan import ApprovedPlan, approve_plan
from voluntary_return.domain.subject import Subject, treated_as_child

GATE = "no_determination_in_favour_of_return"


def approve(build: Any, case: Any, *, roles: frozenset[str] | None = None, **plan: Any) -> ApprovedPlan:
    return approve_plan(
        case,
        build.plan(**plan),
        roles=build.coordinator if roles is None else roles,
        now=build.now,
        by="xk-coordinator",
        agency="xk-onatc",
    )


@pytest.mark.parametrize(
    ("age_group", "age_uncertain", "child"),
    [
        ("child", False, True),
        ("child", True, True),
        ("adult", True, True),  # looks adult, age determination pending: presumed a child
        ("adult", False, False),
        (None, False, True),  # no age group recorded: presumed a child
        ("Adult", False, True),  # not a known age group: never an adult by accident
    ],
)
def test_who_is_treated_as_a_child(age_group: str | None, age_uncertain: bool, child: bool) -> None:
    assert treated_as_child(age_group, age_uncertain) is child
    assert Subject(age_group, age_uncertain).treated_as_child is child


def test_a_child_without_a_determination_is_refused(build: Any) -> None:
    with pytest.raises(Refused) as error:
        approve(build, build.case(Status.DECIDED, build.child))
    assert error.value.code == GATE


def test_a_determination_for_another_durable_solution_is_refused(build: Any) -> None:
    case = build.case(Status.DECIDED, build.child, determination=build.refusing_determination())
    with pytest.raises(Refused) as error:
        approve(build, case)
    assert error.value.code == GATE


def test_an_age_uncertain_person_recorded_as_adult_is_refused_even_with_consent(build: Any) -> None:
    case = build.case(Status.DECIDED, build.looks_adult_age_uncertain, consent=build.consent())
    with pytest.raises(Refused) as error:
        approve(build, case)
    assert error.value.code == GATE


def test_a_childs_own_consent_never_opens_the_gate(build: Any) -> None:
    case = build.case(Status.DECIDED, build.child, consent=build.consent())
    with pytest.raises(Refused) as error:
        approve(build, case)
    assert error.value.code == GATE


@pytest.mark.parametrize(
    "roles",
    [
        {"coordinator"},
        {"coordinator", "bid-panel-member"},
        {"coordinator", "guardian", "child-protection-worker", "case-manager", "contact-point"},
    ],
)
def test_no_role_opens_the_gate(build: Any, roles: set[str]) -> None:
    with pytest.raises(Refused) as error:
        approve(build, build.case(Status.DECIDED, build.looks_adult_age_uncertain), roles=frozenset(roles))
    assert error.value.code == GATE


def test_a_determination_in_favour_of_return_opens_the_gate(build: Any) -> None:
    determination = build.determination()
    case = build.case(Status.DECIDED, build.looks_adult_age_uncertain, determination=determination)
    approved = approve(build, case)
    assert (approved.transition.source, approved.transition.target) == ("decided", "planned")
    assert approved.clearance.child and approved.clearance.basis == "best_interests_determination"
    assert approved.clearance.basis_date == determination.decided_on
    assert (approved.approved_by, approved.agency, approved.approved_at) == (
        "xk-coordinator",
        "xk-onatc",
        build.now,
    )


def test_only_a_coordinator_approves(build: Any) -> None:
    case = build.case(Status.DECIDED, build.child, determination=build.determination())
    with pytest.raises(NotPermitted) as error:
        approve(build, case, roles=frozenset({"case-manager", "guardian"}))
    assert error.value.code == "coordinator_approval_required"


def test_a_plan_is_approved_only_once_the_case_is_decided(build: Any) -> None:
    case = build.case(Status.ASSESSING, build.child, determination=build.determination())
    with pytest.raises(InvalidTransition) as error:
        approve(build, case)
    assert error.value.code == "approve_plan_not_allowed_when_assessing"


@pytest.mark.parametrize("status", [Status.REQUESTED, Status.ASSESSING, Status.DECIDED, Status.PLANNED])
def test_the_child_gate_answers_before_the_state_in_every_state(build: Any, status: Status) -> None:
    # A client never reads a state conflict where the child rule refused: the gate's code comes first.
    with pytest.raises(Refused) as error:
        approve(build, build.case(status, build.child))
    assert error.value.code == GATE


def test_an_approved_plan_exists_only_through_the_approval(build: Any) -> None:
    case = build.case(Status.DECIDED, build.child, determination=build.determination())
    approved = approve(build, case)
    with pytest.raises(TypeError):
        ApprovedPlan(approved.plan, approved.clearance, approved.transition, build.now, "someone", "xk-onatc")


def test_the_escort_is_checked_again_at_approval_for_a_presumed_child(build: Any) -> None:
    # Drafted when the person was taken for an adult, without an escort; by approval their age is in doubt.
    plan = build.plan(child=False, escort=None)
    case = build.case(Status.DECIDED, build.looks_adult_age_uncertain, determination=build.determination())
    with pytest.raises(DomainError) as error:
        approve_plan(case, plan, roles=build.coordinator, now=build.now, by="c", agency="xk-onatc")
    assert error.value.codes == {("escort_required_for_child", "/escort")}


def test_a_person_not_fit_to_travel_is_not_sent(build: Any) -> None:
    case = build.case(Status.DECIDED, build.child, determination=build.determination())
    with pytest.raises(Refused) as error:
        approve(build, case, fit_to_travel=False)
    assert error.value.code == "not_fit_to_travel"
