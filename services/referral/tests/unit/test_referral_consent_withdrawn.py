"""Identification's `identification.person.consent_withdrawn.v1` reaching referral: the consumer ends every active
referral of that person (or of one of her cases) in the owner country, cancelled before acceptance and revoked
after it, with `consent_withdrawn` and the withdrawal on the timeline; other people's and other countries'
referrals stay; a redelivery changes nothing; and nothing new is proposed or sent for her there (409
`consent_withdrawn`)."""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

import pytest
from pymongo import MongoClient

from plumbing.events import validate_data
from plumbing.inbox import Inbox, applying
from referral.adapters.documents import ConsentWithdrawalDocument, ProviderDocument, ReferralDocument
from referral.domain.errors import InvalidTransition
from referral.entrypoints import consumer
from referral.service_layer import proposals, referrals, withdrawals
from services.referral.tests.unit.conftest import (
    ADULT,
    CASE_ID,
    PERSON,
    PERSON_ID,
    propose,
    register,
    send,
    shelter_body,
)
from services.referral.tests.unit.fakes import World, user
from services.referral.tests.unit.test_referral_proposals import needs_event

WITHDRAWAL_ID = "6b2d8e4f-1a3c-4d5e-9f70-8a1b2c3d4e5f"
SECOND_CASE = "7c1e9a2b-3d4f-4a6b-8c9d-0e1f2a3b4c5d"  # another case of hers
OTHER_PERSON = "0d9e8f7a-6b5c-4d3e-8f2a-1b0c9d8e7f6a"
OTHER_CASE = "1a2b3c4d-5e6f-4a7b-8c9d-0e1f2a3b4c5d"


def withdrawal_event(
    country: str = "AL", person_id: str = PERSON_ID, case_ids: tuple[str, ...] = (CASE_ID, SECOND_CASE)
) -> dict[str, Any]:
    data = {
        "person_id": person_id,
        "withdrawal_id": WITHDRAWAL_ID,
        "owner_country": country,
        "owner_agency": "social-services",
        "case_ids": list(case_ids),
        "expressed": "in_writing",
        "effective_on": "2026-06-01",
    }
    validate_data(withdrawals.CONSENT_WITHDRAWN_EVENT, data)  # the real contract: ids and codes only
    return {
        "id": "e0c1d2e3-f4a5-4b6c-8d7e-9f0a1b2c3d4e",
        "type": withdrawals.CONSENT_WITHDRAWN_EVENT,
        "data": data,
    }


def withdrawn(world: World, event: Mapping[str, Any] | None = None) -> list[str]:
    return referrals.end_on_consent_withdrawn(world.deps, event or withdrawal_event())


def stored(world: World, referral_id: str) -> dict[str, Any]:
    return world.store.raw(ReferralDocument, referral_id)


def free(world: World, provider_id: str) -> int:
    return int(world.store.raw(ProviderDocument, provider_id)["capacity"]["women"]["free"])


def refused(call: Any, *args: Any) -> str:
    with pytest.raises(InvalidTransition) as error:
        call(*args)
    return error.value.code


@pytest.fixture
def xk_shelter(world: World) -> dict[str, Any]:
    return register(world, shelter_body(municipalities=["XK-PRI"]), "xk-coordinator")


