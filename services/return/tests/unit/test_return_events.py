"""The return service's events, on fakes: each command writes its event into the case's own document (the outbox)
in the same write as the change, with ids and codes only; a refused command writes none; every stop has its
event, also the one an adult's consent withdrawal makes; the schemas, the topic and the relay's aggregates agree
with the service's list of payload members."""

from __future__ import annotations

import importlib
import json
from pathlib import Path
from typing import Any

import pytest

import thb_contracts
from plumbing.documents import new_id
from plumbing.events import InvalidEventData, schema_dir
from plumbing.kafka import event_types, topic_for_event
from voluntary_return.adapters.documents import AGGREGATES, ReturnCaseDocument
from voluntary_return.domain import events
from voluntary_return.domain.errors import DomainError, NotPermitted, Refused
from voluntary_return.service_layer import cases
from voluntary_return.service_layer.events import case_event

TOPIC = "return.events.v1"
CASE_MEMBERS = {
    "return_case_id",
    "owner_country",
    "owner_agency",
    "side",
    "origin_country",
    "host_country",
    "exchange_case_id",
    "treated_as_child",
    "status",
}


def opened(world: Any, age_group: str = "child", **body: Any) -> dict[str, Any]:
    return cases.open_case(
        world.deps, world.user("xk-case-manager"), {"origin_country": "ME", "age_group": age_group, **body}
    )


def act(world: Any, case_id: str, action: str, who: str = "xk-case-manager", **body: Any) -> dict[str, Any]:
    return cases.transition(world.deps, world.user(who), case_id, {"action": action, **body})


def of_case(world: Any, case_id: str) -> list[dict[str, Any]]:
    """The case's pending events, in the order its writes appended them (as the relay publishes them)."""
    return list(world.store.raw(ReturnCaseDocument, case_id)["pending_events"])


def types(world: Any, case_id: str) -> list[str]:
    return [e["type"] for e in of_case(world, case_id)]


def assessed_child(world: Any, build: Any) -> str:
    case_id = opened(world)["id"]
    act(world, case_id, "start_assessment")
    manager = world.user("xk-case-manager")
    cases.record_family_assessment(world.deps, manager, case_id, build.family_assessment_body())
    cases.record_best_interests_assessment(world.deps, manager, case_id, build.assessment_body())
    cases.assign_panel_member(world.deps, manager, case_id, "sub-xk-bid-panel")
    return str(case_id)


def planned_adult(world: Any, build: Any) -> str:
    case_id = opened(world, "adult")["id"]
    act(world, case_id, "start_assessment")
    cases.record_consent(world.deps, world.user("xk-case-manager"), case_id, build.consent_body())
    act(world, case_id, "record_decision")
    cases.approve_plan(world.deps, world.user("xk-coordinator"), case_id, build.plan_body(escort=None))
    return str(case_id)


# ------------------------------------------------------------------------------------------ the commands


def test_opening_a_case_writes_requested_with_the_cases_ids_and_codes(world: Any) -> None:
    case_id = opened(world)["id"]
    [event] = of_case(world, case_id)
    assert event["type"] == events.REQUESTED
    assert event["subject"] == event["partitionkey"] == case_id
    assert event["source"] == "/return" and event["dataschema"] == f"urn:thb:event:{events.REQUESTED}"
    assert event["data"] == {
        "return_case_id": case_id,
        "owner_country": "XK",
        "owner_agency": "social-services",
        "side": "host",
        "origin_country": "ME",
        "host_country": None,
        "exchange_case_id": None,
        "treated_as_child": True,
        "status": "requested",
    }
    adult = opened(world, "adult")["id"]
    assert of_case(world, adult)[0]["data"]["treated_as_child"] is False
    # An adult whose age is not established is treated as a child, in the event as by the gate.
    uncertain = opened(world, "adult", age_uncertain=True)["id"]
    assert of_case(world, uncertain)[0]["data"]["treated_as_child"] is True


def test_a_refused_opening_stores_no_case_and_no_event(world: Any) -> None:
    with pytest.raises(DomainError):
        opened(world, origin_country="XK")  # the host country itself
    assert world.store.snapshot(ReturnCaseDocument) == [] and world.store.events() == []


