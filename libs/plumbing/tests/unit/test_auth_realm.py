"""Structure rules of the realm files that token validation relies on (no Keycloak needed)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

import thb_contracts
from devstack.keycloak import merged_realm
from plumbing.config import load_platform_config

REALM_DIR = Path(__file__).resolve().parents[4] / "realm"
SERVICES = {f"{s.name}-api" for s in thb_contracts.services()}
# The one role catalogue is `roles` in config/platform.yaml (plumbing.security checks x-roles against it); the
# realm must define exactly those roles.
ROLES = set(load_platform_config(REALM_DIR.parent / "config" / "platform.yaml").roles)


@pytest.fixture(scope="module")
def base() -> dict[str, Any]:
    return dict(json.loads((REALM_DIR / "base-realm.json").read_text()))


@pytest.fixture(scope="module")
def local() -> dict[str, Any]:
    return dict(json.loads((REALM_DIR / "local-realm.json").read_text()))


def countries(realm: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {group["name"]: group for group in realm["groups"]}


def test_base_file_holds_no_secrets_and_no_people(base: dict[str, Any]) -> None:
    text = json.dumps(base)
    assert '"secret"' not in text and '"credentials"' not in text and '"password"' not in text
    assert all(user.get("serviceAccountClientId") for user in base["users"])
    assert "thb-test" not in {client["clientId"] for client in base["clients"]}


def test_roles_and_service_clients(base: dict[str, Any]) -> None:
    assert {role["name"] for role in base["roles"]["realm"]} == ROLES | {"default-roles-thb"}
    assert set(base["roles"]["client"]) == SERVICES
    for client in base["clients"]:
        if client["clientId"] in SERVICES:
            # No login flow and no service account: a service never gets a token of its own, only the user's
            # token exchanged for another service (requesters below) or none at all (bearer-only).
            assert not client["standardFlowEnabled"] and not client["implicitFlowEnabled"]
            assert not client["directAccessGrantsEnabled"] and not client["serviceAccountsEnabled"]
            assert not client["fullScopeAllowed"]
            if client["clientId"] in REQUESTERS:
                assert not client["bearerOnly"] and not client["publicClient"]
                assert client["attributes"]["standard.token.exchange.enabled"] == "true"
                assert client["attributes"]["standard.token.exchange.enableRefreshRequestedTokenType"] == "NO"
                # the exchanged token is built by the requester's scopes: the same claims as a login's
                assert client["defaultClientScopes"] == ["basic", "thb-roles", "thb-scope"]
            else:
                assert client["bearerOnly"]
                assert client.get("attributes", {}).get("standard.token.exchange.enabled") != "true"


# Calls on behalf of the user (docs/on-behalf-calls.md): (requesting service client, target service client).
ON_BEHALF_PAIRS = {
    ("identification-api", "referral-api"),
    ("identification-api", "exchange-api"),
    ("identification-api", "return-api"),
    ("exchange-api", "identification-api"),
    ("referral-api", "identification-api"),
    ("return-api", "identification-api"),
    ("return-api", "referral-api"),
    ("return-api", "exchange-api"),
}
REQUESTERS = {requester for requester, _ in ON_BEHALF_PAIRS}


def test_on_behalf_pairs_are_declared_once_as_scope_mappings_of_the_targets_access_role(
    base: dict[str, Any],
) -> None:
    """The target's `access` role in the requester's scope is what lets Keycloak put the target into `aud` of
    the exchanged token (audience resolve mapper), and only for a user who holds that role."""
    declared = {
        (mapping["client"], target)
        for target, mappings in base["clientScopeMappings"].items()
        for mapping in mappings
        if mapping["roles"] == ["access"]
    }
    assert declared == ON_BEHALF_PAIRS
    assert all(
        set(mapping) == {"client", "roles"} for m in base["clientScopeMappings"].values() for mapping in m
    )
    # no other client may exchange tokens, and no client scope adds a service's access role behind our back
    exchanging = {
        c["clientId"]
        for c in base["clients"]
        if c.get("attributes", {}).get("standard.token.exchange.enabled") == "true"
    }
    assert exchanging == REQUESTERS
    assert all("clientScope" in mapping for mapping in base.get("scopeMappings", []))


def test_thb_roles_scope_carries_every_realm_role(base: dict[str, Any]) -> None:
    """A requester has no full scope: the realm roles reach its (exchanged) tokens through the `thb-roles`
    scope's role mappings. A role missing here would silently vanish from exchanged tokens."""
    (mapping,) = [m for m in base["scopeMappings"] if m.get("clientScope") == "thb-roles"]
    assert set(mapping["roles"]) == ROLES
    # realm roles only: a client role in a scope would make the audience parameter filter the scope out
    assert all(set(m) == {"clientScope", "roles"} for m in base["scopeMappings"])


