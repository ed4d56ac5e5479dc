"""A restriction of processing on the real platform (plumbing.restrictions): set once by the data protection officer
in identification, it holds in every service.

An adult identified in Albania has a referral proposed from her case, a return case and a transnational case record
linked to it. Albania's DPO restricts her processing to case management. From then on, in each service, a read for
the service's own purpose is refused with 403 `processing_restricted` and a list leaves her out, while a read for
case management, the DPO's right-of-access answer and the records of other people go on as before. Lifting the
restriction restores every purpose.
"""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest

from devstack.demo import Gateway, wait_for
from tests.integration.platform_helpers import known_to_every_service

pytestmark = pytest.mark.integration

OWN_PURPOSE = {
    "identification": "identification",
    "referral": "referral",
    "return": "return",
    "exchange": "cross-border-exchange",
}
GIVEN = "Restricted"


def _get(platform: Any, user: str, path: str, purpose: str, **params: Any) -> httpx.Response:
    headers = {"Authorization": f"Bearer {platform.token(user)}", "X-Purpose": purpose}
    return httpx.get(platform.gateway + path, headers=headers, params=params or None, timeout=60)


def _send(platform: Any, user: str, method: str, path: str, purpose: str) -> httpx.Response:
    headers = {
        "Authorization": f"Bearer {platform.token(user)}",
        "X-Purpose": purpose,
        "Idempotency-Key": f"test-{uuid.uuid4()}",
    }
    body = {"purposes": ["case-management"], "reason": "accuracy_contested"} if method == "PUT" else None
    return httpx.request(method, platform.gateway + path, headers=headers, json=body, timeout=60)


def _adult_known_to_every_service(platform: Any) -> dict[str, str]:
    gw = Gateway(platform.gateway, platform.issuer)
    person = {"given_names": [GIVEN], "surnames": ["Hoxha"], "date_of_birth": "1992", "sex": "female"}
    form = {
        "form_type": "notification",
        "recipient": "ME",
        "legal_basis": "protection-of-vital-interests",
        "subject": {"age_group": "adult", "consent": {"given": True, "recorded_on": "2026-12-01"}},
        "content": {
            "person": {
                "given_names": [GIVEN],
                "surnames": ["Hoxha"],
                "date_of_birth": "1992",
                "sex": "female",
            },
            "category": "victim",
            "links": ["national"],
            "forms_of_exploitation": ["labour"],
            "identified_on": "2026-12-01",
        },
    }
    return known_to_every_service(gw, "AL", person, form, send=False)


def _reads(platform: Any, ids: dict[str, str], purpose_of: dict[str, str]) -> dict[str, int]:
    """The status of a read of each of her records, each service with the purpose given for it."""
    paths = {
        "identification": ("al-case-manager", f"/v1/identification/persons/{ids['person']}"),
        "referral": ("al-case-manager", f"/v1/referral/referrals/{ids['referral']}"),
        "return": ("al-case-manager", f"/v1/return/cases/{ids['return']}"),
        "exchange": ("al-contact-point", f"/v1/exchange/cases/{ids['exchange']}"),
    }
    return {
        service: _get(platform, user, path, purpose_of[service]).status_code
        for service, (user, path) in paths.items()
    }


def test_a_restriction_set_in_identification_holds_in_every_service_until_lifted(
    running_platform: Any,
) -> None:
    platform = running_platform
    ids = _adult_known_to_every_service(platform)
    other = _adult_known_to_every_service(platform)
    case_management = dict.fromkeys(OWN_PURPOSE, "case-management")
    assert set(_reads(platform, ids, OWN_PURPOSE).values()) == {200}

    restriction = f"/v1/identification/persons/{ids['person']}/restriction"
    # Only her country's data protection officer restricts her processing.
    assert _send(platform, "al-case-manager", "PUT", restriction, "identification").status_code == 403
    assert _send(platform, "xk-dpo", "PUT", restriction, "data-subject-access").status_code == 404
    restricted = _send(platform, "al-dpo", "PUT", restriction, "data-subject-access")
    assert restricted.status_code == 200, restricted.text
    assert restricted.json()["restriction"]["purposes"] == ["case-management"]

    # Each service holds it (the other three once identification's event reached them).
    def all_refused() -> dict[str, int] | None:
        statuses = _reads(platform, ids, OWN_PURPOSE)
        return statuses if set(statuses.values()) == {403} else None

    refused = wait_for(all_refused, "every service refusing reads of her for its own purpose")
    assert refused == dict.fromkeys(OWN_PURPOSE, 403)
    answer = _get(
        platform, "al-case-manager", f"/v1/identification/persons/{ids['person']}", "identification"
    )
    assert answer.headers["content-type"] == "application/problem+json"
    assert [e["code"] for e in answer.json()["errors"]] == ["processing_restricted"]
    assert GIVEN not in answer.text
    # Case management, the purpose she kept, still reads; so do the records of other people.
    assert _reads(platform, ids, case_management) == dict.fromkeys(OWN_PURPOSE, 200)
    assert set(_reads(platform, other, OWN_PURPOSE).values()) == {200}
    # Lists leave her out for the other purposes.
    listed = _get(platform, "al-case-manager", "/v1/referral/referrals", "referral", limit=200)
    assert listed.status_code == 200 and ids["referral"] not in {r["id"] for r in listed.json()["items"]}
    listed = _get(platform, "al-case-manager", "/v1/referral/referrals", "case-management", limit=200)
    assert ids["referral"] in {r["id"] for r in listed.json()["items"]}
    # Her own request of access is answered in full.
    for service in OWN_PURPOSE:
        section = _get(
            platform,
            "al-dpo",
            f"/v1/{service}/subject-access",
            "data-subject-access",
            person_id=ids["person"],
            case_id=[ids["case"]],
        )
        assert section.status_code == 200, (service, section.text[:300])
        assert section.json()["records"], service

    # Lifted: every purpose reads again, in every service.
    lifted = _send(platform, "al-dpo", "DELETE", restriction, "identification")
    assert lifted.status_code == 200, lifted.text
    assert "restriction" not in lifted.json()
    wait_for(
        lambda: set(_reads(platform, ids, OWN_PURPOSE).values()) == {200},
        "every service reading her again for its own purpose",
    )
    assert _send(platform, "al-dpo", "DELETE", restriction, "identification").status_code == 409
