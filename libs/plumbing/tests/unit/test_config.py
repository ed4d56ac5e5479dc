"""Settings from the environment and the schema-validated platform configuration."""

from datetime import timedelta
from pathlib import Path

import pytest
import yaml

from plumbing.config import IsoPeriod, Settings, load_platform_config
from plumbing.errors import ConfigError

REPO = Path(__file__).resolve().parents[4]
CONFIG = REPO / "config" / "platform.yaml"
SCHEMA = REPO / "config" / "platform.schema.json"


def write_config(tmp_path: Path, data: dict) -> Path:
    path = tmp_path / "platform.yaml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    return path


@pytest.fixture
def raw() -> dict:
    return yaml.safe_load(CONFIG.read_text(encoding="utf-8"))


# ----------------------------------------------------------------------------------------------- settings


def test_local_settings_need_no_addresses():
    settings = Settings.from_env("identification", {"THB_MODE": "local"})
    assert settings.is_local
    assert settings.mongodb_db == "thb_identification"
    assert settings.config_path == Path("config/platform.yaml")
    assert settings.keys_file == Path(".local/keys.json")


def test_mode_defaults_to_production_and_fails_closed():
    with pytest.raises(ConfigError) as error:
        Settings.from_env("identification", {})
    for name in ("MONGODB_URI", "KAFKA_BOOTSTRAP_SERVERS", "OIDC_ISSUER", "THB_KEYS_FILE"):
        assert name in str(error.value)


def test_production_settings_read_every_variable():
    env = {
        "THB_MODE": "production",
        "MONGODB_URI": "mongodb://db:27017/",
        "MONGODB_DB": "ident",
        "KAFKA_BOOTSTRAP_SERVERS": "kafka:9092",
        "OIDC_ISSUER": "https://sso/realms/thb",
        "THB_KEYS_FILE": "/run/secrets/keys.json",
        "THB_CONFIG": "/etc/thb/platform.yaml",
    }
    settings = Settings.from_env("referral", env)
    assert (settings.mode, settings.mongodb_db, settings.keys_file) == (
        "production",
        "ident",
        Path("/run/secrets/keys.json"),
    )
    assert settings.config_path == Path("/etc/thb/platform.yaml")
    assert settings.kafka_bootstrap_servers == "kafka:9092"


def test_unknown_mode_is_refused():
    with pytest.raises(ConfigError, match="THB_MODE"):
        Settings.from_env("identification", {"THB_MODE": "staging"})


def test_require_names_missing_setting():
    settings = Settings.from_env("identification", {"THB_MODE": "local"})
    with pytest.raises(ConfigError, match="mongodb_uri"):
        settings.require("mongodb_uri")


def test_client_id_defaults_to_the_service_client_and_the_secret_never_shows():
    secret = "s3cr3t-Zelda-7731"
    settings = Settings.from_env(
        "exchange",
        {
            "THB_MODE": "local",
            "OIDC_CLIENT_SECRET": secret,
            "THB_UPSTREAM_IDENTIFICATION": "http://127.0.0.1:8101/",
            "THB_UPSTREAM_TIMEOUT": "5",  # the gateway's switch, not a service
        },
    )
    assert settings.client_id == "exchange-api"
    assert settings.oidc_client_secret is not None and settings.oidc_client_secret.reveal() == secret
    assert secret not in repr(settings) and secret not in str(settings.oidc_client_secret)
    assert secret not in f"{settings.oidc_client_secret}" and secret not in repr(vars(settings))
    assert dict(settings.upstreams) == {"identification": "http://127.0.0.1:8101"}
    settings.require("oidc_client_secret")


def test_client_id_can_be_named_and_a_missing_secret_is_none():
    settings = Settings.from_env("referral", {"THB_MODE": "local", "OIDC_CLIENT_ID": "referral-api-eu"})
    assert settings.client_id == "referral-api-eu"
    assert settings.oidc_client_secret is None
    with pytest.raises(ConfigError, match="oidc_client_secret"):
        settings.require("oidc_client_secret")


