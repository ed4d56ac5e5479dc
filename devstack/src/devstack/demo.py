"""`make demo`: the first case run fully under the protocol, replayed on a running `make run`.

Two Montenegrin children identified in Kosovo - one exploited in forced begging, one in a child marriage - return
to Montenegro: identification in Kosovo, the notification to Montenegro, the family and risk assessments both
ways, the best-interests determination, the plan, the handover and reception, a reception referral in Montenegro,
a reintegration report shared back, and the closure on both sides. Every step goes through the gateway with the
demo users' own tokens, as the officers of both countries would act. At the end it prints, for each child, the
return case's timeline as Kosovo sees it beside the one Montenegro sees, and each country's message log.

Each run is a new story (new people, new cases): running it twice shows two more children. `run_story` is also
the platform's whole-chain integration test (tests/integration/test_return_story.py), so the demo cannot rot.
"""

from __future__ import annotations

import json
import sys
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

import httpx

from devstack.keycloak import password_grant
from devstack.paths import data_dir

WAIT_S = 120.0  # forms and events cross Kafka: seconds, unless the platform is starting or overloaded
BASIS = "protection-of-vital-interests"
CHILD_SUBJECT = {
    "age_group": "child",
    "child_views": {"heard": True, "position": "agrees", "recorded_on": date.today().isoformat()},
}
# The Montenegrin children's shelter of the demo realm (me-shelter's agency).
ME_SHELTER_AGENCY = "shelter-sigurna-luka"


class StoryError(RuntimeError):
    """A step the platform refused: which user, which call, what it answered."""


@dataclass
class Gateway:
    """The demo users' calls through the gateway, each with her own token (password grant of the test client)."""

    base: str
    issuer: str
    tokens: dict[str, tuple[float, str]] = field(default_factory=dict)

    def token(self, user: str) -> str:
        cached = self.tokens.get(user)
        if cached and time.monotonic() - cached[0] < 120:
            return cached[1]
        response = password_grant(self.issuer, user, timeout=30)
        if response.is_error:
            raise StoryError(f"login of {user}: {response.status_code} {response.text}")
        self.tokens[user] = (time.monotonic(), str(response.json()["access_token"]))
        return self.tokens[user][1]

    def call(
        self, user: str, method: str, path: str, body: Any = None, *, purpose: str, **params: Any
    ) -> dict[str, Any]:
        response = self._send(user, method, path, body, purpose, params)
        return dict(response.json()) if response.content else {}

    def located(self, user: str, path: str, body: Any, *, purpose: str) -> tuple[dict[str, Any], str]:
        """A POST answered 201 with `Location`: (body, the id at the end of the location)."""
        response = self._send(user, "POST", path, body, purpose, {})
        return dict(response.json()), response.headers["location"].rsplit("/", 1)[1]

    def _send(
        self, user: str, method: str, path: str, body: Any, purpose: str, params: dict[str, Any]
    ) -> httpx.Response:
        """One call as `user`; a 429 (her request budget, as `make run` enforces it) or a 503 (a dependency
        catching up) is waited out as Retry-After says and sent again, with the same Idempotency-Key."""
        headers = {"Authorization": f"Bearer {self.token(user)}", "X-Purpose": purpose}
        if method == "POST":
            headers["Idempotency-Key"] = f"demo-{uuid.uuid4()}"  # one per step, kept across the retries below
        for _ in range(30):
            response = httpx.request(
                method, self.base + path, headers=headers, json=body, params=params or None, timeout=60
            )
            if response.status_code not in (429, 503):
                break
            time.sleep(min(5.0, float(response.headers.get("Retry-After", "1"))))
        if response.is_error:
            raise StoryError(f"{user} {method} {path}: {response.status_code} {response.text}")
        return response


def wait_for(probe: Callable[[], Any], what: str, timeout_s: float = WAIT_S) -> Any:
    deadline = time.monotonic() + timeout_s
    while True:
        found = probe()
        if found:
            return found
        if time.monotonic() > deadline:
            raise StoryError(f"timed out after {timeout_s:.0f} s waiting for {what}")
        time.sleep(0.5)


# ------------------------------------------------------------------------------------------ the exchange


