"""The exchange's Mongo adapters on the real Mongo-wire server: the message log's chain under concurrent writers
and tampering, and a notification sent, received and receipted through the real scoped repository."""

from __future__ import annotations

import threading
from functools import partial
from typing import Any

import pytest

from exchange.adapters.documents import ExchangeCaseDocument
from exchange.adapters.message_log import MongoMessageLog
from exchange.service_layer import cases, sending
from exchange.service_layer.evidence import verify_evidence
from plumbing.clock import FixedClock
from plumbing.repository import ScopedRepository
from services.exchange.tests.unit.conftest import notification
from services.exchange.tests.unit.fakes import NOW, build_world, user

pytestmark = pytest.mark.integration


def entry(envelope_id: str) -> dict[str, Any]:
    return {
        "direction": "sent",
        "envelope_id": envelope_id,
        "form_type": "notification",
        "content_digest": "sha256:0",
    }


def test_the_message_log_chains_concurrent_writers_and_reports_tampering(database: Any) -> None:
    log = MongoMessageLog(database, collection="message_log_chain_test")
    threads = [
        threading.Thread(target=lambda i=i: [log.append("XK", entry(f"e{i}-{n}")) for n in range(5)])
        for i in range(4)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    log.append("XK", entry("e0-0"))  # already logged: not a second entry
    log.append("ME", entry("m-1"))
    # Another process appends; this one's remembered tip is then stale, and its next append still follows the
    # other's entry (it walks forward from the tip it remembers) instead of forking the chain.
    MongoMessageLog(database, collection="message_log_chain_test").append("XK", entry("other-1"))
    log.append("XK", entry("after-other"))
    assert len(log.entries("XK")) == 22 and len(log.entries("ME")) == 1
    last_two = log.entries("XK")[-2:]
    assert [e["envelope_id"] for e in last_two] == ["other-1", "after-other"]
    assert last_two[1]["prev_hash"] == last_two[0]["hash"]
    assert log.verify("XK").ok and log.verify("ME").ok

    database["message_log_chain_test"].update_one({"_id": "XK:7"}, {"$set": {"content_digest": "sha256:1"}})
    report = log.verify("XK")
    assert (report.ok, report.first_broken_seq) == (False, 7)
    assert log.verify("ME").ok


def test_a_notification_through_the_real_repository(database: Any, case_documents: type) -> None:
    clock = FixedClock(NOW)
    world = build_world(clock=clock)
    world.deps.repository = partial(lambda c, cls, caller: ScopedRepository(cls, caller, c), clock)
    world.deps.message_log = MongoMessageLog(database, collection="message_log_story")
    xk, me, al = user("xk-contact-point"), user("me-contact-point"), user("al-coordinator")

    case_id, form = sending.draft_and_send(world.deps, xk, notification(), idempotency_key="k-1")
    assert sending.draft_and_send(world.deps, xk, notification(), idempotency_key="k-1")[1].id == form.id
    world.pump()
    reference = cases.get_case(world.deps, xk, case_id)["reference"]
    (me_case,) = [c for c in cases.list_cases(world.deps, me) if c["reference"] == reference]
    assert (
        next(f for f in cases.get_case(world.deps, xk, case_id)["forms"] if f["id"] == form.id)["status"]
        == "received"
    )
    assert cases.read_form(world.deps, me, me_case["id"], form.id)["content"]["person"]["surnames"] == [
        "Krasniqi"
    ]
    assert cases.list_cases(world.deps, al) == []

    # Nothing of the form is readable in the raw database, and altering its stored bytes is detected.
    raw = database[ExchangeCaseDocument._meta["collection"]].find_one({"_id": me_case["id"]})
    assert "Krasniqi" not in str(raw)
    assert verify_evidence(world.deps, "ME").ok and verify_evidence(world.deps, "XK").ok
    sealed = raw["contents"][form.id]
    tampered = sealed[:-4] + ("AAAA" if not sealed.endswith("AAAA") else "BBBB")
    database[ExchangeCaseDocument._meta["collection"]].update_one(
        {"_id": me_case["id"]}, {"$set": {f"contents.{form.id}": tampered}}
    )
    assert verify_evidence(world.deps, "ME").altered_forms == [form.id]
