"""Idempotency-Key against the real Mongo-wire server, and /readyz with the database unreachable."""

from __future__ import annotations

import sys
import threading
import uuid
from datetime import timedelta
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parents[1] / "fixtures"))

from app_support import FakeSettings, bearer, build_demo_app  # noqa: E402

from plumbing.clock import FixedClock  # noqa: E402
from plumbing.idempotency import IdempotencyStore, StoredResponse, fingerprint  # noqa: E402
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
    from plumbing.app import MongoProvider

    database = MongoProvider(settings.mongodb_uri, settings.mongodb_db)
    clock = FixedClock()
    store = IdempotencyStore(lambda: database()["idempotency_keys"], clock)
    store.ensure_indexes()
    key, printed = str(uuid.uuid4()), fingerprint("op", b"{}")
    outcomes: list[str] = []
    barrier = threading.Barrier(8)

    def attempt() -> None:
        barrier.wait()
        try:
            outcomes.append("run" if store.begin("c/u", key, printed) is None else "replay")
        except Problem as problem:
            outcomes.append(problem.slug)

    threads = [threading.Thread(target=attempt) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(outcomes) == ["idempotency-key-in-progress"] * 7 + ["run"]

    store.complete("c/u", key, StoredResponse(201, [("content-type", "application/json")], b'{"id":"1"}'))
    assert store.begin("c/u", key, printed) == StoredResponse(
        201, [("content-type", "application/json")], b'{"id":"1"}'
    )
    # Kept at least 24 h; after that the key is new again even if the TTL monitor has not run yet.
    clock.advance(timedelta(hours=23, minutes=59))
    assert store.begin("c/u", key, printed) is not None
    clock.advance(timedelta(minutes=2))
    assert store.begin("c/u", key, printed) is None
    database.close()


def test_stale_lock_of_a_dead_worker_is_taken_over(settings):
    from plumbing.app import MongoProvider

    database = MongoProvider(settings.mongodb_uri, settings.mongodb_db)
    clock = FixedClock()
    store = IdempotencyStore(lambda: database()["idempotency_keys"], clock, lock_timeout=timedelta(minutes=2))
    key, printed = str(uuid.uuid4()), fingerprint("op", b"{}")
    assert store.begin("c/u", key, printed) is None
    with pytest.raises(Problem):
        store.begin("c/u", key, printed)
    clock.advance(minutes=3)
    assert store.begin("c/u", key, printed) is None
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
