"""Configuration: addresses, switches and secrets from the environment (`Settings`); structured, versioned
data from `config/platform.yaml` validated by `config/platform.schema.json` (`PlatformConfig`).

Both loaders raise `ConfigError` on anything invalid or missing; entry points call them before doing anything
else so that a misconfigured process refuses to start instead of running half-configured.
"""

from __future__ import annotations

import calendar
import functools
import json
import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from types import MappingProxyType
from typing import Any, Literal

import yaml
from jsonschema import Draft202012Validator
from jsonschema.exceptions import ValidationError

from plumbing.errors import ConfigError

__all__ = [
    "ConfigError",
    "Country",
    "IsoPeriod",
    "LegalBasis",
    "Labelled",
    "NeedToKnow",
    "PlatformConfig",
    "RateBudget",
    "RateBudgets",
    "RetentionRule",
    "Secret",
    "Settings",
    "load_platform_config",
    "platform_config",
]

Mode = Literal["local", "production"]
MODES: tuple[str, ...] = ("local", "production")

# Outside local mode these must be set: nothing about where the servers are or where the keys live is guessed.
REQUIRED_IN_PRODUCTION = ("MONGODB_URI", "KAFKA_BOOTSTRAP_SERVERS", "OIDC_ISSUER", "THB_KEYS_FILE")
# Another service's API, for calls on behalf of the user (plumbing.on_behalf): THB_UPSTREAM_<NAME>, the name the
# gateway reads too (e.g. THB_UPSTREAM_IDENTIFICATION). Only the registry's service names are read.
UPSTREAM_PREFIX = "THB_UPSTREAM_"