def test_an_upstream_that_is_no_http_url_is_refused():
    with pytest.raises(ConfigError, match="THB_UPSTREAM_IDENTIFICATION"):
        Settings.from_env(
            "exchange", {"THB_MODE": "local", "THB_UPSTREAM_IDENTIFICATION": "file:///etc/passwd"}
        )


# ------------------------------------------------------------------------------------------ platform config


def test_repository_configuration_is_valid():
    config = load_platform_config(CONFIG)
    assert config.country_codes == {"AL", "XK", "ME"}
    assert config.country("ME").name("cnr-Cyrl") == "Црна Гора"
    assert config.country("XK").name("de") == "Kosovo"  # falls back to English
    assert {"case-management", "identification", "data-subject-access"} <= config.purpose_codes
    assert [b.code for b in config.legal_bases_for("AL", "XK")][0] == "bilateral-cooperation-agreement"
    assert config.legal_bases_for("AL", "AL") == ()
    assert config.is_authorised("AL", "formal-victim-identification", {"case-manager"})
    assert not config.is_authorised("AL", "formal-victim-identification", {"police-officer"})
    assert not config.is_authorised("AL", "no-such-decision", {"coordinator"})
    budgets = config.rate_budgets
    assert budgets.for_caller(is_machine=False, client_id="x") == budgets.interactive
    assert budgets.for_caller(is_machine=True, client_id="x") == budgets.machine_default
    assert config.retention_for("idempotency-key").period == IsoPeriod(days=2)
    assert config.retention_for("person").action == "anonymise"
    # A fixed length is what a TTL index needs (stored responses, inbox entries); a calendar period has none.
    assert config.retention_for("idempotency-key").fixed_length() == timedelta(days=2)
    with pytest.raises(ConfigError):
        config.retention_for("person").fixed_length()


def test_roles_and_need_to_know_are_configuration():
    config = load_platform_config(CONFIG)
    assert {"coordinator", "police-officer", "guardian", "analyst", "country-admin"} <= config.roles
    sets = config.need_to_know
    assert "case-manager" in sets.country_wide and "police-officer" in sets.agency
    assert "guardian" in sets.assigned_only
    assert not (sets.country_wide & sets.agency or sets.agency & sets.assigned_only)
    assert (sets.country_wide | sets.agency | sets.assigned_only) < config.roles  # analysts read no record


def test_adding_a_partner_country_is_configuration_only(tmp_path, raw):
    raw["languages"].append("mk") if "mk" not in raw["languages"] else None
    raw["countries"]["MK"] = {
        "names": {"en": "North Macedonia", "mk": "Северна Македонија"},
        "languages": ["mk"],
        "keys": {"data": "mk-data", "blind_index": "mk-index"},
    }
    basis = [{"code": "bilateral-cooperation-agreement", "labels": {"en": "Bilateral agreement"}}]
    raw["legal_bases"]["MK-AL"] = basis
    raw["legal_bases"]["AL-MK"] = basis
    raw["authorisations"]["MK"] = {"formal-victim-identification": ["coordinator"]}
    config = load_platform_config(write_config(tmp_path, raw), SCHEMA)
    assert "MK" in config.country_codes
    assert config.country("MK").name("mk") == "Северна Македонија"
    assert config.country("MK").data_key_ring == "mk-data"
    assert [b.code for b in config.legal_bases_for("MK", "AL")] == ["bilateral-cooperation-agreement"]
    assert config.legal_bases_for("MK", "XK") == ()
    assert config.is_authorised("MK", "formal-victim-identification", {"coordinator"})


