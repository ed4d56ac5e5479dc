"""Fixtures for the referral tests: a deployment of fakes (tests/unit/fakes.py), directory entries and helpers
that walk a referral through its lifecycle the way the HTTP handlers will."""

from __future__ import annotations

from typing import Any

import pytest

from referral.service_layer import directory, referrals
from services.referral.tests.unit.fakes import World, build_world, user

PERSON = {
    "given_names": ["Arta"],
    "surnames": ["Krasniqi"],
    "date_of_birth": "1999-04-02",
    "sex": "female",
    "nationalities": ["ME"],
    "languages": ["sqi"],
    "needs": ["shelter", "medical"],
    "urgent": True,
    "special_needs": "insulin",
    "documents": [{"type": "passport", "number": "P1234567"}],
    "aliases": ["A. K."],  # not in any field set: never copied
}
CASE_ID = "b6a1d2e3-4f50-4a6b-9c7d-8e9f0a1b2c3d"  # identification's ids (uuids)
PERSON_ID = "3f0c6a4e-9b1d-4c57-8f0e-2a6d9c1b7e55"
ADULT = {"age_group": "adult", "sex": "female", "consent": {"given": True}}
CHILD = {"age_group": "child", "sex": "female", "legal_basis": "child-protection-duty"}


def shelter_body(**changes: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "agency_id": "shelter-ura-e-re",
        "name": "Shelter Ura e Re",
        "kind": "ngo",
        "service_types": ["shelter", "emergency_accommodation"],
        "languages": ["sqi", "eng"],
        "municipalities": ["AL-TIR", "AL-DUR"],
        "accepts": {"children": False, "adults": True, "families": False, "sexes": ["female"]},
        "hours": {"always": True},
        "capacity": {"women": 3},
        "contacts": [{"name": "Duty officer", "role": "manager", "phone": "+355 4 000 000"}],
    }
    body.update(changes)
    return body


def child_shelter_body(**changes: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "agency_id": "shelter-qendra-e-sigurt",
        "name": "Qendra e Sigurt",
        "kind": "state",
        "service_types": ["child_shelter"],
        "languages": ["sqi"],
        "municipalities": ["AL-TIR"],
        "accepts": {"children": True, "adults": False, "families": False},
        "hours": {"always": True},
        "capacity": {"girls": 2, "boys": 2},
        "contacts": [{"name": "Director", "phone": "+355 4 111 111"}],
    }
    body.update(changes)
    return body


def register(world: World, body: dict[str, Any], who: str = "al-coordinator") -> dict[str, Any]:
    return directory.register_provider(world.deps, user(who), body)


def propose(world: World, who: str = "al-case-manager", **body: Any) -> dict[str, Any]:
    return referrals.create_referral(
        world.deps, user(who), {"case_id": CASE_ID, "person_id": PERSON_ID, **body}
    )


def send(
    world: World,
    provider_id: str,
    who: str = "al-case-manager",
    *,
    service_type: str = "shelter",
    subject: dict[str, Any] | None = None,
    **body: Any,
) -> dict[str, Any]:
    """A referral proposed and requested, to `provider_id`."""
    created = propose(world, who, service_type=service_type)
    request = {
        "provider_id": provider_id,
        "municipality": "AL-TIR",
        "case_fields": PERSON,
        **(subject or ADULT),
        **body,
    }
    return referrals.request_referral(world.deps, user(who), created["id"], request)


@pytest.fixture
def world() -> World:
    return build_world()


@pytest.fixture
def shelter(world: World) -> dict[str, Any]:
    return register(world, shelter_body())


@pytest.fixture
def child_shelter(world: World) -> dict[str, Any]:
    return register(world, child_shelter_body())
