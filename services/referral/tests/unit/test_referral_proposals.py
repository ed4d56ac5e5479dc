"""Proposals from identification's needs-identified event: once per event however often it is delivered, a
guardian need addressed to the guardianship authority, and never a referral sent by itself."""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest

import thb_contracts
from plumbing.errors import NotFound
from plumbing.events import validate_data
from plumbing.inbox import applying
from referral.adapters.documents import ReferralDocument
from referral.domain.proposals import proposals_for
from referral.service_layer import directory, proposals, referrals
from services.referral.tests.unit.conftest import CHILD, PERSON
from services.referral.tests.unit.fakes import World, packaged_catalogue, user

EVENT_ID = "7d9c1b2a-3e4f-4a5b-8c6d-9e0f1a2b3c4d"


def needs_event(needs: list[str], country: str = "AL", event_id: str = EVENT_ID) -> dict[str, Any]:
    data = {
        "needs_assessment_id": "5a4b3c2d-1e0f-4a9b-8c7d-6e5f4a3b2c1d",
        "case_id": "b6a1d2e3-4f50-4a6b-9c7d-8e9f0a1b2c3d",
        "person_id": "3f0c6a4e-9b1d-4c57-8f0e-2a6d9c1b7e55",
        "owner_country": country,
        "needs": needs,
        "urgent": True,
        "interpreter_languages": ["rmy"],
    }
    validate_data("identification.needs.identified.v1", data)  # the real contract: ids and codes only
    return {"id": event_id, "type": "identification.needs.identified.v1", "data": data}


def test_one_proposal_per_need_with_its_candidate_services() -> None:
    found = proposals_for(
        EVENT_ID, needs_event(["shelter", "medical", "interpreter"])["data"], packaged_catalogue()
    )
    by_need = {p.need: p for p in found}
    assert set(by_need) == {"shelter", "medical", "interpreter"}
    assert set(by_need["shelter"].candidate_service_types) == {"shelter", "child_shelter"}
    assert by_need["shelter"].service_type is None  # the case manager chooses (the event has no age)
    assert by_need["medical"].service_type == "medical"
    assert by_need["interpreter"].languages == ("rmy",)


def test_a_guardian_need_goes_to_the_guardianship_authority_for_a_child() -> None:
    (found,) = proposals_for(EVENT_ID, needs_event(["guardian"], "XK")["data"], packaged_catalogue())
    assert (found.service_type, found.provider_agency, found.age_group) == (
        "guardian",
        "xk-social-welfare-department",
        "child",
    )


def test_a_redelivered_event_proposes_nothing_twice(world: World) -> None:
    event = needs_event(["shelter", "medical", "guardian"])
    first = proposals.propose_from_needs(world.deps, event)
    assert len(first) == 3
    assert proposals.propose_from_needs(world.deps, event) == []
    assert proposals.propose_from_needs(world.deps, json.loads(json.dumps(event))) == []
    assert len(world.store.all(ReferralDocument)) == 3
    assert len(world.store.events("referral.referral.proposed.v1")) == 3
    # Another needs assessment (another event) proposes again.
    assert (
        len(
            proposals.propose_from_needs(
                world.deps, needs_event(["medical"], event_id="0e1d2c3b-4a59-4687-9a6b-5c4d3e2f1a0b")
            )
        )
        == 1
    )


def test_proposals_are_never_sent_and_only_the_referring_side_sees_them(world: World) -> None:
    ids = proposals.propose_from_needs(world.deps, needs_event(["shelter", "guardian"]))
    for rid in ids:
        stored = world.store.raw(ReferralDocument, rid)
        assert stored["status"] == "proposed"
        assert (stored["owner_country"], stored["owner_agency"]) == ("AL", "social-services")
        assert not world.store.events("referral.referral.requested.v1")
        for who in ("al-shelter", "al-guardian", "xk-case-manager"):
            with pytest.raises(NotFound):
                referrals.get_referral(world.deps, user(who), rid)
    listed = referrals.list_referrals(world.deps, user("al-case-manager"), status="proposed")
    assert {item["id"] for item in listed["items"]} == set(ids)


def test_the_case_manager_confirms_a_guardian_proposal_to_the_municipal_authority(world: World) -> None:
    directory.register_provider(
        world.deps,
        user("al-coordinator"),
        {
            "agency_id": "al-cpu-durres",
            "name": "Child Protection Unit Durrës",
            "kind": "municipal",
            "service_types": ["guardian"],
            "municipalities": ["AL-DUR"],
            "accepts": {"children": True},
            "hours": {"weekly": [{"day": "mon", "from": "08:00", "to": "16:00"}]},
        },
    )
    (rid,) = proposals.propose_from_needs(world.deps, needs_event(["guardian"]))
    sent = referrals.request_referral(
        world.deps,
        user("al-case-manager"),
        rid,
        {"municipality": "AL-DUR", "case_fields": PERSON, **CHILD},
    )
    assert (sent["status"], sent["provider_agency"]) == ("requested", "al-cpu-durres")
    assert referrals.accept(world.deps, user("al-guardian"), rid)["status"] == "accepted"


