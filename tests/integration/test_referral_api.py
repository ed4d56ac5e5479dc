"""The referral service through the gateway with real tokens, on the running platform: the directory, an adult's
referral from proposal to completion with the minimum necessary fields, a decline with its reason, a revocation,
other countries and providers kept out, and the last shelter place taken once under 50 concurrent accepts."""

from __future__ import annotations

import uuid
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest
from pymongo import MongoClient

from tests.integration.platform_helpers import header, poll, read_topic
from tests.integration.test_contract_examples import check_answer
from tools.contracts import all_operations

pytestmark = pytest.mark.integration

BASE = "/v1/referral"
CASE_FIELDS = next(
    op for op in all_operations() if op.operation_id == "referral.entrypoints.http.get_case_fields"
)
SHELTER_AGENCY = "shelter-ura-e-re"  # the AL demo shelter's agency (realm/base-realm.json)
PERSON = {
    "given_names": ["Arta"],
    "surnames": ["Krasniqi"],
    "date_of_birth": "1999-04-02",
    "sex": "female",
    "languages": ["sqi"],
    "needs": ["shelter"],
    "special_needs": "insulin twice a day",
    "documents": [{"type": "passport", "number": "P1234567"}],
}


class Api:
    def __init__(self, platform: Any) -> None:
        self.platform = platform
        self.tokens: dict[str, str] = {}

    def token(self, user: str) -> str:
        if user not in self.tokens:
            self.tokens[user] = self.platform.token(user)
        return self.tokens[user]

    def __call__(self, user: str, method: str, path: str, body: Any = None, **params: Any) -> httpx.Response:
        headers = {"Authorization": f"Bearer {self.token(user)}", "X-Purpose": "referral"}
        if method in ("POST", "PUT"):
            headers["Idempotency-Key"] = f"test-{uuid.uuid4()}"
        return httpx.request(
            method,
            self.platform.gateway + BASE + path,
            headers=headers,
            json=body,
            params=params or None,
            timeout=60,
        )


@pytest.fixture
def api(running_platform: Any) -> Api:
    return Api(running_platform)


def shelter(api: Api, places: int) -> dict[str, Any]:
    """The demo shelter's directory entry (registered once per session by the coordinator), with `places` women's
    places stated by the shelter itself."""
    listed = api("al-coordinator", "GET", "/providers", service_type="shelter")
    assert listed.status_code == 200, listed.text
    found = [p for p in listed.json()["items"] if p["agency_id"] == SHELTER_AGENCY]
    if not found:
        body = {
            "agency_id": SHELTER_AGENCY,
            "name": "Shelter Ura e Re",
            "kind": "ngo",
            "service_types": ["shelter"],
            "languages": ["sqi", "eng"],
            "municipalities": ["AL-TIR"],
            "accepts": {"children": False, "adults": True, "sexes": ["female"]},
            "hours": {"always": True},
            "capacity": {"women": 0},
            "contacts": [{"name": "Duty officer", "phone": "+355 4 000 000"}],
        }
        created = api("al-coordinator", "POST", "/providers", body)
        assert created.status_code == 201, created.text
        found = [created.json()]
    stated = api("al-shelter", "PUT", f"/providers/{found[0]['id']}/capacity", {"places": {"women": places}})
    assert stated.status_code == 200, stated.text
    return dict(stated.json())


def sent(api: Api, provider_id: str, field_sets: list[str] | None = None) -> dict[str, Any]:
    proposed = api("al-case-manager", "POST", "/referrals", {"service_type": "shelter"})
    assert proposed.status_code == 201, proposed.text
    body = {
        "provider_id": provider_id,
        "age_group": "adult",
        "sex": "female",
        "municipality": "AL-TIR",
        "consent": {"given": True, "explained_in": "sqi"},
        "case_fields": PERSON,
        **({"field_sets": field_sets} if field_sets else {}),
    }
    requested = api("al-case-manager", "POST", f"/referrals/{proposed.json()['id']}/request", body)
    assert requested.status_code == 200, requested.text
    return dict(requested.json())


