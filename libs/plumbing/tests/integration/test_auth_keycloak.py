"""Token validation against the real Keycloak with the repository's realm (base + local files).

Tokens come from Keycloak itself: demo users by password grant through the local-only `thb-test` client,
national systems by client credentials with the secrets of realm/local-realm.json.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest

import thb_contracts
from libs.plumbing.tests.integration.tcp_proxy import TcpProxy
from plumbing.auth import AuthError, Caller, JwksCache, TokenValidator

REALM_DIR = Path(__file__).resolve().parents[4] / "realm"
PARTNERS = {"AL", "XK", "ME"}
SERVICES = tuple(f"{s.name}-api" for s in thb_contracts.services())
ALLOWED_AZP = {"thb-test", "al-national-system", "xk-national-system", "me-national-system"}


@dataclass(frozen=True)
class Realm:
    issuer: str
    local: dict[str, Any]
    base: dict[str, Any]

    def password_of(self, username: str) -> str:
        user = next(u for u in self.local["users"] if u["username"] == username)
        return str(next(c["value"] for c in user["credentials"] if c["type"] == "password"))

    def secret_of(self, client_id: str) -> str:
        return str(next(c["secret"] for c in self.local["clients"] if c["clientId"] == client_id))


@pytest.fixture(scope="session")
def keycloak_server(keycloak: Any) -> Realm:
    """The session's Keycloak (started by devstack's `keycloak` fixture unless OIDC_ISSUER is set)."""
    return Realm(
        issuer=keycloak.env["OIDC_ISSUER"],
        local=json.loads((REALM_DIR / "local-realm.json").read_text()),
        base=json.loads((REALM_DIR / "base-realm.json").read_text()),
    )


@pytest.fixture(scope="module")
def jwks(keycloak_server: Realm) -> Iterator[JwksCache]:
    cache = JwksCache.for_issuer(keycloak_server.issuer).start()
    yield cache
    cache.stop()


def validator_for(realm: Realm, jwks: JwksCache, audience: str) -> TokenValidator:
    return TokenValidator(realm.issuer, audience, ALLOWED_AZP, jwks, PARTNERS)


def token_endpoint(realm: Realm) -> str:
    return f"{realm.issuer}/protocol/openid-connect/token"


def user_tokens(realm: Realm, username: str, scope: str | None = None) -> dict[str, Any]:
    form = {
        "grant_type": "password",
        "client_id": "thb-test",
        "username": username,
        "password": realm.password_of(username),
    }
    if scope:
        form["scope"] = scope
    response = httpx.post(token_endpoint(realm), data=form, timeout=10)
    assert response.status_code == 200, response.text[:300]
    body: dict[str, Any] = response.json()
    return body


def user_token(realm: Realm, username: str) -> str:
    return str(user_tokens(realm, username)["access_token"])


def machine_token(realm: Realm, client_id: str) -> str:
    response = httpx.post(
        token_endpoint(realm),
        data={
            "grant_type": "client_credentials",
            "client_id": client_id,
            "client_secret": realm.secret_of(client_id),
        },
        timeout=10,
    )
    assert response.status_code == 200, response.text[:300]
    return str(response.json()["access_token"])


def payload(token: str) -> dict[str, Any]:
    part = token.split(".")[1]
    decoded: dict[str, Any] = json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))
    return decoded


def rejection(validator: TokenValidator, token: str) -> str:
    with pytest.raises(AuthError) as caught:
        validator.validate(token)
    return caught.value.code


def test_demo_user_token_yields_country_agency_and_roles(keycloak_server: Realm, jwks: JwksCache) -> None:
    token = user_token(keycloak_server, "al-police")
    caller = validator_for(keycloak_server, jwks, "identification-api").validate(token, acting_user="ignored")
    assert isinstance(caller, Caller)
    assert (caller.country, caller.agency, caller.roles) == (
        "AL",
        "state-police",
        frozenset({"police-officer"}),
    )
    assert (caller.azp, caller.is_machine, caller.acting_user) == ("thb-test", False, None)
    assert caller.sub == payload(token)["sub"]
    assert len(token) < 1500  # no client roles, profile or email claims: the token stays small


def test_every_demo_user_gets_its_group_country_agency_and_audiences(keycloak_server: Realm) -> None:
    """The realm, checked end to end: group path -> country/agency claims, group access roles -> aud."""
    services_of = {
        f"/{country['name']}/{agency['name']}": set(agency.get("clientRoles", {}))
        for country in keycloak_server.base["groups"]
        for agency in country["subGroups"]
    }
    demo_users = [u for u in keycloak_server.local["users"] if not u["username"].startswith("test-")]
    assert len(demo_users) >= 45
    for user in demo_users:
        claims = payload(user_token(keycloak_server, user["username"]))
        (group,) = user["groups"]
        _, country, agency = group.split("/")
        assert claims["country"] == [country], user["username"]
        assert claims["agency"] == [agency], user["username"]
        audience = claims.get("aud", [])
        assert set([audience] if isinstance(audience, str) else audience) == services_of[group], user[
            "username"
        ]
        assert claims["realm_access"]["roles"] == user["realmRoles"], user["username"]


def test_shelter_token_is_for_referral_only(keycloak_server: Realm, jwks: JwksCache) -> None:
    token = user_token(keycloak_server, "xk-shelter")
    assert payload(token)["aud"] == "referral-api"
    caller = validator_for(keycloak_server, jwks, "referral-api").validate(token)
    assert (caller.country, caller.agency) == ("XK", "shelter-drita")
    assert rejection(validator_for(keycloak_server, jwks, "identification-api"), token) == "audience_invalid"


def test_border_police_only_identification_and_coordinator_everything(
    keycloak_server: Realm, jwks: JwksCache
) -> None:
    border = user_token(keycloak_server, "me-border")
    validator_for(keycloak_server, jwks, "identification-api").validate(border)
    for service in ("referral-api", "exchange-api", "return-api"):
        assert rejection(validator_for(keycloak_server, jwks, service), border) == "audience_invalid"
    coordinator = user_token(keycloak_server, "me-coordinator")
    for service in SERVICES:
        assert validator_for(keycloak_server, jwks, service).validate(coordinator).roles == {"coordinator"}


def test_national_system_client_credentials(keycloak_server: Realm, jwks: JwksCache) -> None:
    token = machine_token(keycloak_server, "xk-national-system")
    caller = validator_for(keycloak_server, jwks, "exchange-api").validate(token, acting_user="officer-0042")
    assert (caller.country, caller.agency, caller.azp) == ("XK", "national-system", "xk-national-system")
    assert caller.is_machine and caller.acting_user == "officer-0042"
    assert caller.has_any_role("case-manager")


def test_user_in_two_countries_is_rejected(keycloak_server: Realm, jwks: JwksCache) -> None:
    token = user_token(keycloak_server, "test-two-countries")
    assert sorted(payload(token)["country"]) == ["AL", "XK"]
    assert (
        rejection(validator_for(keycloak_server, jwks, "identification-api"), token)
        == "country_claim_invalid"
    )


def test_user_without_group_has_no_audience_and_no_country(keycloak_server: Realm, jwks: JwksCache) -> None:
    token = user_token(keycloak_server, "test-no-group")
    claims = payload(token)
    assert "country" not in claims and "aud" not in claims
    assert rejection(validator_for(keycloak_server, jwks, "identification-api"), token) == "audience_invalid"


def test_tampered_real_token_is_rejected(keycloak_server: Realm, jwks: JwksCache) -> None:
    header, body, signature = user_token(keycloak_server, "al-border").split(".")
    claims = payload(f"{header}.{body}.{signature}")
    claims["aud"] = list(SERVICES)
    forged = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
    validator = validator_for(keycloak_server, jwks, "exchange-api")
    assert rejection(validator, f"{header}.{forged}.{signature}") == "signature_invalid"


def test_id_and_refresh_tokens_are_not_access_tokens(keycloak_server: Realm, jwks: JwksCache) -> None:
    tokens = user_tokens(keycloak_server, "al-coordinator", scope="openid")
    validator = validator_for(keycloak_server, jwks, "identification-api")
    validator.validate(tokens["access_token"])
    assert rejection(validator, tokens["id_token"]) == "audience_invalid"  # aud is thb-test
    # Keycloak signs refresh tokens with the realm's HMAC key
    assert rejection(validator, tokens["refresh_token"]) == "algorithm_not_allowed"


def test_cached_keys_still_validate_when_keycloak_is_unreachable(keycloak_server: Realm) -> None:
    target = urlsplit(keycloak_server.issuer)
    assert target.port is not None
    with TcpProxy(target.port, target.hostname or "127.0.0.1") as proxy:
        proxied_issuer = keycloak_server.issuer.replace(f":{target.port}", f":{proxy.port}", 1)
        cache = JwksCache.for_issuer(proxied_issuer, fetch_timeout=2, inline_unknown_kid_fetch=True)
        assert cache.refresh()
        assert cache.loaded
        proxy.close()
        assert not cache.refresh()  # the realm is unreachable now...
        assert cache.last_error is not None
        validator = TokenValidator(keycloak_server.issuer, "referral-api", ALLOWED_AZP, cache, PARTNERS)
        # ...yet a token issued after the outage began validates with the last good keys
        fresh = user_token(keycloak_server, "al-social-worker")
        assert validator.validate(fresh).agency == "social-services"
        # an unknown kid during the outage is a clean 401, not a crash or a hang
        header = base64.urlsafe_b64encode(json.dumps({"alg": "RS256", "kid": "rotated"}).encode()).rstrip(
            b"="
        )
        _, body, signature = fresh.split(".")
        assert rejection(validator, f"{header.decode()}.{body}.{signature}") == "unknown_key"