@pytest.mark.parametrize(
    ("mutate", "pointer"),
    [
        (lambda c: c["countries"]["AL"].pop("keys"), "/countries/AL"),
        (lambda c: c["countries"].update({"Albania": c["countries"]["AL"]}), "/countries"),
        (lambda c: c["countries"]["XK"]["languages"].append("english"), "/countries/XK/languages/3"),
        (lambda c: c.update({"surprise": 1}), "/: unknown key(s) 'surprise'"),
        (lambda c: c["retention"]["person"].update({"period": "10 years"}), "/retention/person/period"),
        (lambda c: c["retention"]["person"].update({"days": 3}), "/retention/person"),
        (lambda c: c["retention"]["person"].update({"action": "archive"}), "/retention/person/action"),
        (lambda c: c["rate_budgets"]["interactive"].update({"burst": 0}), "/rate_budgets/interactive/burst"),
        (lambda c: c["purposes"]["audit"].update({"labels": {"sq": "Auditim"}}), "/purposes/audit/labels"),
        (lambda c: c["authorisations"]["AL"].update({"x": ["wizard"]}), "/authorisations/AL/x/0"),
        (lambda c: c["legal_bases"].update({"AL-MK": c["legal_bases"]["AL-XK"]}), "/legal_bases/AL-MK"),
        (lambda c: c["legal_bases"].update({"AL-AL": c["legal_bases"]["AL-XK"]}), "/legal_bases/AL-AL"),
        (lambda c: c["authorisations"].update({"MK": {}}), "/authorisations/MK"),
        (lambda c: c["countries"]["ME"]["keys"].update({"data": "al-data"}), "/countries/ME/keys/data"),
        (lambda c: c.update({"default_language": "de"}), "/default_language"),
        (lambda c: c.pop("roles"), "'roles' is a required property"),
        (lambda c: c.pop("need_to_know"), "'need_to_know' is a required property"),
        (lambda c: c["roles"].append("coordinator"), "/roles"),
        (lambda c: c["roles"].append("Wizard"), "/roles/16"),
        (
            lambda c: c["need_to_know"]["agency"].append("wizard"),
            "/need_to_know/agency/6: 'wizard' is not in",
        ),
        (
            lambda c: c["need_to_know"]["agency"].append("guardian"),
            "/need_to_know/assigned_only/1: 'guardian'",
        ),
        (lambda c: c["need_to_know"].update({"everything": ["auditor"]}), "unknown key(s) 'everything'"),
        (
            lambda c: c["roles"].remove("bid-panel-member"),
            "/authorisations/AL/best-interests-determination/0",
        ),
    ],
)
def test_invalid_configuration_names_the_pointer(tmp_path, raw, mutate, pointer):
    mutate(raw)
    with pytest.raises(ConfigError) as error:
        load_platform_config(write_config(tmp_path, raw), SCHEMA)
    assert pointer in str(error.value)


def test_bad_yaml_is_a_config_error(tmp_path):
    path = tmp_path / "platform.yaml"
    path.write_text("countries: [AL\n  XK: {", encoding="utf-8")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_platform_config(path, SCHEMA)


def test_duplicate_keys_are_refused(tmp_path):
    text = CONFIG.read_text(encoding="utf-8")
    path = tmp_path / "platform.yaml"
    # A second `AL:` block under countries would silently replace the first with plain YAML loading.
    path.write_text(text.replace("countries:\n", "countries:\n  AL: {}\n", 1), encoding="utf-8")
    with pytest.raises(ConfigError, match="duplicate key 'AL'"):
        load_platform_config(path, SCHEMA)


def test_missing_file_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError, match="cannot read"):
        load_platform_config(tmp_path / "absent.yaml", SCHEMA)


def test_schema_is_found_beside_the_file(tmp_path, raw):
    (tmp_path / "platform.schema.json").write_text(SCHEMA.read_text(encoding="utf-8"), encoding="utf-8")
    raw["version"] = 2
    with pytest.raises(ConfigError, match="/version"):
        load_platform_config(write_config(tmp_path, raw))


@pytest.mark.parametrize(
    ("text", "start", "end"),
    [
        ("P10Y", "2020-02-29", "2030-02-28"),
        ("P6M", "2024-08-31", "2025-02-28"),
        ("P2W", "2025-01-01", "2025-01-15"),
        ("P1Y1M1D", "2024-01-31", "2025-03-01"),
    ],
)
def test_iso_periods_use_calendar_arithmetic(text, start, end):
    from datetime import date, datetime

    result = IsoPeriod.parse(text).after(datetime.fromisoformat(start))
    assert result.date() == date.fromisoformat(end)


def test_iso_period_rejects_nonsense():
    with pytest.raises(ValueError):
        IsoPeriod.parse("P")
