"""Privacy canary across the running platform: personal data never leaks sideways.

Canary names, a canary document number and canary free text go through every write and search of the
identification contract that takes them (duplicate search, registration with aliases, documents and an age
determination, a decision with a legal reference), through reads, and through deliberately invalid requests
(422, 400, 415, 403, 404) in bodies, headers, query strings and paths; and across the border: a notification
naming the canary person from XK to ME, a clarification request with canary free text, ME reading the form, and
drafts carrying the canary where it does not belong (422). None of them may then appear in:

- any platform process's log (gateway, every API and worker) or the servers' logs (Kafka, Mongo-wire, Keycloak);
- spans: identification-api, identification-relay and referral-consumer are restarted with
  `OTEL_TRACES_EXPORTER=console` (plumbing.telemetry), so their spans are written to their logs; the test checks
  that SERVER, PRODUCER and CONSUMER spans really were exported there;
- any Kafka record (key, value, header names and values) of every topic, dead-letter topics included;
- /metrics of every API and worker;
- any problem response (status >= 400), body or headers;
- the raw BSON of every collection of the platform's databases (names are encrypted at rest and blocking keys
  are keyed hashes), searched for the canaries as sent and in lowercase/folded form.

The registration carries an `Idempotency-Key`: the replayable response body it stores holds the registered names,
so it must be sealed at rest like every other copy (plumbing.crypto.ResponseSealer).
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from bson.raw_bson import RawBSONDocument
from pymongo import MongoClient

from tests.integration.platform_helpers import (
    BASE,
    Client,
    list_topics,
    poll,
    read_topic,
    received_events,
)

pytestmark = pytest.mark.integration

GIVEN = "Zzcanaryqx"
SURNAME = "Vvleakcheck"
ALIAS = "Qqaliasprobé"  # with a diacritic: its folded form must not be stored or logged either
DOCUMENT = "CNRY77341QX"
AUTHORITY = "Wwauthcanary Office"
FREE_TEXT = "Yyfreetextcanary decision 12/2026"
# Searched case-insensitively (haystacks are lowercased); ASCII fragments also catch JSON-escaped forms.
NEEDLES = [
    b"zzcanaryqx",
    b"vvleakcheck",
    b"qqaliasprob",
    b"cnry77341qx",
    b"wwauthcanary",
    b"yyfreetextcanary",
]
# Free text of a decision is stored on the case as entered (it is a legal reference, not a personal field),
# so the raw-database check covers the personal fields only.
PERSONAL_NEEDLES = NEEDLES[:5]

TRACED = ("identification-api", "identification-relay", "referral-consumer")


def _found(haystack: bytes | memoryview | str, needles: list[bytes] = NEEDLES) -> list[str]:
    # (a raw BSON document may come back as a view of the server's reply)
    data = (haystack.encode("utf-8", "replace") if isinstance(haystack, str) else bytes(haystack)).lower()
    return [needle.decode() for needle in needles if needle in data]


def _restart(platform: Any, names: tuple[str, ...], env: dict[str, str | None]) -> None:
    for name in names:
        platform.processes[name].process.stop(timeout=20)
    for name in names:
        process_env = platform.processes[name].process.env
        for key, value in env.items():
            if value is None:
                process_env.pop(key, None)
            else:
                process_env[key] = value
        platform.start(name)


@pytest.fixture()
def traced_platform(running_platform: Any) -> Iterator[Any]:
    """The platform with three processes exporting their spans to their logs (console exporter)."""
    previous = {
        name: running_platform.processes[name].process.env.get("OTEL_TRACES_EXPORTER") for name in TRACED
    }
    _restart(running_platform, TRACED, {"OTEL_TRACES_EXPORTER": "console"})
    try:
        yield running_platform
    finally:
        for name in TRACED:
            _restart(running_platform, (name,), {"OTEL_TRACES_EXPORTER": previous[name]})


def _canary_person(search_id: str) -> dict[str, Any]:
    return {
        "given_names": [GIVEN],
        "surnames": [SURNAME],
        "aliases": [ALIAS],
        "sex": "female",
        "date_of_birth": "2010",
        "nationalities": ["AL"],
        "residence_country": "XK",
        "documents": [{"type": "passport", "number": DOCUMENT, "issuing_country": "AL"}],
        "age_determinations": [
            {"decided_on": "2026-01-10", "method": "documents", "authority": AUTHORITY, "result": "child"}
        ],
        "unaccompanied_child": True,
        "duplicate_check": {"search_id": search_id, "outcome": "new_person", "reason": "no_candidates"},
    }


EXCHANGE = "/v1/exchange"
CROSS_BORDER = {"X-Purpose": "cross-border-exchange"}


def _exchange_workload(platform: Any) -> list[httpx.Response]:
    """The canary person notified from XK to ME (content sealed at rest, a JWE on Kafka), asked about in a
    clarification with canary free text, read by ME; drafts that carry the canary where it does not belong (an
    extra field, a code, too-long text) refused without echoing it."""
    xk, me = Client(platform, "xk-contact-point"), Client(platform, "me-contact-point")
    responses: list[httpx.Response] = []

    def call(client: Client, method: str, path: str, expected: set[int], **kwargs: Any) -> httpx.Response:
        response = client.request(method, EXCHANGE + path, headers=CROSS_BORDER, **kwargs)
        assert response.status_code in expected, (method, path, response.status_code, response.text[:300])
        responses.append(response)
        return response

    def send(client: Client, body: dict[str, Any]) -> tuple[str, str]:
        drafted = call(client, "POST", "/drafts", {201}, json=body)
        case_id, form_id = drafted.json()["id"], drafted.headers["location"].rsplit("/", 1)[1]
        call(client, "POST", f"/cases/{case_id}/forms/{form_id}/send", {200})
        return case_id, form_id

    child = {
        "age_group": "child",
        "child_views": {"heard": True, "position": "agrees", "recorded_on": "2026-05-30"},
    }
    notification = {
        "form_type": "notification",
        "recipient": "ME",
        "legal_basis": "protection-of-vital-interests",
        "subject": child,
        "content": {
            "person": {
                "given_names": [GIVEN],
                "surnames": [SURNAME],
                "date_of_birth": "2013",
                "sex": "female",
            },
            "category": "potential-victim",
            "links": ["national"],
            "identified_on": "2026-05-28",
        },
    }
    xk_case, note = send(xk, notification)
    reference = call(xk, "GET", f"/cases/{xk_case}", {200}).json()["reference"]

    def arrived() -> str | None:
        listed = call(me, "GET", "/cases", {200}, params={"limit": 200}).json()["items"]
        return next((c["id"] for c in listed if c["reference"] == reference), None)

    me_case = poll(arrived, 60, "the canary notification in ME's inbox")
    read = call(me, "GET", f"/cases/{me_case}/forms/{note}", {200})
    assert {GIVEN.lower(), SURNAME.lower()} <= set(_found(read.content)), "ME reads the canary as sent"
    question = {"questions": [{"field": "/person", "question": {"text": FREE_TEXT, "lang": "en"}}]}
    send(
        xk,
        {
            "form_type": "clarification-request",
            "recipient": "ME",
            "case_id": xk_case,
            "refers_to": note,
            "content": question,
        },
    )

    def refused(content: dict[str, Any]) -> None:
        call(xk, "POST", "/drafts", {422}, json={**notification, "content": content})

    refused({**notification["content"], "health_narrative": f"{GIVEN} {SURNAME}"})  # outside the schema
    refused({**notification["content"], "category": SURNAME})  # not a code
    refused({**notification["content"], "person": {"given_names": [GIVEN * 20], "surnames": [SURNAME]}})
    return responses


def _run_workload(platform: Any) -> tuple[list[httpx.Response], dict[str, str]]:
    """Every name-, document- or text-taking operation, valid and invalid; returns all responses and ids."""
    manager = Client(platform, "xk-case-manager")
    responses: list[httpx.Response] = []

    def call(method: str, path: str, expected: set[int], **kwargs: Any) -> httpx.Response:
        response = manager.request(method, path, **kwargs)
        assert response.status_code in expected, (method, path, response.status_code, response.text[:300])
        responses.append(response)
        return response

    names = {"given_names": [GIVEN], "surnames": [SURNAME], "aliases": [ALIAS], "date_of_birth": "2010"}
    search = call("POST", f"{BASE}/duplicate-searches", {200, 201}, json=names).json()
    replayable = {"Idempotency-Key": f"privacy-{uuid.uuid4()}"}
    person = call(
        "POST", f"{BASE}/persons", {201}, json=_canary_person(search["id"]), headers=replayable
    ).json()
    replayed = call("POST", f"{BASE}/persons", {201}, json=_canary_person(search["id"]), headers=replayable)
    assert replayed.json()["id"] == person["id"], "the stored response is replayed (and was readable)"
    again = call("POST", f"{BASE}/duplicate-searches", {200, 201}, json=names).json()
    assert person["id"] in {c["person_id"] for c in again["candidates"]}, (
        "the search must find the canary person"
    )
    case_path = f"{BASE}/cases/{person['case_id']}"
    call(
        "POST",
        f"{case_path}/decisions",
        {200, 201},
        json={"category": "victim", "legal_reference": FREE_TEXT},
    )
    read = call("GET", f"{BASE}/persons/{person['id']}", {200})
    # The needles do match the data as the platform returns it (so their absence elsewhere means something).
    assert set(_found(read.content)) == {n.decode() for n in PERSONAL_NEEDLES}, _found(read.content)
    call("GET", f"{BASE}/persons", {200}, params={"limit": 5})

    invalid_persons: list[dict[str, Any]] = [
        {"given_names": [GIVEN * 12]},  # too long
        {"given_names": GIVEN},  # not a list
        {"surnames": [SURNAME], "date_of_birth": GIVEN},  # not a date
        {"surnames": [SURNAME], "documents": [{"type": "passport", "number": DOCUMENT * 5}]},
        {"surnames": [SURNAME], "documents": [{"type": GIVEN, "number": DOCUMENT}]},
        {"surnames": [SURNAME], "nationalities": [SURNAME]},
        {"surnames": [SURNAME], "nickname": GIVEN},  # unknown property
        {
            "surnames": [SURNAME],
            "age_determinations": [
                {"decided_on": "2026-01-10", "method": "documents", "authority": AUTHORITY, "result": SURNAME}
            ],
        },
        {
            "surnames": [SURNAME],
            "age_determinations": [
                {"decided_on": "2099-01-10", "method": "documents", "authority": AUTHORITY, "result": "adult"}
            ],
        },
        {"aliases": [ALIAS] * 11},  # too many
    ]
    for body in invalid_persons:
        call("POST", f"{BASE}/persons", {422}, json=body)
    for body in (
        {"given_names": [GIVEN], "sex": SURNAME},
        {"given_names": [GIVEN] * 6},
        {"surnames": [SURNAME], "date_of_birth_range": {"earliest": GIVEN, "latest": "2010"}},
    ):
        call("POST", f"{BASE}/duplicate-searches", {422}, json=body)
    call(
        "POST",
        f"{case_path}/decisions",
        {422},
        json={"category": "victim", "legal_reference": FREE_TEXT * 10},
    )
    call("POST", f"{case_path}/decisions", {422}, json={"category": GIVEN, "legal_reference": FREE_TEXT})
    call("POST", f"{BASE}/persons", {422}, json={"surnames": [SURNAME]}, headers={"X-Purpose": GIVEN})
    malformed = ('{"given_names": ["' + GIVEN + '"], "surnames": ["' + SURNAME + '"').encode()
    call("POST", f"{BASE}/persons", {400}, content=malformed, headers={"Content-Type": "application/json"})
    call(
        "POST",
        f"{BASE}/persons",
        {415},
        content=f"{GIVEN} {SURNAME}".encode(),
        headers={"Content-Type": "text/plain"},
    )
    # Criteria never belong in a URL; a client that puts them there anyway must not get them logged.
    call("GET", f"{BASE}/persons", {422}, params={"updated_since": GIVEN})
    call("GET", f"{BASE}/persons/{GIVEN}{SURNAME}", {404, 422})
    call("GET", f"/v1/{GIVEN}/{SURNAME}", {404})
    responses += _exchange_workload(platform)
    analyst = Client(platform, "xk-analyst")
    for response in (
        analyst.post("/persons", {"given_names": [GIVEN], "surnames": [SURNAME]}),
        analyst.request("GET", f"{BASE}/statistics", params={"rows": GIVEN}),
    ):
        assert response.status_code in (403, 422), response.text
        responses.append(response)
    return responses, {"person_id": person["id"], "case_id": person["case_id"]}


def test_canary_names_never_leak_into_logs_spans_kafka_metrics_problems_or_the_database(
    traced_platform: Any, kafka: Any, mongo: Any, keycloak: Any
) -> None:
    platform = traced_platform
    responses, ids = _run_workload(platform)

    # Let the events travel: registration and decision applied by a consumer (they passed relay and Kafka).
    poll(
        lambda: (
            {ids["person_id"], ids["case_id"]}
            <= {item["aggregate_id"] for item in received_events(platform, "referral", "XK")}
        ),
        60,
        "the canary person's events at referral",
    )
    metrics = {}
    for name, item in platform.processes.items():
        if item.ready_url:
            response = httpx.get(item.ready_url.replace("/readyz", "/metrics"), timeout=10)
            if response.status_code == 200:
                metrics[name] = response.text
    assert {"identification-api", "identification-relay", "referral-consumer"} <= set(metrics)
    assert "outbox_published_events_total" in metrics["identification-relay"]
    # Stop the traced processes so their span processors flush (the fixture starts them again).
    for name in TRACED:
        platform.processes[name].process.stop(timeout=20)

    problems = [r for r in responses if r.status_code >= 400]
    assert len(problems) >= 20
    for response in problems:
        assert response.headers["content-type"].startswith("application/problem+json"), response.text
        leaked = _found(response.content) + _found(json.dumps(dict(response.headers)))
        assert not leaked, (response.request.method, response.request.url.path, response.status_code, leaked)

    exported = {name: platform.log_text(name) for name in TRACED}
    assert '"kind": "SpanKind.SERVER"' in exported["identification-api"]
    assert '"kind": "SpanKind.PRODUCER"' in exported["identification-relay"]
    assert '"kind": "SpanKind.CONSUMER"' in exported["referral-consumer"]
    logs = platform.all_logs()
    assert "identification.entrypoints.http.create_duplicate_search" in logs, "the requests were logged"
    assert not _found(logs), _found(logs)
    for server in (kafka.server, mongo.server, keycloak.server):
        process = getattr(server, "process", None) if server is not None else None
        if process is not None and process.log_path.exists():
            assert not _found(process.log_path.read_bytes()), process.log_path

    for name, text in metrics.items():
        assert not _found(text), name

    bootstrap = platform.env["KAFKA_BOOTSTRAP_SERVERS"]
    topics = list_topics(bootstrap)
    assert {"identification.events.v1", "identification.events.v1.dlt", "exchange.inbox.me"} <= set(topics)
    records = 0
    for topic in topics:
        for record in read_topic(bootstrap, topic, timeout_s=60):
            records += 1
            raw = b"|".join(
                [record.key or b"", record.value or b""]
                + [k.encode() + b"=" + (v or b"") for k, v in record.headers or []]
            )
            assert not _found(raw), (topic, record.partition, record.offset)
    assert records > 0

    client: MongoClient = MongoClient(platform.env["MONGODB_URI"], document_class=RawBSONDocument)
    try:
        databases = [name for name in client.list_database_names() if name.startswith("thb_")]
        assert "thb_identification" in databases
        scanned = 0
        for database in databases:
            for collection in client[database].list_collection_names():
                for document in client[database][collection].find():
                    scanned += 1
                    leaked = _found(document.raw, PERSONAL_NEEDLES)
                    assert not leaked, (database, collection, leaked)
        assert scanned > 0
        person = client["thb_identification"]["persons"].find_one({"_id": ids["person_id"]})
        assert person is not None, "the canary person is stored (encrypted)"
    finally:
        client.close()
