"""Matching: hard requirements filter, preferences rank, and every suggestion says why."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from referral.domain.directory import Accepts, CapacityGroup, OpeningHours, Provider, ProviderKind
from referral.domain.errors import DomainError
from referral.domain.matching import Need, suggest
from referral.service_layer import matching
from services.referral.tests.unit.conftest import child_shelter_body, register, shelter_body
from services.referral.tests.unit.fakes import World, packaged_catalogue, user

TIRANA = ZoneInfo("Europe/Tirane")
MONDAY_MORNING = datetime(2026, 6, 1, 7, 0, tzinfo=UTC)  # 09:00 in Tirana
MONDAY_NIGHT = datetime(2026, 6, 1, 21, 0, tzinfo=UTC)
SHELTER = packaged_catalogue().service_types["shelter"]
OFFICE_HOURS = OpeningHours.from_record({"weekly": [{"day": "mon", "from": "08:00", "to": "16:00"}]})


def provider(pid: str, **changes: Any) -> Provider:
    values: dict[str, Any] = {
        "id": pid,
        "country": "AL",
        "agency_id": f"agency-{pid}",
        "name": f"Provider {pid}",
        "kind": ProviderKind.NGO,
        "service_types": frozenset({"shelter"}),
        "languages": frozenset({"sqi"}),
        "municipalities": frozenset({"AL-TIR"}),
        "accepts": Accepts(children=False, adults=True, families=False),
        "hours": OpeningHours(always=True),
        "capacity": {"women": CapacityGroup(3, 3), "men": CapacityGroup(2, 2)},
    }
    values.update(changes)
    return Provider(**values)


WOMAN_IN_TIRANA = Need("shelter", "adult", "female", ("sqi", "rmy"), "AL-TIR")


def ids(found: list[Any]) -> list[str]:
    return [s.provider_id for s in found]


def test_hard_requirements_exclude() -> None:
    candidates = [
        provider("ok"),
        provider("inactive", active=False),
        provider("other-service", service_types=frozenset({"medical"})),
        provider("men-only", accepts=Accepts(False, True, False, frozenset({"male"}))),
        provider("full", capacity={"women": CapacityGroup(3, 0, ("a", "b", "c"))}),
        provider("no-group", capacity={"men": CapacityGroup(2, 2)}),
    ]
    assert ids(suggest(candidates, WOMAN_IN_TIRANA, SHELTER, MONDAY_MORNING, TIRANA)) == ["ok"]


def test_ranking_and_reasons() -> None:
    near = provider("near", languages=frozenset({"sqi", "rmy"}))
    far = provider("far", municipalities=frozenset({"AL-SHK"}), languages=frozenset({"sqi", "rmy"}))
    office = provider("office", languages=frozenset({"sqi"}), hours=OFFICE_HOURS)
    found = suggest([far, office, near], WOMAN_IN_TIRANA, SHELTER, MONDAY_NIGHT, TIRANA)
    # near 6+40+30+20, office 6+40+15 (closed at night), far 6+30+20.
    assert [(s.provider_id, s.score) for s in found] == [("near", 96), ("office", 61), ("far", 56)]
    best = found[0]
    assert [r["code"] for r in best.reasons] == [
        "free_places",
        "serves_municipality",
        "speaks_languages",
        "open_24_7",
    ]
    assert best.capacity_group == "women" and best.free_places == 3
    office_reasons = {r["code"] for r in next(s for s in found if s.provider_id == "office").reasons}
    assert {"closed_now", "speaks_some_languages"} <= office_reasons
    far_reasons = {r["code"] for r in next(s for s in found if s.provider_id == "far").reasons}
    assert "does_not_serve_municipality" in far_reasons


def test_open_now_counts_in_the_countrys_time() -> None:
    office = provider("office", hours=OFFICE_HOURS)
    morning = suggest([office], WOMAN_IN_TIRANA, SHELTER, MONDAY_MORNING, TIRANA)[0]
    night = suggest([office], WOMAN_IN_TIRANA, SHELTER, MONDAY_NIGHT, TIRANA)[0]
    assert morning.score - night.score == 20
    assert "open_now" in {r["code"] for r in morning.reasons}


def test_more_free_places_rank_higher_up_to_a_cap() -> None:
    few = provider("few", capacity={"women": CapacityGroup(1, 1)})
    many = provider("many", capacity={"women": CapacityGroup(40, 40)})
    found = suggest([few, many], WOMAN_IN_TIRANA, SHELTER, MONDAY_MORNING, TIRANA)
    assert ids(found) == ["many", "few"]
    assert found[0].score - found[1].score == 8  # +10 cap vs +2


def test_service_layer_suggests_from_the_callers_country_only(world: World) -> None:
    register(world, shelter_body())
    register(world, child_shelter_body())
    register(world, shelter_body(municipalities=["XK-PRI"]), "xk-coordinator")
    found = matching.suggest_providers(
        world.deps,
        user("al-case-manager"),
        {"service_type": "child_shelter", "age_group": "child", "sex": "male"},
    )
    assert [(s["agency_id"], s["capacity_group"]) for s in found] == [("shelter-qendra-e-sigurt", "boys")]
    assert "specialised_for_children" in {r["code"] for r in found[0]["reasons"]}
    assert (
        matching.suggest_providers(
            world.deps, user("xk-case-manager"), {"service_type": "child_shelter", "age_group": "child"}
        )
        == []
    )


def test_service_layer_checks_the_need(world: World) -> None:
    with pytest.raises(DomainError) as error:
        matching.suggest_providers(
            world.deps,
            user("al-case-manager"),
            {"service_type": "child_shelter", "age_group": "adult", "municipality": "ME-PG"},
        )
    assert error.value.codes == {
        ("service_type_not_for_age_group", "/service_type"),
        ("unknown_municipality", "/municipality"),
    }
