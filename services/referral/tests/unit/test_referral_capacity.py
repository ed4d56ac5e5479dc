"""Capacity: the group a person takes, totals never below the places held, and - under real concurrency on
the fake store, whose writes are atomic like MongoDB's single-document updates - never two referrals on the
last place."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import pytest

from plumbing.errors import Conflict
from referral.adapters.documents import ProviderDocument, ReferralDocument
from referral.domain import capacity
from referral.domain.errors import DomainError, InvalidTransition, NotPermitted
from referral.service_layer import referrals
from services.referral.tests.unit.conftest import send
from services.referral.tests.unit.fakes import World, user


def test_the_most_specific_group_the_provider_keeps() -> None:
    assert capacity.group_for("child", "female", {"girls", "boys", "places"}) == "girls"
    assert capacity.group_for("child", "male", {"girls", "places"}) == "places"
    assert capacity.group_for("adult", "female", {"women"}) == "women"
    assert capacity.group_for("adult", "male", {"women"}) is None
    assert capacity.group_for("adult", "female", {"women", "families"}, family=True) == "families"
    assert capacity.group_for("adult", None, {"women", "places"}) == "places"


def test_new_totals_keep_places_held_and_never_go_negative() -> None:
    stored = {"women": {"total": 3, "free": 1, "held_by": ["r1", "r2"]}}
    assert capacity.resized(stored, {"women": 4}) == {
        "women": {"total": 4, "free": 2, "held_by": ["r1", "r2"]}
    }
    with pytest.raises(DomainError) as error:
        capacity.resized(stored, {"women": 1})
    assert error.value.codes == {("capacity_below_places_taken", "/capacity/women")}
    with pytest.raises(DomainError):
        capacity.resized(stored, {"men": 2})  # dropping a group with places held


def race(workers: list[Callable[[], Any]]) -> list[Any]:
    """Run every worker at the same moment on its own thread; each result or the exception it raised."""
    barrier = threading.Barrier(len(workers))
    results: list[Any] = [None] * len(workers)

    def run(i: int) -> None:
        barrier.wait()
        try:
            results[i] = workers[i]()
        except Exception as exc:  # noqa: BLE001 - collected for the assertions
            results[i] = exc

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(workers))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    return results


def test_fifty_concurrent_accepts_for_three_places_accept_exactly_three(
    world: World, shelter: dict[str, Any]
) -> None:
    sent = [send(world, shelter["id"])["id"] for _ in range(50)]
    results = race([lambda rid=rid: referrals.accept(world.deps, user("al-shelter"), rid) for rid in sent])
    accepted = [r for r in results if isinstance(r, dict)]
    refused = [r for r in results if isinstance(r, InvalidTransition)]
    assert len(accepted) == 3 and len(refused) == 47
    assert {r.code for r in refused} == {"no_free_place"}
    stored = world.store.raw(ProviderDocument, shelter["id"])["capacity"]["women"]
    assert stored["free"] == 0 and stored["total"] == 3
    assert sorted(stored["held_by"]) == sorted(r["id"] for r in accepted)
    statuses = [world.store.raw(ReferralDocument, rid)["status"] for rid in sent]
    assert statuses.count("accepted") == 3 and statuses.count("requested") == 47


def test_concurrent_accepts_of_one_referral_take_one_place(world: World, shelter: dict[str, Any]) -> None:
    rid = send(world, shelter["id"])["id"]
    results = race([lambda: referrals.accept(world.deps, user("al-shelter"), rid) for _ in range(20)])
    assert sum(isinstance(r, dict) for r in results) == 1
    assert all(isinstance(r, (dict, Conflict)) for r in results)
    stored = world.store.raw(ProviderDocument, shelter["id"])["capacity"]["women"]
    assert stored["held_by"] == [rid] and stored["free"] == 2


def test_a_full_shelter_answers_409_and_the_referral_waits(world: World, shelter: dict[str, Any]) -> None:
    ids = [send(world, shelter["id"])["id"] for _ in range(4)]
    for rid in ids[:3]:
        referrals.accept(world.deps, user("al-shelter"), rid)
    with pytest.raises(InvalidTransition) as error:
        referrals.accept(world.deps, user("al-shelter"), ids[3])
    assert error.value.code == "no_free_place"
    assert world.store.raw(ReferralDocument, ids[3])["status"] == "requested"
    # A place freed by a completion can be taken again.
    referrals.start(world.deps, user("al-shelter"), ids[0])
    referrals.complete(world.deps, user("al-shelter"), ids[0], {"reason": "person_left"})
    assert referrals.accept(world.deps, user("al-shelter"), ids[3])["status"] == "accepted"


def test_taking_a_place_is_idempotent_per_referral(world: World, shelter: dict[str, Any]) -> None:
    rid = send(world, shelter["id"])["id"]
    repo = world.deps.repository(ProviderDocument, user("al-shelter"))
    update = capacity.take("women", rid)
    assert repo.update_where(shelter["id"], update.condition, update.operators)
    assert not repo.update_where(shelter["id"], update.condition, update.operators)  # a retry takes nothing
    freeing = capacity.free("women", rid)
    assert repo.update_where(shelter["id"], freeing.condition, freeing.operators)
    assert not repo.update_where(shelter["id"], freeing.condition, freeing.operators)  # nor frees twice
    assert world.store.raw(ProviderDocument, shelter["id"])["capacity"]["women"] == {
        "total": 3,
        "free": 3,
        "held_by": [],
    }


def test_a_provider_cannot_shrink_below_the_places_taken(world: World, shelter: dict[str, Any]) -> None:
    from referral.service_layer import directory

    for _ in range(2):
        referrals.accept(world.deps, user("al-shelter"), send(world, shelter["id"])["id"])
    with pytest.raises(DomainError) as error:
        directory.set_capacity(world.deps, user("al-shelter"), shelter["id"], {"women": 1})
    assert error.value.codes == {("capacity_below_places_taken", "/capacity/women")}
    view = directory.set_capacity(world.deps, user("al-shelter"), shelter["id"], {"women": 2})
    assert view["capacity"]["women"] == {"total": 2, "free": 0}
    with pytest.raises(NotPermitted):
        directory.set_capacity(world.deps, user("al-case-manager"), shelter["id"], {"women": 9})
