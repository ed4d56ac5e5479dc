"""The whole return chain across the border, on the running platform, through the gateway with real tokens of
users of both countries - the story `make demo` tells (devstack/demo.py), run here so that it cannot rot: two
children identified in Kosovo, notified to Montenegro, assessed on both sides, determined, planned, handed over,
received, referred to a shelter in Montenegro, followed up and closed on both sides; and an adult's withdrawal of
consent to return in Kosovo stopping the return in Montenegro too."""

from __future__ import annotations

from typing import Any

import pytest

from devstack.demo import Exchange, Gateway, origin_case, render, ret, run_story, wait_for
from tests.integration.platform_helpers import RETURN_CONSENT

pytestmark = pytest.mark.integration

ADULT = {"age_group": "adult", "consent": {"given": True, "recorded_on": "2026-12-01"}}


@pytest.fixture
def gateway(running_platform: Any) -> Gateway:
    return Gateway(running_platform.gateway, running_platform.env["OIDC_ISSUER"])


def crossed(case: dict[str, Any]) -> list[tuple[str, str]]:
    return [(e["action"], e["form_type"]) for e in case["timeline"] if e.get("form_type")]


def test_two_childrens_returns_run_the_whole_chain_on_both_sides(gateway: Gateway) -> None:
    story = run_story(gateway)
    assert len({child.reference for child in story.children}) == 2
    for child in story.children:
        xk, me = child.returns["XK"], child.returns["ME"]
        assert (xk["status"], xk["side"], xk["treated_as_child"]) == ("closed", "host", True)
        assert (me["status"], me["side"], me["host_country"]) == ("closed", "origin", "XK")
        # What crossed, as each side saw it go and arrive.
        assert crossed(xk) == [
            ("form_sent", "family-assessment-request"),
            ("form_received", "family-assessment-report"),
            ("form_sent", "risk-assessment-request"),
            ("form_received", "risk-assessment-report"),
            ("form_received", "risk-assessment-request"),
            ("form_sent", "risk-assessment-report"),
            ("form_sent", "return-request"),
            ("form_sent", "return-plan"),
            ("form_received", "handover-confirmation"),
            ("form_received", "reintegration-follow-up"),
            ("form_sent", "case-closure"),
        ], xk["timeline"]
        assert crossed(me) == [
            ("form_received", "return-request"),
            ("form_received", "return-plan"),
            ("form_sent", "handover-confirmation"),
            ("form_sent", "reintegration-follow-up"),
            ("form_received", "case-closure"),
        ], me["timeline"]
        # The host's own steps, through the child gate; the origin's reception and reintegration.
        steps = [e["action"] for e in xk["timeline"] if not e.get("form_type")]
        assert steps.index("determination_recorded") < steps.index("approve_plan") < steps.index("close")
        assert [e["action"] for e in me["timeline"] if not e.get("form_type")] == [
            "open",
            "record_reception",
            "record_reintegration_plan",
            "record_follow_up",
            "close",
        ]
        assert child.referral["status"] == "completed" and child.referral["service_type"] == "child_shelter"
        # Proposed by Montenegro's referral service from the reception its case manager recorded.
        assert child.referral["return_case_id"] == me["id"]
        assert me["reception_services"] == ["child_shelter", "psycho_social"]

    # Each envelope one country sent is in the other's message log as received.
    sent = {c: {e["envelope_id"] for e in log if e["direction"] == "sent"} for c, log in story.logs.items()}
    received = {
        c: {e["envelope_id"] for e in log if e["direction"] == "received"} for c, log in story.logs.items()
    }
    assert sent["XK"] and sent["XK"] <= received["ME"] and sent["ME"] <= received["XK"]
    printed = render(story)
    assert "Arta, forced-begging" in printed and "Drita, forced-marriage" in printed


def test_an_adults_withdrawal_of_consent_in_kosovo_stops_the_return_in_montenegro(gateway: Gateway) -> None:
    exchange = Exchange(gateway, subject=ADULT)
    exchange.notify(
        {
            "person": {
                "given_names": ["Besa"],
                "surnames": ["Gashi"],
                "date_of_birth": "1998",
                "sex": "female",
            },
            "category": "victim",
            "links": ["national"],
            "forms_of_exploitation": ["labour"],
            "identified_on": "2026-12-01",
        }
    )
    opened = {"origin_country": "ME", "age_group": "adult", "exchange_case_id": exchange.records["XK"]}
    xk_case = ret(gateway, "xk-case-manager", "POST", "/cases", opened)["id"]
    consent = RETURN_CONSENT
    ret(gateway, "xk-case-manager", "POST", f"/cases/{xk_case}/consent", consent)
    exchange.send("XK", "return-request", {"wish": "adult-voluntary-wish", "fit_to_travel": True})
    me_case = origin_case(gateway, exchange.records["ME"])

    # A social worker in Kosovo records the withdrawal: Kosovo's return stops at once ...
    stopped = ret(gateway, "xk-social-worker", "POST", f"/cases/{xk_case}/consent-withdrawal")
    assert (stopped["status"], stopped["reason"]) == ("stopped", "consent_withdrawn")

    # ... and Montenegro's, told by Kosovo's exchange with the reason, signed like every form.
    def me_stopped() -> dict[str, Any] | None:
        case = ret(gateway, "me-case-manager", "GET", f"/cases/{me_case}")
        return case if case["status"] == "stopped" else None

    case = wait_for(me_stopped, "Montenegro's return case stopping")
    assert case["reason"] == "stopped_in_partner_country"
    assert ("form_received", "return-stopped") in crossed(case)
    record = exchange.call("me-contact-point", "GET", f"/cases/{exchange.records['ME']}")
    (notice,) = [f for f in record["forms"] if f["form_type"] == "return-stopped"]
    content = exchange.call("me-contact-point", "GET", f"/cases/{record['id']}/forms/{notice['id']}")
    assert content["content"] == {"reason": "consent-withdrawn"}

    # Nothing more for Kosovo to do: its case had already stopped, and the notice is on its timeline as sent.
    def xk_notice() -> dict[str, Any] | None:
        case = ret(gateway, "xk-case-manager", "GET", f"/cases/{xk_case}")
        return case if ("form_sent", "return-stopped") in crossed(case) else None

    xk = wait_for(xk_notice, "the notice on Kosovo's timeline")
    assert xk["status"] == "stopped"