def test_a_childs_return_emits_determination_approval_reception_and_completion_and_nothing_else(
    world: Any, build: Any
) -> None:
    case_id = assessed_child(world, build)
    assert types(world, case_id) == [events.REQUESTED]  # assessing and the assessments emit nothing
    panel, coordinator = world.user("xk-bid-panel"), world.user("xk-coordinator")
    cases.record_determination(world.deps, panel, case_id, build.determination_body())
    act(world, case_id, "record_decision")
    cases.approve_plan(world.deps, coordinator, case_id, build.plan_body())
    for action in ("record_departure", "record_reception", "record_reintegration_plan", "record_follow_up"):
        act(world, case_id, action, "xk-coordinator")
    act(world, case_id, "close", "xk-coordinator", reason=build.close_reason())
    found = of_case(world, case_id)
    assert [e["type"] for e in found] == [
        events.REQUESTED,
        events.DETERMINATION_RECORDED,
        events.APPROVED,
        events.RECEPTION_RECORDED,
        events.COMPLETED,
    ]
    determined, approved, received, completed = (e["data"] for e in found[1:])
    assert determined["decision"] == "return" and determined["status"] == "assessing"
    assert approved["status"] == "planned" and set(approved) == CASE_MEMBERS
    # The host side asks for no reception services: they are the origin country's, in its own referral service.
    assert received["status"] == "received" and received["reception_services"] == []
    assert completed["status"] == "closed" and completed["reason"] == build.close_reason()
    # Ids and codes only: nothing the panel or the case manager wrote travels in an event.
    text = json.dumps(found)
    for recorded in ("gjyshja", "family assessment supports", "BIA officer", "emergency_travel_document"):
        assert recorded not in text


def test_a_determination_for_another_solution_carries_its_code_and_its_stop_the_reason(
    world: Any, build: Any
) -> None:
    case_id = assessed_child(world, build)
    body = build.determination_body(decision="other_durable_solution", solution="local_integration")
    cases.record_determination(world.deps, world.user("xk-bid-panel"), case_id, body)
    act(world, case_id, "stop", reason="other_durable_solution")
    determined, stopped = of_case(world, case_id)[1:]
    assert determined["type"] == events.DETERMINATION_RECORDED
    assert determined["data"]["decision"] == "other_durable_solution"
    assert stopped["type"] == events.STOPPED
    assert stopped["data"]["reason"] == "other_durable_solution" and stopped["data"]["status"] == "stopped"


def test_refused_commands_write_no_event(world: Any, build: Any) -> None:
    case_id = assessed_child(world, build)
    before = world.store.raw(ReturnCaseDocument, case_id)
    coordinator = world.user("xk-coordinator")
    with pytest.raises(Refused):  # the child gate: no determination yet
        cases.approve_plan(world.deps, coordinator, case_id, build.plan_body())
    with pytest.raises(NotPermitted):  # not a role authorised for determinations
        cases.record_determination(
            world.deps, world.user("xk-case-manager"), case_id, build.determination_body()
        )
    with pytest.raises(DomainError):  # a stop needs a known coded reason
        act(world, case_id, "stop", reason="not_a_reason")
    with pytest.raises(Refused):  # the gate again, for the decision
        act(world, case_id, "record_decision")
    after = world.store.raw(ReturnCaseDocument, case_id)
    assert after["version"] == before["version"] and after["pending_events"] == before["pending_events"]
    assert types(world, case_id) == [events.REQUESTED]


def test_every_stop_has_its_event_also_the_withdrawal_of_consent(world: Any, build: Any) -> None:
    withdrawn = planned_adult(world, build)
    assert types(world, withdrawn) == [events.REQUESTED, events.APPROVED]
    cases.withdraw_consent(world.deps, world.user("xk-case-manager"), withdrawn)
    last = of_case(world, withdrawn)[-1]
    assert last["type"] == events.STOPPED
    assert last["data"]["reason"] == "consent_withdrawn" and last["data"]["status"] == "stopped"
    assert last["data"]["treated_as_child"] is False

    stopped = opened(world, "adult")["id"]
    act(world, stopped, "stop", reason="consent_withdrawn")
    assert [e["data"].get("reason") for e in of_case(world, stopped)] == [None, "consent_withdrawn"]


