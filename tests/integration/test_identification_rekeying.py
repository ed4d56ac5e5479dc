"""Re-keying (service_layer/rekeying.py) against the real Mongo-wire server: a person stored before today's key
scheme gets today's keys from her sealed details (her pairs of sounds, which a search reads first), the batch is
in the access log, neither her `updated_at` nor her `version` moves, and a correction written meanwhile wins."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import pytest

from plumbing.auth import Caller
from tests.integration.platform_helpers import identification_runtime

pytestmark = pytest.mark.integration

NOW = datetime(2026, 12, 7, 10, 0, tzinfo=UTC)
POLICE = Caller("u-police", "thb-test", "AL", "state-police", frozenset({"police-officer"}), None, False, "t")


@pytest.fixture(scope="module")
def runtime(mongo: Any, tmp_path_factory: pytest.TempPathFactory) -> Any:
    database = f"thb_rekeying_{uuid.uuid4().hex[:8]}"
    return identification_runtime(mongo, tmp_path_factory.mktemp("keys"), database, NOW)


def register(runtime: Any, given: str, surname: str) -> str:
    from identification.service_layer import persons

    body = {"given_names": [given], "surnames": [surname], "date_of_birth": "2010", "sex": "male"}
    view, _ = persons.register_person(runtime.deps, POLICE, body)
    return str(view["id"])


def test_a_person_keyed_before_the_pairs_is_rekeyed_found_and_logged(
    runtime: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from identification.adapters.documents import PersonDocument
    from identification.adapters.person_keys import PersonKeys
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
    keys = PersonKeys(names.KEY_SCHEME)
    assert keys.any_stale()  # so a search reads the pairs in any year (`q:`), which persons of scheme 2 hold

    rekey = rekey_task(deps, runtime.startup.access_log)
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
    from identification.adapters.person_keys import PersonKeys
    from identification.domain import names

    collection = PersonDocument._get_collection()
    person = register(runtime, "Ilir", "Gashi")
    collection.update_one({"_id": person}, {"$unset": {"keys_scheme": ""}})
    keys = PersonKeys(names.KEY_SCHEME)
    [stale] = [p for p in keys.stale(100) if p.id == person]
    # A correction (its own keys, a new ciphertext) lands between the read and the rewrite.
    collection.update_one(
        {"_id": person},
        {"$set": {"sealed": "v1:other", "blocking_keys": ["k"], "keys_scheme": names.KEY_SCHEME}},
    )

    assert keys.rewrite(stale, ["stale"], []) is False
    assert collection.find_one({"_id": person})["blocking_keys"] == ["k"]


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

    assert rekeying.rekey_task(runtime.deps, runtime.startup.access_log)() == 5  # three batches in one pass
    assert collection.count_documents({"_id": {"$in": people}, "keys_scheme": None}) == 0
