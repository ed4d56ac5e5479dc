"""The access log through the real platform (gateway -> identification API process -> its database).

- A list read of N people writes exactly one entry naming exactly those N ids, with the caller's `sub`,
  country and agency, the purpose, the operationId and the request id, and the hash chain verifies.
- With the access-log write failing, the read answers 503 and the body carries no personal data. The failure
  is injected across a real process boundary: one extra identification API process (the same gunicorn command
  as devstack/run.py) whose access-log store (`THB_ACCESS_LOG_MONGODB_URI`, docs/identification.md) points at a
  port where nothing listens, while its own database works.
- A read without `X-Purpose` is a 422 and writes no entry.

The entries are read directly from the identification database (`thb_identification`) with pymongo.
"""

from __future__ import annotations

import json
import socket
import time
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import jwt
import pytest
from pymongo import MongoClient
from pymongo.database import Database

from devstack.demo import Gateway, me_shelter
from plumbing.access_log import AccessLog
from tests.integration.platform_helpers import notification

BASE = "/v1/identification"
LIST_PERSONS = "identification.entrypoints.http.list_persons"
N = 5
SURNAME = "Accesslogtest"
EXCHANGE = "cross-border-exchange"
RETURN_CASE = {"origin_country": "ME", "age_group": "child"}
NOTIFICATION = {**notification(SURNAME), "legal_basis": "protection-of-vital-interests"}
SHELTER = {"service_type": "child_shelter"}
REFERRAL_REQUEST = {
    "age_group": "child",
    "sex": "female",
    "municipality": "ME-PG",
    "legal_basis": "child-protection-duty",
    "case_fields": {"given_names": [SURNAME], "guardian_name": "Centre for Social Work Podgorica"},
}


@pytest.fixture(scope="module")
def db(platform: Any) -> Iterator[Database]:
    client: MongoClient = MongoClient(platform.env["MONGODB_URI"], tz_aware=True)
    yield client["thb_identification"]
    client.close()


def _headers(
    token: str, purpose: str | None = "identification", request_id: str | None = None
) -> dict[str, str]:
    headers = {"Authorization": f"Bearer {token}"}
    if purpose:
        headers["X-Purpose"] = purpose
    if request_id:
        headers["X-Request-Id"] = request_id
    return headers


def _register(base_url: str, token: str, n: int) -> list[dict[str, Any]]:
    people = []
    for i in range(n):
        body = {"given_names": [f"Vesna{i}"], "surnames": [SURNAME], "date_of_birth": "1990", "sex": "female"}
        headers = {**_headers(token), "Idempotency-Key": f"access-log-{uuid.uuid4()}"}
        response = httpx.post(f"{base_url}{BASE}/persons", json=body, headers=headers, timeout=30)
        assert response.status_code == 201, response.text
        people.append(response.json())
    return people


def test_a_list_read_of_n_people_writes_one_entry_naming_exactly_those_ids(running_platform: Any, db) -> None:
    platform = running_platform
    # An agency-scoped officer: the list shows only what their agency registered, so the window below holds
    # exactly the people this test created.
    token = platform.token("me-border")
    claims = jwt.decode(token, options={"verify_signature": False})
    people = _register(platform.gateway, token, N)
    since = min(p["updated_at"] for p in people)
    request_id = f"access-log-{uuid.uuid4()}"
    response = httpx.get(
        f"{platform.gateway}{BASE}/persons",
        params={"limit": 200, "updated_since": since},
        headers=_headers(token, request_id=request_id),
        timeout=30,
    )
    assert response.status_code == 200, response.text
    assert response.headers["x-request-id"] == request_id
    returned = [item["id"] for item in response.json()["items"]]
    assert sorted(returned) == sorted(p["id"] for p in people)

    entries = list(db.access_log.find({"request_id": request_id}))
    assert len(entries) == 1, entries
    (entry,) = entries
    assert entry["ids"] == returned  # exactly the N ids, in the order they were sent
    assert entry["purpose"] == "identification"
    assert entry["operation_id"] == LIST_PERSONS
    assert entry["resource_type"] == "person" and entry["outcome"] == "ok"
    assert entry["sub"] == claims["sub"] and entry["azp"] == claims["azp"]
    assert (entry["country"], entry["agency"]) == ("ME", "border-police")
    assert entry["roles"] == ["border-police"] or "border-police" in entry["roles"]
    assert entry["trace_id"]
    # ids only: no name reached the log
    assert SURNAME not in json.dumps(entry, default=str)
    report = AccessLog(db).verify_chain()
    assert report.ok, report