def test_her_referrals_end_cancelled_or_revoked_naming_the_withdrawal(
    world: World, shelter: dict[str, Any]
) -> None:
    waiting = send(world, shelter["id"])
    accepted = send(world, shelter["id"])
    referrals.accept(world.deps, user("al-shelter"), accepted["id"])
    assert free(world, shelter["id"]) == 2
    by_case = referrals.create_referral(world.deps, user("al-case-manager"), {"case_id": SECOND_CASE})
    (from_needs,) = proposals.propose_from_needs(world.deps, needs_event(["medical"]))

    ended = withdrawn(world)

    assert set(ended) == {waiting["id"], accepted["id"], by_case["id"], from_needs}
    assert {rid: stored(world, rid)["status"] for rid in ended} == {
        waiting["id"]: "cancelled",
        accepted["id"]: "revoked",
        by_case["id"]: "cancelled",
        from_needs: "cancelled",
    }
    for rid in ended:
        doc = stored(world, rid)
        assert doc["reason"] == "consent_withdrawn"
        last = doc["timeline"][-1]
        assert last["action"] in ("cancel", "revoke") and last["reason"] == "consent_withdrawn"
        assert last["withdrawal_id"] == WITHDRAWAL_ID
        assert last["by"] == "system:referral-consumer"
        # The referral's own view (the referring side's) shows the withdrawal on its timeline.
        view = referrals.get_referral(world.deps, user("al-case-manager"), rid)
        assert view["timeline"][-1]["withdrawal_id"] == WITHDRAWAL_ID
    # The same events as a cancel or a revoke by the referrer, and the place is free again.
    revoked = world.store.events("referral.referral.revoked.v1")
    assert [(e["subject"], e["data"]["reason"]) for e in revoked] == [(accepted["id"], "consent_withdrawn")]
    cancelled = {
        e["subject"]: e["data"]["reason"] for e in world.store.events("referral.referral.cancelled.v1")
    }
    assert cancelled == {rid: "consent_withdrawn" for rid in ended if rid != accepted["id"]}
    assert free(world, shelter["id"]) == 3
    # A proposal that ended cannot be confirmed any more.
    assert (
        refused(
            referrals.request_referral,
            world.deps,
            user("al-case-manager"),
            from_needs,
            {"provider_id": shelter["id"], "service_type": "shelter", **ADULT},
        )
        == "request_not_allowed_when_cancelled"
    )


def test_another_persons_and_another_countrys_referrals_stay(
    world: World, shelter: dict[str, Any], xk_shelter: dict[str, Any]
) -> None:
    hers = send(world, shelter["id"])
    someone_else = referrals.request_referral(
        world.deps,
        user("al-case-manager"),
        propose(world, service_type="shelter", person_id=OTHER_PERSON, case_id=OTHER_CASE)["id"],
        {"provider_id": shelter["id"], "municipality": "AL-TIR", "case_fields": PERSON, **ADULT},
    )
    in_kosovo = send(world, xk_shelter["id"], "xk-case-manager", municipality="XK-PRI")
    assert stored(world, in_kosovo["id"])["person_id"] == PERSON_ID  # the same ids, another country's records

    assert withdrawn(world) == [hers["id"]]

    assert stored(world, someone_else["id"])["status"] == "requested"
    assert stored(world, in_kosovo["id"])["status"] == "requested"
    # Kosovo still refers her: the withdrawal was recorded in Albania.
    assert propose(world, "xk-case-manager", service_type="shelter")["status"] == "proposed"


def test_a_redelivery_changes_nothing(world: World, shelter: dict[str, Any]) -> None:
    accepted = send(world, shelter["id"])
    referrals.accept(world.deps, user("al-shelter"), accepted["id"])
    recorded: list[str] = []

    def record(event: Mapping[str, Any]) -> bool:
        recorded.append(event["id"])
        return len(recorded) == 1

    apply = applying(referrals.end_on_consent_withdrawn, record, lambda: world.deps)
    event = withdrawal_event()
    assert apply(event) is True
    before = copy.deepcopy(
        (
            world.store.snapshot(ReferralDocument),
            world.store.snapshot(ProviderDocument),
            world.store.snapshot(ConsentWithdrawalDocument),
        )
    )
    assert apply(copy.deepcopy(event)) is False
    assert withdrawn(world, event) == []
    after = (
        world.store.snapshot(ReferralDocument),
        world.store.snapshot(ProviderDocument),
        world.store.snapshot(ConsentWithdrawalDocument),
    )
    assert after == before
    assert len(world.store.all(ConsentWithdrawalDocument)) == 1
    assert len(world.store.events("referral.referral.revoked.v1")) == 1
    assert free(world, shelter["id"]) == 3


