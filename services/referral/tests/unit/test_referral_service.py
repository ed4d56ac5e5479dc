"""Referrals through the service layer, on fakes: the whole lifecycle for an adult and for a child, what each
side may do, what each caller sees, consent withdrawal, and that case data is minimised, sealed and logged."""

from __future__ import annotations

import json
from typing import Any

import pytest

from plumbing.errors import NotFound
from referral.adapters.documents import ProviderDocument, ReferralDocument
from referral.domain.errors import DomainError, InvalidTransition, NotPermitted
from referral.domain.events import PAYLOAD_FIELDS
from referral.service_layer import directory, referrals
from services.referral.tests.unit.conftest import ADULT, CASE_ID, CHILD, PERSON, PERSON_ID, propose, send
from services.referral.tests.unit.fakes import World, packaged_catalogue, user


def free(world: World, provider_id: str, group: str) -> int:
    return int(world.store.raw(ProviderDocument, provider_id)["capacity"][group]["free"])


def event_types(world: World) -> list[str]:
    # Stable sort: events of one aggregate stay in the order they were written.
    return [e["type"] for e in sorted(world.store.events(), key=lambda e: e["time"])]


# ---------------------------------------------------------------------------------------------- lifecycle


def test_adult_lifecycle_from_request_to_completion(world: World, shelter: dict[str, Any]) -> None:
    sent = send(world, shelter["id"])
    assert sent["status"] == "requested"
    assert sent["answer_due_at"] == "2026-06-01T13:30:00.000Z"  # the shelter profile: 4 hours
    assert sent["informed_agencies"] == []  # an adult: no child protection unit
    shelter_user = user("al-shelter")
    assert referrals.accept(world.deps, shelter_user, sent["id"])["status"] == "accepted"
    assert free(world, shelter["id"], "women") == 2
    world.clock.advance(hours=2)
    assert referrals.start(world.deps, shelter_user, sent["id"])["status"] == "in_progress"
    world.clock.advance(days=20)
    done = referrals.complete(world.deps, shelter_user, sent["id"], {"reason": "service_delivered"})
    assert done["status"] == "completed"
    assert free(world, shelter["id"], "women") == 3  # ending frees the place
    view = referrals.get_referral(world.deps, user("al-case-manager"), sent["id"])
    assert [(e["action"], e.get("from"), e.get("to"), e["agency"]) for e in view["timeline"]] == [
        ("propose", None, "proposed", "social-services"),
        ("request", "proposed", "requested", "social-services"),
        ("accept", "requested", "accepted", "shelter-ura-e-re"),
        ("start", "accepted", "in_progress", "shelter-ura-e-re"),
        ("complete", "in_progress", "completed", "shelter-ura-e-re"),
    ]
    assert (
        view["timeline"][-1]["by"] == "sub-al-shelter"
        and view["timeline"][-1]["reason"] == "service_delivered"
    )
    referral_events = [e for e in event_types(world) if e.startswith("referral.referral.")]
    assert referral_events == [
        "referral.referral.proposed.v1",
        "referral.referral.requested.v1",
        "referral.referral.accepted.v1",
        "referral.referral.started.v1",
        "referral.referral.completed.v1",
    ]
    changes = [e["data"].get("change") for e in world.store.events("referral.provider.capacity_changed.v1")]
    assert changes == [None, -1, 1]  # registered with its total, one place taken, then freed


