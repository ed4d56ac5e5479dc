"""The deadline job on the real Mongo-wire server, with the clock advanced instead of slept: a shelter referral
nobody answers becomes overdue (reminder), is escalated to the coordinator's office, and expires, each once,
across a restart of the process that runs the job (a new runtime on the same database)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from pymongo import MongoClient

from plumbing import mongo as connections
from plumbing.clock import FixedClock
from referral.bootstrap import Runtime, build_runtime
from referral.service_layer import directory, referrals
from referral.service_layer.deadlines import run_deadlines
from services.referral.tests.unit.conftest import ADULT, PERSON, shelter_body
from services.referral.tests.unit.fakes import user

pytestmark = pytest.mark.integration


@pytest.fixture
def environ(mongo: Any, tmp_path: Path) -> Iterator[dict[str, str]]:
    env = {
        "THB_MODE": "local",
        "MONGODB_URI": mongo.env["MONGODB_URI"],
        "MONGODB_DB": f"thb_referral_it_{uuid.uuid4().hex[:8]}",
        "THB_KEYS_FILE": str(tmp_path / "keys.json"),
    }
    yield env
    connections.disconnect()
    client: MongoClient = MongoClient(env["MONGODB_URI"])
    client.drop_database(env["MONGODB_DB"])
    client.close()


def runtime(environ: dict[str, str], clock: FixedClock) -> Runtime:
    """A process's wiring (a new one stands for a restart: nothing is kept in memory between them)."""
    return build_runtime(environ, clock)


def test_an_unanswered_referral_is_reminded_escalated_and_expired_once_across_a_restart(
    environ: dict[str, str],
) -> None:
    clock = FixedClock(datetime(2026, 12, 7, 9, 0, tzinfo=UTC))
    first = runtime(environ, clock)
    provider = directory.register_provider(first.deps, user("al-coordinator"), shelter_body())
    proposed = referrals.create_referral(first.deps, user("al-case-manager"), {"service_type": "shelter"})
    body = {"provider_id": provider["id"], "municipality": "AL-TIR", "case_fields": PERSON, **ADULT}
    sent = referrals.request_referral(first.deps, user("al-case-manager"), proposed["id"], body)
    assert run_deadlines(first.deps) == 0  # nothing due yet

    clock.advance(hours=5)  # past the 4-hour answer deadline of an urgent service
    assert run_deadlines(first.deps) == 1
    assert run_deadlines(first.deps) == 0  # done once

    second = runtime(environ, clock)  # the process restarted
    assert run_deadlines(second.deps) == 0
    clock.advance(hours=4)  # escalation 4 hours after the deadline
    assert run_deadlines(second.deps) == 1
    clock.advance(hours=24)  # expiry
    assert run_deadlines(second.deps) == 1
    assert run_deadlines(runtime(environ, clock).deps) == 0

    stored = connections.get_database()["referrals"].find_one({"_id": sent["id"]})
    assert stored["status"] == "expired" and stored["overdue"] is True
    types = [event["type"] for event in stored["pending_events"]]
    for once in ("overdue", "escalated", "expired"):
        assert types.count(f"referral.referral.{once}.v1") == 1, types
