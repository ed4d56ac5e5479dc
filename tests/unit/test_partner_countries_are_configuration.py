"""Adding a fourth partner country (MK) is a configuration and realm change only (issue 2, acceptance).

(a) config/platform.yaml plus MK (its language `mk`, two new key rings, legal bases for every pair with MK,
    authorisations) loads; everything that reads the partner countries from it accepts MK without a code change:
    the allowed clients (`mk-national-system`), token validation of a token with `country: MK`, local key
    generation (MK's rings are created), field encryption and blind indexes for MK, the identification service's
    runtime (allowed clients, cipher, authorisation to decide `victim`, cross-border links) and the gateway's
    settings. The same checks with the unchanged file show MK rejected, so the test is not vacuous.
(b) The realm: base-realm.json with an MK group tree built from AL's by renaming codes, an `mk-national-system`
    client and its service-account user, plus `mk-*` demo users in the local file, passes the same structural
    rules the repository checks for AL/XK/ME (libs/plumbing/tests/unit/test_auth_realm.py) with the scopes and
    mappers untouched. No Keycloak is started.
(c) No Python source under libs/, services/, gateway/, devstack/ (tests and docstrings excluded) spells a
    partner country code as a string literal: the codes are data.
"""

from __future__ import annotations

import ast
import copy
import json
import re
import time
import uuid
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import jwt
import pytest
import yaml
from cryptography.hazmat.primitives.asymmetric import rsa

import thb_contracts
from plumbing.auth import AuthError, JwksCache, TokenValidator
from plumbing.config import PlatformConfig, Settings, load_platform_config, parse_platform_config
from plumbing.crypto import FieldCipher
from plumbing.keys import load_key_file, load_keys, required_rings
from plumbing.service_auth import allowed_clients

REPO = Path(__file__).resolve().parents[2]
CONFIG = REPO / "config" / "platform.yaml"
SCHEMA = REPO / "config" / "platform.schema.json"
REALM = REPO / "realm"
ISSUER = "http://keycloak.test/realms/thb"
PARTNERS = ("AL", "XK", "ME")  # the three countries of today's file (this test's own data)
NEW = "MK"


# ------------------------------------------------------------------------------------------ (a) config


def _raw_config() -> dict[str, Any]:
    return dict(yaml.safe_load(CONFIG.read_text(encoding="utf-8")))


def config_with_mk() -> dict[str, Any]:
    """The real file plus MK, exactly as config/README.md "Adding a partner country" describes."""
    data = copy.deepcopy(_raw_config())
    if "mk" not in data["languages"]:
        data["languages"].append("mk")
    data["countries"][NEW] = {
        "names": {"en": "North Macedonia", "mk": "Северна Македонија", "sq": "Maqedonia e Veriut"},
        "languages": ["mk", "sq"],
        "keys": {"data": "mk-data", "blind_index": "mk-index"},
    }
    some_pair = next(iter(data["legal_bases"].values()))
    for other in PARTNERS:
        data["legal_bases"][f"{NEW}-{other}"] = copy.deepcopy(some_pair)
        data["legal_bases"][f"{other}-{NEW}"] = copy.deepcopy(some_pair)
    data["authorisations"][NEW] = copy.deepcopy(data["authorisations"][PARTNERS[0]])
    # Rate budgets are per user and per client, not per country; a budget for MK's national system is optional
    # data like any other client's.
    data["rate_budgets"].setdefault("clients", {})["mk-national-system"] = {
        "requests_per_minute": 600,
        "burst": 100,
    }
    return data


@pytest.fixture(scope="module")
def mk_config_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("config-mk")
    (folder / "platform.yaml").write_text(
        yaml.safe_dump(config_with_mk(), allow_unicode=True), encoding="utf-8"
    )
    (folder / "platform.schema.json").write_text(SCHEMA.read_text(encoding="utf-8"), encoding="utf-8")
    return folder / "platform.yaml"