def test_child_referral_informs_the_municipal_child_protection_unit(
    world: World, child_shelter: dict[str, Any]
) -> None:
    sent = send(world, child_shelter["id"], service_type="child_shelter", subject=CHILD)
    assert sent["informed_agencies"] == ["child-protection"]
    assert sent["legal_basis"] == "child-protection-duty" and not sent["consent_given"]
    assert [e["action"] for e in sent["timeline"]][-1] == "child_protection_informed"
    # The unit reads the referral as codes only: no case, no person, no case data.
    unit = user("al-child-protection")
    seen = referrals.get_referral(world.deps, unit, sent["id"])
    assert seen["informed"] is True and "person_id" not in seen and "timeline" not in seen
    with pytest.raises(NotPermitted):
        referrals.read_fields(world.deps, unit, sent["id"])
    accepted = referrals.accept(world.deps, user("al-other-shelter"), sent["id"])
    assert accepted["capacity_group"] == "girls"
    assert free(world, child_shelter["id"], "girls") == 1 and free(world, child_shelter["id"], "boys") == 2


def test_a_child_in_a_municipality_without_a_known_unit_informs_the_fallback(
    world: World, child_shelter: dict[str, Any]
) -> None:
    sent = send(world, child_shelter["id"], service_type="child_shelter", subject=CHILD, municipality=None)
    assert sent["informed_agencies"] == ["al-state-agency-child-rights"]


def test_decline_needs_a_coded_reason(world: World, shelter: dict[str, Any]) -> None:
    sent = send(world, shelter["id"])
    with pytest.raises(DomainError) as error:
        referrals.decline(world.deps, user("al-shelter"), sent["id"], {"reason": "busy"})
    assert error.value.codes == {("unknown_reason", "/reason")}
    declined = referrals.decline(world.deps, user("al-shelter"), sent["id"], {"reason": "no_capacity"})
    assert declined["status"] == "declined" and declined["reason"] == "no_capacity"
    assert free(world, shelter["id"], "women") == 3
    with pytest.raises(InvalidTransition) as late:
        referrals.accept(world.deps, user("al-shelter"), sent["id"])
    assert late.value.code == "accept_not_allowed_when_declined"


def test_revoke_after_acceptance_frees_the_place(world: World, shelter: dict[str, Any]) -> None:
    sent = send(world, shelter["id"])
    referrals.accept(world.deps, user("al-shelter"), sent["id"])
    with pytest.raises(InvalidTransition) as error:
        referrals.cancel(world.deps, user("al-case-manager"), sent["id"], {"reason": "person_declined"})
    assert error.value.code == "cancel_not_allowed_when_accepted"
    revoked = referrals.revoke(world.deps, user("al-case-manager"), sent["id"], {"reason": "safety_concern"})
    assert revoked["status"] == "revoked"
    assert free(world, shelter["id"], "women") == 3


def test_each_side_does_only_its_own_actions(world: World, shelter: dict[str, Any]) -> None:
    sent = send(world, shelter["id"])
    with pytest.raises(NotPermitted) as error:
        referrals.accept(world.deps, user("al-case-manager"), sent["id"])
    assert error.value.code == "not_the_provider"
    with pytest.raises(NotPermitted) as other:
        referrals.cancel(world.deps, user("al-shelter"), sent["id"], {"reason": "other"})
    assert other.value.code == "not_the_referrer"
    shown = referrals.get_referral(world.deps, user("al-shelter"), sent["id"])
    assert shown["allowed_actions"] == ["accept", "decline"]
    assert referrals.get_referral(world.deps, user("al-case-manager"), sent["id"])["allowed_actions"] == [
        "cancel"
    ]


def test_no_request_without_consent_or_legal_basis(world: World, shelter: dict[str, Any]) -> None:
    created = propose(world, service_type="shelter")
    body = {"provider_id": shelter["id"], "case_fields": PERSON, "age_group": "adult", "sex": "female"}
    with pytest.raises(DomainError) as error:
        referrals.request_referral(world.deps, user("al-case-manager"), created["id"], body)
    assert error.value.codes == {("consent_required", "/consent")}
    assert world.store.raw(ReferralDocument, created["id"])["status"] == "proposed"  # nothing stored


