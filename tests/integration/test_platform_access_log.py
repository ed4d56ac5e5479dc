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
from dataclasses import dataclass
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


@dataclass(frozen=True)
class PersonalRead:
    """A personal-data read of one record of a service, made through the gateway: who may read it, with which
    purpose, where, a value of it that must not leak, and the record id its access-log entry names."""

    service: str
    user: str
    purpose: str
    path: str
    secret: str
    record_id: str


def _personal_reads(platform: Any) -> list[PersonalRead]:
    """One record per other service that a personal-data read returns, made through the gateway."""
    gw = Gateway(platform.gateway, platform.issuer)
    case = gw.call("xk-case-manager", "POST", "/v1/return/cases", RETURN_CASE, purpose="return")
    drafted, form = gw.located("xk-contact-point", "/v1/exchange/drafts", NOTIFICATION, purpose=EXCHANGE)
    shelter = me_shelter(gw)
    proposed = gw.call("me-case-manager", "POST", "/v1/referral/referrals", SHELTER, purpose="referral")
    request = {**REFERRAL_REQUEST, "provider_id": shelter}
    path = f"/v1/referral/referrals/{proposed['id']}"
    gw.call("me-case-manager", "POST", f"{path}/request", request, purpose="referral")
    return [
        PersonalRead(
            "return", "xk-case-manager", "return", f"/v1/return/cases/{case['id']}", case["id"], case["id"]
        ),
        PersonalRead(
            "exchange",
            "xk-contact-point",
            EXCHANGE,
            f"/v1/exchange/cases/{drafted['id']}/forms/{form}",
            SURNAME,
            form,
        ),
        PersonalRead(
            "referral", "me-case-manager", "referral", f"{path}/case-fields", SURNAME, proposed["id"]
        ),
    ]


def test_with_the_access_log_unwritable_every_service_holds_back_personal_data(
    running_platform: Any, without_access_log: dict[str, str]
) -> None:
    platform = running_platform
    for read in _personal_reads(platform):
        service = read.service
        headers = _headers(platform.token(read.user), purpose=read.purpose)
        healthy = httpx.get(f"{platform.urls[service]}{read.path}", headers=headers, timeout=30)
        assert healthy.status_code == 200 and read.secret in healthy.text, (service, healthy.text[:300])
        held = httpx.get(f"{without_access_log[service]}{read.path}", headers=headers, timeout=60)
        assert held.status_code == 503, (service, held.status_code, held.text[:300])
        assert held.headers["content-type"].startswith("application/problem+json"), service
        assert "retry-after" in held.headers, service
        assert held.json()["type"].endswith("/access-log-unavailable"), held.text
        assert read.secret not in held.text, service


# ------------------------------------------------------------------------------------------------ audit API


def _audit(platform: Any, user: str, service: str, **params: Any) -> httpx.Response:
    headers = {"Authorization": f"Bearer {platform.token(user)}"}
    return httpx.get(
        f"{platform.gateway}/v1/{service}/access-log", params=params, headers=headers, timeout=30
    )


def _all_entries(platform: Any, user: str, service: str, **params: Any) -> list[dict[str, Any]]:
    """Every page, following `next_cursor` with the same filters."""
    entries: list[dict[str, Any]] = []
    cursor = None
    while True:
        response = _audit(platform, user, service, **params, **({"cursor": cursor} if cursor else {}))
        assert response.status_code == 200, response.text
        entries.extend(response.json()["items"])
        cursor = response.json()["next_cursor"]
        if cursor is None:
            return entries


