"""Calls on behalf of the user against the real Keycloak with the repository's realm (base + local files).

The user's token comes from Keycloak itself (password grant through the local-only `thb-test` client, as in
test_auth_keycloak.py); the service clients exchange it with their local secrets (realm/local-realm.json). The
exchanged token is checked claim by claim and by plumbing's own token validation for the target's audience, with
the allow-list a local service uses (plumbing.service_auth)."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from devstack.keycloak import password_grant
from plumbing.auth import AuthError, JwksCache, TokenValidator
from plumbing.clock import FixedClock
from plumbing.config import Secret, Settings, platform_config
from plumbing.errors import NotPermitted
from plumbing.on_behalf import OnBehalfClient, OnBehalfConfigurationError, TokenExchanger
from plumbing.service_auth import allowed_clients

REPO = Path(__file__).resolve().parents[4]
LOCAL_REALM = json.loads((REPO / "realm" / "local-realm.json").read_text())
CONFIG = platform_config(REPO / "config" / "platform.yaml")
TARGET_URL = "http://identification.invalid:8101"


def password_of(username: str) -> str:
    user = next(u for u in LOCAL_REALM["users"] if u["username"] == username)
    return str(next(c["value"] for c in user["credentials"] if c["type"] == "password"))


def secret_of(client_id: str) -> Secret:
    return Secret(str(next(c["secret"] for c in LOCAL_REALM["clients"] if c["clientId"] == client_id)))


def payload(token: str) -> dict[str, Any]:
    part = token.split(".")[1]
    decoded: dict[str, Any] = json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))
    return decoded


@pytest.fixture(scope="module")
def issuer(keycloak: Any) -> str:
    return str(keycloak.env["OIDC_ISSUER"])


@pytest.fixture(scope="module")
def jwks(issuer: str) -> Iterator[JwksCache]:
    cache = JwksCache.for_issuer(issuer).start()
    yield cache
    cache.stop()


@pytest.fixture(scope="module")
def tokens(issuer: str) -> dict[str, str]:
    """One login per demo user for the whole module (a login costs Keycloak a password hash)."""
    found: dict[str, str] = {}
    for username in ("al-contact-point", "al-shelter", "al-police", "xk-case-manager"):
        response = password_grant(issuer, username, password_of(username))
        assert response.status_code == 200, response.text[:300]
        found[username] = str(response.json()["access_token"])
    return found


def exchanger(issuer: str, client_id: str, secret: Secret | None = None) -> TokenExchanger:
    return TokenExchanger(
        f"{issuer}/protocol/openid-connect/token",
        client_id,
        secret or secret_of(client_id),
        service=client_id.removesuffix("-api"),
    )


def local_validator(issuer: str, jwks: JwksCache, service: str) -> TokenValidator:
    """What `service` accepts in local mode: its audience and the local allow-list (plumbing.service_auth)."""
    settings = Settings.from_env(service, {"THB_MODE": "local", "OIDC_ISSUER": issuer})
    return TokenValidator(
        issuer, f"{service}-api", allowed_clients(settings, CONFIG, {}), jwks, CONFIG.country_codes
    )


def test_contact_points_token_exchanged_by_exchange_for_identification(
    issuer: str, jwks: JwksCache, tokens: dict[str, str]
) -> None:
    original = tokens["al-contact-point"]
    before = payload(original)
    assert "exchange-api" in before["aud"]
    exchanged = exchanger(issuer, "exchange-api").token_for(original, "identification-api")
    claims = payload(exchanged)
    # the same person with the same country, agency and roles; only the audience and the client changed
    assert claims["sub"] == before["sub"]
    assert (
        (claims["country"], claims["agency"])
        == (before["country"], before["agency"])
        == (
            ["AL"],
            ["coordinator-office"],
        )
    )
    assert claims["realm_access"]["roles"] == before["realm_access"]["roles"] == ["contact-point"]
    assert claims["azp"] == "exchange-api"
    assert claims["aud"] == "identification-api"  # only the requested service
    assert "client_id" not in claims and "resource_access" not in claims

    # identification accepts it as the user's own token, obtained by exchange-api
    caller = local_validator(issuer, jwks, "identification").validate(exchanged)
    assert (caller.sub, caller.azp, caller.country, caller.agency) == (
        before["sub"],
        "exchange-api",
        "AL",
        "coordinator-office",
    )
    assert caller.roles == {"contact-point"} and not caller.is_machine
    # ...and nothing else does: it is no key to the other services
    for service in ("exchange", "referral", "return"):
        with pytest.raises(AuthError) as caught:
            local_validator(issuer, jwks, service).validate(exchanged)
        assert caught.value.code == "audience_invalid"


def test_the_exchanged_token_is_cached_per_caller_token_and_audience(
    issuer: str, tokens: dict[str, str]
) -> None:
    client = exchanger(issuer, "return-api")
    first = client.token_for(tokens["xk-case-manager"], "identification-api")
    assert client.token_for(tokens["xk-case-manager"], "identification-api") == first
    assert len(client.cache) == 1
    client.cache.clear()
    assert client.token_for(tokens["xk-case-manager"], "identification-api") != first  # a new jti


def test_shelter_whose_agency_reaches_only_referral_gets_no_identification_token(
    issuer: str, tokens: dict[str, str]
) -> None:
    shelter = tokens["al-shelter"]
    assert payload(shelter)["aud"] == "referral-api"
    with pytest.raises(NotPermitted) as caught:
        exchanger(issuer, "referral-api").token_for(shelter, "identification-api")
    assert caught.value.code == "on_behalf_exchange_refused"
    # Keycloak itself answers with no token at all (not a narrower or a wider one)
    response = httpx.post(
        f"{issuer}/protocol/openid-connect/token",
        data={
            "grant_type": "urn:ietf:params:oauth:grant-type:token-exchange",
            "client_id": "referral-api",
            "client_secret": secret_of("referral-api").reveal(),
            "subject_token": shelter,
            "subject_token_type": "urn:ietf:params:oauth:token-type:access_token",
            "audience": "identification-api",
        },
        timeout=10,
    )
    assert response.status_code == 400 and "access_token" not in response.json()


def test_a_token_not_issued_for_the_requesting_service_is_refused(
    issuer: str, tokens: dict[str, str]
) -> None:
    police = tokens["al-police"]  # thb-test's token for identification and referral, not exchange
    assert "exchange-api" not in payload(police)["aud"]
    with pytest.raises(NotPermitted) as caught:
        exchanger(issuer, "exchange-api").token_for(police, "identification-api")
    assert caught.value.code == "on_behalf_exchange_refused"
    # the same token is fine for a service it names, and for a declared pair
    assert payload(exchanger(issuer, "referral-api").token_for(police, "identification-api"))["azp"] == (
        "referral-api"
    )


@pytest.mark.parametrize(
    ("requester", "audience", "allowed"),
    [
        ("exchange-api", "identification-api", True),
        ("referral-api", "identification-api", True),
        ("return-api", "identification-api", True),
        ("return-api", "referral-api", True),
        ("return-api", "exchange-api", True),
        # not declared, although the coordinator's contact point may use every service
        ("exchange-api", "referral-api", False),
        ("exchange-api", "return-api", False),
        ("referral-api", "return-api", False),
        ("referral-api", "exchange-api", False),
    ],
)
def test_only_the_declared_pairs(
    issuer: str, tokens: dict[str, str], requester: str, audience: str, allowed: bool
) -> None:
    client = exchanger(issuer, requester)
    if allowed:
        claims = payload(client.token_for(tokens["al-contact-point"], audience))
        assert (claims["azp"], claims["aud"]) == (requester, audience)
    else:
        with pytest.raises(NotPermitted):
            client.token_for(tokens["al-contact-point"], audience)


def test_a_wrong_secret_and_a_bearer_only_client_are_configuration_errors(
    issuer: str, tokens: dict[str, str]
) -> None:
    with pytest.raises(OnBehalfConfigurationError):
        exchanger(issuer, "exchange-api", Secret("not-the-secret")).token_for(
            tokens["al-contact-point"], "identification-api"
        )
    with pytest.raises(OnBehalfConfigurationError):  # identification-api exchanges nothing
        exchanger(issuer, "identification-api", Secret("anything")).token_for(
            tokens["al-contact-point"], "referral-api"
        )


def test_a_token_keycloak_does_not_accept_is_401(issuer: str, tokens: dict[str, str]) -> None:
    header, body, _signature = tokens["al-contact-point"].split(".")
    with pytest.raises(AuthError) as caught:
        exchanger(issuer, "exchange-api").token_for(f"{header}.{body}.AAAA", "identification-api")
    assert caught.value.code == "token_rejected_by_issuer"


def test_why_machine_callers_are_refused(issuer: str, jwks: JwksCache) -> None:
    """A national system's token exchanges, but the new token names its service account without country or
    agency (those come from mappers of the national system's own client): identification would reject it, so
    the client refuses machine callers before asking Keycloak."""
    machine = httpx.post(
        f"{issuer}/protocol/openid-connect/token",
        data={
            "grant_type": "client_credentials",
            "client_id": "al-national-system",
            "client_secret": str(
                next(c["secret"] for c in LOCAL_REALM["clients"] if c["clientId"] == "al-national-system")
            ),
        },
        timeout=10,
    ).json()["access_token"]
    exchanged = exchanger(issuer, "exchange-api").token_for(machine, "identification-api")
    assert "country" not in payload(exchanged)
    with pytest.raises(AuthError) as caught:
        local_validator(issuer, jwks, "identification").validate(exchanged)
    assert caught.value.code == "country_claim_invalid"


class _Routes(httpx.BaseTransport):
    """Keycloak over the network; the identification API in process, validating like the real service."""

    def __init__(self, validator: TokenValidator) -> None:
        self.network = httpx.HTTPTransport()
        self.validator = validator
        self.seen: list[dict[str, Any]] = []

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        if not str(request.url).startswith(TARGET_URL):
            return self.network.handle_request(request)
        try:
            caller = self.validator.validate(request.headers["authorization"].removeprefix("Bearer "))
        except AuthError as error:
            return httpx.Response(401, json={"type": "/problems/unauthorized", "code": error.code})
        self.seen.append({"sub": caller.sub, "azp": caller.azp, "purpose": request.headers.get("x-purpose")})
        return httpx.Response(200, json={"id": request.url.path.rsplit("/", 1)[-1]})

    def close(self) -> None:
        self.network.close()


def test_a_call_on_behalf_reaches_identification_as_the_user_via_exchange(
    issuer: str, jwks: JwksCache, tokens: dict[str, str]
) -> None:
    from plumbing.auth import Caller

    routes = _Routes(local_validator(issuer, jwks, "identification"))
    settings = Settings.from_env(
        "exchange",
        {
            "THB_MODE": "local",
            "OIDC_ISSUER": issuer,
            "OIDC_CLIENT_SECRET": secret_of("exchange-api").reveal(),
            "THB_UPSTREAM_IDENTIFICATION": TARGET_URL,
        },
    )
    client = OnBehalfClient.from_settings(
        settings, targets=("identification",), clock=FixedClock(), transport=routes
    )
    token = tokens["al-contact-point"]
    caller = Caller(
        sub=payload(token)["sub"],
        azp="thb-test",
        country="AL",
        agency="coordinator-office",
        roles=frozenset({"contact-point"}),
        acting_user=None,
        is_machine=False,
        token=token,
    )
    try:
        answer = client.get(
            "identification", "/v1/identification/cases/c-1", caller=caller, purpose="cross-border-exchange"
        )
    finally:
        client.close()
    assert answer == {"id": "c-1"}
    assert routes.seen == [{"sub": caller.sub, "azp": "exchange-api", "purpose": "cross-border-exchange"}]