def test_an_idempotency_replay_is_a_read_logged_like_the_first(running_platform: Any, db) -> None:
    """A replayed registration returns names and dates of birth: it gets its own entry, with its own purpose
    and request id, naming the person; both through the gateway and straight to the service."""
    platform = running_platform
    token = platform.token("me-border")
    body = {"given_names": ["Replay"], "surnames": [SURNAME], "date_of_birth": "1991", "sex": "female"}
    for base_url in (platform.gateway, platform.urls["identification"]):
        key = f"replay-{uuid.uuid4()}"
        first = httpx.post(
            f"{base_url}{BASE}/persons",
            json=body,
            headers={**_headers(token), "Idempotency-Key": key},
            timeout=30,
        )
        assert first.status_code == 201, first.text
        request_id = f"replay-read-{uuid.uuid4()}"
        replay = httpx.post(
            f"{base_url}{BASE}/persons",
            json=body,
            headers={**_headers(token, "case-management", request_id), "Idempotency-Key": key},
            timeout=30,
        )
        assert replay.status_code == 201 and replay.headers["idempotent-replayed"] == "true"
        assert replay.json()["id"] == first.json()["id"]
        entries = list(db.access_log.find({"request_id": request_id}))
        assert len(entries) == 1, entries
        assert entries[0]["ids"] == [first.json()["id"]]
        assert entries[0]["purpose"] == "case-management"
        assert entries[0]["outcome"] == "replayed"
        assert entries[0]["operation_id"] == "identification.entrypoints.http.register_person"
    assert AccessLog(db).verify_chain().ok


def test_registration_without_idempotency_key_is_a_400_that_registers_nothing(
    running_platform: Any, db
) -> None:
    platform = running_platform
    token = platform.token("me-border")
    body = {"given_names": ["NoKey"], "surnames": [SURNAME], "date_of_birth": "1991", "sex": "female"}
    before = db.persons.count_documents({})
    for base_url in (platform.gateway, platform.urls["identification"]):
        response = httpx.post(f"{base_url}{BASE}/persons", json=body, headers=_headers(token), timeout=30)
        assert response.status_code == 400, response.text
        problem = response.json()
        assert problem["type"].endswith("/idempotency-key-required")
        assert problem["errors"] == [{"pointer": "/header/Idempotency-Key", "code": "required"}]
    assert db.persons.count_documents({}) == before


def test_a_read_without_purpose_is_422_and_writes_no_entry(running_platform: Any, db) -> None:
    platform = running_platform
    token = platform.token("me-border")
    for base_url in (platform.gateway, platform.urls["identification"]):
        request_id = f"no-purpose-{uuid.uuid4()}"
        response = httpx.get(
            f"{base_url}{BASE}/persons",
            params={"limit": 200},
            headers=_headers(token, purpose=None, request_id=request_id),
            timeout=30,
        )
        assert response.status_code == 422, response.text
        assert response.headers["content-type"].startswith("application/problem+json")
        assert SURNAME not in response.text
        assert db.access_log.count_documents({"request_id": request_id}) == 0


