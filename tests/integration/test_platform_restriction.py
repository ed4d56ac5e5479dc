"""A restriction of processing on the real platform (plumbing.restrictions): set once by the data protection officer
in identification, it holds in every service.

An adult identified in Albania has a referral proposed from her case, a return case and a transnational case record
linked to it. Albania's DPO restricts her processing to case management. From then on, in each service, a read for
the service's own purpose (the operations that answer her data: her person, the referral's case fields, the return
case, the notification's content) is refused with 403 `processing_restricted` and a list leaves her out, while a
read for case management, the DPO's right-of-access answer and the records of other people go on as before.
Lifting the restriction restores every purpose.
"""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest

from devstack.demo import Gateway, wait_for
from tests.integration.platform_helpers import adult_notification, known_to_every_service
from tests.integration.test_referral_api import Api, shelter

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
    form = adult_notification(person)
    ids = known_to_every_service(gw, "AL", person, form, send=False)
    request = {
        "provider_id": shelter(Api(platform), places=1)["id"],
        "age_group": "adult",
        "sex": "female",
        "consent": {"given": True},
        "field_sets": ["identity"],
    }
    path = f"/v1/referral/referrals/{ids['referral']}/request"
    gw.call("al-case-manager", "POST", path, request, purpose="referral")
    return ids


def _listed(platform: Any, path: str, purpose: str) -> set[str]:
    """The ids of every record of the list for the case manager, page after page."""
    found: set[str] = set()
    cursor: str | None = None
    while True:
        params = {"limit": 200, **({"cursor": cursor} if cursor else {})}
        page = _get(platform, "al-case-manager", path, purpose, **params)
        assert page.status_code == 200, page.text[:300]
        found |= {item["id"] for item in page.json()["items"]}
        cursor = page.json().get("next_cursor")
        if not cursor:
            return found


def _reads(platform: Any, ids: dict[str, str], purpose_of: dict[str, str]) -> dict[str, int]:
    """The status of a read of her data in each service (an operation that answers personal data), each with the
    purpose given for it."""
    paths = {
        "identification": ("al-case-manager", f"/v1/identification/persons/{ids['person']}"),
        "referral": ("al-shelter", f"/v1/referral/referrals/{ids['referral']}/case-fields"),
        "return": ("al-case-manager", f"/v1/return/cases/{ids['return']}"),
        "exchange": ("al-contact-point", f"/v1/exchange/cases/{ids['exchange']}/forms/{ids['form']}"),
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
    listed = _listed(platform, "/v1/return/cases", "return")
    assert ids["return"] not in listed and other["return"] in listed
    assert ids["return"] in _listed(platform, "/v1/return/cases", "case-management")
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
