"""Fakes for the referral service-layer tests.

The owned-record store is plumbing's (`plumbing.fake_store`): its repositories' `update_where` (the conditional
single-document update capacity relies on, atomic like MongoDB's `update_one`: the store holds one lock over
every write, so 50 threads racing for 3 places behave as they would against a real server) and the system
repository's `find` (the scheduler selects due referrals) are plumbing's. Only the repository factory is the
service's: it gives each document class its own scope policy (`adapters.documents.scope_policies`).

The rest is the service's own collaborators: the packaged catalogue, a real `ReferralSealer` under in-memory
keys, an event factory that builds the envelope shape of `plumbing.events.new_event` and checks each payload
against `domain.events.PAYLOAD_FIELDS` (the event schemas are not in openapi/events yet), an access-log recorder,
and callers like the local realm's demo users.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from types import MappingProxyType
from typing import Any

from plumbing.auth import Caller
from plumbing.clock import Clock, FixedClock
from plumbing.config import PlatformConfig
from plumbing.crypto import FieldCipher
from plumbing.events import new_event
from plumbing.fake_store import FakeRepository, FakeStore, checkout_config
from plumbing.keys import KeySet, required_rings, with_new_key
from referral.adapters.documents import ReferralDocument, scope_policies
from referral.adapters.sealing import ReferralSealer
from referral.domain import events as referral_events
from referral.domain.catalogue import ReferralCatalogue
from referral.service_layer.deps import SOURCE, Deps
from referral.service_layer.statistics import stat_row

# A Monday, 09:30 UTC (10:30 in Tirana): providers with office hours are open.
NOW = datetime(2026, 6, 1, 9, 30, tzinfo=UTC)


def repo_config() -> PlatformConfig:
    return checkout_config()


@functools.cache
def packaged_catalogue() -> ReferralCatalogue:
    config = repo_config()
    return ReferralCatalogue.packaged(config.label_languages, config.country_codes)


# ------------------------------------------------------------------------------------------ repositories


def repositories(store: FakeStore, clock: Clock) -> Callable[[type, Caller], FakeRepository[Any]]:
    """`Deps.repository`: plumbing's fake scoped repository under each document class's own scope policy
    (`adapters.documents.scope_policies`), as the service's wiring hands them out."""
    policies = scope_policies(store.config)

    def factory(document_class: type, caller: Caller) -> FakeRepository[Any]:
        return FakeRepository(store, document_class, caller, clock, policies.get(document_class))

    return factory


# ------------------------------------------------------------------------------------ other collaborators


def in_memory_sealer(config: PlatformConfig) -> ReferralSealer:
    keys = KeySet(rings=MappingProxyType({}))
    for ring in required_rings(config.countries.values()):
        keys, _ = with_new_key(keys, ring)
    return ReferralSealer(FieldCipher.from_config(keys, config))


def make_event_factory(clock: Clock) -> Callable[[str, str, Mapping[str, Any]], dict[str, Any]]:
    """`Deps.new_event` as the service wires it: plumbing.events.new_event, which validates each payload against
    its schema in openapi/events (ids and codes only), after the service's own list of members."""

    def event(event_type: str, aggregate_id: str, data: Mapping[str, Any]) -> dict[str, Any]:
        referral_events.check_payload(event_type, data)
        return new_event(event_type, aggregate_id, dict(data), SOURCE, clock=clock.now)

    return event


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
    store: FakeStore
    clock: FixedClock
    deps: Deps
    reads: ReadLog


def build_world(clock: FixedClock | None = None) -> World:
    clock = clock or FixedClock(NOW)
    store = FakeStore(repo_config())
    config = repo_config()
    reads = ReadLog()
    deps = Deps(
        clock=clock,
        config=config,
        catalogue=packaged_catalogue(),
        sealer=in_memory_sealer(config),
        repository=repositories(store, clock),
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
    "al-child-protection": ("AL", "child-protection", "child-protection-worker"),
    "al-guardian": ("AL", "al-cpu-durres", "guardian"),
    "al-analyst": ("AL", "coordinator-office", "analyst"),
    "al-auditor": ("AL", "coordinator-office", "auditor"),
    "xk-case-manager": ("XK", "social-services", "case-manager"),
    "xk-coordinator": ("XK", "coordinator-office", "coordinator"),
    "xk-shelter": ("XK", "shelter-ura-e-re", "service-provider"),
    "me-coordinator": ("ME", "coordinator-office", "coordinator"),
    "me-case-manager": ("ME", "social-services", "case-manager"),
    "al-dpo": ("AL", "coordinator-office", "data-protection-officer"),
    "xk-dpo": ("XK", "coordinator-office", "data-protection-officer"),
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
