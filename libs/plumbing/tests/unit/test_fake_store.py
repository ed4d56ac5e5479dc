"""plumbing.fake_store's conditional update and its lock: the same answers as the real repository's
`update_where` (tests/integration/test_repository.py), and threads that behave as they do against the server."""

from __future__ import annotations

import functools
import sys
import threading
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from mongoengine import DictField, StringField

from plumbing.auth import Caller
from plumbing.clock import FixedClock
from plumbing.documents import OwnedDocument
from plumbing.errors import Conflict, NotFound
from plumbing.fake_store import FakeStore, UpdateNotSupported, apply_operators

START = datetime(2026, 6, 1, 8, 0, tzinfo=UTC)


class FakeStoreShelter(OwnedDocument):
    meta = {"collection": "fake_store_shelters"}
    RETENTION_CLASS = "case"
    note = StringField()
    capacity = DictField()


def caller(country: str = "AL", roles: tuple[str, ...] = ("case-manager",), sub: str = "cm") -> Caller:
    return Caller(
        sub=sub,
        azp="thb-test",
        country=country,
        agency="al-police",
        roles=frozenset(roles),
        acting_user=None,
        is_machine=False,
        token="not-a-token",
    )


def take(referral_id: str) -> tuple[dict[str, Any], dict[str, Any]]:
    return (
        {"capacity.places.free": {"$gt": 0}, "capacity.places.held_by": {"$ne": referral_id}},
        {"$inc": {"capacity.places.free": -1}, "$push": {"capacity.places.held_by": referral_id}},
    )


def free(referral_id: str) -> tuple[dict[str, Any], dict[str, Any]]:
    return (
        {"capacity.places.held_by": referral_id},
        {"$inc": {"capacity.places.free": 1}, "$pull": {"capacity.places.held_by": referral_id}},
    )


@pytest.fixture
def clock() -> FixedClock:
    return FixedClock(START)


@pytest.fixture
def store() -> FakeStore:
    return FakeStore()


def new_shelter(store: FakeStore, clock: FixedClock, places: int = 3, **kwargs: Any) -> str:
    shelter = FakeStoreShelter(
        note="n", capacity={"places": {"total": places, "free": places, "held_by": []}}
    )
    return store.repositories(clock)(FakeStoreShelter, caller()).insert(shelter, **kwargs).id


@pytest.fixture
def eager_switching() -> Iterator[None]:
    """Switch threads every microsecond (instead of every 5 ms), so that a check and a write the lock failed to
    hold together would be interleaved: without the lock, about one race in two takes too many places."""
    before = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    yield
    sys.setswitchinterval(before)


def race(workers: list[Callable[[], Any]]) -> list[Any]:
    """Every worker at the same moment on its own thread; each one's result or exception."""
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


@pytest.mark.parametrize("round_", range(5))
@pytest.mark.usefixtures("eager_switching")
def test_fifty_threads_take_exactly_the_three_places(
    store: FakeStore, clock: FixedClock, round_: int
) -> None:
    shelter = new_shelter(store, clock)
    repositories = store.repositories(clock)
    referral_ids = [str(uuid.uuid4()) for _ in range(50)]

    def attempt(referral_id: str) -> bool:
        repo = repositories(FakeStoreShelter, caller(sub=referral_id))
        return repo.update_where(shelter, *take(referral_id), events=[{"id": f"taken-{referral_id}"}])

    results = race([functools.partial(attempt, rid) for rid in referral_ids])
    assert all(isinstance(r, bool) for r in results)
    takers = sorted(rid for rid, took in zip(referral_ids, results, strict=True) if took)
    assert len(takers) == 3
    raw = store.raw(FakeStoreShelter, shelter)
    assert raw["capacity"]["places"]["free"] == 0
    assert sorted(raw["capacity"]["places"]["held_by"]) == takers
    assert raw["version"] == 1 + 3
    assert sorted(e["id"] for e in raw["pending_events"]) == sorted(f"taken-{rid}" for rid in takers)


@pytest.mark.usefixtures("eager_switching")
def test_concurrent_version_guarded_updates_have_one_winner(store: FakeStore, clock: FixedClock) -> None:
    shelter = new_shelter(store, clock)
    repo = store.repositories(clock)(FakeStoreShelter, caller())
    copies = [repo.get(shelter) for _ in range(20)]

    def write(doc: FakeStoreShelter, n: int) -> FakeStoreShelter:
        doc.note = f"writer-{n}"
        return repo.update(doc)

    results = race([functools.partial(write, doc, n) for n, doc in enumerate(copies)])
    assert sum(isinstance(r, FakeStoreShelter) for r in results) == 1
    assert sum(isinstance(r, Conflict) for r in results) == 19
    assert store.raw(FakeStoreShelter, shelter)["version"] == 2


@pytest.mark.usefixtures("eager_switching")
def test_reads_while_threads_write_never_fail(store: FakeStore, clock: FixedClock) -> None:
    repo = store.repositories(clock)(FakeStoreShelter, caller())
    system = store.system_repositories(clock)(FakeStoreShelter, "system:test")
    inserts = [lambda: new_shelter(store, clock) for _ in range(20)]
    reads = [
        lambda: (repo.find(), system.find(), store.events(), store.all(FakeStoreShelter)) for _ in range(20)
    ]
    results = race(inserts + reads)
    assert not [r for r in results if isinstance(r, Exception)]
    assert len(system.find()) == 20


