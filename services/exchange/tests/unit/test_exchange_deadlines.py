"""Reply deadlines and the exchange's events, on fakes: an unanswered notification is reminded in both
countries' records at its deadline and escalated after a second period, once each, across a restart; an
acknowledgement in time stops both; every command's events say what happened, ids and codes only."""

from __future__ import annotations

from datetime import timedelta

from exchange.adapters.documents import ExchangeCaseDocument
from exchange.domain import events
from exchange.service_layer import sending
from exchange.service_layer.deadlines import run_due_actions
from plumbing.clock import as_utc
from services.exchange.tests.unit.conftest import ADULT, BASIS, notification
from services.exchange.tests.unit.fakes import World, build_world
from services.exchange.tests.unit.test_exchange_service import ME, XK, me_case_id, notify, reference

NOTIFICATION_REPLY = timedelta(days=5)  # forms/types/notification.yaml: reply_within_days 5, escalate after 2


def record_events(world: World, case_id: str, type_: str | None = None) -> list[dict]:
    return [e for e in world.store.events(type_) if e["subject"] == case_id]


def due(world: World, case_id: str, country: str) -> bool:
    return run_due_actions(world.deps, case_id, country)


def test_an_unacknowledged_notification_is_reminded_then_escalated_once_on_both_sides_across_a_restart(
    world: World,
) -> None:
    xk_case, form_id = notify(world)
    world.pump()
    me_case = me_case_id(world, reference(world, xk_case))
    sent_at = world.clock.now()
    stored = world.store.raw(ExchangeCaseDocument, xk_case)
    assert as_utc(stored["next_due_at"]) == sent_at + NOTIFICATION_REPLY
    assert not due(world, xk_case, "XK") and not due(world, me_case, "ME")

    world.clock.advance(NOTIFICATION_REPLY + timedelta(minutes=1))
    assert due(world, xk_case, "XK") and due(world, me_case, "ME")
    assert not due(world, xk_case, "XK")  # done once

    restarted = build_world(world.store, clock=world.clock)  # a new process on the same store
    world.clock.advance(days=2)
    assert due(restarted, xk_case, "XK") and due(restarted, me_case, "ME")
    assert not due(restarted, xk_case, "XK") and not due(restarted, me_case, "ME")
    assert world.store.raw(ExchangeCaseDocument, xk_case)["next_due_at"] is None

    for case_id, direction in ((xk_case, "out"), (me_case, "in")):
        overdue = record_events(world, case_id, events.FORM_OVERDUE)
        escalated = record_events(world, case_id, events.FORM_ESCALATED)
        assert len(overdue) == 1 and len(escalated) == 1
        assert overdue[0]["data"]["form_id"] == form_id and overdue[0]["data"]["direction"] == direction
        assert as_utc_text(overdue[0]["data"]["deadline"]) == as_utc_text(
            (sent_at + NOTIFICATION_REPLY).isoformat()
        )
    assert world.store.raw(ExchangeCaseDocument, xk_case)["deadline_actions_done"] == [
        f"overdue:{form_id}",
        f"escalated:{form_id}",
    ]


def as_utc_text(text: str) -> str:
    return text.replace("+00:00", "Z")[:19]


def test_an_acknowledgement_in_time_leaves_nothing_due_on_either_side(world: World) -> None:
    xk_case, form_id = notify(world)
    world.pump()
    me_case = me_case_id(world, reference(world, xk_case))
    sending.acknowledge_form(world.deps, ME, me_case, form_id, idempotency_key="ack")
    world.pump()
    assert world.store.raw(ExchangeCaseDocument, me_case)["next_due_at"] is None
    assert world.store.raw(ExchangeCaseDocument, xk_case)["next_due_at"] is None
    world.clock.advance(days=30)
    assert not due(world, xk_case, "XK") and not due(world, me_case, "ME")
    assert record_events(world, xk_case, events.FORM_OVERDUE) == []


def test_events_follow_the_story_on_each_side_ids_and_codes_only(world: World) -> None:
    xk_case, form_id = notify(world)
    world.pump()
    me_case = me_case_id(world, reference(world, xk_case))
    sending.acknowledge_form(world.deps, ME, me_case, form_id, idempotency_key="ack")
    world.pump()
    sending.withdraw_form(world.deps, XK, xk_case, form_id, "sent-in-error", idempotency_key="w")
    world.pump()

    assert [e["type"] for e in record_events(world, xk_case)] == [
        events.FORM_SENT,
        events.FORM_ACKNOWLEDGED,
        events.FORM_WITHDRAWN,
    ]
    assert [e["type"] for e in record_events(world, me_case)] == [
        events.FORM_RECEIVED,
        events.FORM_ACKNOWLEDGED,
        events.FORM_WITHDRAWN,
    ]
    withdrawn = record_events(world, me_case, events.FORM_WITHDRAWN)[0]["data"]
    assert withdrawn == {
        "case_id": me_case,
        "reference": reference(world, xk_case),
        "owner_country": "ME",
        "form_id": form_id,
        "form_type": "notification",
        "version": 1,
        "direction": "in",
        "counterpart": "XK",
        "reason": "sent-in-error",
    }
    # Nothing of the person travels in an event (the schemas allow no such member; this is the canary).
    assert "Arta" not in repr(world.store.events()) and "Krasniqi" not in repr(world.store.events())


def test_a_consent_withdrawal_is_an_event_in_both_countries(world: World) -> None:
    xk_case, _ = notify(world, **{**notification(subject=ADULT), "legal_basis": "consent-of-data-subject"})
    world.pump()
    me_case = me_case_id(world, reference(world, xk_case))
    sending.notify_consent_withdrawn(
        world.deps,
        XK,
        xk_case,
        scope="cross-border-exchange",
        effective_on="2026-06-01",
        legal_basis=BASIS,
        idempotency_key="c",
    )
    world.pump()
    out = record_events(world, xk_case, events.CONSENT_WITHDRAWN)
    arrived = record_events(world, me_case, events.CONSENT_WITHDRAWN)
    assert [e["data"]["direction"] for e in out] == ["out"] and out[0]["data"]["countries"] == ["ME"]
    assert [e["data"]["direction"] for e in arrived] == ["in"] and arrived[0]["data"]["countries"] == ["XK"]
    assert arrived[0]["data"]["forms_restricted"] == 1
