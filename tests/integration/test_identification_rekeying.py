"""Re-keying (service_layer/rekeying.py) against the real Mongo-wire server: a person stored before today's key
scheme gets today's keys from her sealed details (her pairs of sounds, which a search reads first), the batch is
in the access log, neither her `updated_at` nor her `version` moves, and a correction written meanwhile wins. The
walk that finds her (adapters/person_keys.py) follows the present MARGIN behind the clock, narrows a crowded
window, and starts again from the beginning for a new scheme.

The tests share one database and the runtime's clock, which each moves forward: what a test writes is ahead of
where the walk stands after the tests before it."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from plumbing.auth import Caller
from tests.integration.platform_helpers import identification_runtime, register_person

pytestmark = pytest.mark.integration

NOW = datetime(2026, 12, 7, 10, 0, tzinfo=UTC)
POLICE = Caller("u-police", "thb-test", "AL", "state-police", frozenset({"police-officer"}), None, False, "t")


@pytest.fixture(scope="module")
def runtime(mongo: Any, tmp_path_factory: pytest.TempPathFactory) -> Any:
    database = f"thb_rekeying_{uuid.uuid4().hex[:8]}"
    return identification_runtime(mongo, tmp_path_factory.mktemp("keys"), database, NOW)


def walk_of(runtime: Any) -> Any:
    from identification.adapters.person_keys import PersonKeys
    from identification.domain import names

    return PersonKeys(names.KEY_SCHEME, runtime.deps.config.country_codes, runtime.deps.clock)


def past_the_margin(runtime: Any) -> None:
    """The clock moves past the walk's margin: what was written until now is behind the present it follows."""
    from identification.adapters.person_keys import MARGIN

    runtime.deps.clock.advance(MARGIN + timedelta(seconds=1))


def register(runtime: Any, given: str, surname: str) -> str:
    return register_person(runtime, POLICE, given, surname, "male")


