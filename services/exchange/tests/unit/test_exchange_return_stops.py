"""A return stopped in one country is told to the other (service_layer/return_stops.py), on fakes: the
`return-stopped` form goes, signed by the country, to the partner that got the return request, under a basis that
is not consent; once per event; never for a stop the partner caused, a record consent was withdrawn on, or a
stop that names no record."""

from __future__ import annotations

import uuid
from typing import Any

from exchange.service_layer import cases, return_stops, sending
from services.exchange.tests.unit.conftest import ADULT, notification
from services.exchange.tests.unit.fakes import World, user

XK, ME = user("xk-contact-point"), user("me-contact-point")
RETURN_REQUEST = {"wish": "adult-voluntary-wish", "fit_to_travel": True}


def return_requested(world: World, basis: str = "consent-of-data-subject") -> tuple[str, str]:
    """XK notifies ME of an adult and sends the return request; ME has received both. (XK record, ME record)"""
    notice = {**notification(subject=ADULT), "legal_basis": basis}
    xk_record, _ = sending.draft_and_send(world.deps, XK, notice, idempotency_key="n-1")
    request = {
        "form_type": "return-request",
        "case_id": xk_record,
        "recipient": "ME",
        "legal_basis": basis,
        "subject": ADULT,
        "content": RETURN_REQUEST,
    }
    sending.draft_and_send(world.deps, XK, request, idempotency_key="r-1")
    world.pump()
    (me_case,) = cases.list_cases(world.deps, ME)
    return xk_record, me_case["id"]


def stopped(record: str | None, reason: str = "consent_withdrawn", country: str = "XK") -> dict[str, Any]:
    return {
        "id": str(uuid.uuid4()),
        "type": return_stops.RETURN_STOPPED_EVENT,
        "data": {
            "return_case_id": str(uuid.uuid4()),
            "owner_country": country,
            "exchange_case_id": record,
            "reason": reason,
        },
    }


def forms_of(world: World, caller: Any, record: str, form_type: str) -> list[dict[str, Any]]:
    return [f for f in cases.get_case(world.deps, caller, record)["forms"] if f["form_type"] == form_type]


def test_the_partner_that_got_the_return_request_is_told_the_return_stopped(world: World) -> None:
    xk_record, me_record = return_requested(world)
    assert return_stops.tell_partners_the_return_stopped(world.deps, stopped(xk_record)) == ["ME"]
    world.pump()
    (received,) = forms_of(world, ME, me_record, "return-stopped")
    assert received["direction"] == "in" and received["counterpart"] == "XK"
    form = cases.read_form(world.deps, ME, me_record, received["id"])
    assert form["content"] == {"reason": "consent-withdrawn"}
    # Consent to return was withdrawn: the notice does not rest on consent.
    (sent,) = forms_of(world, XK, xk_record, "return-stopped")
    assert sent["legal_basis"] == "bilateral-cooperation-agreement"


def test_a_redelivered_stop_sends_nothing_more(world: World) -> None:
    xk_record, me_record = return_requested(world)
    event = stopped(xk_record)
    return_stops.tell_partners_the_return_stopped(world.deps, event)
    world.pump()
    return_stops.tell_partners_the_return_stopped(world.deps, event)
    world.pump()
    assert len(forms_of(world, ME, me_record, "return-stopped")) == 1


def test_nothing_is_sent_for_a_stop_the_partner_caused_or_without_a_record(world: World) -> None:
    xk_record, _ = return_requested(world, basis="protection-of-vital-interests")
    assert return_stops.tell_partners_the_return_stopped(world.deps, stopped(None)) == []
    partner = stopped(xk_record, reason=return_stops.STOPPED_IN_PARTNER_COUNTRY)
    assert return_stops.tell_partners_the_return_stopped(world.deps, partner) == []
    # Another country's record id names nothing of Kosovo's.
    assert return_stops.tell_partners_the_return_stopped(world.deps, stopped(xk_record, country="AL")) == []
    assert world.transport.queue == []


def test_after_a_consent_notice_the_partner_already_knows(world: World) -> None:
    xk_record, _ = return_requested(world)
    sending.notify_consent_withdrawn(
        world.deps,
        XK,
        xk_record,
        scope="all-processing",
        effective_on="2026-06-01",
        legal_basis="protection-of-vital-interests",
        idempotency_key="c-1",
    )
    world.pump()
    assert return_stops.tell_partners_the_return_stopped(world.deps, stopped(xk_record)) == []