class Exchange:
    """The two coordinators' offices of one transnational case (their contact points send and acknowledge)."""

    def __init__(self, gw: Gateway, subject: dict[str, Any] | None = None) -> None:
        self.gw = gw
        self.subject = subject or CHILD_SUBJECT  # whom the forms are about (a child: her views heard)
        self.records: dict[str, str] = {}  # country -> its record id
        self.reference = ""

    def call(self, user: str, method: str, path: str, body: Any = None, **params: Any) -> dict[str, Any]:
        return self.gw.call(
            user, method, "/v1/exchange" + path, body, purpose="cross-border-exchange", **params
        )

    def notify(self, content: dict[str, Any]) -> str:
        body = {
            "form_type": "notification",
            "recipient": "ME",
            "legal_basis": BASIS,
            "subject": self.subject,
            "content": content,
        }
        drafted, form = self.gw.located(
            "xk-contact-point", "/v1/exchange/drafts", body, purpose="cross-border-exchange"
        )
        self.records["XK"] = drafted["id"]
        self.call("xk-contact-point", "POST", f"/cases/{drafted['id']}/forms/{form}/send")
        self.reference = self.call("xk-contact-point", "GET", f"/cases/{drafted['id']}")["reference"]
        self.records["ME"] = self.arrived("ME", form)
        self.acknowledge("ME", form)
        return form

    def send(self, sender: str, form_type: str, content: dict[str, Any], refers_to: str | None = None) -> str:
        """A form from `sender` to the other country, delivered and acknowledged there; its id."""
        recipient = "ME" if sender == "XK" else "XK"
        body: dict[str, Any] = {
            "form_type": form_type,
            "recipient": recipient,
            "case_id": self.records[sender],
            "legal_basis": BASIS,
            "subject": self.subject,
            "content": content,
        }
        if refers_to:
            body["refers_to"] = refers_to
        user = f"{sender.lower()}-contact-point"
        _, form = self.gw.located(user, "/v1/exchange/drafts", body, purpose="cross-border-exchange")
        self.call(user, "POST", f"/cases/{self.records[sender]}/forms/{form}/send")
        self.arrived(recipient, form)
        self.acknowledge(recipient, form)
        return form

    def arrived(self, country: str, form: str) -> str:
        user = f"{country.lower()}-contact-point"

        def probe() -> str | None:
            for case in self.call(user, "GET", "/cases", limit=200)["items"]:
                if case["reference"] == self.reference and form in {f["id"] for f in case["forms"]}:
                    return str(case["id"])
            return None

        return str(wait_for(probe, f"form {form} reaching {country}"))

    def acknowledge(self, country: str, form: str) -> None:
        user = f"{country.lower()}-contact-point"
        self.call(user, "POST", f"/cases/{self.records[country]}/forms/{form}/acknowledge")


# ------------------------------------------------------------------------------------------ the story


@dataclass
class Child:
    given: str
    exploitation: str
    identification_case: str = ""
    reference: str = ""
    records: dict[str, str] = field(default_factory=dict)  # country -> exchange record
    returns: dict[str, dict[str, Any]] = field(default_factory=dict)  # country -> return case as it ended
    referral: dict[str, Any] = field(default_factory=dict)  # the reception referral in Montenegro


def ret(gw: Gateway, user: str, method: str, path: str, body: Any = None, **params: Any) -> dict[str, Any]:
    return gw.call(user, method, "/v1/return" + path, body, purpose="return", **params)


# What Montenegro's case manager asks for as she records the child's arrival (referral service types).
RECEPTION_SERVICES = ["child_shelter", "psycho_social"]


def step(
    gw: Gateway, user: str, case_id: str, action: str, reason: str | None = None, **extra: Any
) -> dict[str, Any]:
    body = {"action": action, **({"reason": reason} if reason else {}), **extra}
    return ret(gw, user, "POST", f"/cases/{case_id}/transitions", body)


