"""The return service through the gateway with real tokens, on the running platform: a child identified in Kosovo
returns to Montenegro only through the child gate (no plan, and no decision, without a best-interests determination
in favour of return - also for a person who looks adult but whose age is not established), with the family
assessment, the best-interests assessment and a panel member's determination; an adult's withdrawal of consent
stops her return at once; another country sees nothing."""

from __future__ import annotations

import json
import uuid
from typing import Any

import httpx
import pytest
from pymongo import MongoClient

from tests.integration.platform_helpers import RETURN_CONSENT, token_claims

pytestmark = pytest.mark.integration

GATE = "no_determination_in_favour_of_return"
PLAN = {
    "travel_documents": [{"type": "emergency_travel_document", "status": "ready"}],
    "travel_date": "2099-01-15",
    "route": {"origin": "XK", "destination": "ME", "transit": []},
    "escort": {"role": "social_worker", "agency": "social-services"},
    "special_needs": ["interpreter_during_travel"],
    "fit_to_travel": True,
    "reception": {"agency": "social-services", "services": ["child_shelter", "psycho_social"]},
}
DETERMINATION = {
    "decided_on": "2026-12-02",
    "members": [
        {"role": "legal_guardian", "agency": "child-protection"},
        {"role": "social_worker", "agency": "social-services"},
        {"role": "psychologist"},
    ],
    "decision": "return",
    "solution": "return_to_family",
    "reasons": {"language": "en", "text": "The family assessment supports return with services."},
    "child_views": {"method": "interview_with_guardian", "language": "sq", "text": "Dëshiron të kthehet."},
    "alternatives_considered": ["return_to_family", "local_integration"],
}


class Api:
    def __init__(self, platform: Any) -> None:
        self.platform = platform
        self.tokens: dict[str, str] = {}

    def token(self, user: str) -> str:
        if user not in self.tokens:
            self.tokens[user] = self.platform.token(user)
        return self.tokens[user]

    def sub(self, user: str) -> str:
        return str(token_claims(self.token(user))["sub"])

    def __call__(
        self, user: str, method: str, path: str, body: Any = None, purpose: str = "return"
    ) -> httpx.Response:
        headers = {"Authorization": f"Bearer {self.token(user)}", "X-Purpose": purpose}
        if method == "POST":
            headers["Idempotency-Key"] = f"test-{uuid.uuid4()}"
        return httpx.request(method, self.platform.gateway + path, headers=headers, json=body, timeout=60)

    def ok(self, user: str, method: str, path: str, body: Any = None) -> dict[str, Any]:
        response = self(user, method, path, body)
        assert 200 <= response.status_code < 300, (path, response.status_code, response.text)
        return dict(response.json())


@pytest.fixture
def api(running_platform: Any) -> Api:
    return Api(running_platform)


def registered(api: Api, **person: Any) -> dict[str, Any]:
    """A person registered in XK's identification by its case manager."""
    response = api("xk-case-manager", "POST", "/v1/identification/persons", person, purpose="identification")
    assert response.status_code == 201, response.text
    return dict(response.json())


def refused(response: httpx.Response, status: int, code: str) -> None:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert code in [e["code"] for e in response.json()["errors"]], response.text


def test_a_child_returns_only_through_the_child_gate(api: Api, running_platform: Any) -> None:
    child = registered(
        api, given_names=["Lule"], surnames=["Krasniqi"], date_of_birth="2013-03-01", sex="female"
    )
    # The body says adult; identification says child, and identification decides.
    case = api.ok(
        "xk-case-manager",
        "POST",
        "/v1/return/cases",
        {"origin_country": "ME", "identification_case_id": child["case_id"], "age_group": "adult"},
    )
    assert case["treated_as_child"] is True and case["person_id"] == child["id"]
    with MongoClient(running_platform.env["MONGODB_URI"], tz_aware=True) as client:
        reads = list(
            client["thb_identification"]["access_log"].find({"ids": child["case_id"], "azp": "return-api"})
        )
    assert reads, "identification logged the read on the case manager's behalf"
    base = f"/v1/return/cases/{case['id']}"
    api.ok("xk-case-manager", "POST", f"{base}/transitions", {"action": "start_assessment"})

    # No determination: the coordinator's plan and the decision are refused with the gate's code.
    refused(api("xk-coordinator", "POST", f"{base}/plan", PLAN), 409, GATE)
    refused(api("xk-case-manager", "POST", f"{base}/transitions", {"action": "record_decision"}), 409, GATE)
    # A child's consent clears nothing.
    consent = RETURN_CONSENT
    refused(api("xk-case-manager", "POST", f"{base}/consent", consent), 409, "consent_does_not_clear_a_child")

    family = {
        "received_on": "2026-12-01",
        "outcome": "family_can_care_with_support",
        "from_country": "ME",
        "agency": "social-services",
    }
    api.ok("xk-social-worker", "POST", f"{base}/family-assessment", family)
    assessment = {
        "assessed_on": "2026-12-01",
        "assessed_by": "Best-interests officer",
        "agency": "child-protection",
    }
    api.ok("xk-case-manager", "POST", f"{base}/best-interests-assessment", assessment)
    # The panel member reads only what is given to her.
    assert api("xk-bid-panel", "GET", base).status_code == 404
    api.ok("xk-case-manager", "POST", f"{base}/panel-members", {"member": api.sub("xk-bid-panel")})
    assert api("xk-bid-panel", "GET", base).status_code == 200
    assert api("xk-case-manager", "POST", f"{base}/determination", DETERMINATION).status_code == 403
    determined = api.ok("xk-bid-panel", "POST", f"{base}/determination", DETERMINATION)
    assert determined["determination"]["decision"] == "return"

    api.ok("xk-case-manager", "POST", f"{base}/transitions", {"action": "record_decision"})
    no_escort = {key: value for key, value in PLAN.items() if key != "escort"}
    refused(api("xk-coordinator", "POST", f"{base}/plan", no_escort), 422, "escort_required_for_child")
    with_health = {**PLAN, "diagnosis": "not for the other country"}
    assert api("xk-coordinator", "POST", f"{base}/plan", with_health).status_code == 422
    planned = api.ok("xk-coordinator", "POST", f"{base}/plan", PLAN)
    assert planned["status"] == "planned"
    for action in ("record_departure", "record_reception", "record_reintegration_plan", "record_follow_up"):
        api.ok("xk-case-manager", "POST", f"{base}/transitions", {"action": action})
    closed = api.ok(
        "xk-case-manager",
        "POST",
        f"{base}/transitions",
        {"action": "close", "reason": "reintegration_completed"},
    )
    assert closed["status"] == "closed"
    assert [e["action"] for e in closed["timeline"]][-6:] == [
        "approve_plan",
        "record_departure",
        "record_reception",
        "record_reintegration_plan",
        "record_follow_up",
        "close",
    ]
    # Nothing of it for another country; the child's views are not stored in clear.
    assert api("me-coordinator", "GET", base).status_code == 404
    with MongoClient(running_platform.env["MONGODB_URI"], tz_aware=True) as client:
        stored = client["thb_return"]["return_cases"].find_one({"_id": case["id"]})
    assert stored is not None and "kthehet" not in json.dumps(stored, default=str)