def act(api: Api, user: str, referral_id: str, action: str, reason: str | None = None) -> httpx.Response:
    body = {"action": action, **({"reason": reason} if reason else {})}
    return api(user, "POST", f"/referrals/{referral_id}/transitions", body)


def free_places(api: Api, provider_id: str) -> int:
    return int(api("al-case-manager", "GET", f"/providers/{provider_id}").json()["capacity"]["women"]["free"])


def test_an_adults_referral_from_proposal_to_completion(api: Api) -> None:
    provider = shelter(api, places=2)
    assert "contacts" in provider  # the provider itself reads its private part
    public = api("al-case-manager", "GET", f"/providers/{provider['id']}").json()
    assert "contacts" not in public and public["capacity"]["women"] == {"total": 2, "free": 2}

    referral = sent(api, provider["id"], field_sets=["identity"])
    assert referral["status"] == "requested" and referral["consent_given"] is True
    assert "cancel" in referral["allowed_actions"] and "accept" not in referral["allowed_actions"]

    # The shelter sees the referral addressed to it and reads the granted fields only.
    mine = api("al-shelter", "GET", "/referrals", status="requested").json()["items"]
    assert referral["id"] in [r["id"] for r in mine]
    fields = api("al-shelter", "GET", f"/referrals/{referral['id']}/case-fields")
    assert fields.status_code == 200, fields.text
    assert fields.json()["fields"]["surnames"] == ["Krasniqi"]
    assert "special_needs" not in fields.json()["fields"] and "documents" not in fields.json()["fields"]
    # Asking for fields outside the grant gets nothing for them, in the documented shape.
    asked = api(
        "al-shelter",
        "GET",
        f"/referrals/{referral['id']}/case-fields",
        fields="surnames,documents,special_needs",
    )
    assert asked.status_code == 200 and asked.json()["fields"] == {"surnames": ["Krasniqi"]}, asked.text
    assert check_answer(CASE_FIELDS, asked) == []

    assert act(api, "al-case-manager", referral["id"], "accept").status_code == 403  # the provider's answer
    accepted = act(api, "al-shelter", referral["id"], "accept")
    assert accepted.status_code == 200, accepted.text
    assert free_places(api, provider["id"]) == 1
    assert act(api, "al-shelter", referral["id"], "start").status_code == 200
    done = act(api, "al-shelter", referral["id"], "complete", "service_delivered")
    assert done.status_code == 200, done.text
    assert [e["action"] for e in done.json()["timeline"]] == [
        "propose",
        "request",
        "accept",
        "start",
        "complete",
    ]
    assert free_places(api, provider["id"]) == 2  # ending the referral freed the place
    again = act(api, "al-shelter", referral["id"], "accept")
    assert again.status_code == 409 and again.headers["content-type"] == "application/problem+json"


def test_a_decline_names_its_reason_and_a_revocation_frees_the_place(api: Api) -> None:
    provider = shelter(api, places=1)
    first, second = sent(api, provider["id"]), sent(api, provider["id"])
    missing = act(api, "al-shelter", first["id"], "decline")
    assert missing.status_code == 422 and missing.json()["errors"][0]["code"] == "reason_required"
    declined = act(api, "al-shelter", first["id"], "decline", "safety_concern")
    assert declined.status_code == 200 and declined.json()["reason"] == "safety_concern"

    assert act(api, "al-shelter", second["id"], "accept").status_code == 200
    assert free_places(api, provider["id"]) == 0
    revoked = act(api, "al-case-manager", second["id"], "revoke", "moved_or_returned")
    assert revoked.status_code == 200, revoked.text
    assert free_places(api, provider["id"]) == 1


def test_other_countries_and_other_providers_see_nothing(api: Api) -> None:
    provider = shelter(api, places=1)
    referral = sent(api, provider["id"])
    for user in ("xk-shelter", "xk-case-manager", "me-coordinator"):
        assert api(user, "GET", f"/referrals/{referral['id']}").status_code == 404, user
        assert api(user, "GET", f"/referrals/{referral['id']}/case-fields").status_code == 404, user
        assert api(user, "GET", f"/providers/{provider['id']}").status_code == 404, user
    listed = api("xk-coordinator", "GET", "/providers").json()["items"]
    assert provider["id"] not in [p["id"] for p in listed]
    assert api("al-analyst", "GET", f"/referrals/{referral['id']}").status_code == 403


