"""The right of access on the real platform (plumbing.subject_access): a data protection officer asks each service
what it holds about one child and gets her records, the reads of them and where her data went.

One child is registered in Kosovo; a referral is proposed from her identification case, a return case opened on
it and a notification sent to Montenegro from an exchange case linked to it. Kosovo's DPO then asks each service
through the gateway. Montenegro's DPO, asking about the same ids, gets nothing of Kosovo's records; other roles are
refused. Every answer is itself in the access log.
"""

from __future__ import annotations

from typing import Any

import httpx
import jwt

from devstack.demo import Gateway
from tests.integration.platform_helpers import known_to_every_service, notification

PURPOSE = "data-subject-access"
GIVEN = "Subjectaccess"


def _ask(platform: Any, user: str, service: str, person_id: str, case_ids: list[str]) -> httpx.Response:
    headers = {"Authorization": f"Bearer {platform.token(user)}", "X-Purpose": PURPOSE}
    params = {"person_id": person_id, "case_id": case_ids}
    return httpx.get(
        f"{platform.gateway}/v1/{service}/subject-access", params=params, headers=headers, timeout=60
    )


def _child_known_to_every_service(platform: Any) -> dict[str, str]:
    gw = Gateway(platform.gateway, platform.issuer)
    person = {"given_names": [GIVEN], "surnames": ["Berisha"], "date_of_birth": "2012", "sex": "female"}
    form = {**notification(GIVEN), "legal_basis": "protection-of-vital-interests"}
    return known_to_every_service(gw, "XK", person, form, send=True)


def test_a_data_protection_officer_gets_everything_each_service_holds_about_a_child(
    running_platform: Any,
) -> None:
    platform = running_platform
    ids = _child_known_to_every_service(platform)
    person, cases = ids["person"], [ids["case"]]
    dpo_sub = jwt.decode(platform.token("xk-dpo"), options={"verify_signature": False})["sub"]
    officer_sub = jwt.decode(platform.token("xk-case-manager"), options={"verify_signature": False})["sub"]
    expected = {
        "identification": {("person", person), ("case", ids["case"])},
        "referral": {("referral", ids["referral"])},
        "return": {("return-case", ids["return"])},
        "exchange": {("exchange-case", ids["exchange"])},
    }
    sections: dict[str, dict[str, Any]] = {}
    for service, records in expected.items():
        response = _ask(platform, "xk-dpo", service, person, cases)
        assert response.status_code == 200, (service, response.status_code, response.text[:500])
        section = response.json()
        sections[service] = section
        assert section["service"] == service and section["person_id"] == person
        assert {(r["type"], r["id"]) for r in section["records"]} == records, (service, section["records"])
        # This very answer is in the access log: the DPO, for the right of access, naming her.
        asked = [e for e in section["access_log"] if e["actor"] == dpo_sub]
        assert asked and asked[-1]["purpose"] == PURPOSE and person in asked[-1]["record_ids"], service

    # Her data as each service holds it: her name in identification and in the form sent about her.
    (person_record,) = [r for r in sections["identification"]["records"] if r["type"] == "person"]
    assert person_record["content"]["given_names"] == [GIVEN]
    (exchange_record,) = sections["exchange"]["records"]
    contents = exchange_record["content"]["form_contents"]
    assert [c["content"]["person"]["given_names"] for c in contents.values()] == [[GIVEN]]
    # Where it went, and who read it: the officer who registered her.
    assert sections["exchange"]["sent_to"] == ["ME"]
    assert all(sections[s]["sent_to"] == [] for s in ("identification", "referral", "return"))
    assert any(e["actor"] == officer_sub for e in sections["identification"]["access_log"])
    assert sections["return"]["records"][0]["content"]["person_id"] == person

    # Montenegro's DPO learns nothing of Kosovo's records by asking with the same ids.
    for service in expected:
        foreign = _ask(platform, "me-dpo", service, person, cases)
        assert foreign.status_code == 200, (service, foreign.text[:300])
        assert foreign.json()["records"] == [] and GIVEN not in foreign.text, service
        assert all(e["country"] == "ME" for e in foreign.json()["access_log"]), service
        # ... and Kosovo's ids she asked about never enter Montenegro's log, where its auditors would read them.
        logged = httpx.get(
            f"{platform.gateway}/v1/{service}/access-log",
            params={"record_id": person},
            headers={"Authorization": f"Bearer {platform.token('me-auditor')}"},
            timeout=60,
        )
        assert logged.status_code == 200 and logged.json()["items"] == [], (service, logged.text[:300])
    # Nobody else may ask, not even the country's coordinator or auditor.
    for user in ("xk-coordinator", "xk-auditor", "xk-case-manager"):
        assert _ask(platform, user, "identification", person, cases).status_code == 403, user


def test_one_call_gathers_every_services_section_on_the_officers_behalf(running_platform: Any) -> None:
    platform = running_platform
    ids = _child_known_to_every_service(platform)
    person = ids["person"]
    token = platform.token("xk-dpo")
    dpo_sub = jwt.decode(token, options={"verify_signature": False})["sub"]
    headers = {"Authorization": f"Bearer {token}", "X-Purpose": PURPOSE}
    url = f"{platform.gateway}/v1/identification/persons/{person}/subject-access-report"
    response = httpx.get(url, headers=headers, timeout=120)
    assert response.status_code == 200, response.text[:500]
    report = response.json()
    assert [s["service"] for s in report["sections"]] == ["identification", "referral", "exchange", "return"]
    found = {(r["type"], r["id"]) for s in report["sections"] for r in s["records"]}
    assert {
        ("person", person),
        ("case", ids["case"]),
        ("referral", ids["referral"]),
        ("return-case", ids["return"]),
        ("exchange-case", ids["exchange"]),
    } <= found
    assert report["sent_to"] == ["ME"] and report["not_deployed"] == []
    # The other services were asked as her, through identification: their logs name her and the calling service.
    for section in report["sections"][1:]:
        asked = [e for e in section["access_log"] if e["actor"] == dpo_sub and e["purpose"] == PURPOSE]
        assert asked and asked[-1]["client"] == "identification-api", section["service"]

    # Readable: the same answer as a page, her name shown as written (escaped), never as markup.
    page = httpx.get(url, params={"format": "html"}, headers=headers, timeout=120)
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html"), page.text[:300]
    assert GIVEN in page.text and ids["exchange"] in page.text

    # Another country's DPO: the person is not hers (404); other roles may not ask at all.
    other = {"Authorization": f"Bearer {platform.token('me-dpo')}", "X-Purpose": PURPOSE}
    assert httpx.get(url, headers=other, timeout=60).status_code == 404
    coordinator = {"Authorization": f"Bearer {platform.token('xk-coordinator')}", "X-Purpose": PURPOSE}
    assert httpx.get(url, headers=coordinator, timeout=60).status_code == 403
