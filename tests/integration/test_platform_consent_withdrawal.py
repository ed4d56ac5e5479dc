"""An adult's withdrawal of consent, end to end on the real platform: recorded once in identification, it ends what
rested on her consent in every service and in the partner country, and appears on every timeline.

An adult identified in Albania has two referrals (one proposed, one accepted by the shelter), a return case to
Montenegro with her consent recorded, and a transnational case linked to her identification case, whose
notification (sent on her consent) and return request Montenegro has received. A case manager then records the
withdrawal once, in identification. Without anyone asking the other services:
- referral cancels the proposed referral and revokes the accepted one (reason `consent_withdrawn`, the place
  freed) and refuses a new referral for her;
- return stops her return case (`consent_withdrawn`), and Montenegro's return case stops too;
- Albania's exchange restricts what was sent on her consent, tells Montenegro with a signed `consent-withdrawn`
  notice, and refuses to send anything more about her on her consent;
- her identification case's timeline, each referral's, the return case's and the transnational case's record say so.
"""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest

from devstack.demo import Gateway, origin_case, ret, wait_for
from tests.integration.platform_helpers import RETURN_CONSENT
from tests.integration.test_referral_api import Api, free_places, shelter

pytestmark = pytest.mark.integration

CONSENT_BASIS = "consent-of-data-subject"
ADULT = {"age_group": "adult", "consent": {"given": True, "recorded_on": "2026-12-01"}}
GIVEN = "Consentwithdrawn"


def _attempt(platform: Any, user: str, method: str, path: str, body: Any, purpose: str) -> httpx.Response:
    """One call that may be refused (the demo Gateway raises on a refusal)."""
    headers = {
        "Authorization": f"Bearer {platform.token(user)}",
        "X-Purpose": purpose,
        "Idempotency-Key": f"test-{uuid.uuid4()}",
    }
    return httpx.request(method, platform.gateway + path, headers=headers, json=body, timeout=60)


def _referral(gw: Gateway, case_id: str) -> dict[str, Any]:
    body = {"service_type": "shelter", "case_id": case_id}
    return gw.call("al-case-manager", "POST", "/v1/referral/referrals", body, purpose="referral")


def _exchange(
    gw: Gateway, user: str, method: str, path: str, body: Any = None, **params: Any
) -> dict[str, Any]:
    return gw.call(user, method, "/v1/exchange" + path, body, purpose="cross-border-exchange", **params)


def _arrived(gw: Gateway, reference: str, form: str) -> str:
    """Montenegro's record of the case, once `form` has reached it."""

    def probe() -> str | None:
        for case in _exchange(gw, "me-contact-point", "GET", "/cases", limit=200)["items"]:
            if case["reference"] == reference and form in {f["id"] for f in case["forms"]}:
                return str(case["id"])
        return None

    return str(wait_for(probe, f"form {form} reaching Montenegro"))


def _send(gw: Gateway, case: str, form_type: str, content: dict[str, Any]) -> str:
    body = {
        "form_type": form_type,
        "recipient": "ME",
        "case_id": case,
        "legal_basis": CONSENT_BASIS,
        "subject": ADULT,
        "content": content,
    }
    _, form = gw.located("al-contact-point", "/v1/exchange/drafts", body, purpose="cross-border-exchange")
    _exchange(gw, "al-contact-point", "POST", f"/cases/{case}/forms/{form}/send")
    return form


