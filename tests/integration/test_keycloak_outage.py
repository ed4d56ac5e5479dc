"""Keycloak stopped, restarted and rotating its signing key under the four services: tokens already issued keep
working (the services hold the realm's keys), what needs Keycloak now answers 503 problem+json instead of 500,
a token signed by a key nobody published is refused (401) even while the key set cannot be fetched, and after a
restart and a key rotation the services accept the new tokens without being restarted.

Drilled across real process boundaries, like the database drill: a Keycloak of its own (the session's realm
template, so it starts in seconds) and one more API process per service pointed at it, so the platform's own
Keycloak is never stopped.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from devstack.keycloak import REALM_NAME, KeycloakServer
from devstack.pytest_platform import login
from tests.integration.platform_helpers import PROBES, Probe

pytestmark = pytest.mark.integration

# Under the gateway's upstream timeout (30 s), which is what a client would otherwise meet.
ANSWER_BOUND_S = 25


@pytest.fixture(scope="module")
def realm_stack(platform: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """A Keycloak of its own and the four APIs validating its tokens: (the server, {service: base url})."""
    folder = tmp_path_factory.mktemp("keycloak-drill")
    keycloak = (
        KeycloakServer()
    )  # the default data folder holds the realm template the session's Keycloak made
    keycloak.start()
    try:
        with platform.extra_apis([probe.service for probe in PROBES], keycloak.env(), folder) as urls:
            yield keycloak, urls
    finally:
        keycloak.stop()


def get(base: str, probe: Probe, token: str) -> httpx.Response:
    headers = {"Authorization": f"Bearer {token}", "X-Purpose": probe.purpose}
    return httpx.get(f"{base}{probe.path}", params={"limit": 5}, headers=headers, timeout=60)


def kid(token: str) -> str:
    return str(jwt.get_unverified_header(token)["kid"])


def forged_like(token: str) -> str:
    """The same claims, signed by a key Keycloak never published (a kid the services have not seen)."""
    claims = jwt.decode(token, options={"verify_signature": False})
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return jwt.encode(claims, key, algorithm="RS256", headers={"kid": f"unknown-{uuid.uuid4()}"})


def rotate_signing_key(keycloak: KeycloakServer) -> None:
    """What an administrator does: a new RSA key with a higher priority than the realm's, so new tokens use it;
    the old key stays published (passive use) until the tokens it signed have expired."""
    admin = httpx.post(
        f"{keycloak.base_url}/realms/master/protocol/openid-connect/token",
        data={
            "grant_type": "password",
            "client_id": "admin-cli",
            "username": keycloak.admin_user,
            "password": keycloak.admin_password,
        },
        timeout=30,
    )
    admin.raise_for_status()
    headers = {"Authorization": f"Bearer {admin.json()['access_token']}"}
    realm = httpx.get(f"{keycloak.base_url}/admin/realms/{REALM_NAME}", headers=headers, timeout=30).json()
    created = httpx.post(
        f"{keycloak.base_url}/admin/realms/{REALM_NAME}/components",
        headers=headers,
        json={
            "name": f"rotated-{uuid.uuid4().hex[:8]}",
            "providerId": "rsa-generated",
            "providerType": "org.keycloak.keys.KeyProvider",
            "parentId": realm["id"],
            "config": {"priority": ["1000"], "enabled": ["true"], "active": ["true"], "keySize": ["2048"]},
        },
        timeout=30,
    )
    assert created.status_code == 201, created.text


def assert_unavailable(response: httpx.Response, took: float) -> None:
    assert response.status_code == 503, (response.status_code, response.text[:300])
    assert response.headers["content-type"].startswith("application/problem+json")
    assert response.json()["type"].endswith("/service-unavailable"), response.text
    assert int(response.headers["retry-after"]) > 0
    assert took < ANSWER_BOUND_S, f"took {took:.1f} s"


def test_keycloak_stopped_restarted_and_rotating_its_key(running_platform: Any, realm_stack: Any) -> None:
    keycloak, urls = realm_stack
    issued = {probe.user: login(keycloak.issuer, probe.user) for probe in PROBES}
    coordinator = login(
        keycloak.issuer, "me-coordinator"
    )  # never exchanged: a call on her behalf needs Keycloak
    for probe in PROBES:  # the services fetch the realm's keys
        assert get(urls[probe.service], probe, issued[probe.user]).status_code == 200, probe.service

    keycloak.stop()

    # Tokens already issued keep working: every service validates them with the keys it holds.
    for probe in PROBES:
        response = get(urls[probe.service], probe, issued[probe.user])
        assert response.status_code == 200, (probe.service, response.status_code, response.text[:300])
    # A call on the user's behalf needs a token exchange at Keycloak: 503, clearly, not 500.
    started = time.monotonic()
    prefill = httpx.get(
        f"{urls['exchange']}/v1/exchange/prefills",
        params={"form_type": "notification", "identification_case_id": str(uuid.uuid4())},
        headers={"Authorization": f"Bearer {coordinator}", "X-Purpose": "cross-border-exchange"},
        timeout=60,
    )
    assert_unavailable(prefill, time.monotonic() - started)
    # A key nobody published stays refused while the key set cannot be fetched to look for it.
    for probe in PROBES:
        started = time.monotonic()
        refused = get(urls[probe.service], probe, forged_like(issued[probe.user]))
        assert refused.status_code == 401, (probe.service, refused.status_code, refused.text[:300])
        assert refused.headers["content-type"].startswith("application/problem+json"), probe.service
        assert time.monotonic() - started < ANSWER_BOUND_S, probe.service

    keycloak.start()  # the same port and realm: the services were not restarted

    rotate_signing_key(keycloak)
    rotated = {probe.user: login(keycloak.issuer, probe.user) for probe in PROBES}
    assert all(kid(rotated[user]) != kid(issued[user]) for user in rotated), "the new key does not sign yet"
    for probe in PROBES:
        # The new key is picked up without a restart: a token with a kid the service has not seen makes it
        # refetch the key set in the background (at most once per 30 s, plumbing.jwks), and that token is
        # refused meanwhile - so a client may meet one 401 right after a rotation (docs/fault-drills.md).
        deadline = time.monotonic() + 60
        while (status := get(urls[probe.service], probe, rotated[probe.user]).status_code) != 200:
            assert status == 401 and time.monotonic() < deadline, (probe.service, status)
            time.sleep(1)
        # The old key still verifies what it signed, until those tokens expire.
        assert get(urls[probe.service], probe, issued[probe.user]).status_code == 200, probe.service