def one_child(gw: Gateway, given: str, exploitation: str, shelter: str) -> Child:
    today = datetime.now(UTC).date()
    travel = (today + timedelta(days=7)).isoformat()
    child = Child(given, exploitation)

    # Kosovo: the police identify the child; the identification case says she is a child.
    person = {"given_names": [given], "surnames": ["Hoxha"], "date_of_birth": "2012", "sex": "female"}
    registered = gw.call("xk-police", "POST", "/v1/identification/persons", person, purpose="identification")
    child.identification_case = registered["case_id"]

    # Kosovo notifies Montenegro through the exchange.
    exchange = Exchange(gw)
    notification = exchange.notify(
        {
            "person": {**person, "nationalities": ["ME"]},
            "category": "potential-victim",
            "links": ["national"],
            "forms_of_exploitation": [exploitation],
            "unaccompanied": True,
            "identified_on": today.isoformat(),
            "immediate_needs": ["shelter", "guardian"],
        }
    )
    child.reference, child.records = exchange.reference, exchange.records

    # Kosovo's return case: the person from identification (read on the case manager's behalf), the record of
    # the transnational case, so that every return form crossing on it lands on the timeline.
    opened = {
        "origin_country": "ME",
        "identification_case_id": child.identification_case,
        "exchange_case_id": exchange.records["XK"],
    }
    xk_case = ret(gw, "xk-case-manager", "POST", "/cases", opened)["id"]
    step(gw, "xk-case-manager", xk_case, "start_assessment")

    # The family assessment by Montenegro's social services, and the risk assessments both ways.
    family_request = exchange.send(
        "XK", "family-assessment-request", {"requested": ["trace-family"]}, refers_to=notification
    )
    family_report = exchange.send(
        "ME",
        "family-assessment-report",
        {
            "family_traced": True,
            "family_willing": "yes",
            "protection_capacity": "adequate",
            "risk_factors": [],
            "recommendation": "return-to-family",
        },
        refers_to=family_request,
    )
    family = {
        "received_on": today.isoformat(),
        "outcome": "family_can_care_with_support",
        "from_country": "ME",
    }
    ret(
        gw,
        "xk-social-worker",
        "POST",
        f"/cases/{xk_case}/family-assessment",
        {**family, "agency": "social-services"},
    )
    risk_xk = exchange.send(
        "XK", "risk-assessment-request", {"scope": ["return-risk"]}, refers_to=family_report
    )
    exchange.send(
        "ME",
        "risk-assessment-report",
        {"risk_level": "low", "recommendation": "return-possible"},
        refers_to=risk_xk,
    )
    risk_me = exchange.send(
        "ME", "risk-assessment-request", {"scope": ["re-trafficking-risk"]}, family_report
    )
    exchange.send(
        "XK", "risk-assessment-report", {"risk_level": "low", "recommendation": "return-possible"}, risk_me
    )

    # The best interests: an assessment, a panel member given the case, her panel's determination for return.
    assessment = {
        "assessed_on": today.isoformat(),
        "assessed_by": "Best-interests officer",
        "agency": "child-protection",
    }
    ret(gw, "xk-case-manager", "POST", f"/cases/{xk_case}/best-interests-assessment", assessment)
    panel_member = _sub(gw.token("xk-bid-panel"))
    ret(gw, "xk-case-manager", "POST", f"/cases/{xk_case}/panel-members", {"member": panel_member})
    determination = {
        "decided_on": today.isoformat(),
        "members": [
            {"role": "legal_guardian", "agency": "child-protection"},
            {"role": "social_worker", "agency": "social-services"},
            {"role": "psychologist"},
        ],
        "decision": "return",
        "solution": "return_to_family",
        "reasons": {"language": "en", "text": "The family can care for her with support; the risk is low."},
        "child_views": {"method": "interview_with_guardian", "language": "sq", "text": "Dua të kthehem."},
        "alternatives_considered": ["return_to_family", "local_integration"],
    }
    ret(gw, "xk-bid-panel", "POST", f"/cases/{xk_case}/determination", determination)
    step(gw, "xk-case-manager", xk_case, "record_decision")

    # The return request: Montenegro's return case opens when it arrives.
    request = exchange.send(
        "XK",
        "return-request",
        {
            "wish": "child-best-interests-determined",
            "proposed_date": travel,
            "travel_documents_needed": True,
            "escort_required": True,
            "fit_to_travel": True,
        },
        refers_to=family_report,
    )
    me_case = origin_case(gw, exchange.records["ME"])

    # Kosovo's coordinator approves the plan (the child gate lets it through: a determination for return) and
    # shares it; she travels with an escort; Montenegro confirms the handover and receives her.
    plan = {
        "travel_documents": [{"type": "emergency_travel_document", "status": "ready"}],
        "travel_date": travel,
        "route": {"origin": "XK", "destination": "ME", "transit": []},
        "escort": {"role": "social_worker", "agency": "social-services"},
        "special_needs": ["interpreter_during_travel"],
        "fit_to_travel": True,
        "reception": {"agency": "social-services", "services": ["child_shelter", "psycho_social"]},
    }
    ret(gw, "xk-coordinator", "POST", f"/cases/{xk_case}/plan", plan)
    shared_plan = exchange.send(
        "XK",
        "return-plan",
        {
            "travel_date": travel,
            "border_crossing": "Kulla",
            "transport_mode": "road",
            "escort": ["social-worker"],
            "travel_documents": "issued",
            "fit_to_travel": True,
            "reception_services": ["shelter", "psycho-social-support"],
        },
        refers_to=request,
    )
    step(gw, "xk-case-manager", xk_case, "record_departure")
    handover = exchange.send(
        "ME",
        "handover-confirmation",
        {
            "handed_over_at": datetime.now(UTC).strftime("%Y-%m-%dT%H:%MZ"),
            "border_crossing": "Kulla",
            "received_by": "social-services",
            "escort_present": True,
            "documents_handed_over": True,
        },
        refers_to=shared_plan,
    )
    # Montenegro records her arrival with the services she needs: its referral service proposes them.
    step(gw, "me-case-manager", me_case, "record_reception", reception_services=RECEPTION_SERVICES)
    step(gw, "xk-case-manager", xk_case, "record_reception")

    # Montenegro's reception: the proposed place in a children's shelter, sent to the shelter.
    child.referral = _reception_referral(gw, shelter, given, me_case)

    # Reintegration in Montenegro, the follow-up report shared back, and the closure on both sides.
    step(gw, "me-case-manager", me_case, "record_reintegration_plan")
    step(gw, "me-case-manager", me_case, "record_follow_up")
    exchange.send(
        "ME",
        "reintegration-follow-up",
        {
            "period": "1-month",
            "plan_in_place": True,
            "services_received": ["shelter", "psycho-social-support", "education"],
            "occupation": "school",
            "situation": "stable",
        },
        refers_to=handover,
    )
    child.referral = _referral_step(gw, "me-shelter", child.referral["id"], "complete", "service_delivered")
    exchange.send("XK", "case-closure", {"reason": "reintegration-completed"})
    step(gw, "me-case-manager", me_case, "close", "reintegration_completed")
    step(gw, "xk-case-manager", xk_case, "close", "reintegration_completed")

    # The timelines follow the exchange's events: wait for the closure form on both.
    for user, case_id in (("xk-case-manager", xk_case), ("me-case-manager", me_case)):
        country = user[:2].upper()
        child.returns[country] = wait_for(
            lambda user=user, case_id=case_id: _with_form(gw, user, case_id, "case-closure"),  # type: ignore[misc]
            f"the closure on {country}'s return timeline",
        )
    return child