def test_other_events_and_countries_without_rules_are_refused(world: World) -> None:
    with pytest.raises(ValueError, match="not a needs-identified"):
        proposals.propose_from_needs(
            world.deps, {**needs_event(["shelter"]), "type": "identification.case.closed.v1"}
        )
    event = needs_event(["shelter"])
    event["data"]["owner_country"] = "MK"
    with pytest.raises(ValueError, match="no referral rules"):
        proposals.propose_from_needs(world.deps, event)


def test_the_event_schema_still_carries_what_proposals_read() -> None:
    schema = json.loads(
        (thb_contracts.event_schemas() / "identification.needs.identified.v1.json").read_text()
    )
    assert {"case_id", "person_id", "owner_country", "needs", "urgent"} <= set(schema["required"])


def test_the_consumer_proposes_before_it_records_and_a_redelivery_proposes_nothing(world: World) -> None:
    recorded: list[str] = []

    def record(event: Any) -> bool:
        recorded.append(event["id"])
        return len(recorded) == 1

    apply = applying(proposals.propose_from_needs, record, lambda: world.deps)
    event = needs_event(["shelter"])
    assert apply(event) is True and apply(event) is False
    assert recorded == [EVENT_ID, EVENT_ID]
    stored = [d for d in world.store.all(ReferralDocument) if d.source_event_id == EVENT_ID]
    assert len(stored) == 1 and stored[0].status == "proposed"


RETURN_CASE = "5c1e9a7b-3d2f-4e6a-8b0c-9d1e2f3a4b5c"


def reception_event(services: list[str], side: str = "origin", event_id: str = EVENT_ID) -> dict[str, Any]:
    data = {
        "return_case_id": RETURN_CASE,
        "owner_country": "ME" if side == "origin" else "XK",
        "owner_agency": "coordinator-office" if side == "origin" else "social-services",
        "side": side,
        "origin_country": "ME",
        "host_country": "XK" if side == "origin" else None,
        "exchange_case_id": None,
        "treated_as_child": True,
        "status": "received",
        "reception_services": services,
    }
    validate_data("return.reception.recorded.v1", data)  # return's real contract: ids and codes only
    return {"id": event_id, "type": "return.reception.recorded.v1", "data": data}


def test_a_returned_childs_reception_proposes_each_service_to_the_origin_countrys_case_managers(
    world: Any,
) -> None:
    ids = proposals.propose_for_reception(world.deps, reception_event(["child_shelter", "psycho_social"]))
    assert len(ids) == 2
    listed = referrals.list_referrals(world.deps, user("me-case-manager"), return_case_id=RETURN_CASE)
    assert {item["id"] for item in listed["items"]} == set(ids)
    by_type = {item["service_type"]: item for item in listed["items"]}
    assert set(by_type) == {"child_shelter", "psycho_social"}
    shelter = by_type["child_shelter"]
    assert (shelter["status"], shelter["owner_country"], shelter["age_group"]) == ("proposed", "ME", "child")
    assert shelter["return_case_id"] == RETURN_CASE and shelter["case_id"] is None
    (proposed, _) = [e for e in world.store.events("referral.referral.proposed.v1")]
    assert proposed["data"]["return_case_id"] == RETURN_CASE
    # Another country's case managers, and other return cases' listings, do not see them.
    assert not referrals.list_referrals(world.deps, user("xk-case-manager"), return_case_id=RETURN_CASE)[
        "items"
    ]
    other = referrals.list_referrals(world.deps, user("me-case-manager"), return_case_id=str(uuid.uuid4()))
    assert not other["items"]
    # A redelivery proposes nothing twice.
    assert (
        proposals.propose_for_reception(world.deps, reception_event(["child_shelter", "psycho_social"])) == []
    )


def test_the_host_sides_reception_proposes_nothing_and_an_unknown_service_is_refused(world: Any) -> None:
    assert proposals.propose_for_reception(world.deps, reception_event([], side="host")) == []
    assert proposals.propose_for_reception(world.deps, reception_event([])) == []
    with pytest.raises(ValueError, match="reception services referral does not know"):
        proposals.propose_for_reception(world.deps, reception_event(["teleportation"]))
    with pytest.raises(ValueError, match="not a reception-recorded"):
        proposals.propose_for_reception(world.deps, needs_event(["shelter"]))
    assert not world.store.all(ReferralDocument)