@pytest.fixture(scope="module")
def with_mk(mk_config_file: Path) -> PlatformConfig:
    return load_platform_config(mk_config_file)


@pytest.fixture(scope="module")
def today() -> PlatformConfig:
    return load_platform_config(CONFIG)


def test_the_file_with_mk_loads_and_names_mk_everywhere(with_mk: PlatformConfig) -> None:
    assert NEW in with_mk.country_codes and set(PARTNERS) < with_mk.country_codes
    country = with_mk.country(NEW)
    assert (country.data_key_ring, country.blind_index_key_ring) == ("mk-data", "mk-index")
    assert country.name("mk") == "Северна Македонија" and "mk" in with_mk.languages
    for other in PARTNERS:
        assert with_mk.legal_bases_for(NEW, other) and with_mk.legal_bases_for(other, NEW)
    assert with_mk.is_authorised(NEW, "formal-victim-identification", {"case-manager"})
    assert not with_mk.is_authorised(NEW, "formal-victim-identification", {"police-officer"})
    budget = with_mk.rate_budgets.for_caller(is_machine=True, client_id="mk-national-system")
    assert budget.requests_per_minute == 600
    # parse_platform_config is the same path without the file
    schema = json.loads(SCHEMA.read_text(encoding="utf-8"))
    assert parse_platform_config(config_with_mk(), schema).country_codes == with_mk.country_codes


def test_the_unchanged_file_does_not_know_mk(today: PlatformConfig) -> None:
    assert NEW not in today.country_codes
    assert not today.legal_bases_for(NEW, PARTNERS[0])
    assert not today.is_authorised(NEW, "formal-victim-identification", {"case-manager"})


def _settings(service: str, keys_file: Path, config_path: Path) -> Settings:
    env = {"THB_MODE": "local", "THB_KEYS_FILE": str(keys_file), "THB_CONFIG": str(config_path)}
    return Settings.from_env(service, env)


def test_allowed_clients_follow_the_configured_countries(
    with_mk: PlatformConfig, today: PlatformConfig, tmp_path: Path
) -> None:
    settings = _settings("identification", tmp_path / "keys.json", CONFIG)
    assert "mk-national-system" in allowed_clients(settings, with_mk, environ={})
    assert "mk-national-system" not in allowed_clients(settings, today, environ={})


class _Keys:
    def __init__(self) -> None:
        self.private_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        public = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(self.private_key.public_key()))
        public.update(kid="local-test", use="sig", alg="RS256")
        self.jwks = {"keys": [public]}

    def cache(self) -> JwksCache:
        cache = JwksCache("http://keycloak.test/certs", fetcher=lambda: self.jwks)
        cache.refresh()
        return cache

    def token(self, country: str, azp: str = "thb-test") -> str:
        now = int(time.time())
        claims = {
            "iss": ISSUER,
            "aud": ["identification-api"],
            "sub": str(uuid.uuid4()),
            "azp": azp,
            "typ": "Bearer",
            "iat": now,
            "exp": now + 300,
            "realm_access": {"roles": ["case-manager"]},
            "country": [country],
            "agency": ["social-services"],
        }
        return jwt.encode(claims, self.private_key, algorithm="RS256", headers={"kid": "local-test"})


def _validator(config: PlatformConfig, keys: _Keys, tmp_path: Path) -> TokenValidator:
    settings = _settings("identification", tmp_path / "keys.json", CONFIG)
    return TokenValidator(
        ISSUER,
        "identification-api",
        allowed_clients(settings, config, {}),
        keys.cache(),
        config.country_codes,
    )


