"""Return cases through the service layer, on fakes: a child's return from opening to closure through the child
gate, an adult's return stopped by the withdrawal of consent, who may record a determination and see a case,
records sealed at rest, age facts from identification."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pytest

from plumbing.errors import NotFound
from voluntary_return.adapters.documents import ReturnCaseDocument
from voluntary_return.domain.errors import DomainError, NotPermitted, Refused
from voluntary_return.service_layer import cases

GATE = "no_determination_in_favour_of_return"


def opened(world: Any, age_group: str = "child", **body: Any) -> dict[str, Any]:
    return cases.open_case(
        world.deps, world.user("xk-case-manager"), {"origin_country": "ME", "age_group": age_group, **body}
    )


def act(world: Any, case_id: str, action: str, who: str = "xk-case-manager", **body: Any) -> dict[str, Any]:
    return cases.transition(world.deps, world.user(who), case_id, {"action": action, **body})


def assessed_child(world: Any, build: Any) -> str:
    """A child's case with the family assessment, the best-interests assessment and a panel member assigned."""
    case_id = opened(world)["id"]
    act(world, case_id, "start_assessment")
    manager = world.user("xk-case-manager")
    cases.record_family_assessment(world.deps, manager, case_id, build.family_assessment_body())
    cases.record_best_interests_assessment(world.deps, manager, case_id, build.assessment_body())
    cases.assign_panel_member(world.deps, manager, case_id, "sub-xk-bid-panel")
    return str(case_id)


def test_a_childs_return_goes_through_the_gate_from_opening_to_closure(world: Any, build: Any) -> None:
    case_id = assessed_child(world, build)
    coordinator = world.user("xk-coordinator")
    # No determination yet: the decision and the plan are refused with the gate's code.
    with pytest.raises(Refused) as early:
        act(world, case_id, "record_decision")
    assert early.value.code == GATE
    with pytest.raises(Refused) as plan_first:
        cases.approve_plan(world.deps, coordinator, case_id, build.plan_body())
    assert plan_first.value.code == GATE

    panel = world.user("xk-bid-panel")
    determined = cases.record_determination(world.deps, panel, case_id, build.determination_body())
    assert determined["determination"]["decision"] == "return"
    act(world, case_id, "record_decision")
    planned = cases.approve_plan(world.deps, coordinator, case_id, build.plan_body())
    assert (
        planned["status"] == "planned" and planned["timeline"][-1]["basis"] == "best_interests_determination"
    )
    for action in ("record_departure", "record_reception", "record_reintegration_plan", "record_follow_up"):
        act(world, case_id, action, "xk-coordinator")
    closed = act(world, case_id, "close", "xk-coordinator", reason=build.close_reason())
    assert closed["status"] == "closed" and closed["received_at"]
    assert [e["action"] for e in closed["timeline"]] == [
        "open",
        "start_assessment",
        "family_assessment_recorded",
        "best_interests_assessment_recorded",
        "panel_member_assigned",
        "determination_recorded",
        "record_decision",
        "approve_plan",
        "record_departure",
        "record_reception",
        "record_reintegration_plan",
        "record_follow_up",
        "close",
    ]


def test_a_determination_for_another_durable_solution_leaves_only_a_stop(world: Any, build: Any) -> None:
    case_id = assessed_child(world, build)
    body = build.determination_body(decision="other_durable_solution", solution="local_integration")
    cases.record_determination(world.deps, world.user("xk-bid-panel"), case_id, body)
    with pytest.raises(Refused) as refused:
        act(world, case_id, "record_decision")
    assert refused.value.code == GATE
    stopped = act(world, case_id, "stop", reason="other_durable_solution")
    assert stopped["status"] == "stopped" and stopped["reason"] == "other_durable_solution"


def test_only_an_assigned_authorised_panel_member_records_a_determination(world: Any, build: Any) -> None:
    case_id = assessed_child(world, build)
    with pytest.raises(NotPermitted) as manager:
        cases.record_determination(
            world.deps, world.user("xk-case-manager"), case_id, build.determination_body()
        )
    assert manager.value.code == "not_authorised_for_determination"
    other = opened(world)["id"]  # a case nobody assigned to the panel member: she cannot see it
    with pytest.raises(NotFound):
        cases.record_determination(world.deps, world.user("xk-bid-panel"), other, build.determination_body())


