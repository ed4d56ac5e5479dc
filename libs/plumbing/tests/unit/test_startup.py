"""What every process of a service reads at start (plumbing.startup) and the two things made of it for any
service: its HTTP app (plumbing.app.create_service_app) and its scheduler's parts (SchedulerParts.for_service).
No servers: Mongo is registered lazily and nothing here contacts it."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from plumbing import app as app_module
from plumbing import mongo
from plumbing.app import create_service_app
from plumbing.clock import FixedClock
from plumbing.config import PlatformConfig, Settings
from plumbing.crypto import RequestFingerprinter
from plumbing.errors import ConfigError
from plumbing.keys import KeySet, load_keys
from plumbing.retention import Retained, SchedulerParts
from plumbing.startup import Startup

CONFIG = Path(__file__).parents[4] / "config" / "platform.yaml"
CLOCK = FixedClock(datetime(2026, 6, 1, 9, 30, tzinfo=UTC))


@pytest.fixture
def environ(tmp_path: Path) -> Iterator[dict[str, str]]:
    yield {
        "THB_MODE": "local",
        "THB_CONFIG": str(CONFIG),
        "THB_KEYS_FILE": str(tmp_path / "keys.json"),
        "MONGODB_URI": "mongodb://127.0.0.1:9/",  # registered only: nothing is contacted
        "OIDC_ISSUER": "http://127.0.0.1:9/realms/thb",
        "THB_ALLOWED_AZP": "thb-test,al-national-system",
    }
    mongo.disconnect()
    mongo.disconnect(mongo.ACCESS_LOG_ALIAS)


def test_a_process_starts_from_its_environment(environ: dict[str, str], tmp_path: Path) -> None:
    startup = Startup.read("demo", environ, CLOCK)

    assert (startup.service, startup.environ, startup.clock) == ("demo", environ, CLOCK)
    assert (startup.settings.service, startup.settings.mongodb_db) == ("demo", "thb_demo")
    assert startup.config.country_codes  # the configuration of THB_CONFIG, validated
    # Local mode: the key file is generated with every ring the configuration names, and the cipher uses it.
    assert (tmp_path / "keys.json").is_file()
    assert startup.keys == load_keys(startup.settings, startup.config)
    country = sorted(startup.config.country_codes)[0]
    token = startup.cipher.encrypt(country, "r1", "surname", "Hoxha")
    assert startup.cipher.decrypt(country, "r1", "surname", token) == "Hoxha"
    # The access log: the service's own database, its clock, the configuration's purposes.
    assert startup.access_log.entries.database.name == "thb_demo"
    assert startup.access_log.entries.database.client is mongo.get_database().client
    assert startup.access_log.clock is CLOCK
    assert startup.access_log.purposes == frozenset(startup.config.purpose_codes)


def test_without_a_clock_a_process_runs_on_the_system_clock(environ: dict[str, str]) -> None:
    startup = Startup.read("demo", environ)
    assert abs((startup.clock.now() - datetime.now(UTC)).total_seconds()) < 60
    assert startup.access_log.clock is startup.clock


def test_the_access_log_goes_to_the_audit_store_the_environment_names(environ: dict[str, str]) -> None:
    environ["THB_ACCESS_LOG_MONGODB_URI"] = "mongodb://127.0.0.2:9/"
    startup = Startup.read("demo", environ, CLOCK)
    audit_store = mongo.get_database(mongo.ACCESS_LOG_ALIAS)
    assert startup.access_log.entries.database.client is audit_store.client
    assert audit_store.client is not mongo.get_database().client
    assert startup.access_log.entries.database.name == "thb_demo"  # the service's database name either way


def test_a_service_may_load_its_keys_its_own_way(environ: dict[str, str]) -> None:
    asked: list[tuple[Settings, PlatformConfig]] = []

    def with_more_rings(settings: Settings, config: PlatformConfig) -> KeySet:
        asked.append((settings, config))
        return load_keys(settings, config)

    startup = Startup.read("demo", environ, CLOCK, keys=with_more_rings)
    assert asked == [(startup.settings, startup.config)]


def test_a_start_without_a_database_refuses(environ: dict[str, str]) -> None:
    del environ["MONGODB_URI"]
    with pytest.raises(ConfigError, match="MONGODB_URI"):
        Startup.read("demo", environ, CLOCK)


# ------------------------------------------------------------------------------------------ the HTTP app


def test_the_service_app_is_built_over_what_its_process_read(
    environ: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    startup = Startup.read("demo", environ, CLOCK)
    built: list[tuple[tuple[Any, ...], dict[str, Any]]] = []
    monkeypatch.setattr(app_module, "create_app", lambda *args, **kwargs: built.append((args, kwargs)))

    create_service_app("demo.yaml", startup, validate_responses=True)

    [(args, options)] = built
    assert args == ("demo", "demo.yaml")
    assert options["settings"] is startup.settings
    assert options["config"] is startup.config
    assert options["clock"] is CLOCK
    assert options["access_log"] is startup.access_log
    assert options["database"] is mongo.get_database  # the service's own, registered by the start
    assert options["validate_responses"] is True
    validator = options["validator"]
    assert validator.audience == "demo-api"
    # THB_ALLOWED_AZP of the same environment
    assert validator.allowed_azp == {"thb-test", "al-national-system"}
    assert validator.partner_countries == set(startup.config.country_codes)
    assert options["jwks"] is validator.jwks
    # The Idempotency-Key store seals and fingerprints with the process's keys, narrowed to the service.
    sealer = options["response_sealer"]
    assert sealer.open(sealer.seal(b"stored", b"key"), b"key") == b"stored"
    assert sealer.ring == startup.keys.ring("stored-responses")
    expected = RequestFingerprinter(startup.keys, "demo").fingerprint("createThing", b"{}")
    assert options["request_fingerprinter"].fingerprint("createThing", b"{}") == expected
    assert expected != RequestFingerprinter(startup.keys, "other").fingerprint("createThing", b"{}")


# ----------------------------------------------------------------------------------------- the scheduler


def test_the_scheduler_parts_of_a_service(environ: dict[str, str]) -> None:
    startup = Startup.read("demo", environ, CLOCK)
    deps = SimpleNamespace(system_repository=lambda document_class, actor: None)
    made: list[Any] = []

    def retained(given: Any) -> list[Retained]:
        assert given is deps
        return [Retained(SimpleNamespace)]  # type: ignore[arg-type]  # a class, never used to act here

    def deadline_job(given: Any) -> Any:
        made.append(given)
        return "deadline-job"

    parts = SchedulerParts.for_service(startup, deps, retained, deadlines=[deadline_job])

    assert (parts.settings, parts.clock) == (startup.settings, CLOCK)
    retention = parts.retention
    assert (retention.service, retention.config, retention.clock) == ("demo", startup.config, CLOCK)
    assert retention.access_log is startup.access_log
    assert retention.records is deps.system_repository  # the Deps' unscoped repositories: a test's fakes too
    assert [item.document_class for item in retention.retained] == [SimpleNamespace]
    assert made == []  # a deadline job is made once the scheduler asks (the database registered by then)
    assert parts.deadlines() == ["deadline-job"]
    assert made == [deps]


def test_a_service_without_deadlines_runs_only_its_retention(environ: dict[str, str]) -> None:
    startup = Startup.read("demo", environ, CLOCK)
    deps = SimpleNamespace(system_repository=lambda document_class, actor: None)
    parts = SchedulerParts.for_service(startup, deps, lambda given: [])
    assert list(parts.deadlines()) == []
    assert parts.retention.retained == ()