def test_request_reports_every_problem_at_once(world: World, shelter: dict[str, Any]) -> None:
    created = propose(world, service_type="child_shelter")
    body = {
        "provider_id": shelter["id"],
        "municipality": "XK-PRI",
        "age_group": "child",
        "sex": "male",
        "field_sets": ["identity", "guardian_contact", "documents"],
    }
    with pytest.raises(DomainError) as error:
        referrals.request_referral(world.deps, user("al-case-manager"), created["id"], body)
    assert error.value.codes == {
        ("unknown_municipality", "/municipality"),
        ("legal_basis_required", "/legal_basis"),
        ("provider_does_not_offer_service", "/provider_id"),
        ("provider_does_not_admit", "/provider_id"),
        ("provider_has_no_place_for_group", "/provider_id"),
        ("field_set_not_allowed", "/field_sets/2"),
    }


def test_a_service_type_for_adults_is_not_requested_for_a_child(
    world: World, shelter: dict[str, Any]
) -> None:
    created = propose(world, service_type="shelter")
    with pytest.raises(DomainError) as error:
        referrals.request_referral(
            world.deps, user("al-case-manager"), created["id"], {"provider_id": shelter["id"], **CHILD}
        )
    assert ("service_type_not_for_age_group", "/service_type") in error.value.codes


def test_consent_withdrawal_ends_every_active_referral_of_the_person(
    world: World, shelter: dict[str, Any]
) -> None:
    accepted = send(world, shelter["id"])
    referrals.accept(world.deps, user("al-shelter"), accepted["id"])
    waiting = send(world, shelter["id"])
    proposal = propose(world, service_type="medical")
    ended = referrals.withdraw_consent(world.deps, user("al-case-manager"), {"person_id": PERSON_ID})
    assert set(ended) == {accepted["id"], waiting["id"], proposal["id"]}
    statuses = {rid: world.store.raw(ReferralDocument, rid)["status"] for rid in ended}
    assert statuses == {accepted["id"]: "revoked", waiting["id"]: "cancelled", proposal["id"]: "cancelled"}
    assert {world.store.raw(ReferralDocument, rid)["reason"] for rid in ended} == {"consent_withdrawn"}
    assert free(world, shelter["id"], "women") == 3


# ---------------------------------------------------------------------------------------------- visibility


def test_a_provider_sees_only_referrals_addressed_to_its_agency_once_sent(
    world: World, shelter: dict[str, Any], child_shelter: dict[str, Any]
) -> None:
    to_shelter = send(world, shelter["id"])
    to_child_shelter = send(world, child_shelter["id"], service_type="child_shelter", subject=CHILD)
    listed = referrals.list_referrals(world.deps, user("al-shelter"))
    assert [item["id"] for item in listed["items"]] == [to_shelter["id"]]
    for who in ("al-other-shelter", "xk-shelter", "xk-case-manager", "me-coordinator", "al-analyst"):
        with pytest.raises(NotFound):
            referrals.get_referral(world.deps, user(who), to_shelter["id"])
    assert referrals.get_referral(world.deps, user("al-other-shelter"), to_child_shelter["id"])["status"]


def test_a_proposal_is_not_shown_to_the_provider_it_names(world: World, shelter: dict[str, Any]) -> None:
    created = propose(world, service_type="shelter")
    stored = world.store.load(ReferralDocument, world.store.raw(ReferralDocument, created["id"]))
    stored.provider_agency = "shelter-ura-e-re"  # as a guardianship proposal names its authority
    world.store.write_update(stored, expected_version=None, actor="test", clock=world.clock)
    with pytest.raises(NotFound):
        referrals.get_referral(world.deps, user("al-shelter"), created["id"])


def test_agency_referrers_see_their_agencys_referrals_only(world: World, shelter: dict[str, Any]) -> None:
    by_police = send(world, shelter["id"], who="al-police")
    by_ngo = send(world, shelter["id"], who="al-ngo-outreach")
    assert [r["id"] for r in referrals.list_referrals(world.deps, user("al-police"))["items"]] == [
        by_police["id"]
    ]
    with pytest.raises(NotFound):
        referrals.get_referral(world.deps, user("al-police"), by_ngo["id"])
    everything = referrals.list_referrals(world.deps, user("al-case-manager"))["items"]
    assert {r["id"] for r in everything} == {by_police["id"], by_ngo["id"]}