def _dead_store() -> str:
    """An audit store where nothing listens (a port bound and released), given up on after a second."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = int(s.getsockname()[1])
    return f"mongodb://127.0.0.1:{port}/?serverSelectionTimeoutMS=1000"


@pytest.fixture(scope="module")
def without_access_log(platform: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """One more API process per service, same command and environment as the platform's, whose access-log
    store is a port where nothing listens: {service: base url}."""
    env = {"THB_ACCESS_LOG_MONGODB_URI": _dead_store()}
    services = ["identification", "referral", "exchange", "return"]
    with platform.extra_apis(services, env, tmp_path_factory.mktemp("no-access-log")) as urls:
        yield urls


@pytest.fixture
def identification_without_access_log(without_access_log: dict[str, str]) -> str:
    return without_access_log["identification"]


def test_with_the_access_log_unwritable_the_read_is_503_without_personal_data(
    running_platform: Any, identification_without_access_log: str, db
) -> None:
    platform = running_platform
    token = platform.token("me-border")
    people = _register(platform.gateway, token, 2)  # through the healthy process: data exists to be leaked
    url = identification_without_access_log
    # The process is ready: its own database works (readiness) ...
    before = db.access_log.count_documents({})
    started = time.monotonic()
    for path, params in (
        ("/persons", {"limit": 200}),
        (f"/persons/{people[0]['id']}", None),
        (f"/cases/{people[0]['case_id']}", None),
    ):
        request_id = f"log-down-{uuid.uuid4()}"
        response = httpx.get(
            f"{url}{BASE}{path}", params=params, headers=_headers(token, request_id=request_id), timeout=60
        )
        # ... but no personal data leaves without its access-log entry.
        assert response.status_code == 503, (path, response.status_code, response.text)
        assert response.headers["content-type"].startswith("application/problem+json")
        assert "retry-after" in response.headers
        text = response.text
        assert SURNAME not in text and "Vesna" not in text
        for person in people:
            assert person["id"] not in text and person["case_id"] not in text
        assert response.json()["status"] == 503
        assert db.access_log.count_documents({"request_id": request_id}) == 0
    assert time.monotonic() - started < 60
    # Operations without personal data still work on that process: only personal data is held back.
    assert (
        httpx.get(
            f"{url}{BASE}/indicator-sets", headers=_headers(token, purpose=None), timeout=30
        ).status_code
        == 200
    )
    # The healthy process still logs, and the chain is intact.
    assert db.access_log.count_documents({}) >= before
    assert AccessLog(db).verify_chain().ok


def _personal_reads(platform: Any) -> list[tuple[str, str, str, str, str]]:
    """One record per other service that a personal-data read returns, made through the gateway:
    (service, user, purpose, path, a value of it that must not leak)."""
    gw = Gateway(platform.gateway, platform.issuer)
    case = gw.call("xk-case-manager", "POST", "/v1/return/cases", RETURN_CASE, purpose="return")
    drafted, form = gw.located("xk-contact-point", "/v1/exchange/drafts", NOTIFICATION, purpose=EXCHANGE)
    shelter = me_shelter(gw)
    proposed = gw.call("me-case-manager", "POST", "/v1/referral/referrals", SHELTER, purpose="referral")
    request = {**REFERRAL_REQUEST, "provider_id": shelter}
    path = f"/v1/referral/referrals/{proposed['id']}"
    gw.call("me-case-manager", "POST", f"{path}/request", request, purpose="referral")
    return [
        ("return", "xk-case-manager", "return", f"/v1/return/cases/{case['id']}", case["id"]),
        (
            "exchange",
            "xk-contact-point",
            EXCHANGE,
            f"/v1/exchange/cases/{drafted['id']}/forms/{form}",
            "Accesslogtest",
        ),
        ("referral", "me-case-manager", "referral", f"{path}/case-fields", "Accesslogtest"),
    ]


def test_with_the_access_log_unwritable_every_service_holds_back_personal_data(
    running_platform: Any, without_access_log: dict[str, str]
) -> None:
    platform = running_platform
    for service, user, purpose, path, secret in _personal_reads(platform):
        headers = _headers(platform.token(user), purpose=purpose)
        healthy = httpx.get(f"{platform.urls[service]}{path}", headers=headers, timeout=30)
        assert healthy.status_code == 200 and secret in healthy.text, (service, healthy.text[:300])
        held = httpx.get(f"{without_access_log[service]}{path}", headers=headers, timeout=60)
        assert held.status_code == 503, (service, held.status_code, held.text[:300])
        assert held.headers["content-type"].startswith("application/problem+json"), service
        assert "retry-after" in held.headers, service
        assert held.json()["type"].endswith("/access-log-unavailable"), held.text
        assert secret not in held.text, service