def test_a_token_of_mk_is_accepted_only_when_mk_is_configured(
    with_mk: PlatformConfig, today: PlatformConfig, tmp_path: Path
) -> None:
    keys = _Keys()
    caller = _validator(with_mk, keys, tmp_path).validate(keys.token(NEW))
    assert (caller.country, caller.agency) == (NEW, "social-services")
    machine = _validator(with_mk, keys, tmp_path).validate(keys.token(NEW, azp="mk-national-system"))
    assert machine.azp == "mk-national-system"
    with pytest.raises(AuthError) as refused:
        _validator(today, keys, tmp_path).validate(keys.token(NEW))
    assert refused.value.code == "country_not_partner"
    with pytest.raises(AuthError) as unknown_client:
        _validator(today, keys, tmp_path).validate(keys.token(PARTNERS[0], azp="mk-national-system"))
    assert unknown_client.value.code == "client_not_allowed"


def test_local_mode_generates_mks_key_rings_and_encrypts_for_mk(
    with_mk: PlatformConfig, tmp_path: Path
) -> None:
    keys_file = tmp_path / "keys.json"
    settings = _settings("identification", keys_file, CONFIG)
    keyset = load_keys(settings, with_mk)
    assert {"mk-data", "mk-index"} <= set(required_rings(with_mk.countries.values()))
    assert {"mk-data", "mk-index"} <= set(load_key_file(keys_file).rings)
    cipher = FieldCipher.from_config(keyset, with_mk)
    token = cipher.encrypt(NEW, "record-1", "surname", "Петровски")
    assert cipher.key_id_of(token).startswith("mk-data")
    assert cipher.decrypt(NEW, "record-1", "surname", token) == "Петровски"
    assert cipher.blind_index(NEW, "surname", "Petrovski") != cipher.blind_index(
        PARTNERS[0], "surname", "Petrovski"
    )


def test_identification_runtime_accepts_mk(mk_config_file: Path, tmp_path: Path) -> None:
    from identification.bootstrap import build_runtime
    from identification.service_layer.cases import _cross_border

    env = {
        "THB_MODE": "local",
        "THB_CONFIG": str(mk_config_file),
        "THB_KEYS_FILE": str(tmp_path / "keys.json"),
        "MONGODB_URI": "mongodb://127.0.0.1:9/",  # connect() is lazy: nothing is contacted here
        "MONGODB_DB": "thb_identification_unit_mk",
    }
    runtime = build_runtime(env)
    try:
        assert NEW in runtime.startup.config.country_codes
        assert "mk-national-system" in runtime.allowed_azp
        sealed = runtime.deps.sealer.seal(NEW, "person-1", {"surnames": ["Петровски"]})
        assert runtime.deps.sealer.open(NEW, "person-1", sealed) == {"surnames": ["Петровски"]}
        # who may decide `victim` in MK is data (authorisations.MK), as for every other country
        assert runtime.startup.config.is_authorised(NEW, "formal-victim-identification", {"coordinator"})
        # an AL case of a person with MK nationality is cross-border with MK, and the other way round
        person: Any = SimpleNamespace(nationalities=[NEW], residence_country=None)  # the fields read
        assert _cross_border(runtime.deps, PARTNERS[0], person, []) == [
            {"country": NEW, "links": ["national"]}
        ]
        person = SimpleNamespace(nationalities=[PARTNERS[1]], residence_country=None)
        links = {
            item["country"]: item["links"] for item in _cross_border(runtime.deps, NEW, person, [PARTNERS[2]])
        }
        assert links == {PARTNERS[1]: ["national"], PARTNERS[2]: ["exploited_in"]}
    finally:
        from plumbing import mongo

        mongo.disconnect()


def test_gateway_settings_accept_mk(mk_config_file: Path) -> None:
    from gateway.settings import GatewaySettings

    env = {
        "THB_MODE": "local",
        "THB_CONFIG": str(mk_config_file),
        "OIDC_ISSUER": ISSUER,
        **{
            f"THB_UPSTREAM_{s}": "http://127.0.0.1:9"
            for s in ("IDENTIFICATION", "REFERRAL", "EXCHANGE", "RETURN")
        },
    }
    settings = GatewaySettings.from_env(env)
    assert "mk-national-system" in settings.allowed_azp
    assert NEW in settings.platform.country_codes