def test_one_withdrawal_ends_what_rested_on_her_consent_in_every_service_and_country(
    running_platform: Any,
) -> None:
    platform = running_platform
    gw = Gateway(platform.gateway, platform.issuer)
    person = {"given_names": [GIVEN], "surnames": ["Krasniqi"], "date_of_birth": "1994", "sex": "female"}
    adult = gw.call("al-case-manager", "POST", "/v1/identification/persons", person, purpose="identification")
    person_id, case_id = adult["id"], adult["case_id"]

    # Referral: one proposed, one requested and accepted by the shelter (a place taken).
    provider = shelter(Api(platform), places=2)
    proposed = _referral(gw, case_id)
    accepted = _referral(gw, case_id)
    request = {
        "provider_id": provider["id"],
        "age_group": "adult",
        "sex": "female",
        "consent": {"given": True},
    }
    gw.call(
        "al-case-manager",
        "POST",
        f"/v1/referral/referrals/{accepted['id']}/request",
        request,
        purpose="referral",
    )
    transition = {"action": "accept"}
    path = f"/v1/referral/referrals/{accepted['id']}/transitions"
    gw.call("al-shelter", "POST", path, transition, purpose="referral")
    places_taken = free_places(Api(platform), provider["id"])

    # Exchange: a notification on her consent to Montenegro, from a record linked to her identification case.
    notification = {
        "form_type": "notification",
        "recipient": "ME",
        "legal_basis": CONSENT_BASIS,
        "subject": ADULT,
        "content": {
            "person": {
                "given_names": [GIVEN],
                "surnames": ["Krasniqi"],
                "date_of_birth": "1994",
                "sex": "female",
            },
            "category": "victim",
            "links": ["national"],
            "forms_of_exploitation": ["labour"],
            "identified_on": "2026-12-01",
        },
    }
    drafted, notice = gw.located(
        "al-contact-point", "/v1/exchange/drafts", notification, purpose="cross-border-exchange"
    )
    al_record = drafted["id"]
    link = {"identification_case_id": case_id}
    _exchange(gw, "al-contact-point", "PUT", f"/cases/{al_record}/identification-case", link)
    _exchange(gw, "al-contact-point", "POST", f"/cases/{al_record}/forms/{notice}/send")
    reference = _exchange(gw, "al-contact-point", "GET", f"/cases/{al_record}")["reference"]
    me_record = _arrived(gw, reference, notice)
    _exchange(gw, "me-contact-point", "POST", f"/cases/{me_record}/forms/{notice}/acknowledge")

    # Return: Albania's case with her consent, and the request that opens Montenegro's.
    opened = {
        "origin_country": "ME",
        "age_group": "adult",
        "identification_case_id": case_id,
        "exchange_case_id": al_record,
    }
    al_return = ret(gw, "al-case-manager", "POST", "/cases", opened)["id"]
    consent = RETURN_CONSENT
    ret(gw, "al-case-manager", "POST", f"/cases/{al_return}/consent", consent)
    request_form = _send(
        gw, al_record, "return-request", {"wish": "adult-voluntary-wish", "fit_to_travel": True}
    )
    _arrived(gw, reference, request_form)
    me_return = origin_case(gw, me_record)

    # The withdrawal, recorded once in identification by the case manager who heard it.
    withdrawn = gw.call(
        "al-case-manager",
        "POST",
        f"/v1/identification/persons/{person_id}/consent-withdrawal",
        {"expressed": "in_writing"},
        purpose="identification",
    )
    withdrawal_id = withdrawn["consent_withdrawal"]["id"]
    case = gw.call("al-case-manager", "GET", f"/v1/identification/cases/{case_id}", purpose="identification")
    assert [e for e in case["timeline"] if e["type"] == "consent_withdrawn"][0][
        "withdrawal_id"
    ] == withdrawal_id

    # Referral: both referrals ended with the reason, on their timelines; the shelter's place is free again.
    def referrals_ended() -> dict[str, dict[str, Any]] | None:
        found = {
            name: gw.call("al-case-manager", "GET", f"/v1/referral/referrals/{r['id']}", purpose="referral")
            for name, r in (("proposed", proposed), ("accepted", accepted))
        }
        return found if all(r["status"] in ("cancelled", "revoked") for r in found.values()) else None

    ended = wait_for(referrals_ended, "her referrals ending")
    assert ended["proposed"]["status"] == "cancelled" and ended["accepted"]["status"] == "revoked"
    for referral in ended.values():
        assert referral["timeline"][-1]["reason"] == "consent_withdrawn", referral["timeline"][-1]
    assert free_places(Api(platform), provider["id"]) == places_taken + 1

    # Return: stopped in Albania with the reason, and in Montenegro, told across the border.
    def returns_stopped() -> tuple[dict[str, Any], dict[str, Any]] | None:
        al = ret(gw, "al-case-manager", "GET", f"/cases/{al_return}")
        me = ret(gw, "me-case-manager", "GET", f"/cases/{me_return}")
        return (al, me) if al["status"] == me["status"] == "stopped" else None

    al_case, me_case = wait_for(returns_stopped, "the return stopping on both sides")
    assert al_case["reason"] == "consent_withdrawn"
    assert me_case["reason"] in ("consent_withdrawn", "stopped_in_partner_country")

    # Exchange: Albania's record says consent was withdrawn and Montenegro received the signed notice.
    def notice_received() -> dict[str, Any] | None:
        record = _exchange(gw, "me-contact-point", "GET", f"/cases/{me_record}")
        return record if any(f["form_type"] == "consent-withdrawn" for f in record["forms"]) else None

    me_view = wait_for(notice_received, "the consent-withdrawn notice reaching Montenegro")
    (received,) = [f for f in me_view["forms"] if f["form_type"] == "consent-withdrawn"]
    content = _exchange(gw, "me-contact-point", "GET", f"/cases/{me_record}/forms/{received['id']}")
    assert content["content"]["scope"] == "all-processing"
    assert me_view["consent_withdrawn_at"]
    al_view = _exchange(gw, "al-contact-point", "GET", f"/cases/{al_record}")
    assert al_view["consent_withdrawn_at"]
    assert [f["direction"] for f in al_view["forms"] if f["form_type"] == "consent-withdrawn"] == ["out"]

    # Nothing new rests on her consent: no new referral for her case, no form about her sent on it.
    again = _attempt(
        platform,
        "al-case-manager",
        "POST",
        "/v1/referral/referrals",
        {"service_type": "shelter", "case_id": case_id},
        "referral",
    )
    assert again.status_code == 409, again.text
    assert "consent_withdrawn" in again.text, again.text
    body = {
        "form_type": "return-request",
        "recipient": "ME",
        "case_id": al_record,
        "legal_basis": CONSENT_BASIS,
        "subject": ADULT,
        "content": {"wish": "adult-voluntary-wish", "fit_to_travel": True},
    }
    more = _attempt(
        platform, "al-contact-point", "POST", "/v1/exchange/drafts", body, "cross-border-exchange"
    )
    assert more.status_code == 409 and "consent_withdrawn" in more.text, more.text
    # A second withdrawal changes nothing: the first stands.
    twice = _attempt(
        platform,
        "al-case-manager",
        "POST",
        f"/v1/identification/persons/{person_id}/consent-withdrawal",
        {"expressed": "in_person"},
        "identification",
    )
    assert twice.status_code == 409, twice.text
