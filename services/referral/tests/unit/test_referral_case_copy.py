"""The case fields a referral carries when it names an identification case: read from identification on the
referrer's behalf (a fake of plumbing.identification_records here; tests/integration/test_referral_api.py runs
the real token exchange), typed in only where identification holds nothing; a correction in identification
marks the copy outdated once, and the referrer's refresh reads it again."""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

import pytest

from plumbing.errors import NotFound
from referral.domain.errors import DomainError, InvalidTransition, NotPermitted
from referral.service_layer import corrections, referrals
from services.referral.tests.unit.conftest import ADULT, CASE_ID, PERSON_ID, propose
from services.referral.tests.unit.fakes import World, user

CASE = {
    "id": CASE_ID,
    "person_id": PERSON_ID,
    "needs": ["shelter", "medical"],
    "interpreter_languages": ["eng"],
}
PERSON = {
    "id": PERSON_ID,
    "given_names": ["Arta"],
    "surnames": ["Krasniqi"],
    "aliases": ["A. K."],  # in no field set: never copied
    "date_of_birth": "1999-04-02",
    "sex": "female",
    "nationalities": ["ME"],
    "languages": [],  # empty: left out
    "documents": [{"type": "passport", "number": "P1234567"}],
}


class FakeIdentification:
    """Identification as the referrer may read it: her cases, and who asked."""

    def __init__(self) -> None:
        self.records = {CASE_ID: {"case": copy.deepcopy(CASE), "person": copy.deepcopy(PERSON)}}
        self.reads: list[str] = []

    def case_and_person(self, case_id: str) -> Mapping[str, Mapping[str, Any]]:
        self.reads.append(case_id)
        if case_id not in self.records:
            raise NotFound("case")
        return copy.deepcopy(self.records[case_id])


@pytest.fixture
def identification(world: World) -> FakeIdentification:
    fake = FakeIdentification()
    world.deps.identification = fake
    return fake


def request(world: World, provider_id: str, **body: Any) -> dict[str, Any]:
    created = propose(world, service_type="shelter")
    return referrals.request_referral(
        world.deps,
        user("al-case-manager"),
        created["id"],
        {"provider_id": provider_id, "municipality": "AL-TIR", **ADULT, **body},
    )


def fields(world: World, referral_id: str, who: str = "al-shelter") -> dict[str, Any]:
    return referrals.read_fields(world.deps, user(who), referral_id)


def corrected(world: World, correction_id: str, changed: list[str], person_id: str = PERSON_ID) -> list[str]:
    envelope = {
        "id": f"event-{correction_id}",
        "type": corrections.PERSON_CORRECTED,
        "data": {
            "person_id": person_id,
            "correction_id": correction_id,
            "owner_country": "AL",
            "owner_agency": "state-police",
            "reason": "spelling",
            "fields": changed,
            "age_group": "adult",
        },
    }
    return corrections.mark_outdated_copies(world.deps, envelope)


def test_the_granted_fields_identification_holds_come_from_it_and_only_those(
    world: World, shelter: dict[str, Any], identification: FakeIdentification
) -> None:
    sent = request(
        world,
        shelter["id"],
        field_sets=["identity", "placement_needs", "health_for_placement"],
        case_fields={"urgent": True, "special_needs": "insulin", "fit_to_travel": True},
    )
    assert identification.reads == [CASE_ID, CASE_ID]  # the proposal's check, then the copy
    read = fields(world, sent["id"])
    assert read["fields_source"] == "identification" and read["outdated_fields"] == []
    assert read["fields"] == {
        "given_names": ["Arta"],
        "surnames": ["Krasniqi"],
        "date_of_birth": "1999-04-02",
        "sex": "female",
        "nationalities": ["ME"],
        "needs": ["shelter", "medical"],
        "urgent": True,
        "special_needs": "insulin",
        "fit_to_travel": True,
    }  # no aliases, no documents (not granted), no empty languages


def test_a_field_identification_holds_cannot_be_typed_in_as_well(
    world: World, shelter: dict[str, Any], identification: FakeIdentification
) -> None:
    created = propose(world, service_type="shelter")
    with pytest.raises(DomainError) as error:
        referrals.request_referral(
            world.deps,
            user("al-case-manager"),
            created["id"],
            {
                "provider_id": shelter["id"],
                **ADULT,
                "case_fields": {"surnames": ["Someone else"], "urgent": True},
            },
        )
    assert error.value.codes == {("field_comes_from_identification", "/case_fields/surnames")}
    assert identification.reads == [CASE_ID]  # the proposal's check only: refused before the copy was read
    assert referrals.get_referral(world.deps, user("al-case-manager"), created["id"])["status"] == "proposed"


