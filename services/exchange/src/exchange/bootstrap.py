"""Wiring: on what every process reads at start (plumbing.startup: settings, platform configuration, keys with the
country keys, Mongo, the access log), the form catalogue, the message log and the transport. Every process builds on `build_runtime`: the API, the consumer
(entrypoints/consumer.py: the inboxes), the relay (entrypoints/relay.py: envelopes left undelivered) and the
scheduler (entrypoints/scheduler.py: reply deadlines and retention).

The transport is Kafka's (adapters/kafka_transport.py) whenever KAFKA_BOOTSTRAP_SERVERS is set (always outside
local mode); its producer connects on the first delivery, after any fork. Tests pass their own transport."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from functools import partial
from typing import Any

from pymongo import ReturnDocument

from exchange.adapters.documents import ExchangeCounter
from exchange.adapters.envelope import EnvelopeSealer
from exchange.adapters.kafka_transport import KafkaTransport
from exchange.adapters.message_log import MongoMessageLog
from exchange.adapters.sealing import ContentSealer
from exchange.adapters.transport import HeldTransport, Transport
from exchange.domain.catalogue import FormCatalogue
from exchange.domain.events import SOURCE
from exchange.service_layer.deps import Deps
from plumbing import mongo
from plumbing.access_log import read_recorder
from plumbing.auth import Caller
from plumbing.clock import Clock
from plumbing.config import PlatformConfig, Settings
from plumbing.country_keys import CountryKeys, load_keys_with_country_keys
from plumbing.events import event_factory
from plumbing.repository import ScopedRepository, system_repositories
from plumbing.startup import Startup

SERVICE = "exchange"


def load_catalogue(config: PlatformConfig) -> FormCatalogue:
    return FormCatalogue.packaged(config.label_languages, config.roles)


def next_sequence(country: str, year: int) -> int:
    """Atomic per-country, per-year counter (find_one_and_update with $inc, upserted)."""
    doc = ExchangeCounter._get_collection().find_one_and_update(
        {"_id": f"{country}-{year}"},
        {"$inc": {"value": 1}},
        upsert=True,
        return_document=ReturnDocument.AFTER,
    )
    return int(doc["value"])


def scoped(clock: Clock, document_class: type, caller: Caller) -> Any:
    return ScopedRepository(document_class, caller, clock)


def transport_from(settings: Settings) -> Transport:
    """The Kafka transport of this process; without Kafka (local mode only) envelopes are held in `outgoing`."""
    if not settings.kafka_bootstrap_servers:
        return HeldTransport()
    return KafkaTransport.connect(settings.kafka_bootstrap_servers, client_id=f"{SERVICE}-transport")


@dataclass
class Runtime:
    startup: Startup  # its key set has the country rings; the HTTP app's Idempotency-Key store uses it too
    deps: Deps


def build_runtime(
    environ: Mapping[str, str] | None = None, clock: Clock | None = None, transport: Transport | None = None
) -> Runtime:
    startup = Startup.read(SERVICE, environ, clock, keys=load_keys_with_country_keys)
    config, clock = startup.config, startup.clock
    deps = Deps(
        clock=clock,
        config=config,
        catalogue=load_catalogue(config),  # an invalid catalogue stops the process here
        repository=partial(scoped, clock),
        next_sequence=next_sequence,
        envelopes=EnvelopeSealer(CountryKeys.from_keyset(startup.keys, config.countries)),
        transport=transport or transport_from(startup.settings),
        message_log=MongoMessageLog(mongo.get_database()),
        contents=ContentSealer(startup.cipher),
        record_read=read_recorder(startup.access_log),
        new_event=event_factory(SOURCE, clock.now),
        # For jobs only (the retention job of entrypoints/scheduler.py), never for a request.
        system_repository=system_repositories(clock),
    )
    return Runtime(startup, deps)
