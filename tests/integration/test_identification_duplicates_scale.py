"""A duplicate search over 100,000 people decrypts only its blocked candidates (counted by the cipher).

People are seeded straight into the collection (documents shaped exactly as the service stores them, sealed and
HMAC-keyed with the same cipher) to keep the test fast; the search runs the real service layer against the
Mongo-wire server through the caller-scoped repository."""

from __future__ import annotations

import random
import time
import uuid
from datetime import UTC, datetime
from typing import Any

import pytest

from plumbing.auth import Caller
from tests.integration.platform_helpers import identification_runtime

PEOPLE = 100_000
GIVEN = [
    f"{a}{b}"
    for a in ("Ar", "Be", "Dri", "Ge", "Il", "Ko", "Le", "Mi", "Ne", "Ro")
    for b in (
        "ben",
        "dona",
        "tim",
        "jeta",
        "mir",
        "lind",
        "vesa",
        "gon",
        "ana",
        "rita",
        "dan",
        "sara",
        "ton",
        "bora",
        "fit",
        "ela",
        "nik",
        "mal",
        "zana",
        "kur",
    )
]
SURNAMES = [
    f"{a}{b}"
    for a in (
        "Ko",
        "Ber",
        "Dra",
        "Gash",
        "Hal",
        "Kras",
        "Lul",
        "Mar",
        "Nik",
        "Pal",
        "Rex",
        "Shk",
        "Tah",
        "Vel",
        "Zeq",
    )
    for b in (
        "aj",
        "iqi",
        "ovi",
        "ani",
        "oli",
        "eri",
        "uka",
        "ella",
        "ushi",
        "imi",
        "ova",
        "aku",
        "eti",
        "oshi",
        "ami",
        "inca",
        "ulla",
        "edi",
        "aja",
        "ori",
    )
]


@pytest.fixture(scope="module")
def runtime(mongo: Any, tmp_path_factory: pytest.TempPathFactory) -> Any:
    # Not a platform database (no `thb_` prefix: the privacy test scans those), and not dropped afterwards: the
    # embedded Mongo-wire server took 316 s to drop 100,000 people, and the session's server is thrown away with
    # everything in it.
    database = f"scale_identification_{uuid.uuid4().hex[:8]}"
    return identification_runtime(
        mongo, tmp_path_factory.mktemp("keys"), database, datetime(2026, 6, 1, tzinfo=UTC)
    )


def _stored(
    runtime: Any, person_id: str, given: str, surname: str, born: str, now: datetime
) -> dict[str, Any]:
    from identification.domain import names
    from identification.service_layer.persons import birth_to_record, blocking_keys_of, parse_birth

    sealer = runtime.deps.sealer
    birth = parse_birth({"date_of_birth": born}, now.date(), [])
    details = {
        "given_names": [given],
        "surnames": [surname],
        "aliases": [],
        "birth": birth_to_record(birth),
        "date_of_birth": born,
        "documents": [],
        "age_determinations": [],
    }
    keys = blocking_keys_of(details)
    return {
        "_id": person_id,
        "owner_country": "AL",
        "owner_agency": "state-police",
        "assigned_to": [],
        "created_at": now,
        "created_by": "seed",
        "updated_at": now,
        "updated_by": "seed",
        "schema_version": 1,
        "retention_class": "person",
        "version": 1,
        "pending_events": [],
        "sealed": sealer.seal("AL", person_id, details),
        "blocking_keys": sealer.blocking_tokens("AL", {k for k in keys if not k.startswith("y:")}),
        "year_keys": sealer.blocking_tokens("AL", {k for k in keys if k.startswith("y:")}),
        "keys_scheme": names.KEY_SCHEME,
        "sex": random.choice(("female", "male")),
        "nationalities": ["AL"],
        "languages": [],
    }


# Seeding 100,000 encrypted people into the Mongo-wire server takes minutes on a busy 2-core machine.
@pytest.mark.timeout(1200)
def test_search_over_100000_people_decrypts_only_its_candidates(runtime: Any) -> None:
    from identification.adapters.documents import PersonDocument
    from identification.service_layer import duplicates
    from identification.service_layer.rekeying import rekey_task

    random.seed(7)
    now = runtime.deps.clock.now()
    collection = PersonDocument._get_collection()
    PersonDocument.ensure_indexes()
    started = time.monotonic()
    batch: list[dict[str, Any]] = []
    for _ in range(PEOPLE - 1):
        born = f"{random.randint(1950, 2015)}-{random.randint(1, 12):02d}"
        batch.append(
            _stored(runtime, str(uuid.uuid4()), random.choice(GIVEN), random.choice(SURNAMES), born, now)
        )
        if len(batch) == 5000:
            collection.insert_many(batch, ordered=False)
            batch = []
    target = str(uuid.uuid4())
    batch.append(_stored(runtime, target, "Đorđe", "Petrović", "1992-03-04", now))
    collection.insert_many(batch, ordered=False)
    assert collection.count_documents({}) == PEOPLE
    seeded_in = time.monotonic() - started
    # As the scheduler's first pass does: the re-keying walk reaches the present (the people, all of today's key
    # scheme, are stamped now, ahead of it), so that a search reads the keys of today's scheme only.
    rekey_task(runtime.deps, runtime.startup.access_log)()
    assert not runtime.deps.keys_outdated()

    caller = Caller(
        "u-police", "thb-test", "AL", "state-police", frozenset({"police-officer"}), None, False, "t"
    )
    cipher = runtime.startup.cipher  # counts what it decrypts
    before = cipher.decryptions
    result = duplicates.search(
        runtime.deps, caller, {"given_names": ["Djordje"], "surnames": ["Petrovic"], "date_of_birth": "1992"}
    ).view
    decrypted = cipher.decryptions - before
    assert [c["person_id"] for c in result["candidates"]][:1] == [target]
    assert decrypted == result["candidates_examined"]
    assert 1 <= decrypted <= duplicates.MAX_CANDIDATES, decrypted

    # A common surname without a birth year still reads at most the cap, never the collection.
    before = cipher.decryptions
    common = duplicates.search(runtime.deps, caller, {"surnames": [SURNAMES[0]]}).view
    assert cipher.decryptions - before == common["candidates_examined"] <= duplicates.MAX_CANDIDATES
    # ...and is recorded as common, so that the next search does not read its holders again.
    surname_tokens = runtime.deps.sealer.search_tokens("AL", {f"s:{SURNAMES[0].lower()}"})
    assert runtime.deps.common_keys.known(surname_tokens, now) == set(surname_tokens)
    print(f"seeded {PEOPLE} in {seeded_in:.1f}s; candidates {decrypted} and {common['candidates_examined']}")
