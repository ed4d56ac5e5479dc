"""The database stopped or hung under the four services: every request that needs it answers 503 problem+json
with Retry-After, in bounded time (the client's timeouts, plumbing.mongo.DATABASE_TIMEOUTS, under the gateway's
30 s), and the services recover by themselves once it is back, with what they had accepted still there.

Drilled across real process boundaries: a throwaway Mongo-wire server (the same SecantusDB the platform runs) and
one more API process per service (the platform's own gunicorn command and environment, pointed at that server),
so the platform's shared server is never stopped. Before the fix a stopped server answered 500 after 5 s and a
hung one held the first read until the gateway gave up (30 s).
"""

from __future__ import annotations

import os
import signal
import time
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from devstack.mongo import MongoServer
from tests.integration.platform_helpers import PROBES, Probe

pytestmark = pytest.mark.integration

# Under the gateway's upstream timeout (30 s), which is what a client would otherwise meet.
ANSWER_BOUND_S = 25


@pytest.fixture(scope="module")
def outage_stack(platform: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """A server of its own and the four APIs on it: the server to stop, and {service: base url}."""
    folder = tmp_path_factory.mktemp("outage")
    server = MongoServer(data=folder / "mongo")
    server.start()
    try:
        # The audit store too: by default it is the service's own database (THB_ACCESS_LOG_MONGODB_URI unset).
        env = {"MONGODB_URI": server.uri, "THB_ACCESS_LOG_MONGODB_URI": None}
        with platform.extra_apis([probe.service for probe in PROBES], env, folder) as urls:
            yield server, urls
    finally:
        server.stop()


def _get(platform: Any, base: str, probe: Probe) -> httpx.Response:
    headers = {"Authorization": f"Bearer {platform.token(probe.user)}", "X-Purpose": probe.purpose}
    return httpx.get(f"{base}{probe.path}", params={"limit": 5}, headers=headers, timeout=60)


def _register(platform: Any, base: str) -> httpx.Response:
    headers = {
        "Authorization": f"Bearer {platform.token('me-border')}",
        "X-Purpose": "identification",
        "Idempotency-Key": f"outage-{uuid.uuid4()}",
    }
    body = {"given_names": ["Dragana"], "surnames": ["Outagetest"], "date_of_birth": "1994", "sex": "female"}
    return httpx.post(f"{base}/v1/identification/persons", json=body, headers=headers, timeout=60)


def _all_unavailable(platform: Any, urls: dict[str, str]) -> None:
    """Each service answers 503 problem+json with Retry-After, before the gateway would have given up."""
    for probe in PROBES:
        started = time.monotonic()
        response = _get(platform, urls[probe.service], probe)
        took = time.monotonic() - started
        assert response.status_code == 503, (probe.service, response.status_code, response.text[:300])
        assert response.headers["content-type"].startswith("application/problem+json"), probe.service
        assert response.json()["type"].endswith("/service-unavailable"), response.text
        assert int(response.headers["retry-after"]) > 0, probe.service
        assert took < ANSWER_BOUND_S, f"{probe.service} took {took:.1f} s"
    started = time.monotonic()
    write = _register(platform, urls["identification"])
    assert write.status_code == 503 and "retry-after" in write.headers, write.text[:300]
    assert time.monotonic() - started < ANSWER_BOUND_S


def _all_back(platform: Any, urls: dict[str, str]) -> None:
    """Every service answers again without a restart (within a minute of the server's return)."""
    deadline = time.monotonic() + 60
    for probe in PROBES:
        while (status := _get(platform, urls[probe.service], probe).status_code) != 200:
            assert time.monotonic() < deadline, f"{probe.service} still answers {status}"
            time.sleep(1)


def test_a_stopped_database_answers_503_and_the_services_recover_with_what_they_accepted(
    running_platform: Any, outage_stack: Any
) -> None:
    server, urls = outage_stack
    platform = running_platform
    accepted = _register(platform, urls["identification"])
    assert accepted.status_code == 201, accepted.text
    person = accepted.json()["id"]

    server.kill()  # SIGKILL: no goodbye to the clients
    _all_unavailable(platform, urls)

    server.start()  # the same port and files
    _all_back(platform, urls)
    read = httpx.get(
        f"{urls['identification']}/v1/identification/persons/{person}",
        headers={"Authorization": f"Bearer {platform.token('me-border')}", "X-Purpose": "identification"},
        timeout=60,
    )
    assert read.status_code == 200 and read.json()["surnames"] == ["Outagetest"], read.text[:300]


def test_a_hung_database_answers_503_in_bounded_time_and_the_services_recover(
    running_platform: Any, outage_stack: Any
) -> None:
    server, urls = outage_stack
    pid = server.process.proc.pid
    os.kill(pid, signal.SIGSTOP)  # holds every connection open without answering
    try:
        _all_unavailable(running_platform, urls)
    finally:
        os.kill(pid, signal.SIGCONT)
    _all_back(running_platform, urls)
