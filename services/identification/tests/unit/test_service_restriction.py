"""A restriction of a person's processing on fakes: the data protection officer sets it with the purposes still
allowed, every service learns the whole state from one event, identification holds it where its scoped repository
enforces it (plumbing.restrictions), and lifting it announces and holds that too."""

from __future__ import annotations

from typing import Any

import pytest

from identification.domain.errors import DomainError
from identification.service_layer import cases, restriction
from identification.service_layer.deps import Deps
from plumbing.auth import Caller
from plumbing.errors import Conflict, NotFound
from plumbing.restrictions import EVENT, RestrictionDocument
from services.identification.tests.unit.fakes import FakeStore, user

REASON = "accuracy_contested"


def dpo(country: str = "AL") -> Caller:
    base = user("al-coordinator" if country == "AL" else "xk-coordinator")
    return Caller(
        **{
            **base.__dict__,
            "sub": f"sub-{country.lower()}-dpo",
            "roles": frozenset({"data-protection-officer"}),
        }
    )


@pytest.fixture
def person(deps: Deps) -> dict[str, Any]:
    from identification.service_layer import persons

    view, _ = persons.register_person(
        deps,
        user("al-case-manager"),
        {"given_names": ["Drita"], "surnames": ["Berisha"], "date_of_birth": "1990"},
    )
    return view


def held(store: FakeStore, person_id: str) -> dict[str, Any]:
    return dict(store.raw(RestrictionDocument, person_id))


def test_a_restriction_is_on_the_person_in_one_event_and_held_for_the_scope(
    deps: Deps, store: FakeStore, person: dict[str, Any]
) -> None:
    second = cases.open_case(deps, user("al-case-manager"), person["id"])
    view = restriction.restrict(
        deps, dpo(), person["id"], {"purposes": ["case-management", "audit"], "reason": REASON}
    )
    assert view["restriction"]["purposes"] == ["case-management"]  # audit always reads: not listed
    assert (view["restriction"]["reason"], view["restriction"]["by"]) == (REASON, "sub-al-dpo")
    [event] = store.events(EVENT)
    assert event["data"] == {
        "person_id": person["id"],
        "owner_country": "AL",
        "owner_agency": "social-services",
        "case_ids": sorted([person["case_id"], second.id]),
        "restricted": True,
        "purposes": ["case-management"],
        "changed_at": "2026-06-01T09:30:00.000Z",
    }
    state = held(store, person["id"])
    assert (state["restricted"], state["purposes"], state["owner_country"]) == (
        True,
        ["case-management"],
        "AL",
    )
    assert sorted(state["case_ids"]) == sorted([person["case_id"], second.id])


def test_lifting_announces_and_holds_it_and_a_second_lift_is_refused(
    deps: Deps, store: FakeStore, clock: Any, person: dict[str, Any]
) -> None:
    restriction.restrict(deps, dpo(), person["id"], {"purposes": [], "reason": REASON})
    clock.advance(minutes=1)
    view = restriction.lift(deps, dpo(), person["id"])
    assert "restriction" not in view
    assert [e["data"]["restricted"] for e in store.events(EVENT)] == [True, False]
    assert held(store, person["id"])["restricted"] is False
    with pytest.raises(Conflict):
        restriction.lift(deps, dpo(), person["id"])


def test_an_unknown_purpose_is_refused_before_anything_is_written(
    deps: Deps, store: FakeStore, person: dict[str, Any]
) -> None:
    with pytest.raises(DomainError) as refused:
        restriction.restrict(deps, dpo(), person["id"], {"purposes": ["marketing"], "reason": REASON})
    assert [(d.code, d.pointer) for d in refused.value.details] == [("unknown_purpose", "/purposes/0")]
    assert store.events(EVENT) == []


def test_another_countrys_officer_cannot_restrict_her(
    deps: Deps, store: FakeStore, person: dict[str, Any]
) -> None:
    with pytest.raises(NotFound):
        restriction.restrict(deps, dpo("XK"), person["id"], {"purposes": [], "reason": REASON})
    assert store.events(EVENT) == []
