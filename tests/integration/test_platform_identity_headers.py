"""Identity comes from the token only: headers claiming another identity change nothing, through the gateway and
directly on a service (the running platform).

Every family of `plumbing.identity_headers` (the one list the gateway drops and every service strips) is sent,
one at a time and all together, with values claiming ANOTHER country (XK), another user (xk-coordinator's `sub`,
username and e-mail), a wider role (coordinator) and another agency, by:

- an AL police officer listing persons (agency scope): the answer is the same as without the headers;
- an AL coordinator listing the referral service's received events: still only AL's, none of an XK person
  registered for the purpose;
- an AL analyst (no role of the operation) listing persons: still 403, not promoted by `X-Roles`;
- the AL police officer registering a person with every header: owned by AL and the officer's agency, created by
  the officer's `sub` (read from the database), invisible to the XK coordinator, and the access-log entry of the
  request names the officer, AL and the officer's agency.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import jwt
import pytest
from pymongo import MongoClient

from plumbing.identity_headers import IDENTITY_HEADER_PREFIXES
from tests.integration.platform_helpers import BASE, Client, anonymous_person, poll, received_events

pytestmark = pytest.mark.integration

CHANNELS = ("gateway", "direct")


def _claims(other_sub: str) -> dict[str, str]:
    """One concrete header per family of the list, each claiming someone else."""
    claims: dict[str, str] = {}
    for prefix in IDENTITY_HEADER_PREFIXES:
        name = prefix + "user" if prefix.endswith("-") else prefix
        if "country" in name or "tenant" in name:
            value = "XK"
        elif "agency" in name or "owner" in name:
            value = "coordinator-office"
        elif "role" in name or "group" in name or "scope" in name:
            value = "coordinator"
        elif "email" in name:
            value = "xk-coordinator@thb.example"
        elif "jwt" in name or "token" in name or "userinfo" in name:
            value = '{"sub":"' + other_sub + '","country":["XK"],"realm_access":{"roles":["coordinator"]}}'
        elif "preferred" in name:
            value = "xk-coordinator"
        else:
            value = other_sub
        claims[name] = value
    assert len(claims) == len(IDENTITY_HEADER_PREFIXES)
    return claims


@pytest.fixture(scope="module")
def other_sub(platform: Any) -> str:
    return str(jwt.decode(platform.token("xk-coordinator"), options={"verify_signature": False})["sub"])


@pytest.fixture(scope="module")
def db(platform: Any) -> Iterator[Any]:
    client: MongoClient = MongoClient(platform.env["MONGODB_URI"], tz_aware=True)
    yield client["thb_identification"]
    client.close()


def _base(platform: Any, channel: str, service: str) -> str:
    return platform.gateway if channel == "gateway" else platform.urls[service]


def _variants(claims: dict[str, str]) -> list[dict[str, str]]:
    return [{name: value} for name, value in claims.items()] + [claims]


def test_identity_headers_do_not_change_what_a_caller_reads(running_platform: Any, other_sub: str) -> None:
    platform = running_platform
    claims = _claims(other_sub)
    police = Client(platform, "al-police")
    police.register()  # the officer's agency owns at least one person
    for channel in CHANNELS:
        client = Client(platform, "al-police", base_url=_base(platform, channel, "identification"))
        params = {"limit": 200}
        baseline = client.request("GET", f"{BASE}/persons", params=params)
        assert baseline.status_code == 200, baseline.text
        assert baseline.json()["items"], "the officer sees the agency's people"
        for headers in _variants(claims):
            answer = client.request("GET", f"{BASE}/persons", params=params, headers=headers)
            assert (answer.status_code, answer.json()) == (200, baseline.json()), (channel, sorted(headers))


def test_identity_headers_do_not_widen_another_services_scope(running_platform: Any, other_sub: str) -> None:
    platform = running_platform
    claims = _claims(other_sub)
    foreign = Client(platform, "xk-police").register()  # an XK person: its event reaches every consumer as XK
    poll(
        lambda: any(e["aggregate_id"] == foreign["id"] for e in received_events(platform, "referral", "XK")),
        60,
        "the XK registration at the referral service",
    )
    for channel in CHANNELS:
        client = Client(platform, "al-coordinator", base_url=_base(platform, channel, "referral"))
        for headers in _variants(claims):
            answer = client.request(
                "GET", "/v1/referral/received-events", params={"limit": 200}, headers=headers
            )
            assert answer.status_code == 200, (channel, sorted(headers), answer.text)
            items = answer.json()["items"]
            assert {item["country"] for item in items} <= {"AL"}, (channel, sorted(headers))
            assert foreign["id"] not in {item["aggregate_id"] for item in items}


def test_identity_headers_do_not_grant_a_role(running_platform: Any, other_sub: str) -> None:
    platform = running_platform
    claims = _claims(other_sub)
    for channel in CHANNELS:
        analyst = Client(platform, "al-analyst", base_url=_base(platform, channel, "identification"))
        for headers in _variants(claims):
            answer = analyst.request("GET", f"{BASE}/persons", headers=headers)
            assert answer.status_code == 403, (channel, sorted(headers), answer.text)


def test_a_write_with_identity_headers_belongs_to_the_tokens_caller(
    running_platform: Any, other_sub: str, db: Any
) -> None:
    platform = running_platform
    claims = _claims(other_sub)
    police_sub = jwt.decode(platform.token("al-police"), options={"verify_signature": False})["sub"]
    xk = Client(platform, "xk-coordinator")
    for channel in CHANNELS:
        police = Client(platform, "al-police", base_url=_base(platform, channel, "identification"))
        request_id = f"identity-headers-{uuid.uuid4()}"
        person = police.register(anonymous_person(), headers={**claims, "X-Request-Id": request_id})
        assert (person["owner_country"], person["owner_agency"]) == ("AL", "state-police"), channel
        stored = db.persons.find_one({"_id": person["id"]})
        assert (stored["owner_country"], stored["owner_agency"]) == ("AL", "state-police")
        assert stored["created_by"] == police_sub != other_sub
        (entry,) = list(db.access_log.find({"request_id": request_id}))
        assert (entry["sub"], entry["country"], entry["agency"]) == (police_sub, "AL", "state-police")
        assert "coordinator" not in entry["roles"]
        # The person is AL's: the XK coordinator the headers named cannot read it, the officer can.
        assert xk.request("GET", f"{BASE}/persons/{person['id']}").status_code == 404
        assert police.request("GET", f"{BASE}/persons/{person['id']}").status_code == 200
