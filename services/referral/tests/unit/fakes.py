"""Fakes for the referral service-layer tests.

The owned-record store is plumbing's (`plumbing.fake_store`), extended HERE by subclassing with what the
referral service needs and plumbing's fakes lack (see the service README, "What plumbing should gain"):

- `update_where`: a conditional single-document update (filter AND scope, then `$inc` / `$push` / `$pull` /
  `$set`, `version + 1`, events appended), atomic like MongoDB's `update_one`: the store holds one lock over
  every write, so 50 threads racing for 3 places behave as they would against a real server;
- `find` on the system repository (the scheduler selects due referrals);
- a repository factory that gives each document class its own scope policy (`adapters.documents.scope_policies`).

The rest is the service's own collaborators: the packaged catalogue, a real `ReferralSealer` under in-memory
keys, an event factory that builds the envelope shape of `plumbing.events.new_event` and checks each payload
against `domain.events.PAYLOAD_FIELDS` (the event schemas are not in openapi/events yet), an access-log recorder,
and callers like the local realm's demo users.
"""

from __future__ import annotations

import copy
import functools
import json
import threading
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from types import MappingProxyType
from typing import Any, TypeVar

from mongoengine.queryset.transform import query as mongoengine_query

from plumbing.auth import Caller
from plumbing.clock import Clock, FixedClock, to_millis
from plumbing.config import PlatformConfig
from plumbing.crypto import FieldCipher
from plumbing.documents import OwnedDocument
from plumbing.errors import NotFound
from plumbing.events import format_time
from plumbing.fake_store import FakeRepository, FakeStore, FakeSystemRepository, checkout_config, matches
from plumbing.keys import KeySet, required_rings, with_new_key
from plumbing.repository import ScopePolicy
from referral.adapters.documents import ReferralDocument, scope_policies
from referral.adapters.sealing import ReferralSealer
from referral.domain import events as referral_events
from referral.domain.catalogue import ReferralCatalogue
from referral.service_layer.deps import SOURCE, Deps
from referral.service_layer.statistics import stat_row

T = TypeVar("T", bound=OwnedDocument)

# A Monday, 09:30 UTC (10:30 in Tirana): providers with office hours are open.
NOW = datetime(2026, 6, 1, 9, 30, tzinfo=UTC)


def repo_config() -> PlatformConfig:
    return checkout_config()


def catalogue_languages(config: PlatformConfig) -> list[str]:
    """The default language and every language a partner country works in (as the exchange catalogue)."""
    languages = [config.default_language]
    for country in config.countries.values():
        languages += [language for language in country.languages if language not in languages]
    return languages


@functools.cache
def packaged_catalogue() -> ReferralCatalogue:
    config = repo_config()
    return ReferralCatalogue.packaged(catalogue_languages(config), config.country_codes)


# ------------------------------------------------------------------------------------ conditional updates


def _parent(row: dict[str, Any], path: str) -> tuple[dict[str, Any], str]:
    parts = path.split(".")
    node = row
    for part in parts[:-1]:
        node = node.setdefault(part, {})
    return node, parts[-1]


def apply_operators(row: dict[str, Any], operators: Mapping[str, Any]) -> None:
    """The MongoDB update operators the referral service uses, on dotted paths. Anything else is refused."""
    for op, fields in operators.items():
        for path, value in fields.items():
            node, name = _parent(row, path)
            if op == "$inc":
                node[name] = node.get(name, 0) + value
            elif op == "$set":
                node[name] = copy.deepcopy(value)
            elif op == "$push":
                node[name] = [*(node.get(name) or []), copy.deepcopy(value)]
            elif op == "$pull":
                node[name] = [item for item in node.get(name) or [] if item != value]
            else:
                raise ValueError(f"the fake does not apply {op}")


