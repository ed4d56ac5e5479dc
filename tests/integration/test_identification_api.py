"""The identification service through its real app (uvicorn on a free port) with real Keycloak tokens, the
Mongo-wire server and Kafka: ownership and need-to-know, roles, encryption at rest, the access log, 422 without
partial writes, screening -> decision -> notification, events on Kafka, duplicate searches."""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from typing import Any

import httpx
import pytest
from pymongo import MongoClient

from devstack.asgi_thread import ServerThread

PASSWORD = "thb-local-demo-1"  # the local realm's demo password (realm/local-realm.json)
BASE = "/v1/identification"
PURPOSE = {"X-Purpose": "identification"}


@pytest.fixture(scope="module")
def env(mongo, keycloak, kafka, tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    keys = tmp_path_factory.mktemp("identification-keys") / "keys.json"
    return {
        "THB_MODE": "local",
        "MONGODB_URI": mongo.env["MONGODB_URI"],
        "MONGODB_DB": f"thb_identification_it_{uuid.uuid4().hex[:8]}",
        "OIDC_ISSUER": keycloak.env["OIDC_ISSUER"],
        "KAFKA_BOOTSTRAP_SERVERS": kafka.env["KAFKA_BOOTSTRAP_SERVERS"],
        "THB_KEYS_FILE": str(keys),
    }


@pytest.fixture(scope="module")
def service(env: dict[str, str]) -> Iterator[str]:
    from identification.entrypoints.http import create_http_app

    app = create_http_app(env, validate_responses=True)
    with ServerThread(app) as server:
        deadline = time.monotonic() + 30
        while httpx.get(server.url + "/readyz").status_code != 200:
            assert time.monotonic() < deadline, "identification never became ready"
            time.sleep(0.2)
        yield server.url


@pytest.fixture(scope="module")
def db(env: dict[str, str]) -> Iterator[Any]:
    client: MongoClient = MongoClient(env["MONGODB_URI"], tz_aware=True)
    yield client[env["MONGODB_DB"]]
    client.drop_database(env["MONGODB_DB"])
    client.close()


@pytest.fixture(scope="module")
def token(keycloak):
    cache: dict[str, str] = {}
    url = keycloak.env["OIDC_ISSUER"] + "/protocol/openid-connect/token"

    def get(username: str) -> str:
        if username not in cache:
            response = httpx.post(
                url,
                data={
                    "grant_type": "password",
                    "client_id": "thb-test",
                    "username": username,
                    "password": PASSWORD,
                },
            )
            response.raise_for_status()
            cache[username] = response.json()["access_token"]
        return cache[username]

    return get


@pytest.fixture(scope="module")
def call(service: str, token):
    def send(
        user: str, method: str, path: str, body: Any = None, purpose: bool = True, **params: Any
    ) -> httpx.Response:
        headers = {"Authorization": f"Bearer {token(user)}", **(PURPOSE if purpose else {})}
        if method == "POST":
            headers["Idempotency-Key"] = f"test-{uuid.uuid4()}"
        return httpx.request(
            method, service + BASE + path, headers=headers, json=body, params=params or None, timeout=30
        )

    return send


def register(call, user: str = "al-police", **fields: Any) -> dict[str, Any]:
    body = {
        "given_names": ["Ëngjëll"],
        "surnames": ["Hoxha"],
        "date_of_birth": "2010-05",
        "sex": "male",
        **fields,
    }
    response = call(user, "POST", "/persons", body)
    assert response.status_code == 201, response.text
    return response.json()


# ------------------------------------------------------------------------------------------------- persons


def test_register_read_and_list_with_encryption_and_access_log(call, db) -> None:
    person = register(call, nationalities=["XK"], documents=[{"type": "passport", "number": "P-12345"}])
    assert person["owner_country"] == "AL" and person["owner_agency"] == "state-police"
    assert person["child"] is True and person["case_id"]
    got = call("al-police", "GET", f"/persons/{person['id']}")
    assert got.status_code == 200 and got.json()["surnames"] == ["Hoxha"]
    listed = call("al-police", "GET", "/persons", limit=200).json()["items"]
    assert person["id"] in [p["id"] for p in listed]

    stored = db.persons.find_one({"_id": person["id"]})
    raw = json.dumps(stored, default=str)
    assert "Hoxha" not in raw and "P-12345" not in raw and "2010" not in raw
    assert stored["sealed"].startswith("v1:") and stored["blocking_keys"]
    # the event is in the outbox with ids and codes only
    [event] = [e for e in stored["pending_events"] if e["type"] == "identification.person.registered.v1"] or [
        None
    ]
    assert event is not None and event["data"]["age_group"] == "child" and "Hoxha" not in json.dumps(event)
    # every read went through the access log, naming the person
    entries = list(db.access_log.find({"ids": person["id"]}))
    operations = {e["operation_id"] for e in entries}
    assert {
        "identification.entrypoints.http.register_person",
        "identification.entrypoints.http.get_person",
        "identification.entrypoints.http.list_persons",
    } <= operations
    assert all(e["purpose"] == "identification" for e in entries)
    case = db.cases.find_one({"_id": person["case_id"]})
    assert case is not None and case["reference"].startswith("AL-")


def test_other_country_and_other_agency_get_404_country_wide_roles_see_it(call) -> None:
    person = register(call)
    for user in ("xk-police", "me-case-manager", "al-labour"):
        assert call(user, "GET", f"/persons/{person['id']}").status_code == 404, user
        assert call(user, "GET", f"/cases/{person['case_id']}").status_code == 404, user
    for user in ("al-case-manager", "al-coordinator", "al-police"):
        assert call(user, "GET", f"/cases/{person['case_id']}").status_code == 200, user


def test_analyst_gets_403_on_personal_data_operations(call) -> None:
    person = register(call)
    assert call("al-analyst", "GET", "/persons").status_code == 403
    assert call("al-analyst", "GET", f"/persons/{person['id']}").status_code == 403
    assert call("al-analyst", "GET", f"/cases/{person['case_id']}").status_code == 403
    assert call("al-analyst", "POST", "/duplicate-searches", {"surnames": ["Hoxha"]}).status_code == 403


def test_bad_input_is_422_with_pointers_and_stores_nothing(call, db) -> None:
    before = (db.persons.count_documents({}), db.cases.count_documents({}))
    response = call(
        "al-police",
        "POST",
        "/persons",
        {"surnames": ["Canary-Name"], "date_of_birth_range": {"earliest": "2030", "latest": "2031"}},
    )
    assert response.status_code == 422
    problem = response.json()
    # Refused by the contract's date rule (x-past-date) before the domain sees it, with each field's pointer.
    assert {"pointer": "/body/date_of_birth_range/earliest", "code": "date-range"} in problem["errors"]
    assert {"pointer": "/body/date_of_birth_range/latest", "code": "date-range"} in problem["errors"]
    assert "Canary-Name" not in response.text
    schema_error = call("al-police", "POST", "/persons", {"surnames": ["x"], "eye_colour": "blue"})
    assert schema_error.status_code == 422
    assert (db.persons.count_documents({}), db.cases.count_documents({})) == before


# -------------------------------------------------------------------- screening, decision, notification


ADULT_LABOUR = [
    {"list_id": "A-LAB", "indicator_id": "A-LAB-DR-01"},
    {"list_id": "A-LAB", "indicator_id": "A-LAB-EX-01"},
    {"list_id": "A-LAB", "indicator_id": "A-LAB-CD-01"},
]


def test_screening_decision_notification_and_events(call, db) -> None:
    person = register(call, date_of_birth="1990-01-01", nationalities=["ME"])
    assert person["child"] is False
    bad = call(
        "al-police",
        "POST",
        "/screenings",
        {
            "case_id": person["case_id"],
            "indicator_set_version": "2026.1",
            "answers": [{"list_id": "C-BEG", "indicator_id": "C-BEG-EX-01"}],
        },
    )
    assert bad.status_code == 422, bad.text
    assert bad.json()["errors"][0]["code"] == "indicator_wrong_list"

    screened = call(
        "al-police",
        "POST",
        "/screenings",
        {"case_id": person["case_id"], "indicator_set_version": "2026.1", "answers": ADULT_LABOUR},
    )
    assert screened.status_code == 201, screened.text
    screening = screened.json()
    assert screening["suggested_category"] == "potential_victim"
    assert screening["indicator_set"].startswith("regional@2026.1")
    assert call("al-police", "GET", f"/screenings/{screening['id']}").status_code == 200
    assert call("xk-police", "GET", f"/screenings/{screening['id']}").status_code == 404

    # victim only by an authorised role (403: not something the client can fix in the request) ...
    refused = call("al-police", "POST", f"/cases/{person['case_id']}/decisions", {"category": "victim"})
    assert refused.status_code == 403, refused.text
    assert refused.json()["type"].endswith("/forbidden")
    assert refused.json()["errors"] == [
        {"pointer": "/body/category", "code": "formal_identification_not_authorised"}
    ]
    # ... with a legal reference (422)
    unreferenced = call(
        "al-case-manager", "POST", f"/cases/{person['case_id']}/decisions", {"category": "victim"}
    )
    assert unreferenced.status_code == 422
    assert unreferenced.json()["errors"] == [{"pointer": "/body/legal_reference", "code": "required"}]

    decided = call(
        "al-police",
        "POST",
        f"/cases/{person['case_id']}/decisions",
        {"category": "potential_victim", "screening_id": screening["id"]},
    )
    assert decided.status_code == 200, decided.text
    assert decided.json()["category"] == "potential_victim"
    case = db.cases.find_one({"_id": person["case_id"]})
    [event] = [e for e in case["pending_events"] if e["type"] == "identification.category.decided.v1"]
    assert event["data"]["cross_border"] == [{"country": "ME", "links": ["national"]}]
    assert event["data"]["follows_suggestion"] is True

    unacknowledged = call("al-coordinator", "GET", "/notifications", acknowledged="false").json()["items"]
    [note] = [n for n in unacknowledged if n["case_id"] == person["case_id"]]
    assert note["category"] == "potential_victim"
    assert call("xk-coordinator", "GET", "/notifications").json()["items"] == [] or all(
        n["owner_country"] == "XK" for n in call("xk-coordinator", "GET", "/notifications").json()["items"]
    )
    assert call("al-police", "GET", "/notifications").status_code == 403
    acknowledged = call("al-coordinator", "POST", f"/notifications/{note['id']}/acknowledgement", {})
    assert acknowledged.status_code == 200 and acknowledged.json()["acknowledged"] is True

    formal = call(
        "al-case-manager",
        "POST",
        f"/cases/{person['case_id']}/decisions",
        {"category": "victim", "legal_reference": "decision 12/2026"},
    )
    assert formal.status_code == 200, formal.text
    period = call("al-case-manager", "POST", f"/cases/{person['case_id']}/recovery-period", {"days": 20})
    assert period.status_code == 422
    period = call("al-case-manager", "POST", f"/cases/{person['case_id']}/recovery-period", {})
    assert period.status_code == 200 and period.json()["recovery_period"]["days"] == 30
    needs = call(
        "al-police",
        "POST",
        f"/cases/{person['case_id']}/needs",
        {"needs": ["shelter", "interpreter"], "interpreter_languages": ["srp"]},
    )
    assert needs.status_code == 200, needs.text
    closed = call(
        "al-case-manager", "POST", f"/cases/{person['case_id']}/closure", {"reason": "returned_to_origin"}
    )
    assert closed.status_code == 200
    body = closed.json()
    assert body["status"] == "closed"
    assert [e["type"] for e in body["timeline"]] == [
        "opened",
        "screening_completed",
        "category_decided",
        "category_decided",
        "recovery_period_started",
        "needs_identified",
        "closed",
    ]
    again = call("al-case-manager", "POST", f"/cases/{person['case_id']}/closure", {"reason": "other"})
    assert again.status_code == 409


def test_screening_event_reaches_kafka_through_the_relay(call, db, env) -> None:
    from kafka import KafkaConsumer

    from plumbing.kafka import ensure_topics, make_producer
    from plumbing.outbox import Relay

    person = register(call, date_of_birth="1985")
    screened = call(
        "al-police",
        "POST",
        "/screenings",
        {"case_id": person["case_id"], "indicator_set_version": "2026.1", "answers": ADULT_LABOUR},
    )
    assert screened.status_code == 201
    screening_id = screened.json()["id"]
    bootstrap = env["KAFKA_BOOTSTRAP_SERVERS"]
    ensure_topics(bootstrap)
    relay = Relay(
        [db.persons, db.cases, db.notifications, db.duplicate_searches],
        partial(make_producer, bootstrap, client_id="identification-it-relay"),
        poll_interval_s=0.2,
    )
    thread = threading.Thread(target=relay.run, kwargs={"install_signal_handlers": False}, daemon=True)
    thread.start()
    consumer = KafkaConsumer(
        "identification.events.v1",
        bootstrap_servers=bootstrap,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        group_id=f"it-{uuid.uuid4().hex[:8]}",
        session_timeout_ms=6000,
        consumer_timeout_ms=1000,
    )
    try:
        from plumbing.events import from_kafka

        seen: dict[str, dict[str, Any]] = {}
        deadline = time.monotonic() + 60
        while screening_id not in seen and time.monotonic() < deadline:
            for record in consumer:
                envelope = from_kafka(record.key, record.value, record.headers)
                seen[envelope["subject"]] = envelope
        assert screening_id in seen, "screening.completed never reached Kafka"
        event = seen[screening_id]
        assert event["type"] == "identification.screening.completed.v1"
        assert event["data"]["case_id"] == person["case_id"] and event["data"]["age_group"] == "adult"
        assert person["id"] in seen and seen[person["id"]]["type"] == "identification.person.registered.v1"
        deadline = time.monotonic() + 20
        while db.cases.find_one({"_id": person["case_id"]})["pending_events"] and time.monotonic() < deadline:
            time.sleep(0.1)
        assert db.cases.find_one({"_id": person["case_id"]})["pending_events"] == []
    finally:
        relay.stop()
        thread.join(timeout=30)
        consumer.close()


# --------------------------------------------------------------------------------------- duplicates


def test_duplicate_search_folds_scripts_and_spellings(call) -> None:
    djordje = register(call, given_names=["Đorđe"], surnames=["Petrović"], date_of_birth="1992-03-04")
    hoxha = register(call, given_names=["Ëngjëll"], surnames=["Hoxha"], date_of_birth="1988")
    other = register(call, given_names=["Đorđe"], surnames=["Petrović"], date_of_birth="1960")

    def search(**criteria: Any) -> dict[str, Any]:
        response = call("al-police", "POST", "/duplicate-searches", criteria)
        assert response.status_code == 201, response.text
        return response.json()

    for given, family in (("Djordje", "Petrovic"), ("Ђорђе", "Петровић")):
        result = search(given_names=[given], surnames=[family], date_of_birth="1992")
        levels = {c["person_id"]: c["level"] for c in result["candidates"]}
        assert levels.get(djordje["id"]) == "likely", result
        assert other["id"] not in levels  # born decades apart: never a match
    for family in ("Hoxha", "Hodža", "Хоџа"):
        result = search(given_names=["Engjell"], surnames=[family], date_of_birth="1988")
        assert hoxha["id"] in {c["person_id"] for c in result["candidates"]}, family

    result = search(given_names=["Djordje"], surnames=["Petrovic"], date_of_birth="1992")
    linked = call(
        "al-police",
        "POST",
        "/persons",
        {
            "given_names": ["Djordje"],
            "surnames": ["Petrovic"],
            "duplicate_check": {
                "search_id": result["id"],
                "outcome": "linked",
                "linked_person_id": djordje["id"],
            },
        },
    )
    assert linked.status_code == 201
    assert linked.json()["duplicate_check"]["linked_person_id"] == djordje["id"]
    assert (
        call("xk-police", "POST", "/duplicate-searches", {"surnames": ["Petrović"]}).json()["candidates"]
        == []
    )


def test_a_correction_changes_what_a_search_finds_and_keeps_the_old_value(call, service, token, db) -> None:
    person = register(call, given_names=["Arbëreshë"], surnames=["Gjokaj"], date_of_birth="1995-02-03")

    def patch(user: str, body: dict[str, Any], if_match: str | None) -> httpx.Response:
        headers = {"Authorization": f"Bearer {token(user)}", **PURPOSE}
        if if_match is not None:
            headers["If-Match"] = if_match
        return httpx.patch(f"{service}{BASE}/persons/{person['id']}", headers=headers, json=body, timeout=30)

    def found(surname: str) -> set[str]:
        body = {"surnames": [surname], "date_of_birth": "1995-02-03"}
        response = call("al-police", "POST", "/duplicate-searches", body)
        assert response.status_code == 201, response.text
        return {c["person_id"] for c in response.json()["candidates"]}

    assert person["id"] in found("Gjokaj") and person["id"] not in found("Berisha")
    read = call("al-police", "GET", f"/persons/{person['id']}")
    etag = read.headers["ETag"]
    correction = {"surnames": ["Berisha"], "reason": "document_seen"}

    missing = patch("al-police", correction, None)
    assert missing.status_code == 422
    assert missing.json()["errors"] == [{"pointer": "/header/If-Match", "code": "required"}]
    assert patch("xk-police", correction, etag).status_code == 404  # another country: not found

    corrected = patch("al-police", correction, etag)
    assert corrected.status_code == 200, corrected.text
    assert corrected.json()["surnames"] == ["Berisha"] and corrected.headers["ETag"] != etag
    [entry] = corrected.json()["corrections"]
    assert entry["fields"] == ["surnames"] and entry["previous"] == {"surnames": ["Gjokaj"]}
    assert person["id"] in found("Berisha") and person["id"] not in found("Gjokaj")

    stale = patch("al-police", {"given_names": ["Arbër"], "reason": "spelling"}, etag)
    assert stale.status_code == 412 and stale.json()["type"].endswith("/precondition-failed")
    assert call("al-police", "GET", f"/persons/{person['id']}").json()["given_names"] == ["Arbëreshë"]

    stored = db.persons.find_one({"_id": person["id"]})
    raw = json.dumps(stored, default=str, ensure_ascii=False)
    assert "Gjokaj" not in raw and "Berisha" not in raw  # old and new values encrypted
    [event] = [e for e in stored["pending_events"] if e["type"] == "identification.person.corrected.v1"] or [
        None
    ]
    assert (
        event is not None and event["data"]["fields"] == ["surnames"] and "Berisha" not in json.dumps(event)
    )
    assert db.access_log.find_one(
        {"ids": person["id"], "operation_id": "identification.entrypoints.http.correct_person"}
    )


def test_an_external_ref_sent_again_with_other_details_is_409_and_two_at_once_register_one_person(
    call, db
) -> None:
    reference = f"AL/IT/{uuid.uuid4().hex[:8]}"
    body = {
        "given_names": ["Blerta"],
        "surnames": ["Kastrati"],
        "date_of_birth": "2001",
        "external_ref": reference,
    }
    first = call("al-police", "POST", "/persons", body)
    assert first.status_code == 201, first.text
    assert call("al-police", "POST", "/persons", body).json()["id"] == first.json()["id"]
    changed = call("al-police", "POST", "/persons", {**body, "date_of_birth": "2002"})
    assert changed.status_code == 409, changed.text
    assert changed.json()["errors"] == [{"pointer": "/body/date_of_birth", "code": "external_ref_differs"}]

    # Two requests with a new reference at the same moment (different Idempotency-Keys): one person.
    racing = {**body, "external_ref": f"{reference}-race"}
    with ThreadPoolExecutor(max_workers=4) as pool:
        answers = list(pool.map(lambda _: call("al-police", "POST", "/persons", racing), range(4)))
    assert sorted(a.status_code for a in answers)[0] in (200, 201) and all(
        a.status_code < 300 for a in answers
    )
    assert len({a.json()["id"] for a in answers}) == 1
    assert db.persons.count_documents({"external_ref": racing["external_ref"]}) == 1


def test_a_surname_alone_and_a_search_without_a_name_find_candidates(call) -> None:
    surname = f"Zenelaj{uuid.uuid4().hex[:4]}"  # a surname of this test only
    named = register(call, given_names=["Dritan"], surnames=[surname], date_of_birth="2011-06", sex="male")
    # Found at a border, without a name: only her sex and an age.
    body = {"sex": "female", "date_of_birth_range": {"earliest": "1931", "latest": "1932"}}
    response = call("al-police", "POST", "/persons", body)
    assert response.status_code == 201, response.text
    unnamed = response.json()

    by_surname = call("al-police", "POST", "/duplicate-searches", {"surnames": [surname.upper()]})
    assert by_surname.status_code == 201, by_surname.text
    [candidate] = [c for c in by_surname.json()["candidates"] if c["person_id"] == named["id"]]
    assert candidate["level"] == "possible" and "given_name_not_searched" in candidate["reasons"]

    by_age = call(
        "al-police",
        "POST",
        "/duplicate-searches",
        {"date_of_birth_range": {"earliest": "1930", "latest": "1932"}, "sex": "female"},
    )
    assert by_age.status_code == 201, by_age.text
    levels = {c["person_id"]: c["level"] for c in by_age.json()["candidates"]}
    assert levels.get(unnamed["id"]) == "possible" and named["id"] not in levels

    nothing = call("al-police", "POST", "/duplicate-searches", {"sex": "female"})
    assert nothing.status_code == 422
    assert nothing.json()["errors"] == [{"pointer": "/body", "code": "name_or_birth_required"}]


def test_a_border_officer_learns_that_the_national_systems_record_exists_and_nothing_personal(
    call, service, keycloak, db
) -> None:
    token = httpx.post(
        keycloak.env["OIDC_ISSUER"] + "/protocol/openid-connect/token",
        data={
            "grant_type": "client_credentials",
            "client_id": "xk-national-system",
            "client_secret": "xk-national-system-local-secret",
        },
        timeout=30,
    ).json()["access_token"]
    surname = f"Morina{uuid.uuid4().hex[:4]}"
    registered = httpx.post(
        f"{service}{BASE}/persons",
        headers={"Authorization": f"Bearer {token}", "Idempotency-Key": str(uuid.uuid4()), **PURPOSE},
        json={"given_names": ["Besa"], "surnames": [surname], "date_of_birth": "2012-07", "sex": "female"},
        timeout=30,
    )
    assert registered.status_code == 201, registered.text
    person = registered.json()
    assert person["owner_agency"] == "national-system"
    assert call("xk-border", "GET", f"/persons/{person['id']}").status_code == 404  # content: need-to-know

    found = call("xk-border", "POST", "/duplicate-searches", {"given_names": ["Besa"], "surnames": [surname]})
    assert found.status_code == 201, found.text
    answer = found.json()
    assert answer["candidates"] == []
    [restricted] = answer["restricted_candidates"]
    assert restricted["owner_agency"] == "national-system" and restricted["case_id"] == person["case_id"]
    assert restricted["case_reference"].startswith("XK-") and restricted["level"] in ("likely", "possible")
    assert surname not in found.text and "Besa" not in found.text and person["id"] not in found.text
    # The read is logged with its purpose, naming the person the answer was about.
    entry = db.access_log.find_one(
        {"operation_id": "identification.entrypoints.http.create_duplicate_search", "ids": person["id"]}
    )
    assert entry is not None and entry["purpose"] == "identification"
    # Nobody outside Kosovo learns of it.
    elsewhere = call(
        "al-border", "POST", "/duplicate-searches", {"given_names": ["Besa"], "surnames": [surname]}
    )
    assert elsewhere.json()["candidates"] == [] and elsewhere.json()["restricted_candidates"] == []


def test_an_access_request_granted_by_the_responsible_side_opens_the_case(call) -> None:
    surname = f"Rexhepi{uuid.uuid4().hex[:4]}"
    known = register(call, "al-labour", given_names=["Arbër"], surnames=[surname], date_of_birth="2011-02")
    assert call("al-border", "GET", f"/cases/{known['case_id']}").status_code == 404

    search = call(
        "al-border", "POST", "/duplicate-searches", {"given_names": ["Arber"], "surnames": [surname]}
    )
    assert search.status_code == 201, search.text
    [restricted] = search.json()["restricted_candidates"]
    body = {
        "search_id": search.json()["id"],
        "case_id": restricted["case_id"],
        "reason": "same_person_suspected",
    }
    asked = call("al-border", "POST", "/access-requests", body)
    assert asked.status_code == 201, asked.text
    request = asked.json()
    assert request["status"] == "pending" and request["owner_agency"] == "labour-inspectorate"
    assert call("al-border", "POST", "/access-requests", body).json()["id"] == request["id"]  # asked once

    # The requester cannot decide her own request; the responsible officer sees it and grants it.
    own = call(
        "al-border",
        "POST",
        f"/access-requests/{request['id']}/decision",
        {"granted": True, "reason": "other"},
    )
    assert own.status_code == 403, own.text
    pending = call("al-labour", "GET", "/access-requests", status="pending").json()["items"]
    assert request["id"] in [r["id"] for r in pending]
    decided = call(
        "al-labour",
        "POST",
        f"/access-requests/{request['id']}/decision",
        {"granted": True, "reason": "same_person_confirmed"},
    )
    assert decided.status_code == 200, decided.text
    assert decided.json()["status"] == "granted"

    case = call("al-border", "GET", f"/cases/{known['case_id']}")
    assert case.status_code == 200, case.text
    types = [entry["type"] for entry in case.json()["timeline"]]
    assert types[-2:] == ["access_requested", "access_granted"]
    assert call("al-border", "GET", f"/persons/{known['id']}").json()["surnames"] == [surname]
    assert call("al-police", "GET", f"/cases/{known['case_id']}").status_code == 404  # only the requester
    again = call(
        "al-labour",
        "POST",
        f"/access-requests/{request['id']}/decision",
        {"granted": False, "reason": "other"},
    )
    assert again.status_code == 409


def test_a_coordinator_merges_two_records_of_one_child_and_undoes_it(call, db) -> None:
    surname = f"Dervishi{uuid.uuid4().hex[:4]}"
    kept = register(call, "al-police", given_names=["Blerina"], surnames=[surname], date_of_birth="2012-03")
    duplicate = register(call, "al-labour", given_names=["Blerina"], surnames=[surname], date_of_birth="2012")
    body = {"into_person_id": kept["id"], "reason": "same_person_confirmed"}
    assert call("al-police", "POST", f"/persons/{duplicate['id']}/merge", body).status_code == 403
    assert call("xk-coordinator", "POST", f"/persons/{duplicate['id']}/merge", body).status_code == 404
    itself = call("al-coordinator", "POST", f"/persons/{kept['id']}/merge", body)
    assert itself.status_code == 422 and itself.json()["errors"][0]["code"] == "merge_with_itself"

    merged = call("al-coordinator", "POST", f"/persons/{duplicate['id']}/merge", body)
    assert merged.status_code == 200, merged.text
    assert merged.json()["merged_into"] == kept["id"]
    assert call("al-coordinator", "GET", f"/persons/{kept['id']}").json()["merged_from"] == [duplicate["id"]]
    # Each agency reads its own record as before (the merge grants nobody anything) and sees the pointer.
    assert call("al-labour", "GET", f"/persons/{duplicate['id']}").json()["merged_into"] == kept["id"]
    assert call("al-labour", "GET", f"/persons/{kept['id']}").status_code == 404
    for user, case_id in (("al-police", kept["case_id"]), ("al-labour", duplicate["case_id"])):
        [entry] = [
            e for e in call(user, "GET", f"/cases/{case_id}").json()["timeline"] if e["type"] == "merged"
        ]
        assert (entry["person_id"], entry["into_person_id"]) == (duplicate["id"], kept["id"])
    again = call("al-coordinator", "POST", f"/persons/{duplicate['id']}/merge", body)
    assert again.status_code == 409

    undone = call(
        "al-coordinator", "POST", f"/persons/{duplicate['id']}/unmerge", {"reason": "merged_in_error"}
    )
    assert undone.status_code == 200, undone.text
    assert (
        "merged_into" not in undone.json() and undone.json()["merges"][0]["undo_reason"] == "merged_in_error"
    )
    assert "merged_from" not in call("al-coordinator", "GET", f"/persons/{kept['id']}").json()
    types = [e["type"] for e in call("al-police", "GET", f"/cases/{kept['case_id']}").json()["timeline"]]
    assert types[-2:] == ["merged", "merge_undone"]
    assert (
        call("al-coordinator", "POST", f"/persons/{duplicate['id']}/unmerge", {"reason": "other"}).status_code
        == 409
    )

    stored = db.persons.find_one({"_id": duplicate["id"]})
    kinds = [e["type"] for e in stored["pending_events"]]
    assert "identification.person.merged.v1" in kinds and "identification.person.unmerged.v1" in kinds
    assert db.access_log.find_one(
        {"ids": duplicate["id"], "operation_id": "identification.entrypoints.http.merge_person"}
    )


def test_statistics_suppress_small_cells(call) -> None:
    response = call(
        "al-analyst",
        "GET",
        "/statistics",
        purpose=False,
        period=str(time.gmtime().tm_year),
        rows="category",
        columns="sex",
    )
    assert response.status_code == 200, response.text
    table = response.json()
    cells = (
        [c for row in table["cells"] for c in row] + list(table["row_totals"]) + list(table["column_totals"])
    )
    assert all(not (isinstance(c, int) and 0 < c < 5) for c in cells + [table["total"]])
    csv_response = call(
        "al-analyst",
        "GET",
        "/statistics",
        purpose=False,
        period=str(time.gmtime().tm_year),
        rows="category",
        format="csv",
    )
    assert csv_response.status_code == 200 and csv_response.headers["content-type"].startswith("text/csv")
    assert (
        call("al-police", "GET", "/statistics", purpose=False, period="2026", rows="sex").status_code == 403
    )
    # a rule of the query names the query parameter
    same = call(
        "al-analyst", "GET", "/statistics", purpose=False, period="2026-13", rows="sex", columns="sex"
    )
    assert same.status_code == 422, same.text
    assert same.json()["errors"] == [{"pointer": "/query/columns", "code": "unknown_dimension"}]
    month = call("al-analyst", "GET", "/statistics", purpose=False, period="2026-13", rows="sex")
    assert month.json()["errors"] == [{"pointer": "/query/period", "code": "period_invalid"}]


def test_an_unknown_indicator_set_version_is_404(call) -> None:
    found = call("al-police", "GET", "/indicator-sets/regional/versions/2026.1", purpose=False)
    assert found.status_code == 200, found.text
    missing = call("al-police", "GET", "/indicator-sets/regional/versions/1999.1", purpose=False)
    assert missing.status_code == 404 and missing.json()["type"].endswith("/not-found")
    assert (
        call("al-police", "GET", "/indicator-sets/nowhere/versions/2026.1", purpose=False).status_code == 404
    )


def test_created_records_are_located_and_pointers_name_the_right_place(call) -> None:
    located = call("al-police", "GET", person_location(call))
    assert located.status_code == 200
    # an unknown member with a field-like name is named (a misspelling); its value never comes back
    typo = call("al-police", "POST", "/persons", {"surnames": ["x"], "given_name": ["Canary-Value"]})
    assert typo.status_code == 422
    assert typo.json()["errors"] == [{"pointer": "/body/given_name", "code": "additionalProperties"}]
    assert "Canary-Value" not in typo.text
    # an unknown query parameter is named too
    listed = call("al-police", "GET", "/persons", colour="blue")
    assert listed.json()["errors"] == [{"pointer": "/query/colour", "code": "unknown-parameter"}]
    # a rule of an age determination's assessed range points into it once (no doubled segments)
    determination = {
        "decided_on": "2026-01-15",
        "method": "documents",
        "authority": "Probe authority",
        "result": "child",
        "assessed_birth_range": {"earliest": "2010-13", "latest": "2011"},
    }
    bad = call(
        "al-case-manager", "POST", "/persons", {"surnames": ["x"], "age_determinations": [determination]}
    )
    assert bad.status_code == 422, bad.text
    assert bad.json()["errors"] == [
        {"pointer": "/body/age_determinations/0/assessed_birth_range/earliest", "code": "date_invalid"}
    ]


def person_location(call) -> str:
    response = call("al-police", "POST", "/persons", {"surnames": ["Located"], "date_of_birth": "1990"})
    assert response.status_code == 201, response.text
    location = response.headers["location"]
    assert location == f"{BASE}/persons/{response.json()['id']}"
    return location.removeprefix(BASE)


def test_sync_with_updated_since_is_inclusive_and_a_changed_record_comes_back(call) -> None:
    """The contract's sync semantics (common.yaml UpdatedSince): order by (updated_at, id), `updated_since`
    inclusive, a record changed after a sync comes back in the next one, the cursor pages without gaps."""
    first, second = register(call), register(call)
    cases = [call("al-police", "GET", f"/cases/{p['case_id']}").json() for p in (first, second)]
    since = cases[0]["updated_at"]

    def sync(updated_since: str, limit: int = 200) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = []
        cursor = None
        while True:
            params: dict[str, Any] = {"updated_since": updated_since, "limit": limit}
            if cursor:
                params["cursor"] = cursor
            page = call("al-police", "GET", "/cases", **params)
            assert page.status_code == 200, page.text
            items += page.json()["items"]
            cursor = page.json()["next_cursor"]
            if not cursor:
                return items

    synced = sync(since)
    ids = [c["id"] for c in synced]
    assert ids[:2] == [cases[0]["id"], cases[1]["id"]]  # inclusive: the case changed at `since` itself
    assert [(c["updated_at"], c["id"]) for c in synced] == sorted((c["updated_at"], c["id"]) for c in synced)
    assert [c["id"] for c in sync(since, limit=1)] == ids  # page by page, nothing lost or repeated
    last_seen = max(c["updated_at"] for c in synced)

    changed = call("al-police", "POST", f"/cases/{first['case_id']}/needs", {"needs": ["shelter"]})
    assert changed.status_code == 200, changed.text
    again = sync(last_seen)
    assert again[-1]["id"] == first["case_id"] and again[-1]["needs"] == ["shelter"]  # it comes back, last
    assert cases[1]["id"] in [c["id"] for c in again]  # changed at `last_seen` itself: inclusive again


# ------------------------------------------------------------------------------- publishing indicator sets
# Last in this module: the AL additions published here change what later AL screenings resolve to.

LABEL_TAGS = ("en", "sq", "sr-Latn", "sr-Cyrl", "cnr-Latn", "cnr-Cyrl")


def _labels(text: str) -> dict[str, Any]:
    return {tag: {"text": text, "reviewed": tag == "en"} for tag in LABEL_TAGS}


def national_additions(country: str, version: str, indicator_id: str) -> dict[str, Any]:
    return {
        "set_id": f"national-{country}",
        "version": version,
        "kind": "national",
        "country": country,
        "base": {"set_id": "regional", "version": "2026.1"},
        "published_on": "2026-11-01",
        "title": _labels(f"National additions {version}"),
        "lists": [
            {
                "id": f"{country}-A-LAB",
                "extends": "A-LAB",
                "age_group": "adult",
                "form": "labour",
                "title": _labels("Adults: labour exploitation"),
                "indicators": [
                    {
                        "id": indicator_id,
                        "element": "exploitative_conditions",
                        "strength": "strong",
                        "effective_from": "2026-01-01",
                        "labels": _labels("Wages withheld to repay an invented debt"),
                    }
                ],
            }
        ],
    }


def test_a_coordinator_publishes_national_additions_and_old_screenings_keep_their_version(call, db) -> None:
    person = register(call, date_of_birth="1985", nationalities=["AL"])
    before = call(
        "al-police",
        "POST",
        "/screenings",
        {"case_id": person["case_id"], "indicator_set_version": "2026.1", "answers": ADULT_LABOUR},
    )
    assert before.status_code == 201, before.text
    assert before.json()["indicator_set"] == "regional@2026.1+national-AL@2026.1"

    body = national_additions("AL", "2026.2", "AL-A-LAB-EX-90")
    assert call("al-police", "POST", "/indicator-sets", body, purpose=False).status_code == 403
    foreign = call("xk-coordinator", "POST", "/indicator-sets", body, purpose=False)
    assert foreign.status_code == 422, foreign.text
    assert {"pointer": "/body/country", "code": "indicator_set_not_own_country"} in foreign.json()["errors"]
    stored = db.indicator_sets.count_documents({})

    published = call("al-coordinator", "POST", "/indicator-sets", body, purpose=False)
    assert published.status_code == 201, published.text
    assert published.json()["ref"] == "national-AL@2026.2"
    assert db.indicator_sets.count_documents({}) == stored + 1
    again = call("al-coordinator", "POST", "/indicator-sets", body, purpose=False)
    assert again.status_code == 409, again.text
    index = call("al-police", "GET", "/indicator-sets", purpose=False).json()["items"]
    assert {"set_id": "national-AL", "version": "2026.2"} in [
        {"set_id": i["set_id"], "version": i["version"]} for i in index
    ]

    # New AL screenings use the new additions; the earlier screening still reads with the version it used.
    after = call(
        "al-police",
        "POST",
        "/screenings",
        {
            "case_id": person["case_id"],
            "indicator_set_version": "2026.1",
            "answers": [*ADULT_LABOUR, {"list_id": "A-LAB", "indicator_id": "AL-A-LAB-EX-90"}],
        },
    )
    assert after.status_code == 201, after.text
    assert after.json()["indicator_set"] == "regional@2026.1+national-AL@2026.2"
    old = call("al-police", "GET", f"/screenings/{before.json()['id']}")
    assert old.json()["indicator_set"] == "regional@2026.1+national-AL@2026.1"
    # Other countries' screenings are untouched by AL's additions.
    xk_person = register(call, user="xk-police", date_of_birth="1985")
    xk = call(
        "xk-police",
        "POST",
        "/screenings",
        {
            "case_id": xk_person["case_id"],
            "indicator_set_version": "2026.1",
            "answers": [{"list_id": "A-LAB", "indicator_id": "AL-A-LAB-EX-90"}],
        },
    )
    assert xk.status_code == 422 and xk.json()["errors"][0]["code"] == "unknown_indicator"


def test_an_invalid_indicator_set_is_422_with_pointers_and_stores_nothing(call, db) -> None:
    stored = db.indicator_sets.count_documents({})
    body = national_additions("AL", "2026.3", "AL-A-LAB-XX-01")  # no element XX
    response = call("al-coordinator", "POST", "/indicator-sets", body, purpose=False)
    assert response.status_code == 422, response.text
    assert response.json()["errors"][0]["pointer"].startswith("/body/lists/0/indicators/0/id")
    no_base = national_additions("AL", "2026.4", "AL-A-LAB-EX-91")
    no_base["base"]["version"] = "2019.1"
    response = call("al-coordinator", "POST", "/indicator-sets", no_base, purpose=False)
    assert response.status_code == 422, response.text
    assert response.json()["errors"] == [{"pointer": "/body/base", "code": "unknown_indicator_set_version"}]
    assert db.indicator_sets.count_documents({}) == stored


def test_a_version_published_through_one_process_is_seen_by_another(call, db) -> None:
    from identification.adapters.indicator_store import CatalogueSource

    other_process = CatalogueSource()  # a second API process: its own catalogue, the same database
    assert "2026.5" not in other_process.current().versions("national-ME")
    response = call(
        "me-coordinator", "POST", "/indicator-sets", national_additions("ME", "2026.5", "ME-A-LAB-EX-01")
    )
    assert response.status_code == 201, response.text
    assert "2026.5" in other_process.current().versions("national-ME")