def _sub(token: str) -> str:
    import base64

    payload = token.split(".")[1]
    return str(json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))["sub"])


def origin_case(gw: Gateway, me_record: str) -> str:
    """Montenegro's return case of its exchange record, once the return request opened it."""

    def probe() -> str | None:
        cursor: str | None = None
        while True:
            params = {"limit": 200, **({"cursor": cursor} if cursor else {})}
            page = ret(gw, "me-case-manager", "GET", "/cases", **params)
            for case in page["items"]:
                if case["exchange_case_id"] == me_record and case["side"] == "origin":
                    return str(case["id"])
            cursor = page.get("next_cursor")
            if not cursor:
                return None

    return str(wait_for(probe, "Montenegro's return case opening from the return request"))


def _with_form(gw: Gateway, user: str, case_id: str, form_type: str) -> dict[str, Any] | None:
    case = ret(gw, user, "GET", f"/cases/{case_id}")
    return case if any(e.get("form_type") == form_type for e in case["timeline"]) else None


def me_shelter(gw: Gateway) -> str:
    """The Montenegrin children's shelter in the referral directory (registered once by the coordinator)."""
    call = lambda user, method, path, body=None, **params: gw.call(  # noqa: E731
        user, method, "/v1/referral" + path, body, purpose="referral", **params
    )
    listed = call("me-coordinator", "GET", "/providers", service_type="child_shelter")["items"]
    found = [p for p in listed if p["agency_id"] == ME_SHELTER_AGENCY]
    if found:
        return str(found[0]["id"])
    body = {
        "agency_id": ME_SHELTER_AGENCY,
        "name": "Sigurna luka",
        "kind": "ngo",
        "service_types": ["child_shelter"],
        "languages": ["srp", "sqi"],
        "municipalities": ["ME-PG"],
        "accepts": {"children": True, "adults": False, "sexes": ["female"]},
        "hours": {"always": True},
        "capacity": {"girls": 4},
    }
    return str(call("me-coordinator", "POST", "/providers", body)["id"])