def test_a_person_keyed_before_the_pairs_is_rekeyed_found_and_logged(
    runtime: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from identification.adapters.documents import PersonDocument
    from identification.domain import names
    from identification.service_layer import duplicates
    from identification.service_layer.persons import blocking_keys_of
    from identification.service_layer.rekeying import rekey_task

    deps = runtime.deps
    collection = PersonDocument._get_collection()
    target = register(runtime, "Arben", "Hoxha")
    register(runtime, "Arben", "Krasniqi")  # the sound of Arben is common (with COMMON_KEY 1 below)
    register(runtime, "Besnik", "Hoxha")  # and that of Hoxha
    register(runtime, "Arbin", "Hoxhe")  # the exact name searched: better evidence than any common key
    details = deps.sealer.open("AL", target, collection.find_one({"_id": target})["sealed"])
    old_keys = {k for k in blocking_keys_of(details) if not k.startswith(("y:", "q:", "t:"))}
    collection.update_one(
        {"_id": target},
        {
            "$set": {"blocking_keys": deps.sealer.blocking_tokens("AL", old_keys)},
            "$unset": {"keys_scheme": ""},
        },
    )
    before = collection.find_one({"_id": target})
    monkeypatch.setattr(duplicates, "COMMON_KEY", 1)
    body = {"given_names": ["Arbin"], "surnames": ["Hoxhe"], "date_of_birth": "2010"}

    def found() -> list[str]:
        return [c["person_id"] for c in duplicates.search(deps, POLICE, body).view["candidates"]]

    pairs = {k for k in blocking_keys_of(details) if k.startswith(("q:", "t:"))}
    pair = deps.sealer.blocking_tokens("AL", pairs)
    assert pair and not set(pair) & set(before["blocking_keys"])  # the search's strong keys do not reach her
    keys = walk_of(runtime)
    assert keys.any_stale()  # so a search reads the pairs in any year (`q:`), which persons of scheme 2 hold

    rekey = rekey_task(deps, runtime.startup.access_log)
    past_the_margin(runtime)
    assert rekey() == 1
    assert rekey() == 0  # nothing left of the older scheme
    assert not keys.any_stale()  # a search reads the pairs in its years (`t:`)

    after = collection.find_one({"_id": target})
    new_keys = {k for k in blocking_keys_of(details) if not k.startswith("y:")}
    assert sorted(after["blocking_keys"]) == deps.sealer.blocking_tokens("AL", new_keys)
    assert after["keys_scheme"] == names.KEY_SCHEME
    assert (after["updated_at"], after["version"]) == (before["updated_at"], before["version"])
    assert target in found()
    runtime.startup.access_log.flush()
    [entry] = runtime.startup.access_log.query(person_id=target, actor_sub="system:rekey-job")
    assert (entry.operation_id, entry.purpose, entry.ids) == ("persons.rekey", "identification", (target,))


def test_a_correction_written_meanwhile_is_not_overwritten(runtime: Any) -> None:
    from identification.adapters.documents import PersonDocument
    from identification.domain import names

    collection = PersonDocument._get_collection()
    person = register(runtime, "Ilir", "Gashi")
    collection.update_one({"_id": person}, {"$unset": {"keys_scheme": ""}})
    keys = walk_of(runtime)
    past_the_margin(runtime)
    window = keys.next_window("AL", 100)
    assert window is not None
    [stale] = [p for p in window.stale if p.id == person]
    # A correction (its own keys, a new ciphertext) lands between the read and the rewrite.
    collection.update_one(
        {"_id": person},
        {"$set": {"sealed": "v1:other", "blocking_keys": ["k"], "keys_scheme": names.KEY_SCHEME}},
    )

    assert keys.rewrite(stale, ["stale"], []) is False
    assert collection.find_one({"_id": person})["blocking_keys"] == ["k"]


def test_keys_of_a_newer_scheme_are_never_rewritten_with_older_ones(runtime: Any) -> None:
    """During an upgrade to a new scheme the older release's walker may still hold a window that the newer one
    has rewritten meanwhile: its rewrite must not bring her keys back to its scheme."""
    from identification.adapters.documents import PersonDocument
    from identification.domain import names

    collection = PersonDocument._get_collection()
    person = register(runtime, "Shpend", "Zeka")
    collection.update_one({"_id": person}, {"$unset": {"keys_scheme": ""}})
    past_the_margin(runtime)
    window = walk_of(runtime).next_window("AL", 100)
    assert window is not None
    [stale] = [p for p in window.stale if p.id == person]
    newer = {"blocking_keys": ["newer"], "keys_scheme": names.KEY_SCHEME + 1}
    collection.update_one({"_id": person}, {"$set": newer})  # the newer release's rewrite, same details

    assert walk_of(runtime).rewrite(stale, ["older"], []) is False
    walk_of(runtime).give_up(stale)
    stored = collection.find_one({"_id": person})
    assert (stored["blocking_keys"], stored["keys_scheme"]) == (["newer"], names.KEY_SCHEME + 1)


def test_a_person_whose_details_cannot_be_opened_does_not_stop_the_others(runtime: Any) -> None:
    from identification.adapters.documents import PersonDocument
    from identification.domain import names
    from identification.service_layer.rekeying import rekey_task

    collection = PersonDocument._get_collection()
    damaged, sound = register(runtime, "Drita", "Leka"), register(runtime, "Blerta", "Meta")
    collection.update_one({"_id": damaged}, {"$set": {"sealed": "v1:damaged"}})
    collection.update_many({"_id": {"$in": [damaged, sound]}}, {"$unset": {"keys_scheme": ""}})
    keys_before = collection.find_one({"_id": damaged})["blocking_keys"]

    rekey = rekey_task(runtime.deps, runtime.startup.access_log)
    past_the_margin(runtime)
    assert rekey() == 1  # hers cannot be made again; the other's are
    assert rekey() == 0  # and she is not asked about again

    stored = {row["_id"]: row for row in collection.find({"_id": {"$in": [damaged, sound]}})}
    assert stored[damaged]["blocking_keys"] == keys_before
    assert stored[damaged]["keys_scheme"] == stored[sound]["keys_scheme"] == names.KEY_SCHEME


def test_one_pass_rekeys_batch_after_batch_until_none_is_left(
    runtime: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from identification.adapters.documents import PersonDocument
    from identification.service_layer import rekeying

    collection = PersonDocument._get_collection()
    people = [register(runtime, given, "Rama") for given in ("Agron", "Bujar", "Dritan", "Erion", "Ilir")]
    collection.update_many({"_id": {"$in": people}}, {"$unset": {"keys_scheme": ""}})
    monkeypatch.setattr(rekeying, "BATCH", 2)
    past_the_margin(runtime)

    # One window holds the five (registered at one instant): read again after each batch until none is left.
    assert rekeying.rekey_task(runtime.deps, runtime.startup.access_log)() == 5  # three batches in one pass
    assert collection.count_documents({"_id": {"$in": people}, "keys_scheme": None}) == 0


def test_a_person_written_with_older_keys_is_rekeyed_once_the_walk_reaches_her(runtime: Any) -> None:
    """As by a process of an older release during an upgrade: stamped now, ahead of the walk, which reaches her
    once she is MARGIN behind the clock; until then a pass leaves her."""
    from identification.adapters.documents import PersonDocument
    from identification.service_layer.rekeying import rekey_task

    collection = PersonDocument._get_collection()
    rekey = rekey_task(runtime.deps, runtime.startup.access_log)
    past_the_margin(runtime)
    rekey()  # the walk at the present
    person = register(runtime, "Valon", "Berisha")
    collection.update_one({"_id": person}, {"$unset": {"keys_scheme": ""}})

    runtime.deps.clock.advance(seconds=30)
    assert rekey() == 0
    assert "keys_scheme" not in collection.find_one({"_id": person})
    past_the_margin(runtime)
    assert rekey() == 1
    assert collection.find_one({"_id": person})["keys_scheme"] is not None


def test_a_crowded_window_is_narrowed(runtime: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    from identification.adapters import person_keys, person_windows
    from identification.adapters.documents import PersonDocument
    from identification.service_layer.rekeying import rekey_task

    collection = PersonDocument._get_collection()
    walks = collection.database[person_keys.WALKS]
    rekey = rekey_task(runtime.deps, runtime.startup.access_log)
    past_the_margin(runtime)
    rekey()
    people = []
    for given in ("Alban", "Blerim", "Driton", "Egzon", "Fatos", "Gentian"):
        people.append(register(runtime, given, "Kelmendi"))
        runtime.deps.clock.advance(seconds=2)
    collection.update_many({"_id": {"$in": people}}, {"$unset": {"keys_scheme": ""}})
    width_before = walks.find_one({"_id": "AL"})["width_ms"]
    assert width_before > 12_000  # one window would hold the six
    monkeypatch.setattr(person_windows, "MOST", 2)
    past_the_margin(runtime)

    assert rekey() == 6
    assert walks.find_one({"_id": "AL"})["width_ms"] < width_before


def test_a_new_scheme_walks_every_person_again_from_the_beginning(runtime: Any) -> None:
    """The walk left by a release of the previous scheme is at the present; under today's, it starts again and
    reaches persons changed long ago. Until it is at the present again, a search treats keys as outdated."""
    from identification.adapters import person_keys, person_windows
    from identification.adapters.documents import PersonDocument
    from identification.domain import names
    from identification.service_layer.rekeying import rekey_task

    collection = PersonDocument._get_collection()
    walks = collection.database[person_keys.WALKS]
    rekey = rekey_task(runtime.deps, runtime.startup.access_log)
    past_the_margin(runtime)
    rekey()
    keys = walk_of(runtime)
    assert not keys.any_stale()
    oldest = collection.find_one({"owner_country": "AL"}, sort=[("updated_at", 1)])
    assert person_windows.BEGINNING < oldest["updated_at"].replace(tzinfo=UTC) < runtime.deps.clock.now()
    collection.update_one({"_id": oldest["_id"]}, {"$unset": {"keys_scheme": ""}})
    walks.update_many({}, {"$set": {"scheme": names.KEY_SCHEME - 1}})
    assert keys.any_stale()

    assert rekey() == 1
    assert collection.find_one({"_id": oldest["_id"]})["keys_scheme"] == names.KEY_SCHEME
    assert not keys.any_stale()
