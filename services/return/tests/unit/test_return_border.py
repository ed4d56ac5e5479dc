"""The return following the exchange (service_layer/border.py), on fakes: the return request arriving in the
origin country opens its case, each return form sent or received lands on the timeline of the case that names the
record, and a consent withdrawal in either country stops the return on both sides."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from plumbing.errors import NotFound
from voluntary_return.domain.errors import DomainError, InvalidTransition, Refused
from voluntary_return.service_layer import border, cases

XK_RECORD = "11111111-1111-4111-8111-111111111111"  # Kosovo's record of the transnational case
ME_RECORD = "22222222-2222-4222-8222-222222222222"  # Montenegro's record of the same case


def exchange_event(kind: str, owner: str, record: str, **data: Any) -> dict[str, Any]:
    return {
        "id": str(uuid.uuid4()),
        "type": kind,
        "data": {"case_id": record, "reference": "XK-EX-2026-0007", "owner_country": owner, **data},
    }


def form_event(kind: str, owner: str, record: str, form_type: str, counterpart: str) -> dict[str, Any]:
    direction = "in" if kind == border.FORM_RECEIVED else "out"
    return exchange_event(
        kind,
        owner,
        record,
        form_id=str(uuid.uuid4()),
        form_type=form_type,
        version=1,
        direction=direction,
        counterpart=counterpart,
    )


def request_arrives_in_montenegro(world: Any) -> tuple[str, dict[str, Any]]:
    event = form_event(border.FORM_RECEIVED, "ME", ME_RECORD, "return-request", "XK")
    (case_id,) = border.follow_exchange(world.deps, event)
    return case_id, event


def test_the_return_request_arriving_opens_the_origin_countrys_case(world: Any) -> None:
    case_id, event = request_arrives_in_montenegro(world)
    case = cases.get_case(world.deps, world.user("me-coordinator"), case_id)
    assert case["side"] == "origin" and case["status"] == "requested"
    assert (case["owner_country"], case["owner_agency"]) == ("ME", border.ORIGIN_AGENCY)
    assert (case["origin_country"], case["host_country"]) == ("ME", "XK")
    assert case["exchange_case_id"] == ME_RECORD
    assert case["treated_as_child"], "the age is not known to the origin side: presumed a child"
    assert [e["action"] for e in case["timeline"]] == ["open", "form_received"]
    assert case["timeline"][1]["form_id"] == event["data"]["form_id"]
    assert case["allowed_actions"] == ["record_reception", "stop"]
    # Montenegro's record, not Kosovo's: a Kosovar officer does not see it.
    with pytest.raises(NotFound):
        cases.get_case(world.deps, world.user("xk-coordinator"), case_id)


def test_a_redelivered_event_changes_nothing(world: Any) -> None:
    case_id, event = request_arrives_in_montenegro(world)
    before = cases.get_case(world.deps, world.user("me-coordinator"), case_id)
    assert border.follow_exchange(world.deps, event) == []
    after = cases.get_case(world.deps, world.user("me-coordinator"), case_id)
    assert after["timeline"] == before["timeline"]


def test_return_forms_land_on_the_timeline_of_the_case_naming_the_record(world: Any, build: Any) -> None:
    manager = world.user("xk-case-manager")
    host = cases.open_case(
        world.deps, manager, {"origin_country": "ME", "age_group": "child", "exchange_case_id": XK_RECORD}
    )
    other = cases.open_case(world.deps, manager, {"origin_country": "ME", "age_group": "child"})
    sent = form_event(border.FORM_SENT, "XK", XK_RECORD, "family-assessment-request", "ME")
    assert border.follow_exchange(world.deps, sent) == [host["id"]]
    # Not a return form; and Montenegro's record of the same id is not Kosovo's.
    assert (
        border.follow_exchange(
            world.deps, form_event(border.FORM_SENT, "XK", XK_RECORD, "notification", "ME")
        )
        == []
    )
    report = form_event(border.FORM_RECEIVED, "ME", XK_RECORD, "family-assessment-report", "XK")
    assert border.follow_exchange(world.deps, report) == []
    case = cases.get_case(world.deps, manager, host["id"])
    entry = case["timeline"][-1]
    assert (entry["action"], entry["form_type"], entry["counterpart"]) == (
        "form_sent",
        "family-assessment-request",
        "ME",
    )
    assert entry["by"] == border.ACTOR
    assert [e["action"] for e in cases.get_case(world.deps, manager, other["id"])["timeline"]] == ["open"]


def test_a_consent_withdrawal_in_either_country_stops_the_return_on_both_sides(world: Any) -> None:
    manager = world.user("xk-case-manager")
    host = cases.open_case(
        world.deps, manager, {"origin_country": "ME", "age_group": "adult", "exchange_case_id": XK_RECORD}
    )
    origin_id, _ = request_arrives_in_montenegro(world)
    notice_out = exchange_event(
        border.CONSENT_WITHDRAWN_EVENT, "XK", XK_RECORD, direction="out", countries=["ME"], forms_restricted=1
    )
    notice_in = exchange_event(
        border.CONSENT_WITHDRAWN_EVENT, "ME", ME_RECORD, direction="in", countries=["XK"], forms_restricted=1
    )
    assert border.follow_exchange(world.deps, notice_out) == [host["id"]]
    assert border.follow_exchange(world.deps, notice_in) == [origin_id]
    for user, case_id in (("xk-case-manager", host["id"]), ("me-coordinator", origin_id)):
        case = cases.get_case(world.deps, world.user(user), case_id)
        assert (case["status"], case["reason"]) == ("stopped", "consent_withdrawn")
        assert [e["action"] for e in case["timeline"]][-2:] == ["consent_withdrawn_notice", "stop"]
    # A stopped case takes the notice on its timeline and stays as it is.
    again = exchange_event(
        border.CONSENT_WITHDRAWN_EVENT, "XK", XK_RECORD, direction="in", countries=["ME"], forms_restricted=0
    )
    border.follow_exchange(world.deps, again)
    case = cases.get_case(world.deps, manager, host["id"])
    assert case["status"] == "stopped" and case["timeline"][-1]["action"] == "consent_withdrawn_notice"


def test_the_origin_side_receives_and_reintegrates_but_decides_nothing(world: Any, build: Any) -> None:
    origin_id, _ = request_arrives_in_montenegro(world)
    coordinator = world.user("me-coordinator")
    with pytest.raises(Refused) as consent:
        cases.record_consent(world.deps, coordinator, origin_id, build.consent_body())
    assert consent.value.code == "recorded_by_the_host_country"
    with pytest.raises(InvalidTransition) as assessing:
        cases.transition(world.deps, coordinator, origin_id, {"action": "start_assessment"})
    assert assessing.value.code == "start_assessment_not_allowed_when_requested"
    with pytest.raises(Refused) as plan:
        cases.approve_plan(world.deps, coordinator, origin_id, build.plan_body())
    assert plan.value.code == "no_determination_in_favour_of_return"
    for action in ("record_reception", "record_reintegration_plan", "record_follow_up"):
        case = cases.transition(world.deps, coordinator, origin_id, {"action": action})
    assert case["status"] == "following_up" and case["received_at"]


def test_the_origin_country_asks_for_reception_services_as_it_records_the_arrival(world: Any) -> None:
    origin_id, _ = request_arrives_in_montenegro(world)
    coordinator = world.user("me-coordinator")
    for body, code, pointer in (
        (
            {"action": "record_reception", "reception_services": ["astrology"]},
            "unknown_code",
            "/reception_services/0",
        ),
        (
            {"action": "record_reception", "reception_services": ["child_shelter", "child_shelter"]},
            "duplicate",
            "/reception_services/1",
        ),
        (
            {"action": "stop", "reason": "consent_withdrawn", "reception_services": []},
            "not_allowed",
            "/reception_services",
        ),
    ):
        with pytest.raises(DomainError) as refused:
            cases.transition(world.deps, coordinator, origin_id, body)
        assert refused.value.codes == {(code, pointer)}
    assert cases.get_case(world.deps, coordinator, origin_id)["status"] == "requested", "nothing was written"
    services = ["child_shelter", "psycho_social"]
    body = {"action": "record_reception", "reception_services": services}
    case = cases.transition(world.deps, coordinator, origin_id, body)
    assert case["status"] == "received" and case["reception_services"] == services
    (received,) = [e for e in world.store.events("return.reception.recorded.v1") if e["subject"] == origin_id]
    assert received["data"]["reception_services"] == services and received["data"]["side"] == "origin"


def test_the_host_country_asks_for_no_reception_services(world: Any) -> None:
    officer = world.user("xk-case-manager")
    case_id = cases.open_case(world.deps, officer, {"origin_country": "ME", "age_group": "child"})["id"]
    body = {"action": "start_assessment", "reception_services": ["child_shelter"]}
    with pytest.raises(DomainError) as refused:
        cases.transition(world.deps, officer, case_id, body)
    assert refused.value.codes == {("not_allowed", "/reception_services")}


def test_a_new_request_opens_a_new_origin_case_only_once_the_last_one_ended(world: Any) -> None:
    first, _ = request_arrives_in_montenegro(world)
    second = form_event(border.FORM_RECEIVED, "ME", ME_RECORD, "return-request", "XK")
    assert border.follow_exchange(world.deps, second) == [first], "the running case takes the new request"
    coordinator = world.user("me-coordinator")
    cases.transition(world.deps, coordinator, first, {"action": "stop", "reason": "consent_withdrawn"})
    third = form_event(border.FORM_RECEIVED, "ME", ME_RECORD, "return-request", "XK")
    (opened,) = border.follow_exchange(world.deps, third)
    assert opened != first, "a new return: a new case, and nothing on the timeline of the one that ended"
    assert cases.get_case(world.deps, coordinator, opened)["status"] == "requested"
    assert cases.get_case(world.deps, coordinator, first)["timeline"][-1]["action"] == "stop"


def test_the_partners_return_stopped_stops_this_countrys_case(world: Any) -> None:
    origin_id, _ = request_arrives_in_montenegro(world)
    told = form_event(border.FORM_RECEIVED, "ME", ME_RECORD, "return-stopped", "XK")
    assert border.follow_exchange(world.deps, told) == [origin_id]
    case = cases.get_case(world.deps, world.user("me-coordinator"), origin_id)
    assert (case["status"], case["reason"]) == ("stopped", "stopped_in_partner_country")
    # Sending one is not being told: Montenegro's own notice to Kosovo leaves its case as it is.
    second, _ = request_arrives_in_montenegro(world)
    sent = form_event(border.FORM_SENT, "ME", ME_RECORD, "return-stopped", "XK")
    border.follow_exchange(world.deps, sent)
    assert cases.get_case(world.deps, world.user("me-coordinator"), second)["status"] == "requested"


def test_the_origin_case_and_the_stops_border_makes_are_published(world: Any) -> None:
    origin_id, _ = request_arrives_in_montenegro(world)
    (requested,) = [e for e in world.store.events("return.case.requested.v1") if e["subject"] == origin_id]
    assert requested["data"]["side"] == "origin" and requested["data"]["owner_agency"] == border.ORIGIN_AGENCY
    told = form_event(border.FORM_RECEIVED, "ME", ME_RECORD, "return-stopped", "XK")
    border.follow_exchange(world.deps, told)
    (stopped,) = [e for e in world.store.events("return.case.stopped.v1") if e["subject"] == origin_id]
    # The reason the exchange reads to tell no partner of a stop the partner caused.
    assert stopped["data"]["reason"] == "stopped_in_partner_country"
    assert stopped["data"]["exchange_case_id"] == ME_RECORD
    # A form that stops nothing publishes nothing.
    before = len(world.store.events())
    border.follow_exchange(world.deps, form_event(border.FORM_SENT, "ME", ME_RECORD, "case-closure", "XK"))
    assert len(world.store.events()) == before


def test_an_officers_step_racing_the_consumer_is_applied_to_the_case_as_it_now_is(world: Any) -> None:
    manager = world.user("xk-case-manager")
    host = cases.open_case(
        world.deps, manager, {"origin_country": "ME", "age_group": "child", "exchange_case_id": XK_RECORD}
    )
    real = world.deps.repository
    raced: list[Any] = []

    def racing(document_class: type, caller: Any) -> Any:
        repository = real(document_class, caller)
        update = repository.update

        def consumer_writes_first(doc: Any, **kwargs: Any) -> Any:
            if not raced:  # between the officer's read and her write, a form crosses on the case's record
                sent = form_event(border.FORM_SENT, "XK", XK_RECORD, "family-assessment-request", "ME")
                raced.append(border.follow_exchange(world.deps, sent))
            return update(doc, **kwargs)

        repository.update = consumer_writes_first
        return repository

    world.deps.repository = racing
    case = cases.transition(world.deps, manager, host["id"], {"action": "start_assessment"})
    assert raced == [[host["id"]]]
    assert case["status"] == "assessing"
    assert [e["action"] for e in case["timeline"]] == ["open", "form_sent", "start_assessment"]
