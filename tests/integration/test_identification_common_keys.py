"""The record of common blocking keys (identification adapters/common_keys.py) on the real Mongo-wire server:
what a search records is known to the next search, for the record's TTL, and recording again renews it."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import pytest

from tests.integration.platform_helpers import identification_runtime

pytestmark = pytest.mark.integration

NOW = datetime(2026, 12, 7, 10, 0, tzinfo=UTC)


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
