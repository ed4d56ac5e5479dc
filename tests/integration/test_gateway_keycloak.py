"""The gateway with real Keycloak tokens in front of a service that records every request it receives.

Rejected requests must never reach the service: each rejection test asserts the service's own request log is
empty. Gateway and service are real HTTP servers (uvicorn) on free ports; tokens come from the realm's test
client (password grant) and a national system's service account (client credentials).
"""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

import thb_contracts
from devstack.asgi_thread import ServerThread
from gateway.factory import create_app
from gateway.settings import GatewaySettings
from gateway.testing import RecordingUpstream

PASSWORD = "thb-local-demo-1"  # the local realm's demo password (realm/local-realm.json)
PERSONS = "/v1/identification/persons"
REFERRAL = "/v1/referral/received-events"


@pytest.fixture(scope="module")
def upstream() -> Iterator[tuple[RecordingUpstream, str]]:
    recorder = RecordingUpstream()
    with ServerThread(recorder) as server:
        yield recorder, server.url


@pytest.fixture(scope="module")
def gateway_url(keycloak, upstream) -> Iterator[str]:
    _, upstream_url = upstream
    env = {
        "THB_MODE": "local",
        "OIDC_ISSUER": keycloak.env["OIDC_ISSUER"],
        **{f"THB_UPSTREAM_{s.name.upper()}": upstream_url for s in thb_contracts.services()},
    }
    app = create_app(GatewaySettings.from_env(env))
    with ServerThread(app) as server:
        yield server.url


@pytest.fixture
def recorder(upstream) -> RecordingUpstream:
    recorder, _ = upstream
    recorder.requests.clear()
    return recorder


def token_url(keycloak) -> str:
    return keycloak.env["OIDC_ISSUER"] + "/protocol/openid-connect/token"


@pytest.fixture(scope="module")
def user_token(keycloak):
    cache: dict[str, str] = {}

    def get(username: str) -> str:
        if username not in cache:
            response = httpx.post(
                token_url(keycloak),
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
def national_system_token(keycloak) -> str:
    response = httpx.post(
        token_url(keycloak),
        data={
            "grant_type": "client_credentials",
            "client_id": "al-national-system",
            "client_secret": "al-national-system-local-secret",
        },
    )
    response.raise_for_status()
    return str(response.json()["access_token"])


def test_gateway_is_ready_with_the_realm_keys(gateway_url: str) -> None:
    ready = httpx.get(gateway_url + "/readyz")
    assert ready.status_code == 200 and ready.json()["checks"]["keys"] is True
    status = httpx.get(gateway_url + "/v1/status").json()
    assert {s["status"] for s in status["services"].values()} == {"ready"}


def test_no_token_never_reaches_the_service(gateway_url: str, recorder: RecordingUpstream) -> None:
    response = httpx.get(gateway_url + REFERRAL)
    assert response.status_code == 401
    assert recorder.requests == []


def test_token_without_the_target_audience_never_reaches_the_service(
    gateway_url: str, recorder: RecordingUpstream, user_token
) -> None:
    shelter = user_token("al-shelter")  # a shelter's group may use referral only
    response = httpx.get(
        gateway_url + PERSONS, headers={"Authorization": f"Bearer {shelter}", "X-Purpose": "case-management"}
    )
    assert response.status_code == 403
    assert recorder.requests == []


def test_role_outside_x_roles_never_reaches_the_service(
    gateway_url: str, recorder: RecordingUpstream, user_token
) -> None:
    police = user_token(
        "al-police"
    )  # has referral-api in aud, but the operation wants coordinator/case-manager
    response = httpx.get(gateway_url + REFERRAL, headers={"Authorization": f"Bearer {police}"})
    assert response.status_code == 403
    assert recorder.requests == []


def test_tampered_token_never_reaches_the_service(
    gateway_url: str, recorder: RecordingUpstream, user_token
) -> None:
    header, payload, signature = user_token("al-case-manager").split(".")
    flipped = signature[:-6] + ("AAAAAA" if not signature.endswith("AAAAAA") else "BBBBBB")
    for token in (
        f"{header}.{payload}.{flipped}",
        f"{header}.{payload}x.{signature}",
        f"{header}.{payload}.",
    ):
        response = httpx.get(gateway_url + REFERRAL, headers={"Authorization": f"Bearer {token}"})
        assert response.status_code == 401
    assert recorder.requests == []


def test_valid_user_token_reaches_the_service_unchanged_without_identity_headers(
    gateway_url: str, recorder: RecordingUpstream, user_token
) -> None:
    token = user_token("al-case-manager")
    response = httpx.get(
        gateway_url + REFERRAL + "?limit=10",
        headers={
            "Authorization": f"Bearer {token}",
            "X-User-Id": "someone-else",
            "X-Country": "XK",
            "X-Roles": "coordinator",
            "X-Forwarded-User": "admin",
            "X-Request-Id": "it-request-0001",
        },
    )
    assert response.status_code == 200
    (seen,) = recorder.requests
    assert seen.header("authorization") == f"Bearer {token}"
    assert seen.path == REFERRAL and seen.query == b"limit=10"
    assert not {"x-user-id", "x-country", "x-roles", "x-forwarded-user"} & seen.header_names()
    assert seen.header("x-request-id") == "it-request-0001"
    assert seen.header("traceparent")


def test_national_system_token_reaches_the_service(
    gateway_url: str, recorder: RecordingUpstream, national_system_token: str
) -> None:
    response = httpx.get(
        gateway_url + REFERRAL,
        headers={"Authorization": f"Bearer {national_system_token}", "X-Acting-User": "clerk-42"},
    )
    assert response.status_code == 200
    (seen,) = recorder.requests
    assert seen.header("authorization") == f"Bearer {national_system_token}"
    assert seen.header("x-acting-user") == "clerk-42"