class ConditionalStore(FakeStore):
    """FakeStore whose writes are serialised by one lock (each MongoDB single-document write is atomic), with
    `conditional_update`."""

    def __init__(self, config: PlatformConfig | None = None) -> None:
        super().__init__(config)
        self.lock = threading.RLock()
        self.policies: dict[type, ScopePolicy] = scope_policies(self.config)

    def stamp_and_insert(self, doc: T, **kwargs: Any) -> T:  # type: ignore[override]
        with self.lock:
            return super().stamp_and_insert(doc, **kwargs)

    def write_update(self, doc: T, **kwargs: Any) -> T:  # type: ignore[override]
        with self.lock:
            return super().write_update(doc, **kwargs)

    def conditional_update(
        self,
        document_class: type[OwnedDocument],
        where: Mapping[str, Any],
        record_id: str,
        operators: Mapping[str, Any],
        *,
        actor: str,
        clock: Clock,
        events: Iterable[Mapping[str, Any]] = (),
    ) -> bool:
        with self.lock:
            rows = self.rows(document_class)
            row = rows.get(record_id)
            if row is None or not matches(row, where):
                return False
            new = copy.deepcopy(row)
            apply_operators(new, operators)
            new["version"] = row["version"] + 1
            new["updated_at"], new["updated_by"] = to_millis(clock.now()), actor
            new["pending_events"] = [*(row.get("pending_events") or []), *(dict(e) for e in events)]
            rows[record_id] = new
            return True

    def repositories(  # type: ignore[override]
        self, clock: Clock, policy: ScopePolicy | None = None
    ) -> Callable[[type, Caller], ConditionalRepository[Any]]:
        def factory(document_class: type, caller: Caller) -> ConditionalRepository[Any]:
            chosen = policy or self.policies.get(document_class)
            return ConditionalRepository(self, document_class, caller, clock, chosen)

        return factory

    def system_repositories(  # type: ignore[override]
        self, clock: Clock
    ) -> Callable[[type, str], ConditionalSystemRepository[Any]]:
        def factory(document_class: type, actor: str) -> ConditionalSystemRepository[Any]:
            return ConditionalSystemRepository(self, document_class, clock, actor)

        return factory


class ConditionalRepository(FakeRepository[T]):
    store: ConditionalStore

    def update_where(
        self,
        record_id: str,
        condition: Mapping[str, Any],
        operators: Mapping[str, Any],
        *,
        events: Iterable[Mapping[str, Any]] = (),
    ) -> bool:
        scope = self.policy.read_filter(self.caller)
        if scope is None:
            raise NotFound(f"{self.document_class.__name__} not found")
        return self.store.conditional_update(
            self.document_class,
            {"$and": [scope, dict(condition)]},
            record_id,
            operators,
            actor=self.caller.sub,
            clock=self.clock,
            events=events,
        )


class ConditionalSystemRepository(FakeSystemRepository[T]):
    store: ConditionalStore

    def find(self, *, limit: int | None = None, **filters: Any) -> list[T]:
        where = dict(mongoengine_query(self.document_class, **filters)) if filters else {}
        with self.store.lock:
            rows = [r for r in self.store.rows(self.document_class).values() if matches(r, where)]
        rows.sort(key=lambda r: (r["updated_at"], r["_id"]))
        return [self.store.load(self.document_class, r) for r in (rows[:limit] if limit else rows)]

    def update_where(
        self,
        record_id: str,
        condition: Mapping[str, Any],
        operators: Mapping[str, Any],
        *,
        events: Iterable[Mapping[str, Any]] = (),
    ) -> bool:
        return self.store.conditional_update(
            self.document_class,
            dict(condition),
            record_id,
            operators,
            actor=self.actor,
            clock=self.clock,
            events=events,
        )


# ------------------------------------------------------------------------------------ other collaborators


def in_memory_sealer(config: PlatformConfig) -> ReferralSealer:
    keys = KeySet(rings=MappingProxyType({}))
    for ring in required_rings(config.countries.values()):
        keys, _ = with_new_key(keys, ring)
    return ReferralSealer(FieldCipher.from_config(keys, config))


