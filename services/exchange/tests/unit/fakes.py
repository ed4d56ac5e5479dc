"""Fakes for the exchange service-layer tests.

The owned-record store and its scoped repository are plumbing's (`plumbing.fake_store`: `FakeStore`,
`FakeRepository`, applying the same need-to-know policy as `ScopedRepository`), shared with the other services'
tests. What is the exchange's own: an in-memory message log with the real hash chain, a
transport that queues envelopes until the test pumps them into the recipient's inbox, an access-log recorder,
and the real envelope and content sealers under fresh in-memory keys.
"""

from __future__ import annotations

import copy
import functools
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from types import MappingProxyType
from typing import Any

from exchange.adapters.envelope import EnvelopeSealer
from exchange.adapters.sealing import ContentSealer
from exchange.adapters.transport import Transport, TransportError
from exchange.bootstrap import Runtime, load_catalogue
from exchange.domain.catalogue import FormCatalogue
from exchange.domain.events import SOURCE
from exchange.domain.evidence import ChainReport, chained, first_logged_since, verify_chain
from exchange.service_layer import receiving
from exchange.service_layer.deps import Deps
from plumbing.auth import Caller
from plumbing.clock import Clock, FixedClock
from plumbing.config import Settings
from plumbing.country_keys import CountryKeys, country_key_rings
from plumbing.crypto import FieldCipher
from plumbing.events import event_factory
from plumbing.fake_store import FakeSequences, FakeStore
from plumbing.fake_store import checkout_config as repo_config
from plumbing.keys import KeySet, required_rings, with_new_key
from plumbing.startup import Startup

NOW = datetime(2026, 6, 1, 9, 30, tzinfo=UTC)


@functools.cache
def packaged_catalogue() -> FormCatalogue:
    return load_catalogue(repo_config())


def in_memory_keys(countries: tuple[str, ...] = ()) -> KeySet:
    """Every ring the configured countries need (data, index, exchange signing and encryption), in memory."""
    config = repo_config()
    keys = KeySet(rings=MappingProxyType({}))
    for ring in required_rings(config.countries.values()) + country_key_rings(
        countries or tuple(config.countries)
    ):
        keys, _ = with_new_key(keys, ring)
    return keys


class FakeMessageLog:
    """The message log's behaviour (per-country hash chain, once per envelope and direction) in memory."""

    def __init__(self) -> None:
        self.chains: dict[str, list[dict[str, Any]]] = {}

    def append(self, country: str, fields: Mapping[str, Any]) -> dict[str, Any]:
        chain = self.chains.setdefault(country, [])
        for entry in chain:
            if entry["envelope_id"] == fields["envelope_id"] and entry["direction"] == fields["direction"]:
                return copy.deepcopy(entry)
        entry = chained(chain[-1] if chain else None, {**fields, "country": country})
        chain.append(entry)
        return copy.deepcopy(entry)

    def entries(self, country: str) -> list[dict[str, Any]]:
        return copy.deepcopy(self.chains.get(country, []))

    def after(self, country: str, seq: int, limit: int) -> list[dict[str, Any]]:
        return [copy.deepcopy(e) for e in self.chains.get(country, []) if seq < int(e["seq"]) <= seq + limit]

    def first_since(self, country: str, since: datetime) -> int:
        chain = self.chains.get(country, [])
        return first_logged_since(
            len(chain), lambda seq: chain[seq - 1] if 0 < seq <= len(chain) else None, since
        )

    def verify(self, country: str) -> ChainReport:
        return verify_chain(self.chains.get(country, []))


@dataclass
class QueuedTransport(Transport):
    """Envelopes wait here (as they would on a topic per country) until `pump` hands them to the inboxes."""

    queue: list[tuple[str, str, str]] = field(default_factory=list)
    wire: list[str] = field(default_factory=list)  # everything that ever crossed, for privacy assertions
    down: bool = False

    def deliver(self, recipient: str, envelope_id: str, token: str) -> None:
        if self.down:
            raise TransportError("broker unavailable")
        self.queue.append((recipient, envelope_id, token))
        self.wire.append(token)


@dataclass
class ReadLog:
    """`Deps.record_read`: each content read, as (country, sub, resource type, ids)."""

    entries: list[tuple[str, str, str, tuple[str, ...]]] = field(default_factory=list)

    def __call__(self, caller: Caller, resource_type: str, ids: Any) -> None:
        self.entries.append((caller.country, caller.sub, resource_type, tuple(ids)))


@dataclass
class World:
    """One shared deployment: one store, one clock, every country's keys, one transport."""

    store: FakeStore
    clock: FixedClock
    deps: Deps
    transport: QueuedTransport
    message_log: FakeMessageLog
    reads: ReadLog
    keys: KeySet

    def pump(self) -> list[receiving.Outcome]:
        """Deliver every queued envelope (and what answering them queues) to its recipient's inbox."""
        outcomes = []
        while self.transport.queue:
            recipient, _envelope_id, token = self.transport.queue.pop(0)
            outcomes.append(receiving.receive_envelope(self.deps, recipient, token))
        return outcomes


def build_world(
    store: FakeStore | None = None, *, clock: Clock | None = None, catalogue: FormCatalogue | None = None
) -> World:
    store = store or FakeStore()
    clock = clock if isinstance(clock, FixedClock) else FixedClock(NOW)
    config = repo_config()
    keys = in_memory_keys()
    transport, message_log, reads = QueuedTransport(), FakeMessageLog(), ReadLog()
    deps = Deps(
        clock=clock,
        config=config,
        catalogue=catalogue or packaged_catalogue(),
        repository=store.repositories(clock),
        next_sequence=FakeSequences(),
        envelopes=EnvelopeSealer(CountryKeys.from_keyset(keys, config.countries)),
        transport=transport,
        message_log=message_log,
        contents=ContentSealer(FieldCipher.from_config(keys, config)),
        record_read=reads,
        new_event=event_factory(SOURCE, clock.now),
        system_repository=store.system_repositories(clock),
    )
    return World(store, clock, deps, transport, message_log, reads, keys)


def runtime_over(world: World, settings: Settings, access_log: Any = None) -> Runtime:
    """The service's Runtime over the world's fakes, as its HTTP module and its scheduler read it."""
    config = world.deps.config
    cipher = FieldCipher.from_config(world.keys, config)
    startup = Startup("exchange", {}, settings, config, world.keys, cipher, world.clock, access_log)
    return Runtime(startup, world.deps)


# ---------------------------------------------------------------------------------------------- callers

# country, agency, role
USERS: dict[str, tuple[str, str, str]] = {
    "xk-contact-point": ("XK", "coordinator-office", "contact-point"),
    "xk-coordinator": ("XK", "coordinator-office", "coordinator"),
    "xk-case-manager": ("XK", "social-services", "case-manager"),
    "xk-police": ("XK", "state-police", "police-officer"),
    "xk-analyst": ("XK", "coordinator-office", "analyst"),
    "me-contact-point": ("ME", "coordinator-office", "contact-point"),
    "me-coordinator": ("ME", "coordinator-office", "coordinator"),
    "me-case-manager": ("ME", "social-services", "case-manager"),
    "al-contact-point": ("AL", "coordinator-office", "contact-point"),
    "al-coordinator": ("AL", "coordinator-office", "coordinator"),
    "al-case-manager": ("AL", "social-services", "case-manager"),
    "al-auditor": ("AL", "coordinator-office", "auditor"),
    "xk-dpo": ("XK", "coordinator-office", "data-protection-officer"),
    "me-dpo": ("ME", "coordinator-office", "data-protection-officer"),
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