def _reception_referral(gw: Gateway, shelter: str, given: str, me_case: str) -> dict[str, Any]:
    """The shelter proposal Montenegro's referral service made from the reception (return's event), requested
    from the shelter, accepted and started."""

    def proposed_shelter() -> dict[str, Any] | None:
        page = gw.call(
            "me-case-manager",
            "GET",
            "/v1/referral/referrals",
            purpose="referral",
            status="proposed",
            return_case_id=me_case,
        )
        return next((r for r in page["items"] if r["service_type"] == "child_shelter"), None)

    proposed = wait_for(proposed_shelter, "the shelter proposal from Montenegro's reception")
    body = {
        "provider_id": shelter,
        "age_group": "child",
        "sex": "female",
        "municipality": "ME-PG",
        "legal_basis": "child-protection-duty",
        "case_fields": {"given_names": [given], "guardian_name": "Centre for Social Work Podgorica"},
    }
    path = f"/v1/referral/referrals/{proposed['id']}/request"
    gw.call("me-case-manager", "POST", path, body, purpose="referral")
    _referral_step(gw, "me-shelter", proposed["id"], "accept")
    return _referral_step(gw, "me-shelter", proposed["id"], "start")


def _referral_step(
    gw: Gateway, user: str, referral: str, action: str, reason: str | None = None
) -> dict[str, Any]:
    body = {"action": action, **({"reason": reason} if reason else {})}
    return gw.call(user, "POST", f"/v1/referral/referrals/{referral}/transitions", body, purpose="referral")


def message_log(gw: Gateway, country: str, references: set[str]) -> list[dict[str, Any]]:
    user = f"{country.lower()}-coordinator"
    items: list[dict[str, Any]] = []
    cursor: str | None = None
    while True:
        params = {"limit": 200, **({"cursor": cursor} if cursor else {})}
        page = gw.call(user, "GET", "/v1/exchange/message-log", purpose="cross-border-exchange", **params)
        items += [e for e in page["items"] if e["case_reference"] in references]
        cursor = page.get("next_cursor")
        if not cursor:
            return items


@dataclass
class Story:
    children: list[Child]
    logs: dict[str, list[dict[str, Any]]]  # country -> its message-log entries of the story


def run_story(gw: Gateway) -> Story:
    shelter = me_shelter(gw)
    children = [
        one_child(gw, "Arta", "forced-begging", shelter),
        one_child(gw, "Drita", "forced-marriage", shelter),
    ]
    references = {child.reference for child in children}
    return Story(children, {country: message_log(gw, country, references) for country in ("XK", "ME")})


# ------------------------------------------------------------------------------------------ printing

WIDTH = 58


def _entry(entry: dict[str, Any]) -> str:
    what = entry["action"]
    if entry.get("form_type"):
        what += f" {entry['form_type']}"
    if entry.get("reason"):
        what += f" ({entry['reason']})"
    return f"{entry['at'][11:19]} {what}"


def side_by_side(left: list[str], right: list[str], titles: tuple[str, str]) -> str:
    rows = [f"{titles[0]:<{WIDTH}} | {titles[1]}", f"{'-' * WIDTH}-+-{'-' * WIDTH}"]
    for i in range(max(len(left), len(right))):
        a = left[i] if i < len(left) else ""
        b = right[i] if i < len(right) else ""
        rows.append(f"{a[:WIDTH]:<{WIDTH}} | {b[:WIDTH]}")
    return "\n".join(rows)


def render(story: Story) -> str:
    out: list[str] = []
    for child in story.children:
        xk, me = child.returns["XK"], child.returns["ME"]
        out += [
            "",
            f"== {child.given}, {child.exploitation}: transnational case {child.reference} ==",
            f"   reception referral in Montenegro: {child.referral.get('service_type')} -> "
            f"{child.referral.get('status')}",
            side_by_side(
                [_entry(e) for e in xk["timeline"]],
                [_entry(e) for e in me["timeline"]],
                (
                    f"Kosovo (host) return case: {xk['status']}",
                    f"Montenegro (origin) return case: {me['status']}",
                ),
            ),
        ]
    logs = {
        country: [
            f"{e['seq']:>5} {e['direction']:<8} {e['form_type']:<26} {e['sender']}->{e['recipient']}"
            for e in entries
        ]
        for country, entries in story.logs.items()
    }
    out += ["", "== message logs (signed envelopes, hash-chained; metadata only) ==",
            side_by_side(logs["XK"], logs["ME"], ("Kosovo", "Montenegro"))]  # fmt: skip
    return "\n".join(out)


def main() -> int:
    state_file = data_dir("run") / "urls.json"
    if not state_file.exists():
        print("The platform is not running: start `make run` in another terminal, then `make demo`.")
        return 2
    state = json.loads(state_file.read_text())
    gw = Gateway(state["services"]["gateway"], state["env"]["OIDC_ISSUER"])
    started = time.monotonic()
    try:
        story = run_story(gw)
    except StoryError as error:
        print(f"demo stopped: {error}")
        return 1
    print(render(story))
    print(f"\n(two children's returns, {time.monotonic() - started:.0f} s, through the gateway)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
