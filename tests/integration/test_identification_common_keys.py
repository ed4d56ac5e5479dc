"""The record of common blocking keys (identification adapters/common_keys.py) on the real Mongo-wire server:
what a search records is known to the next search, for the record's TTL, and recording again renews it; the
scheduler's count of holders (service_layer/common_keys_count.py) records the keys its persons make common, and
counts again a week later."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import pytest

from plumbing.auth import Caller
from tests.integration.platform_helpers import identification_runtime, register_person

pytestmark = pytest.mark.integration

NOW = datetime(2026, 12, 7, 10, 0, tzinfo=UTC)
POLICE = Caller("u-police", "thb-test", "AL", "state-police", frozenset({"police-officer"}), None, False, "t")


@pytest.fixture(scope="module")
def runtime(mongo: Any, tmp_path_factory: pytest.TempPathFactory) -> Any:
    database = f"thb_common_keys_{uuid.uuid4().hex[:8]}"
    return identification_runtime(mongo, tmp_path_factory.mktemp("keys"), database, NOW)


def test_recorded_keys_are_known_until_the_record_is_old_and_renewed_when_recorded_again(
    runtime: Any,
) -> None:
    from identification.adapters import common_keys

    record = runtime.deps.common_keys
    record.add(["k:hoxha", "k:arben", "k:hoxha"], NOW)

    assert record.known(["k:hoxha", "k:arben", "k:zamir"], NOW) == {"k:hoxha", "k:arben"}
    later = NOW + common_keys.TTL
    assert record.known(["k:hoxha", "k:arben"], later) == set()  # asked about again
    record.add(["k:hoxha"], later)
    assert record.known(["k:hoxha", "k:arben"], later) == {"k:hoxha"}
    record.add([], later)  # nothing to record: no write


def test_the_weekly_count_records_the_keys_its_persons_make_common(
    runtime: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from identification.domain import names
    from identification.service_layer import duplicates
    from identification.service_layer.common_keys_count import count_task

    deps = runtime.deps
    monkeypatch.setattr(duplicates, "COMMON_KEY", 2)

    def known(*surnames: str) -> set[str]:
        """Which of these surnames' keys the record knows (as a search asks: its tokens, now)."""
        found = set()
        for surname in surnames:
            keys = {k for k in names.blocking_keys([], [surname], None) if k.startswith("s:")}
            tokens = deps.sealer.search_tokens("AL", keys)
            if deps.common_keys.known(tokens, deps.clock.now()):
                found.add(surname)
        return found

    for given in ("Arta", "Besa", "Drita"):
        register_person(runtime, POLICE, given, "Shehu")
    for given in ("Elira", "Flutura"):
        register_person(runtime, POLICE, given, "Morina")
    deps.clock.advance(seconds=1)  # the count reads up to the present, and they were written at it
    count = count_task(deps, budget_s=60)

    assert count() >= 1
    assert known("Shehu", "Morina") == {"Shehu"}  # three holders: more than COMMON_KEY; two are not

    for given in ("Gresa", "Hana"):
        register_person(runtime, POLICE, given, "Morina")
    deps.clock.advance(days=1)
    assert count() == 0  # counted a day ago: not due yet
    assert known("Morina") == set()
    deps.clock.advance(days=6)
    assert count() >= 2
    assert known("Shehu", "Morina") == {"Shehu", "Morina"}