def test_a_data_protection_officer_learns_who_read_a_childs_file_when_and_why(running_platform: Any) -> None:
    platform = running_platform
    officer = platform.token("al-case-manager")
    officer_sub = jwt.decode(officer, options={"verify_signature": False})["sub"]
    body = {"given_names": ["Auditchild"], "surnames": [SURNAME], "date_of_birth": "2012", "sex": "female"}
    headers = {**_headers(officer), "Idempotency-Key": f"audit-{uuid.uuid4()}"}
    registered = httpx.post(f"{platform.gateway}{BASE}/persons", json=body, headers=headers, timeout=30)
    assert registered.status_code == 201, registered.text
    child = registered.json()["id"]
    for purpose in ("case-management", "referral"):
        read = httpx.get(
            f"{platform.gateway}{BASE}/persons/{child}", headers=_headers(officer, purpose), timeout=30
        )
        assert read.status_code == 200, read.text

    entries = _all_entries(platform, "al-dpo", "identification", record_id=child)
    # The registration answered her data (a read), then the two reads: who, when, why, by which operation.
    assert [e["purpose"] for e in entries] == ["identification", "case-management", "referral"]
    assert {e["actor"] for e in entries} == {officer_sub}
    assert [e["operation"].rsplit(".", 1)[1] for e in entries] == [
        "register_person",
        "get_person",
        "get_person",
    ]
    assert all(child in e["record_ids"] and e["country"] == "AL" for e in entries)
    assert [e["seq"] for e in entries] == sorted(e["seq"] for e in entries)
    # Page by page (limit 1) the same entries in the same order; filters narrow them.
    assert [
        e["seq"] for e in _all_entries(platform, "al-dpo", "identification", record_id=child, limit=1)
    ] == [e["seq"] for e in entries]
    narrowed = _all_entries(platform, "al-auditor", "identification", record_id=child, purpose="referral")
    assert [e["seq"] for e in narrowed] == [entries[-1]["seq"]]
    by_actor = _all_entries(platform, "al-dpo", "identification", actor=officer_sub, since=entries[0]["time"])
    assert {e["seq"] for e in entries} <= {e["seq"] for e in by_actor}
    assert {e["actor"] for e in by_actor} == {officer_sub}
    assert _all_entries(platform, "al-dpo", "identification", record_id=child, until=entries[0]["time"]) == []
    # Ids and codes only: the child's name is not in the audit answer.
    assert "Auditchild" not in _audit(platform, "al-dpo", "identification", record_id=child).text

    # Another country's officers see nothing of it; nobody else may ask.
    assert _all_entries(platform, "xk-dpo", "identification", record_id=child) == []
    for user in ("al-case-manager", "al-coordinator", "al-analyst"):
        assert _audit(platform, user, "identification", record_id=child).status_code == 403, user
    # A period that ends before it starts, or a forged cursor, is a clear problem.
    bad = _audit(
        platform, "al-dpo", "identification", since="2026-02-01T00:00:00Z", until="2026-01-01T00:00:00Z"
    )
    assert bad.status_code == 422 and bad.json()["errors"] == [
        {"pointer": "/query/until", "code": "after_since"}
    ]
    forged = _audit(platform, "al-dpo", "identification", cursor="bm90LWEtY3Vyc29y")
    assert forged.status_code == 400 and forged.json()["errors"][0]["pointer"] == "/query/cursor"


def test_every_service_answers_its_own_countrys_auditors_and_verifies_its_chain(
    running_platform: Any,
) -> None:
    platform = running_platform
    for read in _personal_reads(platform):
        reader = platform.token(read.user)
        answer = httpx.get(
            f"{platform.gateway}{read.path}", headers=_headers(reader, read.purpose), timeout=30
        )
        assert answer.status_code == 200, (read.service, answer.text[:300])
        country = read.user.split("-", 1)[0]
        entries = _all_entries(platform, f"{country}-dpo", read.service, record_id=read.record_id)
        sub = jwt.decode(reader, options={"verify_signature": False})["sub"]
        assert any(e["actor"] == sub and e["purpose"] == read.purpose for e in entries), (
            read.service,
            entries,
        )
        assert read.secret not in json.dumps(entries) or read.secret == read.record_id
        other = "al" if country != "al" else "me"
        assert _all_entries(platform, f"{other}-dpo", read.service, record_id=read.record_id) == [], (
            read.service
        )
    for service in ("identification", "referral", "exchange", "return"):
        response = httpx.get(
            f"{platform.gateway}/v1/{service}/access-log/verification",
            headers={"Authorization": f"Bearer {platform.token('me-auditor')}"},
            timeout=60,
        )
        assert response.status_code == 200, (service, response.text)
        report = response.json()
        assert report["ok"] is True and report["checked"] > 0 and report["first_broken_seq"] is None, service


def test_verification_names_the_first_entry_edited_after_it_was_written(running_platform: Any, db) -> None:
    platform = running_platform
    token = platform.token("me-border")
    (person,) = _register(platform.gateway, token, 1)
    entry = db.access_log.find_one({"ids": person["id"]})
    assert entry is not None
    auditor = {"Authorization": f"Bearer {platform.token('me-auditor')}"}
    url = f"{platform.gateway}{BASE}/access-log/verification"
    # Someone with database access rewrites who read the record; the chain says where.
    db.access_log.update_one({"_id": entry["_id"]}, {"$set": {"sub": "someone-else"}})
    try:
        report = httpx.get(url, headers=auditor, timeout=60).json()
        assert report["ok"] is False, report
        assert report["first_broken_seq"] == entry["_id"]
        assert report["reason"] == "entry content does not match its hash"
    finally:
        db.access_log.update_one({"_id": entry["_id"]}, {"$set": {"sub": entry["sub"]}})
    assert httpx.get(url, headers=auditor, timeout=60).json()["ok"] is True