def test_fifty_concurrent_accepts_for_three_places_accept_exactly_three(api: Api) -> None:
    provider = shelter(api, places=3)
    referrals = [sent(api, provider["id"])["id"] for _ in range(50)]
    api.token("al-shelter")  # one login before the threads share it
    with ThreadPoolExecutor(max_workers=16) as pool:
        statuses = list(pool.map(lambda rid: act(api, "al-shelter", rid, "accept").status_code, referrals))
    assert statuses.count(200) == 3, statuses
    assert set(statuses) == {200, 409}, statuses
    assert free_places(api, provider["id"]) == 0
    accepted = api("al-shelter", "GET", "/referrals", status="accepted", limit=200).json()["items"]
    assert len({r["id"] for r in accepted} & set(referrals)) == 3
    for rid in referrals:  # leave the shelter empty for the next test
        act(
            api, "al-case-manager", rid, "revoke" if rid in {r["id"] for r in accepted} else "cancel", "other"
        )


def test_the_relay_publishes_a_referrals_events_in_order(api: Api, running_platform: Any) -> None:
    provider = shelter(api, places=1)
    referral = sent(api, provider["id"])
    assert act(api, "al-case-manager", referral["id"], "cancel", "sent_in_error").status_code == 200
    bootstrap = running_platform.env["KAFKA_BOOTSTRAP_SERVERS"]

    def published() -> list[str] | None:
        records = read_topic(bootstrap, "referral.events.v1")
        mine = [r for r in records if r.key == referral["id"].encode()]
        types = [(header(r, "ce_type") or b"").decode() for r in mine]
        return types if len(types) >= 3 else None

    types = poll(published, 60, "the referral's events on referral.events.v1")
    assert types == [
        "referral.referral.proposed.v1",
        "referral.referral.requested.v1",
        "referral.referral.cancelled.v1",
    ]
    payloads = [
        r.value for r in read_topic(bootstrap, "referral.events.v1") if r.key == referral["id"].encode()
    ]
    assert not any(b"Krasniqi" in value for value in payloads)  # ids and codes only


def test_needs_identified_on_a_case_become_proposals_once(api: Api, running_platform: Any) -> None:
    identification = running_platform.gateway + "/v1/identification"
    headers = {"Authorization": f"Bearer {api.token('al-case-manager')}", "X-Purpose": "identification"}

    def post(path: str, body: Any) -> httpx.Response:
        keyed = {**headers, "Idempotency-Key": f"test-{uuid.uuid4()}"}
        return httpx.post(identification + path, headers=keyed, json=body, timeout=60)

    person = post(
        "/persons", {"surnames": [f"Needs{uuid.uuid4().hex[:4]}"], "date_of_birth": "1990", "sex": "female"}
    )
    assert person.status_code == 201, person.text
    case_id = person.json()["case_id"]
    recorded = post(f"/cases/{case_id}/needs", {"needs": ["shelter", "medical"]})
    assert recorded.status_code in (200, 201), recorded.text

    def proposals() -> list[dict[str, Any]] | None:
        items = api("al-case-manager", "GET", "/referrals", status="proposed", limit=200).json()["items"]
        mine = [r for r in items if r.get("case_id") == case_id]
        return mine if len(mine) >= 2 else None

    found = poll(proposals, 60, "proposals from the needs identified")
    assert sorted(r["need"] for r in found) == ["medical", "shelter"]
    assert all(r["status"] == "proposed" and r["provider_id"] is None for r in found)  # never sent by itself


def _identification(
    api: Api, user: str, method: str, path: str, body: Any = None, **headers: str
) -> httpx.Response:
    headers = {
        "Authorization": f"Bearer {api.token(user)}",
        "X-Purpose": "identification",
        **({"Idempotency-Key": f"test-{uuid.uuid4()}"} if method != "GET" else {}),
        **headers,
    }
    url = api.platform.gateway + "/v1/identification" + path
    return httpx.request(method, url, headers=headers, json=body, timeout=60)


