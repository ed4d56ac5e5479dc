"""Rate budgets at the gateway, with the real configuration (the rest of the test platform runs with budgets
out of reach): a person who bursts past the interactive budget gets 429 problems with Retry-After, and neither
another person nor a national system is starved by it."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from devstack.paths import REPO_ROOT
from devstack.process import ManagedProcess, free_port
from devstack.pytest_platform import Platform

OPERATION = "/v1/referral/received-events"  # cheap, no personal data: the budget is what is under test


@pytest.fixture(scope="module")
def budgeted_gateway(platform: Platform, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    port = free_port()
    env = {
        **platform.env,
        "THB_MODE": "local",
        "THB_CONFIG": str(REPO_ROOT / "config" / "platform.yaml"),
        **{f"THB_UPSTREAM_{name.upper()}": url for name, url in platform.urls.items() if name != "gateway"},
    }
    log = tmp_path_factory.mktemp("budgeted-gateway") / "gateway.log"
    process = ManagedProcess(
        "budgeted-gateway", [sys.executable, "-m", "gateway", "--port", str(port)], log, env=env
    )
    process.start()
    url = f"http://127.0.0.1:{port}"
    process.wait_until(
        lambda: httpx.get(f"{url}/readyz", timeout=2).status_code == 200, timeout=60, what="ready"
    )
    yield url
    process.stop()


def _national_system_token(platform: Platform, client_id: str) -> str:
    realm = json.loads(Path(REPO_ROOT / "realm" / "local-realm.json").read_text())
    secret = next(c["secret"] for c in realm["clients"] if c["clientId"] == client_id)
    response = httpx.post(
        f"{platform.issuer}/protocol/openid-connect/token",
        data={"grant_type": "client_credentials", "client_id": client_id, "client_secret": secret},
        timeout=10,
    )
    response.raise_for_status()
    return str(response.json()["access_token"])


def test_a_burst_gets_429_without_starving_others(platform: Platform, budgeted_gateway: str) -> None:
    bursting = {"Authorization": f"Bearer {platform.token('al-coordinator')}"}
    # Every token first: fetching one during the test takes long enough on a loaded machine for the bursting
    # person's bucket to refill before the last check.
    other_person = {"Authorization": f"Bearer {platform.token('xk-coordinator')}"}
    national_system = {"Authorization": f"Bearer {_national_system_token(platform, 'al-national-system')}"}
    with httpx.Client(base_url=budgeted_gateway, timeout=10) as client:
        statuses = [client.get(OPERATION, headers=bursting) for _ in range(80)]
        limited = [r for r in statuses if r.status_code == 429]
        assert limited, "80 requests at once stayed within the interactive budget: the limiter is not applied"
        assert all(r.status_code in (200, 429) for r in statuses)
        first = limited[0]
        assert first.headers["content-type"].startswith("application/problem+json")
        assert int(first.headers["Retry-After"]) >= 1
        assert first.json()["status"] == 429

        assert client.get(OPERATION, headers=other_person).status_code == 200
        assert client.get(OPERATION, headers=national_system).status_code == 200
        # The person who burst is still limited: the others' requests did not reset their bucket. (Their bucket
        # refills at 2 a second while the machine is slow, so ten more requests, not one, must meet a 429.)
        again = [client.get(OPERATION, headers=bursting).status_code for _ in range(10)]
        assert 429 in again, again