def test_a_withdrawal_on_an_ended_case_stops_nothing_and_emits_nothing(world: Any, build: Any) -> None:
    case_id = planned_adult(world, build)
    for action in ("record_departure", "record_reception"):
        act(world, case_id, action, "xk-coordinator")
    act(world, case_id, "close", "xk-coordinator", reason=build.close_reason())
    emitted = types(world, case_id)
    assert emitted[-1] == events.COMPLETED
    cases.withdraw_consent(world.deps, world.user("xk-case-manager"), case_id)  # recorded, nothing to stop
    assert types(world, case_id) == emitted


# -------------------------------------------------------------------------- case_event, for other modules


def origin_side_case(**changes: Any) -> ReturnCaseDocument:
    fields: dict[str, Any] = {
        "id": new_id(),
        "owner_country": "ME",
        "owner_agency": "coordinator-office",
        "status": "requested",
        "side": "origin",
        "host_country": "XK",
        "exchange_case_id": new_id(),
        "origin_country": "ME",
        "age_group": "child",
        **changes,
    }
    return ReturnCaseDocument(**fields)


def test_case_event_builds_an_origin_side_event_from_a_document(world: Any) -> None:
    doc = origin_side_case()
    event = case_event(world.deps, doc, events.REQUESTED)
    assert event["subject"] == doc.id and event["time"] == "2026-06-01T09:30:00.000Z"
    assert event["data"] == {
        "return_case_id": doc.id,
        "owner_country": "ME",
        "owner_agency": "coordinator-office",
        "side": "origin",
        "origin_country": "ME",
        "host_country": "XK",
        "exchange_case_id": doc.exchange_case_id,
        "treated_as_child": True,
        "status": "requested",
    }
    stopped = case_event(world.deps, doc, events.STOPPED, reason="consent_withdrawn")
    assert stopped["data"]["reason"] == "consent_withdrawn"


def test_case_event_refuses_members_its_type_does_not_carry_or_lacks(world: Any) -> None:
    doc = origin_side_case()
    with pytest.raises(ValueError, match="does not carry"):
        case_event(world.deps, doc, events.REQUESTED, name="Arta")
    with pytest.raises(ValueError, match="needs"):
        case_event(world.deps, doc, events.STOPPED)  # no reason
    with pytest.raises(ValueError, match="unknown"):
        case_event(world.deps, doc, "return.case.renamed.v1")
    # The schema is asked too: a code that is not a code is refused before anything is written.
    with pytest.raises(InvalidEventData):
        case_event(world.deps, doc, events.STOPPED, reason="Not A Code")
    with pytest.raises(InvalidEventData):
        case_event(world.deps, origin_side_case(exchange_case_id="not-a-uuid"), events.REQUESTED)


# ------------------------------------------------------------------------------------- the contracts


@pytest.mark.parametrize("event_type", sorted(events.PAYLOAD_FIELDS))
def test_each_schema_lists_exactly_the_members_the_service_writes(event_type: str) -> None:
    schema = json.loads((Path(schema_dir()) / f"{event_type}.json").read_text(encoding="utf-8"))
    assert schema["additionalProperties"] is False
    assert set(schema["properties"]) == set(schema["required"]) == events.PAYLOAD_FIELDS[event_type]
    assert CASE_MEMBERS <= events.PAYLOAD_FIELDS[event_type]
    assert topic_for_event(event_type) == TOPIC


def test_the_topic_carries_the_return_events_and_the_relay_publishes_the_cases() -> None:
    assert set(event_types(TOPIC)) == set(events.PAYLOAD_FIELDS)
    assert AGGREGATES == (ReturnCaseDocument,)
    [service] = [s for s in thb_contracts.services() if s.name == "return"]
    assert set(service.workers) == {
        "voluntary_return.entrypoints.consumer",
        "voluntary_return.entrypoints.relay",
        "voluntary_return.entrypoints.scheduler",
    }
    for module in service.workers:
        assert callable(importlib.import_module(module).main)