class Secret:
    """A credential read from the environment. `repr`/`str` never show it (a Settings object may reach a log line
    or a traceback); `reveal()` is the one way to the value, used where it is sent."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "Secret('**********')"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)

    def __bool__(self) -> bool:
        return bool(self._value)


# --------------------------------------------------------------------------------------------------- settings


@dataclass(frozen=True)
class Settings:
    """Environment settings of one process of one service."""

    service: str
    mode: Mode
    mongodb_uri: str | None
    mongodb_db: str
    kafka_bootstrap_servers: str | None
    oidc_issuer: str | None
    config_path: Path
    keys_file: Path
    log_level: str = "INFO"
    # This service's own Keycloak client (`<service>-api` unless OIDC_CLIENT_ID says otherwise) and its secret
    # (OIDC_CLIENT_SECRET): needed only by a service that calls another on behalf of the user (token exchange,
    # docs/on-behalf-calls.md). Never a default in code; `make run` passes the local realm's secret.
    oidc_client_id: str = ""
    oidc_client_secret: Secret | None = field(default=None, repr=False)
    # Base URL of each other service's API this process may call (THB_UPSTREAM_<NAME>), by service name.
    upstreams: Mapping[str, str] = field(default_factory=dict)

    @property
    def is_local(self) -> bool:
        return self.mode == "local"

    @property
    def client_id(self) -> str:
        """The Keycloak client this service authenticates as (OIDC_CLIENT_ID, default `<service>-api`)."""
        return self.oidc_client_id or f"{self.service}-api"

    @classmethod
    def from_env(cls, service: str, environ: Mapping[str, str] | None = None) -> Settings:
        """Read the settings of `service` from `environ` (default: `os.environ`).

        `THB_MODE` defaults to `production`, deliberately: a deployment that forgets the switch must fail closed
        (refuse to start without keys) rather than silently generate throw-away keys. `make run` and the tests
        set `THB_MODE=local`.
        """
        env = os.environ if environ is None else environ
        if not re.fullmatch(r"[a-z][a-z0-9-]*", service):
            raise ConfigError(f"invalid service name {service!r}")
        mode = env.get("THB_MODE", "production")
        if mode not in MODES:
            raise ConfigError(f"THB_MODE must be one of {', '.join(MODES)}, got {mode!r}")
        if mode != "local":
            missing = [name for name in REQUIRED_IN_PRODUCTION if not env.get(name)]
            if missing:
                raise ConfigError(
                    f"THB_MODE={mode} requires these environment variables: {', '.join(missing)}"
                )
        keys_file = env.get("THB_KEYS_FILE") or ".local/keys.json"
        secret = env.get("OIDC_CLIENT_SECRET", "").strip()
        return cls(
            service=service,
            mode=mode,  # type: ignore[arg-type]  # checked against MODES above
            mongodb_uri=env.get("MONGODB_URI") or None,
            # One database per service: services never read each other's collections.
            mongodb_db=env.get("MONGODB_DB") or f"thb_{service.replace('-', '_')}",
            kafka_bootstrap_servers=env.get("KAFKA_BOOTSTRAP_SERVERS") or None,
            oidc_issuer=env.get("OIDC_ISSUER") or None,
            config_path=config_path_from_env(env),
            keys_file=Path(keys_file),
            log_level=env.get("THB_LOG_LEVEL", "INFO").upper(),
            oidc_client_id=env.get("OIDC_CLIENT_ID", "").strip() or f"{service}-api",
            oidc_client_secret=Secret(secret) if secret else None,
            upstreams=MappingProxyType(_upstreams(env)),
        )

    def require(self, *names: str) -> None:
        """Fail start-up when a process needs a setting that is unset (e.g. `require("mongodb_uri")`)."""
        missing = [name for name in names if not getattr(self, name)]
        if missing:
            raise ConfigError(f"{self.service}: missing settings: {', '.join(missing)}")


def _upstreams(env: Mapping[str, str]) -> dict[str, str]:
    import thb_contracts  # the service registry: the one list of names (a local import keeps config light)

    found: dict[str, str] = {}
    for service in thb_contracts.services():
        value = env.get(f"{UPSTREAM_PREFIX}{service.name.upper()}", "").strip().rstrip("/")
        if value:
            if not re.match(r"^https?://[^/?#\s]+(/[^?#\s]*)?$", value):
                raise ConfigError(f"{UPSTREAM_PREFIX}{service.name.upper()} must be an http(s) base URL")
            found[service.name] = value
    return found


# ------------------------------------------------------------------------------------------ platform config


@dataclass(frozen=True)
class Labelled:
    code: str
    labels: Mapping[str, str]
    reviewed: bool = False

    def label(self, language: str) -> str:
        return _pick_label(self.labels, language)


@dataclass(frozen=True)
class Country:
    code: str
    names: Mapping[str, str]
    languages: tuple[str, ...]
    data_key_ring: str
    blind_index_key_ring: str

    def name(self, language: str) -> str:
        return _pick_label(self.names, language)


@dataclass(frozen=True)
class RateBudget:
    requests_per_minute: int
    burst: int


@dataclass(frozen=True)
class RateBudgets:
    interactive: RateBudget
    machine_default: RateBudget
    clients: Mapping[str, RateBudget] = field(default_factory=dict)

    def for_caller(self, *, is_machine: bool, client_id: str) -> RateBudget:
        """Interactive users share the per-user budget; each machine client has its own or the default."""
        if not is_machine:
            return self.interactive
        return self.clients.get(client_id, self.machine_default)


_PERIOD = re.compile(r"^P(?=\d)(?:(\d+)Y)?(?:(\d+)M)?(?:(\d+)W)?(?:(\d+)D)?$")


@dataclass(frozen=True)
class IsoPeriod:
    """A calendar period (years, months, days); months and years are calendar arithmetic, not 30/365 days."""

    years: int = 0
    months: int = 0
    days: int = 0

    @classmethod
    def parse(cls, text: str) -> IsoPeriod:
        match = _PERIOD.match(text)
        if not match:
            raise ValueError(f"not an ISO 8601 period of years/months/weeks/days: {text!r}")
        years, months, weeks, days = (int(part or 0) for part in match.groups())
        return cls(years=years, months=months, days=days + 7 * weeks)

    def after(self, start: datetime) -> datetime:
        month_index = start.month - 1 + self.months + 12 * self.years
        year, month = start.year + month_index // 12, month_index % 12 + 1
        # 29 February + 1 year -> 28 February: clamp to the last day of the target month.
        day = min(start.day, calendar.monthrange(year, month)[1])
        return start.replace(year=year, month=month, day=day) + timedelta(days=self.days)


@dataclass(frozen=True)
class RetentionRule:
    record_type: str
    period: IsoPeriod
    action: Literal["anonymise", "delete"]
    starts: Literal["created", "closed", "last-update"] = "closed"

    def due_at(self, start: datetime) -> datetime:
        return self.period.after(start)

    def fixed_length(self) -> timedelta:
        """The period as a duration, for a TTL index: only periods of days (and weeks) have one."""
        if self.period.years or self.period.months:
            raise ConfigError(f"retention of {self.record_type!r} is a calendar period, not a fixed length")
        return timedelta(days=self.period.days)


@dataclass(frozen=True)
class LegalBasis(Labelled):
    from_country: str = ""
    to_country: str = ""


@dataclass(frozen=True)
class NeedToKnow:
    """Which owned records a role reads through the request path, within the caller's own country
    (plumbing.repository.NeedToKnowPolicy). A role in none of the sets reads no owned record."""

    country_wide: frozenset[str] = frozenset()  # every record of the country
    agency: frozenset[str] = frozenset()  # the caller's agency's records and those assigned to the caller
    assigned_only: frozenset[str] = frozenset()  # only records assigned to the caller


@dataclass(frozen=True)
class PlatformConfig:
    version: int
    default_language: str
    languages: tuple[str, ...]
    countries: Mapping[str, Country]
    rate_budgets: RateBudgets
    retention: Mapping[str, RetentionRule]
    purposes: Mapping[str, Labelled]
    legal_bases: Mapping[tuple[str, str], tuple[LegalBasis, ...]]
    authorisations: Mapping[str, Mapping[str, frozenset[str]]]
    source: Path | None = None
    # The realm's roles: the one role catalogue (contracts' x-roles are checked against it at start-up).
    roles: frozenset[str] = frozenset()
    need_to_know: NeedToKnow = field(default_factory=NeedToKnow)

    @property
    def country_codes(self) -> frozenset[str]:
        return frozenset(self.countries)

    def country(self, code: str) -> Country:
        try:
            return self.countries[code]
        except KeyError:
            raise ConfigError(f"country {code!r} is not a configured partner country") from None

    @property
    def label_languages(self) -> list[str]:
        """The languages every label of a catalogue (forms, service types) must come in: the default language,
        then each partner country's, in configuration order (a new country's language needs its labels before the
        service starts)."""
        languages = [self.default_language]
        for country in self.countries.values():
            languages += [language for language in country.languages if language not in languages]
        return languages

    @property
    def purpose_codes(self) -> frozenset[str]:
        return frozenset(self.purposes)

    def legal_bases_for(self, from_country: str, to_country: str) -> tuple[LegalBasis, ...]:
        """The catalogue for one direction; empty when the pair has no agreed basis (nothing may be sent)."""
        return self.legal_bases.get((from_country, to_country), ())

    def retention_for(self, record_type: str) -> RetentionRule:
        try:
            return self.retention[record_type]
        except KeyError:
            raise ConfigError(f"no retention rule for record type {record_type!r}") from None

    def roles_authorised(self, country: str, action: str) -> frozenset[str]:
        return self.authorisations.get(country, {}).get(action, frozenset())

    def is_authorised(self, country: str, action: str, roles: Iterable[str]) -> bool:
        """Default deny: a country or action missing from the configuration authorises nobody."""
        return bool(self.roles_authorised(country, action) & frozenset(roles))


def config_path_from_env(environ: Mapping[str, str] | None = None) -> Path:
    """Where a process finds the platform configuration: THB_CONFIG, else config/platform.yaml (relative to the
    working directory)."""
    env = os.environ if environ is None else environ
    return Path(env.get("THB_CONFIG") or "config/platform.yaml")


def platform_config(path: Path | str | None = None) -> PlatformConfig:
    """The process's platform configuration (`path`, default THB_CONFIG or config/platform.yaml), loaded and
    validated once per file: what plumbing reads when a caller did not hand it a configuration (the role
    catalogue for contracts, the need-to-know sets for repositories). Raises ConfigError like the loader."""
    return _cached_config(Path(path) if path is not None else config_path_from_env())


@functools.lru_cache(maxsize=8)
def _cached_config(path: Path) -> PlatformConfig:
    return load_platform_config(path)


def default_schema_path(config_path: Path) -> Path:
    # The schema is versioned beside the YAML (one ConfigMap in Kubernetes), so it is found next to it.
    return config_path.with_name("platform.schema.json")


def load_platform_config(path: Path | str, schema_path: Path | str | None = None) -> PlatformConfig:
    """Load, validate and interpret the platform configuration. Raises `ConfigError` naming the JSON pointer
    of every problem found."""
    path = Path(path)
    schema_file = Path(schema_path) if schema_path else default_schema_path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read the platform configuration: {exc.strerror}") from exc
    try:
        schema = json.loads(schema_file.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ConfigError(f"{schema_file}: cannot read the configuration schema: {exc}") from exc
    try:
        data = yaml.load(text, Loader=_StrictLoader)  # noqa: S506  # a SafeLoader subclass
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from exc
    return parse_platform_config(data, schema, source=path)


def parse_platform_config(data: Any, schema: Mapping[str, Any], source: Path | None = None) -> PlatformConfig:
    where = str(source) if source else "platform configuration"
    validator = Draft202012Validator(schema)
    errors = sorted(validator.iter_errors(data), key=lambda e: (list(map(str, e.absolute_path)), e.message))
    if errors:
        lines = [f"{_pointer(error.absolute_path)}: {_describe(error)}" for error in errors[:20]]
        more = f" (and {len(errors) - 20} more)" if len(errors) > 20 else ""
        raise ConfigError(f"{where}: invalid configuration{more}:\n  " + "\n  ".join(lines))
    problems = _cross_checks(data)
    if problems:
        raise ConfigError(f"{where}: invalid configuration:\n  " + "\n  ".join(problems))
    return _build(data, source)


def _cross_checks(data: Mapping[str, Any]) -> list[str]:
    """Rules a JSON Schema cannot express: references between sections."""
    problems: list[str] = []
    countries = set(data["countries"])
    languages = set(data["languages"])
    if data["default_language"] not in languages:
        problems.append(f"/default_language: {data['default_language']!r} is not in /languages")
    rings: dict[str, str] = {}
    for code, country in data["countries"].items():
        for language in country["languages"]:
            if language not in languages:
                problems.append(f"/countries/{code}/languages: {language!r} is not in /languages")
        for kind, ring in country["keys"].items():
            if ring in rings:
                problems.append(
                    f"/countries/{code}/keys/{kind}: key ring {ring!r} is already used by {rings[ring]}"
                )
            rings[ring] = f"/countries/{code}/keys/{kind}"
    for pair in data["legal_bases"]:
        source, target = pair.split("-")
        if source == target:
            problems.append(f"/legal_bases/{pair}: a pair needs two different countries")
        for code in (source, target):
            if code not in countries:
                problems.append(f"/legal_bases/{pair}: {code!r} is not a configured country")
        codes = [basis["code"] for basis in data["legal_bases"][pair]]
        if len(codes) != len(set(codes)):
            problems.append(f"/legal_bases/{pair}: duplicate codes")
    roles = set(data["roles"])
    placed: dict[str, str] = {}
    for kind, members in data["need_to_know"].items():
        for index, role in enumerate(members):
            where = f"/need_to_know/{kind}/{index}"
            if role not in roles:
                problems.append(f"{where}: {role!r} is not in /roles")
            elif role in placed:
                problems.append(
                    f"{where}: {role!r} is already in {placed[role]} (a role is in one set at most)"
                )
            placed.setdefault(role, f"/need_to_know/{kind}")
    for code, actions in data["authorisations"].items():
        if code not in countries:
            problems.append(f"/authorisations/{code}: {code!r} is not a configured country")
        for action, members in actions.items():
            for index, role in enumerate(members):
                if role not in roles:
                    problems.append(f"/authorisations/{code}/{action}/{index}: {role!r} is not in /roles")
    return problems


def _build(data: Mapping[str, Any], source: Path | None) -> PlatformConfig:
    def budget(raw: Mapping[str, int]) -> RateBudget:
        return RateBudget(requests_per_minute=raw["requests_per_minute"], burst=raw["burst"])

    def labelled(code: str, raw: Mapping[str, Any]) -> Labelled:
        return Labelled(code=code, labels=_frozen(raw["labels"]), reviewed=raw.get("reviewed", False))

    countries = {
        code: Country(
            code=code,
            names=_frozen(raw["names"]),
            languages=tuple(raw["languages"]),
            data_key_ring=raw["keys"]["data"],
            blind_index_key_ring=raw["keys"]["blind_index"],
        )
        for code, raw in data["countries"].items()
    }
    retention = {
        record_type: RetentionRule(
            record_type=record_type,
            period=IsoPeriod.parse(raw["period"]) if "period" in raw else IsoPeriod(days=raw["days"]),
            action=raw["action"],
            starts=raw.get("starts", "closed"),
        )
        for record_type, raw in data["retention"].items()
    }
    legal_bases: dict[tuple[str, str], tuple[LegalBasis, ...]] = {}
    for pair, bases in data["legal_bases"].items():
        source_country, target_country = pair.split("-")
        legal_bases[(source_country, target_country)] = tuple(
            LegalBasis(
                code=basis["code"],
                labels=_frozen(basis["labels"]),
                reviewed=basis.get("reviewed", False),
                from_country=source_country,
                to_country=target_country,
            )
            for basis in bases
        )
    raw_budgets = data["rate_budgets"]
    return PlatformConfig(
        version=data["version"],
        default_language=data["default_language"],
        languages=tuple(data["languages"]),
        countries=MappingProxyType(countries),
        rate_budgets=RateBudgets(
            interactive=budget(raw_budgets["interactive"]),
            machine_default=budget(raw_budgets["machine_default"]),
            clients=MappingProxyType({k: budget(v) for k, v in raw_budgets.get("clients", {}).items()}),
        ),
        retention=MappingProxyType(retention),
        purposes=MappingProxyType({code: labelled(code, raw) for code, raw in data["purposes"].items()}),
        legal_bases=MappingProxyType(legal_bases),
        authorisations=MappingProxyType(
            {
                country: MappingProxyType({action: frozenset(roles) for action, roles in actions.items()})
                for country, actions in data["authorisations"].items()
            }
        ),
        source=source,
        roles=frozenset(data["roles"]),
        need_to_know=NeedToKnow(
            country_wide=frozenset(data["need_to_know"]["country_wide"]),
            agency=frozenset(data["need_to_know"]["agency"]),
            assigned_only=frozenset(data["need_to_know"]["assigned_only"]),
        ),
    )


def _pick_label(labels: Mapping[str, str], language: str) -> str:
    # Exact tag, then the bare language (cnr-Latn -> cnr), then English: the platform-wide fallback.
    for candidate in (language, language.split("-")[0], "en"):
        if candidate in labels:
            return labels[candidate]
    return next(iter(labels.values()))


def _frozen(mapping: Mapping[str, str]) -> Mapping[str, str]:
    return MappingProxyType(dict(mapping))


def _pointer(path: Iterable[Any]) -> str:
    """RFC 6901 JSON pointer of a location in the document ("" is the whole document)."""
    parts = [str(part).replace("~", "~0").replace("/", "~1") for part in path]
    return "/" + "/".join(parts) if parts else "/"


def _describe(error: ValidationError) -> str:
    if error.validator == "additionalProperties" and isinstance(error.instance, dict):
        allowed = set((error.schema.get("properties") or {}) if isinstance(error.schema, dict) else ())
        unknown = sorted(set(error.instance) - allowed)
        if unknown and allowed:
            return f"unknown key(s) {', '.join(map(repr, unknown))}"
    return error.message


class _StrictLoader(yaml.SafeLoader):
    """SafeLoader that rejects duplicate keys: PyYAML would otherwise keep the last one silently, and a second
    `AL:` block overriding the first is exactly the kind of mistake validation must catch."""


def _construct_mapping(loader: _StrictLoader, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
    loader.flatten_mapping(node)
    seen: set[Any] = set()
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=deep)
        if key in seen:
            raise yaml.constructor.ConstructorError(None, None, f"duplicate key {key!r}", key_node.start_mark)
        seen.add(key)
    return loader.construct_mapping(node, deep=deep)


_StrictLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)