def test_an_adult_who_withdraws_consent_stops_the_return_at_once(world: Any, build: Any) -> None:
    case_id = opened(world, "adult")["id"]
    manager = world.user("xk-case-manager")
    act(world, case_id, "start_assessment")
    with pytest.raises(Refused) as no_consent:
        act(world, case_id, "record_decision")
    assert no_consent.value.code == "consent_required"
    cases.record_consent(world.deps, manager, case_id, build.consent_body())
    act(world, case_id, "record_decision")
    cases.approve_plan(world.deps, world.user("xk-coordinator"), case_id, build.plan_body(escort=None))
    stopped = cases.withdraw_consent(world.deps, manager, case_id)
    assert stopped["status"] == "stopped" and stopped["reason"] == "consent_withdrawn"
    assert stopped["consent"]["withdrawn_at"]
    assert [e["action"] for e in stopped["timeline"]][-2:] == ["consent_withdrawn", "stop"]


def test_a_childs_consent_clears_nothing(world: Any, build: Any) -> None:
    case_id = opened(world)["id"]
    with pytest.raises(Refused) as refused:
        cases.record_consent(world.deps, world.user("xk-case-manager"), case_id, build.consent_body())
    assert refused.value.code == "consent_does_not_clear_a_child"


def test_what_people_recorded_is_sealed_at_rest_and_reads_are_logged(world: Any, build: Any) -> None:
    case_id = assessed_child(world, build)
    cases.record_determination(world.deps, world.user("xk-bid-panel"), case_id, build.determination_body())
    raw = str(world.store.raw(ReturnCaseDocument, case_id))
    assert "gjyshja" not in raw and "family assessment supports" not in raw  # the child's views, the reasons
    seen = cases.get_case(world.deps, world.user("xk-coordinator"), case_id)
    assert "gjyshja" in seen["determination"]["child_views"]["text"]
    assert world.reads[-1] == ("sub-xk-coordinator", "return-case", (case_id,))
    with pytest.raises(NotFound):  # another country
        cases.get_case(world.deps, world.user("me-coordinator"), case_id)


def test_the_origin_country_is_another_partner(world: Any) -> None:
    with pytest.raises(DomainError) as error:
        opened(world, origin_country="XK")
    assert error.value.codes == {("origin_is_the_host_country", "/origin_country")}


class FakeIdentification:
    def __init__(self, person: Mapping[str, Any] | None) -> None:
        self.person = person

    def case_and_person(self, case_id: str) -> Mapping[str, Mapping[str, Any]]:
        if self.person is None:
            raise NotFound("case")
        return {"case": {"id": case_id, "person_id": self.person["id"]}, "person": self.person}


def test_identification_says_who_is_treated_as_a_child_whatever_the_body_says(world: Any) -> None:
    case_id = "b6a1d2e3-4f50-4a6b-9c7d-8e9f0a1b2c3d"
    world.deps.identification = FakeIdentification({"id": "p-1", "child": True})  # age not established
    seen = opened(world, "adult", identification_case_id=case_id)
    assert seen["treated_as_child"] is True and seen["person_id"] == "p-1"
    world.deps.identification = FakeIdentification(None)
    with pytest.raises(DomainError) as hidden:
        opened(world, "adult", identification_case_id=case_id)
    assert hidden.value.codes == {("identification_case_not_visible", "/identification_case_id")}


def test_every_answer_that_carries_the_records_is_access_logged(world: Any, build: Any) -> None:
    case_id = assessed_child(world, build)
    cases.record_determination(world.deps, world.user("xk-bid-panel"), case_id, build.determination_body())
    assert ("sub-xk-bid-panel", "return-case", (case_id,)) in world.reads  # a write's answer, not only a GET


def test_a_persons_return_cases_are_found_for_her_countrys_dpo_by_her_person_or_case_id(world: Any) -> None:
    """Right of access, return's part (service_layer/subject_records)."""
    from voluntary_return.service_layer import subject_records

    case_id = "b6a1d2e3-4f50-4a6b-9c7d-8e9f0a1b2c3d"
    world.deps.identification = FakeIdentification({"id": "p-1", "child": True})
    linked = opened(world, "child", identification_case_id=case_id)
    world.deps.identification = None
    opened(world, "child")  # someone else's: names neither
    dpo = world.user("xk-dpo")
    by_person = subject_records.records_about(world.deps, dpo, "p-1", [])
    assert [(r.type, r.id) for r in by_person] == [("return-case", linked["id"])]
    assert by_person[0].content["person_id"] == "p-1" and by_person[0].content["treated_as_child"] is True
    assert [r.id for r in subject_records.records_about(world.deps, dpo, "p-other", [case_id])] == [
        linked["id"]
    ]
    assert subject_records.records_about(world.deps, world.user("me-dpo"), "p-1", [case_id]) == []
    assert subject_records.records_about(world.deps, world.user("al-analyst"), "p-1", [case_id]) == []