def test_case_fields_come_from_identification_on_the_referrers_behalf_and_a_correction_reaches_them(
    api: Api,
) -> None:
    provider = shelter(api, places=3)
    person = {"given_names": ["Drita"], "surnames": ["Gashi"], "date_of_birth": "1994", "sex": "female"}
    registered = _identification(
        api, "al-case-manager", "POST", "/persons", {**person, "nationalities": ["AL"]}
    )
    assert registered.status_code == 201, registered.text
    case_id, person_id = registered.json()["case_id"], registered.json()["id"]
    proposed = api("al-case-manager", "POST", "/referrals", {"service_type": "shelter", "case_id": case_id})
    assert proposed.status_code == 201, proposed.text
    referral_id = proposed.json()["id"]
    request = {
        "provider_id": provider["id"],
        "age_group": "adult",
        "sex": "female",
        "consent": {"given": True},
        "field_sets": ["identity", "placement_needs"],
    }
    # What identification holds is read from it, never typed in beside it.
    typed_over = api(
        "al-case-manager",
        "POST",
        f"/referrals/{referral_id}/request",
        {**request, "case_fields": {"surnames": ["X"]}},
    )
    assert typed_over.status_code == 422, typed_over.text
    assert typed_over.json()["errors"] == [
        {"pointer": "/body/case_fields/surnames", "code": "field_comes_from_identification"}
    ]
    requested = api(
        "al-case-manager",
        "POST",
        f"/referrals/{referral_id}/request",
        {**request, "case_fields": {"urgent": True}},
    )
    assert requested.status_code == 200, requested.text
    assert requested.json()["person_id"] == person_id

    read = api("al-shelter", "GET", f"/referrals/{referral_id}/case-fields")
    assert read.status_code == 200, read.text
    assert read.json()["fields_source"] == "identification" and read.json()["outdated_fields"] == []
    assert read.json()["fields"] == {**person, "nationalities": ["AL"], "urgent": True}
    # Identification was read as the case manager, through referral: its own access log says both.
    with MongoClient(api.platform.env["MONGODB_URI"], tz_aware=True) as client:
        reads = list(client["thb_identification"]["access_log"].find({"ids": case_id, "azp": "referral-api"}))
    assert reads and all("case-manager" in entry["roles"] for entry in reads), reads

    # The person is corrected in identification: the event (ids and the changed members' names) marks the copy.
    current = _identification(api, "al-case-manager", "GET", f"/persons/{person_id}")
    corrected = _identification(
        api,
        "al-case-manager",
        "PATCH",
        f"/persons/{person_id}",
        {"surnames": ["Gashi-Hoxha"], "reason": "spelling"},
        **{"If-Match": current.headers["ETag"]},
    )
    assert corrected.status_code == 200, corrected.text

    def marked() -> dict[str, Any] | None:
        view = api("al-case-manager", "GET", f"/referrals/{referral_id}").json()
        return view if view.get("outdated_fields") else None

    assert poll(marked, 60, "the correction to mark the referral's copy")["outdated_fields"] == ["surnames"]
    stale = api("al-shelter", "GET", f"/referrals/{referral_id}/case-fields").json()
    assert stale["outdated_fields"] == ["surnames"] and stale["fields"]["surnames"] == ["Gashi"]
    by_provider = api("al-shelter", "POST", f"/referrals/{referral_id}/case-fields/refresh")
    assert by_provider.status_code == 403, by_provider.text
    refreshed = api("al-case-manager", "POST", f"/referrals/{referral_id}/case-fields/refresh")
    assert refreshed.status_code == 200, refreshed.text
    assert refreshed.json()["outdated_fields"] == []
    fresh = api("al-shelter", "GET", f"/referrals/{referral_id}/case-fields").json()
    assert fresh["fields"]["surnames"] == ["Gashi-Hoxha"] and fresh["outdated_fields"] == []

    # Another country's officer cannot even propose a referral naming this case: identification hides it from her.
    foreign = api("me-case-manager", "POST", "/referrals", {"service_type": "shelter", "case_id": case_id})
    assert foreign.status_code == 422, foreign.text
    assert foreign.json()["errors"] == [
        {"pointer": "/body/case_id", "code": "identification_case_not_visible"}
    ]