def test_nothing_new_is_proposed_or_sent_for_her_afterwards(world: World, shelter: dict[str, Any]) -> None:
    withdrawn(world)
    case_manager = user("al-case-manager")
    # Neither by her person nor by any case of hers, from the API or from identification's needs.
    assert refused(propose, world) == "consent_withdrawn"
    assert refused(referrals.create_referral, world.deps, case_manager, {"person_id": PERSON_ID}) == (
        "consent_withdrawn"
    )
    assert refused(referrals.create_referral, world.deps, case_manager, {"case_id": SECOND_CASE}) == (
        "consent_withdrawn"
    )
    assert proposals.propose_from_needs(world.deps, needs_event(["shelter", "medical"])) == []
    assert world.store.all(ReferralDocument) == []
    # Someone else is referred as before.
    other = referrals.create_referral(
        world.deps, case_manager, {"person_id": OTHER_PERSON, "service_type": "shelter"}
    )
    assert other["status"] == "proposed"


def test_a_proposal_left_by_a_crash_half_way_is_refused_and_ended_by_the_redelivery(
    world: World, shelter: dict[str, Any]
) -> None:
    proposal = propose(world, service_type="shelter")
    # The consumer kept the withdrawal and stopped before ending her referrals.
    assert withdrawals.record(world.deps, withdrawal_event()["data"]) is True
    request = {"provider_id": shelter["id"], "municipality": "AL-TIR", "case_fields": PERSON, **ADULT}
    code = refused(referrals.request_referral, world.deps, user("al-case-manager"), proposal["id"], request)
    assert code == "consent_withdrawn"
    assert stored(world, proposal["id"])["status"] == "proposed"
    assert not stored(world, proposal["id"]).get("sealed_fields")  # nothing copied
    assert withdrawn(world) == [proposal["id"]]
    assert stored(world, proposal["id"])["status"] == "cancelled"


class CaseOfHers:
    """Identification as the referrer reads it: a case opened after the withdrawal, whose person is she."""

    def case_and_person(self, case_id: str) -> Mapping[str, Mapping[str, Any]]:
        return {"case": {"id": case_id, "person_id": PERSON_ID}, "person": {"id": PERSON_ID}}


def test_a_case_the_event_did_not_name_is_refused_by_its_person(
    world: World, shelter: dict[str, Any]
) -> None:
    withdrawn(world)
    newer_case = "2b3c4d5e-6f7a-4b8c-9d0e-1f2a3b4c5d6e"
    # Without identification the referral names the case only, and nothing links it to her yet...
    proposal = referrals.create_referral(world.deps, user("al-case-manager"), {"case_id": newer_case})
    world.deps.identification = CaseOfHers()
    # ... until the case's person is read from identification: on creation, or when it is sent.
    assert (
        refused(referrals.create_referral, world.deps, user("al-case-manager"), {"case_id": newer_case})
        == "consent_withdrawn"
    )
    request = {"provider_id": shelter["id"], "municipality": "AL-TIR", "service_type": "shelter", **ADULT}
    code = refused(referrals.request_referral, world.deps, user("al-case-manager"), proposal["id"], request)
    assert code == "consent_withdrawn"
    assert stored(world, proposal["id"])["status"] == "proposed"


def test_the_consumer_applies_the_event(
    world: World, shelter: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    waiting = send(world, shelter["id"])
    monkeypatch.setattr(consumer, "_deps", lambda: world.deps)
    monkeypatch.setattr(Inbox, "record_once", lambda self, event, extra=None: True)
    database = MongoClient("mongodb://localhost:1", connect=False)["thb_referral_unit"]  # never reached
    handle = consumer.handlers(database)[withdrawals.CONSENT_WITHDRAWN_EVENT]
    assert handle(withdrawal_event()) is True
    assert stored(world, waiting["id"])["status"] == "cancelled"