# ------------------------------------------------------------------------------------------- (b) realm


def _renamed(value: Any, source: str, target: str) -> Any:
    """A deep copy of `value` with the country code renamed: `AL` -> `MK`, `al-` -> `mk-`, `/AL/` -> `/MK/`."""
    text = json.dumps(value, ensure_ascii=False)
    text = re.sub(rf'"{source}"', f'"{target}"', text)
    text = text.replace(f"/{source}/", f"/{target}/")
    text = re.sub(rf'"{source.lower()}-', f'"{target.lower()}-', text)
    text = text.replace(f"service-account-{source.lower()}-", f"service-account-{target.lower()}-")
    return json.loads(text)


def realm_with_mk() -> tuple[dict[str, Any], dict[str, Any]]:
    """base-realm.json and local-realm.json with MK added the way realm/README.md describes."""
    base = json.loads((REALM / "base-realm.json").read_text())
    local = json.loads((REALM / "local-realm.json").read_text())
    al_group = next(g for g in base["groups"] if g["name"] == "AL")
    mk_group = _renamed(al_group, "AL", NEW)
    for agency in mk_group["subGroups"]:
        if agency["name"].startswith("shelter-"):  # the country's own NGO shelter (invented name)
            agency["name"], agency["attributes"] = "shelter-nadez", {"agency": ["shelter-nadez"]}
    base["groups"].append(mk_group)
    al_client = next(c for c in base["clients"] if c["clientId"] == "al-national-system")
    base["clients"].append(_renamed(al_client, "AL", NEW))
    al_account = next(u for u in base["users"] if u.get("serviceAccountClientId") == "al-national-system")
    base["users"].append(_renamed(al_account, "AL", NEW))
    shelter = next(a["name"] for a in al_group["subGroups"] if a["name"].startswith("shelter-"))
    for user in [u for u in local["users"] if u["username"].startswith("al-")]:
        mk_user = _renamed(user, "AL", NEW)
        mk_user["groups"] = [
            g.replace(f"/{NEW}/{shelter}", f"/{NEW}/shelter-nadez") for g in mk_user["groups"]
        ]
        local["users"].append(mk_user)
    for client in [c for c in local.get("clients", []) if c["clientId"] == "al-national-system"]:
        mk_client = copy.deepcopy(client)
        mk_client["clientId"] = "mk-national-system"
        mk_client["secret"] = "mk-national-system-local-secret"
        local["clients"].append(mk_client)
    return base, local


SERVICES = {f"{s.name}-api" for s in thb_contracts.services()}


