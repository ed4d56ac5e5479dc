"""Idempotency-Key against the real Mongo-wire server, and /readyz with the database unreachable."""

from __future__ import annotations

import sys
import threading
import uuid
from datetime import timedelta
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parents[1] / "fixtures"))

from app_support import FakeSettings, bearer, build_demo_app, fingerprinter  # noqa: E402

from plumbing.clock import FixedClock  # noqa: E402
from plumbing.idempotency import IdempotencyStore, StoredResponse  # noqa: E402
from plumbing.problems import Problem  # noqa: E402

pytestmark = pytest.mark.integration


@pytest.fixture
def settings(mongo):
    return FakeSettings(mongodb_uri=mongo.env["MONGODB_URI"], mongodb_db=f"thb_demo_{uuid.uuid4().hex[:8]}")


@pytest.fixture
def client(settings):
    app, _ = build_demo_app(settings=settings)
    with app.test_client() as client:
        yield client


def _post(client, key: str, body: dict, token: str = "manager"):
    return client.post("/v1/demo/things", json=body, headers=bearer(token, **{"Idempotency-Key": key}))


def test_same_key_same_body_replays_the_first_response(client):
    key = str(uuid.uuid4())
    first = _post(client, key, {"name": "a", "kind": "small"})
    assert first.status_code == 201
    # Same JSON content, different key order: still the same request.
    second = client.post(
        "/v1/demo/things",
        content=b'{"kind": "small", "name": "a"}',
        headers=bearer("manager", **{"Idempotency-Key": key, "Content-Type": "application/json"}),
    )
    assert second.status_code == 201
    assert second.json() == first.json()
    assert second.headers["location"] == first.headers["location"]
    assert second.headers["idempotent-replayed"] == "true"
    assert second.headers["x-request-id"] != first.headers["x-request-id"]


def test_same_key_different_body_is_409(client):
    key = str(uuid.uuid4())
    assert _post(client, key, {"name": "a", "kind": "small"}).status_code == 201
    response = _post(client, key, {"name": "b", "kind": "small"})
    assert response.status_code == 409
    assert response.json()["type"].endswith("/idempotency-key-reused")


def test_keys_are_scoped_per_client(client):
    key = str(uuid.uuid4())
    first = _post(client, key, {"name": "a", "kind": "small"})
    other = _post(client, key, {"name": "a", "kind": "small"}, token="manager2")
    assert other.status_code == 201 and "idempotent-replayed" not in other.headers
    assert other.json()["serial"] != first.json()["serial"]


def test_without_key_every_post_runs(client):
    one = client.post("/v1/demo/things", json={"name": "a", "kind": "small"}, headers=bearer("manager"))
    two = client.post("/v1/demo/things", json={"name": "a", "kind": "small"}, headers=bearer("manager"))
    assert one.json()["serial"] != two.json()["serial"]


def test_failed_requests_release_the_key(client):
    key = str(uuid.uuid4())
    assert _post(client, key, {"name": "boom", "kind": "small"}).status_code == 500
    # The key is free again: a retry runs (and fails the same way) instead of being told "in progress".
    assert _post(client, key, {"name": "boom", "kind": "small"}).status_code == 500


def test_invalid_request_does_not_consume_the_key(client):
    key = str(uuid.uuid4())
    assert _post(client, key, {"name": "a"}).status_code == 422
    assert _post(client, key, {"name": "a", "kind": "small"}).status_code == 201