def test_local_file_gives_each_requester_its_local_secret(local: dict[str, Any]) -> None:
    secrets = {c["clientId"]: c.get("secret") for c in local["clients"]}
    for requester in REQUESTERS:
        assert secrets[requester] == f"{requester}-local-secret"
    # Only the requesting clients and the national systems have secrets (the test client is public).
    assert {c for c, s in secrets.items() if s} == REQUESTERS | {
        f"{c}-national-system" for c in ("al", "xk", "me")
    }


def test_every_country_group_names_its_country_and_every_agency_its_agency(base: dict[str, Any]) -> None:
    groups = countries(base)
    assert set(groups) == {"AL", "XK", "ME"}
    for code, group in groups.items():
        assert group["attributes"] == {"country": [code]}
        assert group.get("clientRoles") is None  # subgroups inherit role mappings: no access on the country
        for agency in group["subGroups"]:
            assert agency["attributes"] == {"agency": [agency["name"]]}
            assert set(agency["clientRoles"]) <= SERVICES
            assert all(roles == ["access"] for roles in agency["clientRoles"].values())


def test_each_country_has_a_national_system_with_its_own_country(base: dict[str, Any]) -> None:
    systems = {c["clientId"]: c for c in base["clients"] if c["clientId"].endswith("-national-system")}
    assert set(systems) == {f"{code.lower()}-national-system" for code in countries(base)}
    for client_id, client in systems.items():
        assert client["serviceAccountsEnabled"] and not client["publicClient"]
        assert not client["standardFlowEnabled"] and not client["directAccessGrantsEnabled"]
        claims = {m["config"]["claim.name"]: m["config"]["claim.value"] for m in client["protocolMappers"]}
        assert claims == {"country": client_id.split("-")[0].upper(), "agency": "national-system"}
        assert "service_account" in client["defaultClientScopes"]
        assert "thb-scope" not in client["defaultClientScopes"]


def test_country_and_agency_mappers_aggregate_group_attributes_multivalued(base: dict[str, Any]) -> None:
    scope = next(s for s in base["clientScopes"] if s["name"] == "thb-scope")
    for mapper in scope["protocolMappers"]:
        config = mapper["config"]
        assert mapper["protocolMapper"] == "oidc-usermodel-attribute-mapper"
        # aggregate: inherit from parent groups; multivalued: a second country shows instead of being dropped
        assert config["aggregate.attrs"] == "true" and config["multivalued"] == "true"
        assert config["access.token.claim"] == "true"


def test_merge_adds_local_secrets_and_users_without_touching_the_base(
    base: dict[str, Any], local: dict[str, Any]
) -> None:
    realm = merged_realm()
    clients = {c["clientId"]: c for c in realm["clients"]}
    assert clients["al-national-system"]["secret"] == "al-national-system-local-secret"
    assert clients["al-national-system"]["protocolMappers"]  # base content kept
    assert "thb-test" in clients
    assert len(realm["users"]) == len(base["users"]) + len(local["users"])
    assert realm["groups"] == base["groups"]


def test_demo_users_cover_every_country_and_role(local: dict[str, Any], base: dict[str, Any]) -> None:
    groups = {f"/{c['name']}/{a['name']}" for c in base["groups"] for a in c["subGroups"]}
    covered: set[tuple[str, str]] = set()
    for user in local["users"]:
        assert set(user["groups"]) <= groups
        if not user["username"].startswith("test-"):
            (group,) = user["groups"]
            assert user["username"].startswith(group.split("/")[1].lower() + "-")
            covered.update((group.split("/")[1], role) for role in user["realmRoles"])
    assert covered == {(country, role) for country in countries(base) for role in ROLES}
