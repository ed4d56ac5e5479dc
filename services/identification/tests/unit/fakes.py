"""Fakes for the identification service-layer tests: `build_deps` wires the service's `Deps` to the shared
in-memory store (`plumbing.fake_store`: the owned-record store, scoped and system repositories, sequences) and to
the service's own collaborators (the packaged indicator catalogue, a real `PersonSealer` under in-memory keys);
`user` makes callers like the local realm's demo users.

The follow-up steps (`service_layer/follow_up.py`) reach their second aggregate through `Deps.system_repository`
and are removed through `Deps.complete_step`: `build_deps` points both at the store, so that a registration opens
its case and a decision notifies the coordinator in tests too.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from types import MappingProxyType
from typing import Any

from identification.adapters.common_keys import InMemoryCommonKeys
from identification.adapters.sealing import PersonSealer
from identification.domain.indicators import IndicatorCatalogue, IndicatorSet
from identification.service_layer.deps import Deps
from plumbing.auth import Caller
from plumbing.clock import Clock, FixedClock
from plumbing.config import PlatformConfig
from plumbing.crypto import FieldCipher
from plumbing.fake_store import FakeSequences, FakeStore, checkout_config
from plumbing.keys import KeySet, required_rings, with_new_key
from plumbing.repository import ExistencePolicy

# A working day inside the packaged indicator sets' validity (regional@2026.1 is effective from 2026-01-01).
NOW = datetime(2026, 6, 1, 9, 30, tzinfo=UTC)

__all__ = ["NOW", "FakeSequences", "FakeStore", "build_deps", "repo_config", "user"]


def repo_config() -> PlatformConfig:
    """config/platform.yaml of this checkout, the configuration the service loads by default."""
    return checkout_config()


@functools.cache
def packaged_catalogue() -> IndicatorCatalogue:
    return IndicatorCatalogue.packaged()


@dataclass
class FakeIndicatorSets:
    """`IndicatorSets`: the packaged catalogue plus what was published during the test."""

    catalogue: IndicatorCatalogue = field(default_factory=packaged_catalogue)
    published: list[tuple[IndicatorSet, str, str]] = field(default_factory=list)

    def current(self) -> IndicatorCatalogue:
        return self.catalogue

    def publish(
        self, item: IndicatorSet, raw: dict[str, Any], *, at: datetime, by: str, country: str
    ) -> IndicatorSet:
        self.catalogue = self.catalogue.with_set(item)
        self.published.append((item, by, country))
        return item


def in_memory_sealer(config: PlatformConfig) -> PersonSealer:
    """A real `PersonSealer` (AES-GCM, HMAC blind indexes) under fresh keys that exist only in memory."""
    keys = KeySet(rings=MappingProxyType({}))
    for ring in required_rings(config.countries.values()):
        keys, _ = with_new_key(keys, ring)
    return PersonSealer(FieldCipher.from_config(keys, config))


def build_deps(
    store: FakeStore,
    *,
    clock: Clock | None = None,
    next_sequence: Callable[[str, int], int] | None = None,
    indicator_sets: FakeIndicatorSets | None = None,
) -> Deps:
    clock = clock or FixedClock(NOW)
    config = repo_config()
    return Deps(
        clock=clock,
        config=config,
        sealer=in_memory_sealer(config),
        indicator_sets=indicator_sets or FakeIndicatorSets(),
        repository=store.repositories(clock),
        existence_repository=store.repositories(clock, ExistencePolicy.from_config(config)),
        common_keys=InMemoryCommonKeys(),
        keys_outdated=lambda: False,  # every person is registered here under today's key scheme
        next_sequence=next_sequence or FakeSequences(),
        system_repository=store.system_repositories(clock),
        complete_step=store.complete_step,
    )


# ---------------------------------------------------------------------------------------------- callers

# Like the local realm's demo users (realm/local-realm.json): country, agency, role.
USERS: dict[str, tuple[str, str, str]] = {
    "al-police": ("AL", "state-police", "police-officer"),
    "al-border": ("AL", "border-police", "border-police"),
    "al-labour": ("AL", "labour-inspectorate", "labour-inspector"),
    "al-case-manager": ("AL", "social-services", "case-manager"),
    "al-coordinator": ("AL", "coordinator-office", "coordinator"),
    "al-shelter": ("AL", "shelter-ura-e-re", "service-provider"),
    "al-analyst": ("AL", "coordinator-office", "analyst"),
    "xk-police": ("XK", "state-police", "police-officer"),
    "xk-case-manager": ("XK", "social-services", "case-manager"),
    "xk-coordinator": ("XK", "coordinator-office", "coordinator"),
    "me-case-manager": ("ME", "social-services", "case-manager"),
}


def user(username: str, *, azp: str = "thb-test") -> Caller:
    country, agency, role = USERS[username]
    return Caller(
        sub=f"sub-{username}",
        azp=azp,
        country=country,
        agency=agency,
        roles=frozenset({role}),
        acting_user=None,
        is_machine=False,
        token="not-a-token",
    )