def test_realm_with_an_mk_group_tree_keeps_the_rules_of_the_other_countries() -> None:
    original = json.loads((REALM / "base-realm.json").read_text())
    base, local = realm_with_mk()
    groups = {group["name"]: group for group in base["groups"]}
    assert set(groups) == {*PARTNERS, NEW}
    for code, group in groups.items():
        assert group["attributes"] == {"country": [code]}
        assert group.get("clientRoles") is None
        for agency in group["subGroups"]:
            assert agency["attributes"] == {"agency": [agency["name"]]}
            assert set(agency["clientRoles"]) <= SERVICES
            assert all(roles == ["access"] for roles in agency["clientRoles"].values())
    # MK's agencies give the same service access as AL's
    access = {
        a["name"]: a["clientRoles"] for a in groups[NEW]["subGroups"] if not a["name"].startswith("shelter-")
    }
    assert access == {a["name"]: a["clientRoles"] for a in groups["AL"]["subGroups"] if a["name"] in access}

    systems = {c["clientId"]: c for c in base["clients"] if c["clientId"].endswith("-national-system")}
    assert set(systems) == {f"{code.lower()}-national-system" for code in groups}
    for client_id, client in systems.items():
        claims = {m["config"]["claim.name"]: m["config"]["claim.value"] for m in client["protocolMappers"]}
        assert claims == {"country": client_id.split("-")[0].upper(), "agency": "national-system"}
        assert client["serviceAccountsEnabled"] and not client["publicClient"]
    accounts = {u["serviceAccountClientId"]: u for u in base["users"]}
    assert accounts["mk-national-system"]["realmRoles"] == accounts["al-national-system"]["realmRoles"]
    assert accounts["mk-national-system"].get("clientRoles") == accounts["al-national-system"].get(
        "clientRoles"
    )

    # Nothing shared changes: roles, scopes and their mappers, service clients.
    assert base["roles"] == original["roles"]
    assert base["clientScopes"] == original["clientScopes"]
    shared = [c for c in original["clients"] if not c["clientId"].endswith("-national-system")]
    assert [c for c in base["clients"] if not c["clientId"].endswith("-national-system")] == shared

    # Demo users: every MK user sits in exactly one MK agency group that exists, one per role as for AL.
    paths = {f"/{c['name']}/{a['name']}" for c in base["groups"] for a in c["subGroups"]}
    mk_users = [u for u in local["users"] if u["username"].startswith("mk-")]
    al_users = [u for u in local["users"] if u["username"].startswith("al-")]
    assert len(mk_users) == len(al_users)
    for user in mk_users:
        (group,) = user["groups"]
        assert group in paths and group.startswith(f"/{NEW}/")
    assert {r for u in mk_users for r in u["realmRoles"]} == {r for u in al_users for r in u["realmRoles"]}


def test_the_merged_realm_with_mk_is_what_devstack_would_import(tmp_path: Path) -> None:
    from devstack.keycloak import merged_realm

    base, local = realm_with_mk()
    (tmp_path / "base.json").write_text(json.dumps(base))
    (tmp_path / "local.json").write_text(json.dumps(local))
    realm = merged_realm(tmp_path / "base.json", tmp_path / "local.json")
    clients = {c["clientId"]: c for c in realm["clients"]}
    assert clients["mk-national-system"]["secret"] == "mk-national-system-local-secret"
    assert clients["mk-national-system"]["protocolMappers"]
    assert "mk-police" in {u["username"] for u in realm["users"]}


# -------------------------------------------------------------------------------------- (c) source scan

SOURCE_ROOTS = ("libs", "services", "gateway", "devstack")
CODE = re.compile(r"^(AL|XK|ME)$")
# A client id or key-ring name that spells a partner country, e.g. "al-national-system" or "me-data".
PREFIXED = re.compile(r"^(al|xk|me)-")
# Test-support modules shipped inside a package for the package's own tests: their fixtures are test data.
# The demo (`make demo`) replays one historical Kosovo-Montenegro case with the demo users: a script of test data.
TEST_SUPPORT = {Path("gateway/src/gateway/testing.py"), Path("devstack/src/devstack/demo.py")}


def _docstrings(tree: ast.AST) -> set[int]:
    found: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
            body = node.body
            if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
                found.add(id(body[0].value))
    return found


def _sources() -> list[Path]:
    files: list[Path] = []
    for root in SOURCE_ROOTS:
        for path in sorted((REPO / root).rglob("*.py")):
            relative = path.relative_to(REPO)
            if {"tests", ".venv", "build"} & set(relative.parts) or relative in TEST_SUPPORT:
                continue
            files.append(path)
    return files


def test_no_source_file_spells_a_partner_country() -> None:
    files = _sources()
    assert len(files) > 20, "the scan found almost no source files: the roots above are wrong"
    hits: list[str] = []
    for path in files:
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        docstrings = _docstrings(tree)
        for node in ast.walk(tree):
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docstrings:
                if CODE.match(node.value) or PREFIXED.match(node.value):
                    hits.append(f"{path.relative_to(REPO)}:{node.lineno}: {node.value!r}")
    assert not hits, (
        "partner countries belong in config/platform.yaml or the realm, not in code:\n" + "\n".join(hits)
    )