def test_update_where_writes_the_change_version_stamps_and_events(
    store: FakeStore, clock: FixedClock
) -> None:
    shelter = new_shelter(store, clock, events=[{"id": "e1", "type": "t"}])
    clock.advance(minutes=5)
    repo = store.repositories(clock)(FakeStoreShelter, caller(sub="taker"))
    assert repo.update_where(shelter, *take("r1"), events=[{"id": "e2", "type": "t"}]) is True
    raw = store.raw(FakeStoreShelter, shelter)
    assert raw["capacity"]["places"] == {"total": 3, "free": 2, "held_by": ["r1"]}
    assert raw["version"] == 2 and raw["note"] == "n"
    assert raw["updated_by"] == "taker" and raw["updated_at"] == datetime(2026, 6, 1, 8, 5, tzinfo=UTC)
    assert [e["id"] for e in raw["pending_events"]] == ["e1", "e2"]
    assert [e["id"] for e in store.events()] == ["e1", "e2"]


def test_an_unmatched_condition_changes_nothing(store: FakeStore, clock: FixedClock) -> None:
    shelter = new_shelter(store, clock, places=1)
    repo = store.repositories(clock)(FakeStoreShelter, caller())
    assert repo.update_where(shelter, *take("r1")) is True
    before = store.raw(FakeStoreShelter, shelter)
    clock.advance(minutes=1)
    assert repo.update_where(shelter, *take("r1"), events=[{"id": "lost"}]) is False  # already held
    assert repo.update_where(shelter, *take("r2"), events=[{"id": "lost"}]) is False  # none free
    assert repo.update_where(shelter, *free("r2")) is False
    assert repo.update_where(str(uuid.uuid4()), *take("r3")) is False
    assert store.raw(FakeStoreShelter, shelter) == before
    assert repo.update_where(shelter, *free("r1")) is True
    assert repo.update_where(shelter, *free("r1")) is False
    after = store.raw(FakeStoreShelter, shelter)
    assert after["capacity"]["places"] == {"total": 1, "free": 1, "held_by": []} and after["version"] == 3


def test_update_where_outside_the_scope_is_false(store: FakeStore, clock: FixedClock) -> None:
    shelter = new_shelter(store, clock)
    before = store.raw(FakeStoreShelter, shelter)
    for outsider in (caller(country="XK", roles=("coordinator",)), caller(roles=("analyst",))):
        repo = store.repositories(clock)(FakeStoreShelter, outsider)
        assert repo.update_where(shelter, *take("r1")) is False
        assert repo.update_where(shelter, {"owner_country": "AL"}, take("r1")[1]) is False
        with pytest.raises(NotFound):
            repo.get(shelter)
    assert store.raw(FakeStoreShelter, shelter) == before


def test_system_repository_finds_and_updates_without_scope(store: FakeStore, clock: FixedClock) -> None:
    shelter = new_shelter(store, clock)
    system = store.system_repositories(clock)(FakeStoreShelter, "system:test-job")
    assert system.update_where(shelter, *take("r1"), events=[{"id": "e1"}]) is True
    raw = store.raw(FakeStoreShelter, shelter)
    assert raw["updated_by"] == "system:test-job" and raw["capacity"]["places"]["held_by"] == ["r1"]
    assert [d.id for d in system.find(owner_country="AL")] == [shelter]
    assert system.find(owner_country="XK") == [] and len(system.find(limit=1)) == 1


@pytest.mark.parametrize(
    "operators",
    [
        {"$set": {"version": 9}},
        {"$push": {"pending_events": {"id": "forged"}}},
        {"$set": {"owner_country": "XK"}},
        {"$set": {"updated_at": START}},
        {"$unset": {"note": ""}},
    ],
)
def test_refused_operators_are_the_real_repositorys(
    store: FakeStore, clock: FixedClock, operators: dict[str, Any]
) -> None:
    shelter = new_shelter(store, clock)
    with pytest.raises(ValueError):
        store.repositories(clock)(FakeStoreShelter, caller()).update_where(shelter, {}, operators)
    with pytest.raises(ValueError):
        store.system_repositories(clock)(FakeStoreShelter, "system").update_where(shelter, {}, operators)


def test_apply_operators_as_mongodb_does() -> None:
    row: dict[str, Any] = {"a": {"list": [1, 2, 2, 3], "docs": [{"id": "x"}, {"id": "y"}]}}
    apply_operators(row, {"$inc": {"a.n": 2}, "$set": {"b.c": "new"}, "$push": {"a.more": {"$each": [1, 2]}}})
    apply_operators(row, {"$pull": {"a.list": 2, "a.docs": {"id": "x"}, "missing.path": 1}})
    apply_operators(row, {"$pull": {"a.more": {"$in": [2]}}})
    assert row == {"a": {"list": [1, 3], "docs": [{"id": "y"}], "n": 2, "more": [1]}, "b": {"c": "new"}}
    with pytest.raises(UpdateNotSupported):
        apply_operators(row, {"$push": {"a.n": 1}})  # not an array
    with pytest.raises(UpdateNotSupported):
        apply_operators(row, {"$set": {"a.list.0": 9}})  # inside an array