def test_a_person_who_looks_adult_but_whose_age_is_not_established_is_a_child_at_the_gate(api: Api) -> None:
    person = registered(api, given_names=["Arben"], surnames=["Hoxha"], sex="male")  # no date of birth
    case = api.ok(
        "xk-case-manager",
        "POST",
        "/v1/return/cases",
        {"origin_country": "AL", "identification_case_id": person["case_id"], "age_group": "adult"},
    )
    assert case["treated_as_child"] is True
    base = f"/v1/return/cases/{case['id']}"
    api.ok("xk-case-manager", "POST", f"{base}/transitions", {"action": "start_assessment"})
    refused(api("xk-coordinator", "POST", f"{base}/plan", PLAN), 409, GATE)


def test_an_adults_withdrawal_of_consent_stops_her_return_at_once(api: Api) -> None:
    case = api.ok(
        "xk-case-manager", "POST", "/v1/return/cases", {"origin_country": "ME", "age_group": "adult"}
    )
    base = f"/v1/return/cases/{case['id']}"
    consent = {**RETURN_CONSENT, "interpreter": True}
    api.ok("xk-case-manager", "POST", f"{base}/consent", consent)
    api.ok("xk-case-manager", "POST", f"{base}/transitions", {"action": "start_assessment"})
    api.ok("xk-case-manager", "POST", f"{base}/transitions", {"action": "record_decision"})
    adult_plan = {key: value for key, value in PLAN.items() if key != "escort"}
    assert api.ok("xk-coordinator", "POST", f"{base}/plan", adult_plan)["status"] == "planned"
    stopped = api.ok("xk-social-worker", "POST", f"{base}/consent-withdrawal")
    assert stopped["status"] == "stopped" and stopped["reason"] == "consent_withdrawn"
    refused(
        api("xk-case-manager", "POST", f"{base}/transitions", {"action": "record_departure"}),
        409,
        "record_departure_not_allowed_when_stopped",
    )


def test_a_national_systems_decision_for_a_child_meets_the_same_gate(api: Api, running_platform: Any) -> None:
    token = httpx.post(
        running_platform.env["OIDC_ISSUER"] + "/protocol/openid-connect/token",
        data={
            "grant_type": "client_credentials",
            "client_id": "xk-national-system",
            "client_secret": "xk-national-system-local-secret",
        },
        timeout=30,
    ).json()["access_token"]
    api.tokens["xk-national-system"] = token  # a machine client: its service account holds case-manager
    case = api.ok(
        "xk-national-system", "POST", "/v1/return/cases", {"origin_country": "ME", "age_group": "child"}
    )
    base = f"/v1/return/cases/{case['id']}"
    api.ok("xk-national-system", "POST", f"{base}/transitions", {"action": "start_assessment"})
    refused(
        api("xk-national-system", "POST", f"{base}/transitions", {"action": "record_decision"}), 409, GATE
    )
    # Approving a plan is a coordinator's act, never a system's.
    assert api("xk-national-system", "POST", f"{base}/plan", PLAN).status_code == 403
    # Naming an identification case needs a person to act for: a system reads identification itself.
    named = api(
        "xk-national-system",
        "POST",
        "/v1/return/cases",
        {"origin_country": "ME", "identification_case_id": str(uuid.uuid4()), "age_group": "child"},
    )
    refused(named, 403, "on_behalf_machine_caller")