def test_a_proposal_names_only_a_case_its_referrer_may_read_and_takes_its_person(
    world: World, identification: FakeIdentification
) -> None:
    proposed = referrals.create_referral(world.deps, user("al-case-manager"), {"case_id": CASE_ID})
    assert proposed["person_id"] == PERSON_ID and identification.reads == [CASE_ID]
    with pytest.raises(DomainError) as mismatch:
        propose(world, person_id="4a0c6a4e-9b1d-4c57-8f0e-2a6d9c1b7e56")
    assert mismatch.value.codes == {("person_not_of_case", "/person_id")}
    identification.records.clear()  # identification answers 404 to her
    with pytest.raises(DomainError) as hidden:
        propose(world)
    assert hidden.value.codes == {("identification_case_not_visible", "/case_id")}


def test_a_case_the_referrer_may_no_longer_read_refuses_the_referral_and_stores_nothing(
    world: World, shelter: dict[str, Any], identification: FakeIdentification
) -> None:
    created = propose(world, service_type="shelter")
    identification.records.clear()  # since the proposal, identification answers 404 to her
    with pytest.raises(DomainError) as error:
        referrals.request_referral(
            world.deps, user("al-case-manager"), created["id"], {"provider_id": shelter["id"], **ADULT}
        )
    assert error.value.codes == {("identification_case_not_visible", "/case_fields")}
    view = referrals.get_referral(world.deps, user("al-case-manager"), created["id"])
    assert view["status"] == "proposed" and view["granted_fields"] == []


def test_without_identification_the_referrer_types_every_field_in(
    world: World, shelter: dict[str, Any]
) -> None:
    sent = request(world, shelter["id"], case_fields={"surnames": ["Krasniqi"]}, field_sets=["identity"])
    read = fields(world, sent["id"])
    assert read["fields_source"] == "typed" and read["fields"] == {"surnames": ["Krasniqi"]}
    with pytest.raises(InvalidTransition) as error:
        referrals.refresh_fields(world.deps, user("al-case-manager"), sent["id"])
    assert error.value.code == "refresh_needs_identification_case"


def test_a_correction_marks_the_granted_fields_it_changed_once_and_a_refresh_reads_them_again(
    world: World, shelter: dict[str, Any], identification: FakeIdentification
) -> None:
    sent = request(world, shelter["id"], field_sets=["identity"], case_fields={"urgent": True})
    # A correction of members the referral was not granted changes nothing visible.
    assert corrected(world, "c0000000-0000-4000-8000-000000000001", ["aliases", "residence_country"]) == []
    assert corrected(world, "c0000000-0000-4000-8000-000000000002", ["surnames", "documents"]) == [sent["id"]]
    assert (
        corrected(world, "c0000000-0000-4000-8000-000000000002", ["surnames", "documents"]) == []
    )  # redelivered
    provider_read = fields(world, sent["id"])
    assert provider_read["outdated_fields"] == ["surnames"]
    assert provider_read["fields"]["surnames"] == [
        "Krasniqi"
    ]  # the copy stays until the referrer refreshes it
    view = referrals.get_referral(world.deps, user("al-case-manager"), sent["id"])
    assert view["outdated_fields"] == ["surnames"]
    assert [e["action"] for e in view["timeline"]].count("case_fields_outdated") == 1

    identification.records[CASE_ID]["person"]["surnames"] = ["Krasniqi-Berisha"]
    with pytest.raises(NotPermitted):  # the provider may not refresh: it reads the referrer's copy
        referrals.refresh_fields(world.deps, user("al-shelter"), sent["id"])
    refreshed = referrals.refresh_fields(world.deps, user("al-case-manager"), sent["id"])
    assert (
        refreshed["outdated_fields"] == [] and refreshed["timeline"][-1]["action"] == "case_fields_refreshed"
    )
    after = fields(world, sent["id"])
    assert after["fields"]["surnames"] == ["Krasniqi-Berisha"] and after["outdated_fields"] == []
    # identity does not include `urgent`; the typed-in value was never granted, so it is still absent
    assert "urgent" not in after["fields"]


def test_a_correction_leaves_proposals_and_ended_referrals_alone(
    world: World, shelter: dict[str, Any], identification: FakeIdentification
) -> None:
    proposal = propose(world, service_type="shelter")
    sent = request(world, shelter["id"], field_sets=["identity"])
    referrals.decline(world.deps, user("al-shelter"), sent["id"], {"reason": "no_capacity"})
    assert corrected(world, "c0000000-0000-4000-8000-000000000003", ["surnames"]) == []
    assert (
        referrals.get_referral(world.deps, user("al-case-manager"), proposal["id"])["outdated_fields"] == []
    )