XK_SHELTER_AGENCY = "shelter-drita"  # the XK demo shelter's agency (realm/local-realm.json)


def xk_child_shelter(api: Api) -> dict[str, Any]:
    """XK's demo shelter as a children's shelter in Pristina (registered once per session), two girls' places."""
    listed = api("xk-coordinator", "GET", "/providers", service_type="child_shelter").json()["items"]
    found = [p for p in listed if p["agency_id"] == XK_SHELTER_AGENCY]
    if not found:
        body = {
            "agency_id": XK_SHELTER_AGENCY,
            "name": "Shelter Drita",
            "kind": "ngo",
            "service_types": ["child_shelter"],
            "languages": ["sqi", "srp"],
            "municipalities": ["XK-PRI"],
            "accepts": {"children": True, "adults": False, "sexes": ["female"]},
            "hours": {"always": True},
            "capacity": {"girls": 2},
        }
        created = api("xk-coordinator", "POST", "/providers", body)
        assert created.status_code == 201, created.text
        found = [created.json()]
    return dict(found[0])


def test_a_childs_referral_informs_child_protection_and_runs_to_completion(api: Api) -> None:
    provider = xk_child_shelter(api)

    def girls() -> dict[str, int]:
        return dict(api("xk-case-manager", "GET", f"/providers/{provider['id']}").json()["capacity"]["girls"])

    before = girls()["free"]
    proposed = api("xk-case-manager", "POST", "/referrals", {"service_type": "child_shelter"})
    assert proposed.status_code == 201, proposed.text
    referral_id = proposed.json()["id"]
    body = {
        "provider_id": provider["id"],
        "age_group": "child",
        "sex": "female",
        "municipality": "XK-PRI",
        "case_fields": {"given_names": ["Lule"], "guardian_name": "Temporary guardian"},
    }
    # A child's referral needs a legal basis from the country's list, not a consent.
    no_basis = api("xk-case-manager", "POST", f"/referrals/{referral_id}/request", body)
    assert no_basis.status_code == 422, no_basis.text
    assert "legal_basis_required" in [e["code"] for e in no_basis.json()["errors"]]
    requested = api(
        "xk-case-manager",
        "POST",
        f"/referrals/{referral_id}/request",
        {**body, "legal_basis": "child-protection-duty"},
    )
    assert requested.status_code == 200, requested.text
    assert requested.json()["informed_agencies"] == ["child-protection"]
    assert (
        requested.json()["legal_basis"] == "child-protection-duty" and not requested.json()["consent_given"]
    )

    # The municipality's child protection unit is informed: the codes, no person, no case data.
    informed = api("xk-child-protection", "GET", f"/referrals/{referral_id}")
    assert informed.status_code == 200, informed.text
    assert informed.json()["informed"] is True
    assert "person_id" not in informed.json() and "timeline" not in informed.json()
    unit_fields = api("xk-child-protection", "GET", f"/referrals/{referral_id}/case-fields")
    assert unit_fields.status_code == 403, unit_fields.text

    # The shelter reads the guardian's name it was granted, takes a girl's place, starts and completes.
    read = api("xk-shelter", "GET", f"/referrals/{referral_id}/case-fields").json()
    assert read["fields"] == {"given_names": ["Lule"], "guardian_name": "Temporary guardian"}
    assert act(api, "xk-shelter", referral_id, "accept").status_code == 200
    assert girls()["free"] == before - 1
    assert act(api, "xk-shelter", referral_id, "start").status_code == 200
    done = act(api, "xk-shelter", referral_id, "complete", "service_delivered")
    assert done.status_code == 200, done.text
    assert girls()["free"] == before

    # The coordinator's office follows every referral of its country, step by step.
    followed = api("xk-coordinator", "GET", f"/referrals/{referral_id}")
    assert followed.status_code == 200, followed.text
    assert [e["action"] for e in followed.json()["timeline"]] == [
        "propose",
        "request",
        "child_protection_informed",
        "accept",
        "start",
        "complete",
    ]