def test_concurrent_requests_with_one_key_one_wins(settings):
    from plumbing.mongo import MongoProvider

    database = MongoProvider(settings.mongodb_uri, settings.mongodb_db)
    clock = FixedClock()
    store = IdempotencyStore(lambda: database()["idempotency_keys"], clock, fingerprinter=fingerprinter())
    store.ensure_indexes()
    key = str(uuid.uuid4())
    outcomes: list[str] = []
    barrier = threading.Barrier(8)

    def attempt() -> None:
        barrier.wait()
        try:
            outcomes.append("run" if store.begin("c/u", "op", key, b"{}") is None else "replay")
        except Problem as problem:
            outcomes.append(problem.slug)

    threads = [threading.Thread(target=attempt) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(outcomes) == ["idempotency-key-in-progress"] * 7 + ["run"]

    store.complete(
        "c/u", "op", key, StoredResponse(201, [("content-type", "application/json")], b'{"id":"1"}')
    )
    assert store.begin("c/u", "op", key, b"{}") == StoredResponse(
        201, [("content-type", "application/json")], b'{"id":"1"}'
    )
    # Kept at least 24 h; after that the key is new again even if the TTL monitor has not run yet.
    clock.advance(timedelta(hours=23, minutes=59))
    assert store.begin("c/u", "op", key, b"{}") is not None
    clock.advance(timedelta(minutes=2))
    assert store.begin("c/u", "op", key, b"{}") is None
    database.close()


def test_stale_lock_of_a_dead_worker_is_taken_over(settings):
    from plumbing.mongo import MongoProvider

    database = MongoProvider(settings.mongodb_uri, settings.mongodb_db)
    clock = FixedClock()
    store = IdempotencyStore(
        lambda: database()["idempotency_keys"],
        clock,
        lock_timeout=timedelta(minutes=2),
        fingerprinter=fingerprinter(),
    )
    key = str(uuid.uuid4())
    assert store.begin("c/u", "op", key, b"{}") is None
    with pytest.raises(Problem):
        store.begin("c/u", "op", key, b"{}")
    clock.advance(minutes=3)
    assert store.begin("c/u", "op", key, b"{}") is None
    database.close()


def test_readyz_is_503_when_the_database_is_unreachable():
    app, _ = build_demo_app(
        settings=FakeSettings(mongodb_uri="mongodb://127.0.0.1:1/?serverSelectionTimeoutMS=300")
    )
    with app.test_client() as client:
        response = client.get("/readyz")
        assert response.status_code == 503
        body = response.json()
        assert body["type"].endswith("/not-ready")
        assert body["checks"]["mongo"]["ok"] is False
        assert client.get("/healthz").status_code == 200


def test_readyz_is_200_with_the_real_database(settings):
    app, _ = build_demo_app(settings=settings)
    with app.test_client() as client:
        response = client.get("/readyz")
        assert response.status_code == 200, response.text


# ------------------------------------------------------------------- replays of personal data are reads


@pytest.fixture
def people(settings):
    from app_support import RecordingAccessLog

    access_log = RecordingAccessLog()
    app, _ = build_demo_app(settings=settings, access_log=access_log)
    with app.test_client() as client:
        yield client, access_log


def _register(client, key: str, name: str = "Arta", token: str = "manager", purpose: str = "identification"):
    return client.post(
        "/v1/demo/people",
        json={"name": name},
        headers=bearer(token, **{"Idempotency-Key": key, "X-Purpose": purpose}),
    )


def test_a_replay_of_personal_data_is_access_logged_with_the_replays_purpose(people):
    client, access_log = people
    key = str(uuid.uuid4())
    first = _register(client, key)
    assert first.status_code == 201
    assert len(access_log.entries) == 1
    replay = _register(client, key, purpose="case-management")
    assert replay.status_code == 201 and replay.headers["idempotent-replayed"] == "true"
    assert replay.json() == first.json()
    assert len(access_log.entries) == 2
    caller, purpose, operation_id, resource_type, ids, outcome, request_id, _ = access_log.entries[1]
    assert (caller.sub, purpose, resource_type, ids, outcome) == (
        "u-manager",
        "case-management",
        "person",
        [first.json()["id"]],
        "replayed",
    )
    assert operation_id == "demo_handlers.register_someone"
    assert request_id == replay.headers["x-request-id"]


def test_a_replay_is_not_sent_when_the_access_log_cannot_be_written(people):
    client, access_log = people
    key = str(uuid.uuid4())
    assert _register(client, key, name="Canary-Vjosa").status_code == 201
    access_log.failing = True
    replay = _register(client, key, name="Canary-Vjosa")
    assert replay.status_code == 503
    assert replay.json()["type"].endswith("/access-log-unavailable")
    assert "Canary-Vjosa" not in replay.text
    access_log.failing = False
    assert _register(client, key, name="Canary-Vjosa").status_code == 201


def test_a_replay_still_needs_the_role_and_a_valid_purpose(people):
    client, access_log = people
    key = str(uuid.uuid4())
    assert _register(client, key).status_code == 201
    assert _register(client, key, purpose="curiosity").status_code == 422
    assert len(access_log.entries) == 1


def test_another_caller_with_the_same_key_is_a_new_request(people):
    client, access_log = people
    key = str(uuid.uuid4())
    first = _register(client, key)
    other = _register(client, key, token="manager2")
    assert other.status_code == 201 and "idempotent-replayed" not in other.headers
    assert other.json()["id"] != first.json()["id"]


def test_the_same_key_on_another_operation_is_a_new_request(people):
    client, _ = people
    key = str(uuid.uuid4())
    assert _register(client, key).status_code == 201
    thing = _post(client, key, {"name": "a", "kind": "small"})
    assert thing.status_code == 201 and "idempotent-replayed" not in thing.headers


def test_a_required_idempotency_key_that_is_missing_is_a_400_naming_the_header(people):
    client, access_log = people
    response = client.post(
        "/v1/demo/people", json={"name": "Arta"}, headers=bearer("manager", **{"X-Purpose": "identification"})
    )
    assert response.status_code == 400
    body = response.json()
    assert body["type"].endswith("/idempotency-key-required")
    assert body["errors"] == [{"pointer": "/header/Idempotency-Key", "code": "required"}]
    assert access_log.entries == []


def test_the_stored_fingerprint_is_keyed_not_a_plain_hash_of_the_body(settings, people):
    import hashlib

    from pymongo import MongoClient

    client, _ = people
    key = str(uuid.uuid4())
    assert _register(client, key, name="Hoxha").status_code == 201
    with MongoClient(settings.mongodb_uri) as mongo_client:
        stored = list(mongo_client[settings.mongodb_db]["idempotency_keys"].find({}))
    prints = [doc["fingerprint"] for doc in stored]
    body = b'{"name":"Hoxha"}'
    guesses = {
        hashlib.sha256(body).hexdigest(),
        hashlib.sha256(b"demo_handlers.register_someone\x00" + body).hexdigest(),
    }
    assert prints and all(p.split(":")[-1] not in guesses for p in prints)
    # Another service's key (same ring name, same body) gives another fingerprint.
    assert fingerprinter().fingerprint("demo_handlers.register_someone", body) not in prints


def test_a_stored_response_is_kept_as_long_as_the_configured_retention_of_idempotency_keys(settings, client):
    from pymongo import MongoClient

    assert _post(client, str(uuid.uuid4()), {"name": "b", "kind": "small"}).status_code == 201
    with MongoClient(settings.mongodb_uri, tz_aware=True) as mongo_client:
        (stored,) = list(mongo_client[settings.mongodb_db]["idempotency_keys"].find({}))
    # config/platform.yaml retention.idempotency-key: 2 days, then the TTL index removes it
    assert stored["expires_at"] - stored["created_at"] == timedelta(days=2)
