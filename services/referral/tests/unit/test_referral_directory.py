"""The service directory: who registers providers, who reads which part, capacity kept by the provider itself,
and that a provider entry is checked against the catalogue before anything is stored."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from plumbing.errors import NotFound
from referral.adapters.documents import ProviderDocument
from referral.domain.directory import Accepts, OpeningHours, parse_provider
from referral.domain.errors import AlreadyExists, DomainError, NotPermitted
from referral.service_layer import directory
from services.referral.tests.unit.conftest import register, shelter_body
from services.referral.tests.unit.fakes import World, packaged_catalogue, user

TIRANA = ZoneInfo("Europe/Tirane")


# ------------------------------------------------------------------------------------------------- domain


def test_accepts_distinguishes_boys_girls_adults() -> None:
    girls_only = Accepts(children=True, adults=False, families=False, sexes=frozenset({"female"}))
    assert girls_only.admits("child", "female")
    assert not girls_only.admits("child", "male")
    assert not girls_only.admits("adult", "female")
    # Sex unknown: only a provider taking every sex can be sure to admit the person.
    assert not girls_only.admits("child", "unknown")
    assert Accepts(True, True, False).admits("child", None)


def test_opening_hours_are_local_time_of_the_country() -> None:
    hours = OpeningHours.from_record(
        {"always": False, "weekly": [{"day": "mon", "from": "08:00", "to": "16:00"}]}
    )
    # 06:30 UTC on a summer Monday is 08:30 in Tirana (UTC+2): open; 14:30 UTC is 16:30: closed.
    assert hours.open_at(datetime(2026, 6, 1, 6, 30, tzinfo=UTC), TIRANA)
    assert not hours.open_at(datetime(2026, 6, 1, 14, 30, tzinfo=UTC), TIRANA)
    assert not hours.open_at(datetime(2026, 6, 2, 6, 30, tzinfo=UTC), TIRANA)  # Tuesday
    assert OpeningHours(always=True).open_at(datetime(2026, 6, 7, 3, 0, tzinfo=UTC), TIRANA)


def test_a_provider_body_is_checked_against_the_catalogue_all_at_once() -> None:
    body = shelter_body(
        kind="charity",
        service_types=["shelter", "spa"],
        municipalities=["AL-TIR", "ME-PG"],
        languages=["albanian"],
        capacity={"women": -1, "pets": 2},
        hours={"weekly": [{"day": "mon", "from": "16:00", "to": "08:00"}]},
        accepts={"children": False, "adults": False},
    )
    with pytest.raises(DomainError) as error:
        parse_provider(body, packaged_catalogue(), "AL")
    assert error.value.codes == {
        ("unknown_code", "/kind"),
        ("unknown_service_type", "/service_types/1"),
        ("unknown_municipality", "/municipalities/1"),  # another country's municipality
        ("bad_format", "/languages/0"),
        ("places_out_of_range", "/capacity/women"),  # never negative
        ("unknown_capacity_group", "/capacity/pets"),
        ("closes_before_opening", "/hours/weekly/0"),
        ("accepts_nobody", "/accepts"),
    }


def test_places_only_for_a_service_type_that_takes_places() -> None:
    body = shelter_body(service_types=["legal_aid"], capacity={"places": 4})
    with pytest.raises(DomainError) as error:
        parse_provider(body, packaged_catalogue(), "AL")
    assert error.value.codes == {("capacity_without_service", "/capacity")}


# ------------------------------------------------------------------------------------------- service layer


def test_the_coordinators_office_registers_and_nobody_else(world: World) -> None:
    for who in ("al-case-manager", "al-shelter", "al-analyst"):
        with pytest.raises((NotPermitted, NotFound)):
            register(world, shelter_body(), who)
    view = register(world, shelter_body())
    assert view["capacity"] == {"women": {"total": 3, "free": 3}}
    stored = world.store.all(ProviderDocument)
    assert [(d.owner_country, d.owner_agency, d.agency_id) for d in stored] == [
        ("AL", "coordinator-office", "shelter-ura-e-re")
    ]
    assert [e["data"]["total"] for e in world.store.events("referral.provider.capacity_changed.v1")] == [3]


def test_an_agency_is_registered_once_per_country(world: World, shelter: dict[str, Any]) -> None:
    with pytest.raises(AlreadyExists) as error:
        register(world, shelter_body(name="Another name"))
    assert error.value.code == "agency_already_registered"
    # The same agency code in another country is another organisation.
    assert register(world, shelter_body(municipalities=["XK-PRI"]), "xk-coordinator")["country"] == "XK"


def test_public_part_for_referrers_private_part_for_office_and_provider(
    world: World, shelter: dict[str, Any]
) -> None:
    public = directory.get_provider(world.deps, user("al-case-manager"), shelter["id"])
    assert "contacts" not in public
    assert public["capacity"]["women"]["free"] == 3  # free places are what referrers need
    for who in ("al-coordinator", "al-shelter"):
        private = directory.get_provider(world.deps, user(who), shelter["id"])
        assert private["contacts"] == [{"name": "Duty officer", "role": "manager", "phone": "+355 4 000 000"}]
    other = directory.get_provider(world.deps, user("al-other-shelter"), shelter["id"])
    assert "contacts" not in other


def test_other_countries_and_roles_without_need_see_nothing(world: World, shelter: dict[str, Any]) -> None:
    for who in ("xk-case-manager", "me-coordinator", "xk-shelter", "al-analyst", "al-auditor"):
        with pytest.raises(NotFound):
            directory.get_provider(world.deps, user(who), shelter["id"])
        assert directory.list_providers(world.deps, user(who)) == []
    assert [p["id"] for p in directory.list_providers(world.deps, user("al-police"))] == [shelter["id"]]


def test_lists_filter_by_service_type_and_municipality(world: World, shelter: dict[str, Any]) -> None:
    caller = user("al-case-manager")
    assert len(directory.list_providers(world.deps, caller, service_type="shelter")) == 1
    assert directory.list_providers(world.deps, caller, service_type="legal_aid") == []
    assert directory.list_providers(world.deps, caller, municipality="AL-SHK") == []


def test_the_provider_keeps_its_own_capacity(world: World, shelter: dict[str, Any]) -> None:
    view = directory.set_capacity(world.deps, user("al-shelter"), shelter["id"], {"women": 5})
    assert view["capacity"]["women"] == {"total": 5, "free": 5}
    with pytest.raises(NotPermitted) as error:
        directory.set_capacity(world.deps, user("al-other-shelter"), shelter["id"], {"women": 9})
    assert error.value.code == "capacity_kept_by_provider"
    with pytest.raises(DomainError) as negative:
        directory.set_capacity(world.deps, user("al-shelter"), shelter["id"], {"women": -2})
    assert negative.value.codes == {("places_out_of_range", "/capacity/women")}
    assert (
        directory.get_provider(world.deps, user("al-shelter"), shelter["id"])["capacity"]["women"]["total"]
        == 5
    )


def test_the_office_changes_an_entry_and_other_countries_cannot(
    world: World, shelter: dict[str, Any]
) -> None:
    changed = directory.update_provider(
        world.deps, user("al-coordinator"), shelter["id"], shelter_body(languages=["sqi", "rmy"])
    )
    assert changed["languages"] == ["rmy", "sqi"]
    with pytest.raises(NotFound):
        directory.update_provider(world.deps, user("xk-coordinator"), shelter["id"], shelter_body())
