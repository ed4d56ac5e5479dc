"""Reply deadlines on the real Mongo-wire server, with the clock advanced instead of slept: an unacknowledged
notification is reminded, then escalated, in both countries' records, each once, across a restart of the
scheduler (a new scheduler and wiring on the same database); the events are in each record's outbox in order."""

from __future__ import annotations

from functools import partial
from typing import Any

import pytest

from exchange.adapters.documents import ExchangeCaseDocument
from exchange.adapters.message_log import MongoMessageLog
from exchange.domain import events
from exchange.service_layer import cases, sending
from exchange.service_layer.deadlines import run_deadlines
from plumbing.clock import FixedClock
from plumbing.repository import ScopedRepository
from services.exchange.tests.unit.conftest import notification
from services.exchange.tests.unit.fakes import NOW, World, build_world, user

pytestmark = pytest.mark.integration


def wiring(database: Any, clock: FixedClock) -> World:
    """A process's wiring on the real repository (a new one stands for a restart)."""
    world = build_world(clock=clock)
    world.deps.repository = partial(lambda c, cls, caller: ScopedRepository(cls, caller, c), clock)
    world.deps.message_log = MongoMessageLog(database, collection="message_log_deadlines")
    return world


def test_an_overdue_reply_is_reminded_and_escalated_once_on_both_sides_across_a_restart(
    database: Any, case_documents: type
) -> None:
    clock = FixedClock(NOW)
    first = wiring(database, clock)
    xk_case, form = sending.draft_and_send(
        first.deps, user("xk-contact-point"), notification(), idempotency_key="k"
    )
    first.pump()
    assert run_deadlines(first.deps) == 0  # nothing due yet

    clock.advance(days=5, minutes=1)  # past the notification's 5-day reply deadline
    assert run_deadlines(first.deps) == 2  # XK's record (awaiting) and ME's (owing)
    assert run_deadlines(first.deps) == 0  # done once

    second = wiring(database, clock)  # the scheduler restarted
    assert run_deadlines(second.deps) == 0
    clock.advance(days=2)  # the escalation period of a notification
    assert run_deadlines(second.deps) == 2
    assert run_deadlines(wiring(database, clock).deps) == 0

    reference = cases.get_case(second.deps, user("xk-contact-point"), xk_case)["reference"]
    (me_case,) = [
        c["id"]
        for c in cases.list_cases(second.deps, user("me-contact-point"))
        if c["reference"] == reference
    ]
    collection = database[ExchangeCaseDocument._meta["collection"]]
    for record_id, first_event in ((xk_case, events.FORM_SENT), (me_case, events.FORM_RECEIVED)):
        stored = collection.find_one({"_id": record_id})
        assert [e["type"] for e in stored["pending_events"]] == [
            first_event,
            events.FORM_OVERDUE,
            events.FORM_ESCALATED,
        ]
        assert stored["deadline_actions_done"] == [f"overdue:{form.id}", f"escalated:{form.id}"]
        assert stored["next_due_at"] is None and stored.get("deadline_lease_until") is None