def make_event_factory(clock: Clock) -> Callable[[str, str, Mapping[str, Any]], dict[str, Any]]:
    """The envelope shape of plumbing.events.new_event; the payload is checked against PAYLOAD_FIELDS and must be
    plain JSON (the schemas that new_event validates against are not in openapi/events yet)."""

    def new_event(event_type: str, aggregate_id: str, data: Mapping[str, Any]) -> dict[str, Any]:
        referral_events.check_payload(event_type, data)
        return {
            "specversion": "1.0",
            "id": str(uuid.uuid4()),
            "source": SOURCE,
            "type": event_type,
            "subject": aggregate_id,
            "time": format_time(clock.now()),
            "datacontenttype": "application/json",
            "partitionkey": aggregate_id,
            "data": json.loads(json.dumps(dict(data))),
        }

    return new_event


@dataclass
class ReadLog:
    """`Deps.record_read`: each read of copied case fields, as (country, sub, resource type, ids)."""

    entries: list[tuple[str, str, str, tuple[str, ...]]] = field(default_factory=list)

    def __call__(self, caller: Caller, resource_type: str, ids: Sequence[str]) -> None:
        self.entries.append((caller.country, caller.sub, resource_type, tuple(ids)))


def statistics_source(store: FakeStore) -> Callable[[str | None], list[dict[str, Any]]]:
    def rows(country: str | None) -> list[dict[str, Any]]:
        return [
            stat_row(doc)
            for doc in store.all(ReferralDocument)
            if country is None or doc.owner_country == country
        ]

    return rows


@dataclass
class World:
    store: ConditionalStore
    clock: FixedClock
    deps: Deps
    reads: ReadLog


def build_world(clock: FixedClock | None = None) -> World:
    clock = clock or FixedClock(NOW)
    store = ConditionalStore(repo_config())
    config = repo_config()
    reads = ReadLog()
    deps = Deps(
        clock=clock,
        config=config,
        catalogue=packaged_catalogue(),
        sealer=in_memory_sealer(config),
        repository=store.repositories(clock),
        system_repository=store.system_repositories(clock),
        new_event=make_event_factory(clock),
        record_read=reads,
        statistics_source=statistics_source(store),
    )
    return World(store, clock, deps, reads)


# ---------------------------------------------------------------------------------------------- callers

# Like the local realm's demo users: country, agency, role.
USERS: dict[str, tuple[str, str, str]] = {
    "al-coordinator": ("AL", "coordinator-office", "coordinator"),
    "al-case-manager": ("AL", "social-services", "case-manager"),
    "al-police": ("AL", "state-police", "police-officer"),
    "al-ngo-outreach": ("AL", "ngo-tjeter-vizion", "ngo-outreach"),
    "al-shelter": ("AL", "shelter-ura-e-re", "service-provider"),
    "al-other-shelter": ("AL", "shelter-qendra-e-sigurt", "service-provider"),
    "al-cpu-tirane": ("AL", "al-cpu-tirane", "child-protection-worker"),
    "al-guardian": ("AL", "al-cpu-durres", "guardian"),
    "al-analyst": ("AL", "coordinator-office", "analyst"),
    "al-auditor": ("AL", "coordinator-office", "auditor"),
    "xk-case-manager": ("XK", "social-services", "case-manager"),
    "xk-coordinator": ("XK", "coordinator-office", "coordinator"),
    "xk-shelter": ("XK", "shelter-ura-e-re", "service-provider"),
    "me-coordinator": ("ME", "coordinator-office", "coordinator"),
}


def user(username: str) -> Caller:
    country, agency, role = USERS[username]
    return Caller(
        sub=f"sub-{username}",
        azp="thb-test",
        country=country,
        agency=agency,
        roles=frozenset({role}),
        acting_user=None,
        is_machine=False,
        token="not-a-token",
    )