# ---------------------------------------------------------------------------------------- minimum data


def test_the_referral_carries_exactly_the_granted_fields_sealed_at_rest(
    world: World, shelter: dict[str, Any]
) -> None:
    sent = send(world, shelter["id"], field_sets=["identity"])
    assert sent["granted_fields"] == ["date_of_birth", "given_names", "nationalities", "sex", "surnames"]
    raw = json.dumps(world.store.raw(ReferralDocument, sent["id"]), default=str)
    for secret in ("Krasniqi", "Arta", "1999-04-02", "P1234567", "insulin"):
        assert secret not in raw
    read = referrals.read_fields(world.deps, user("al-shelter"), sent["id"])
    assert read["fields"] == {
        "given_names": ["Arta"],
        "surnames": ["Krasniqi"],
        "date_of_birth": "1999-04-02",
        "sex": "female",
        "nationalities": ["ME"],
    }
    # The entry names the referral and the identification case and person it is about: a country's auditors
    # find the read by the child's id.
    assert world.reads.entries == [
        ("AL", "sub-al-shelter", "referral-fields", (sent["id"], CASE_ID, PERSON_ID))
    ]


def test_a_provider_asking_for_fields_outside_the_grant_does_not_get_them(
    world: World, shelter: dict[str, Any]
) -> None:
    sent = send(world, shelter["id"], field_sets=["identity"])
    read = referrals.read_fields(
        world.deps, user("al-shelter"), sent["id"], ["surnames", "documents", "special_needs"]
    )
    assert read["fields"] == {"surnames": ["Krasniqi"]}


def test_the_sealed_copy_does_not_open_in_another_referral(world: World, shelter: dict[str, Any]) -> None:
    first, second = send(world, shelter["id"]), send(world, shelter["id"])
    token = world.store.raw(ReferralDocument, first["id"])["sealed_fields"]
    from plumbing.errors import DecryptionError

    with pytest.raises(DecryptionError):
        world.deps.sealer.open("AL", second["id"], token)


def test_events_carry_ids_and_codes_only(
    world: World, shelter: dict[str, Any], child_shelter: dict[str, Any]
) -> None:
    sent = send(world, shelter["id"])
    referrals.accept(world.deps, user("al-shelter"), sent["id"])
    send(world, child_shelter["id"], service_type="child_shelter", subject=CHILD)
    personal = packaged_catalogue().personal_fields
    text = json.dumps(world.store.events())
    for value in ("Krasniqi", "Arta", "1999-04-02", "insulin"):
        assert value not in text
    for event in world.store.events():
        assert set(event["data"]) <= PAYLOAD_FIELDS[event["type"]]
        assert not set(event["data"]) & personal
    requested = world.store.events("referral.referral.requested.v1")
    assert {e["data"]["age_group"] for e in requested} == {"adult", "child"}


def test_directory_entry_of_another_country_cannot_be_the_provider(world: World) -> None:
    xk = directory.register_provider(
        world.deps,
        user("xk-coordinator"),
        {
            "agency_id": "shelter-xk",
            "name": "XK shelter",
            "kind": "ngo",
            "service_types": ["shelter"],
            "municipalities": ["XK-PRI"],
            "accepts": {"adults": True},
            "hours": {"always": True},
            "capacity": {"places": 2},
        },
    )
    created = propose(world, service_type="shelter")
    with pytest.raises(DomainError) as error:
        referrals.request_referral(
            world.deps, user("al-case-manager"), created["id"], {"provider_id": xk["id"], **ADULT}
        )
    assert ("unknown_provider", "/provider_id") in error.value.codes
