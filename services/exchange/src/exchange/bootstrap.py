"""Wiring: settings, platform configuration, keys (with the country keys), the form catalogue, Mongo, the
message log, the access log and the transport. Every process builds on `build_runtime`: the API, the consumer
(entrypoints/consumer.py: the inboxes), the relay (entrypoints/relay.py: envelopes left undelivered) and the
scheduler (entrypoints/scheduler.py: reply deadlines and retention).

The transport is Kafka's (adapters/kafka_transport.py) whenever KAFKA_BOOTSTRAP_SERVERS is set (always outside
local mode); its producer connects on the first delivery, after any fork. Tests pass their own transport."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
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
from exchange.domain.events import event_factory
from exchange.service_layer.deps import Deps
from plumbing import mongo
from plumbing.access_log import AccessLog, record_for_request
from plumbing.auth import Caller
from plumbing.clock import Clock, SystemClock
from plumbing.config import PlatformConfig, Settings, load_platform_config
from plumbing.country_keys import CountryKeys, load_keys_with_country_keys
from plumbing.crypto import FieldCipher
from plumbing.keys import KeySet
from plumbing.repository import ScopedRepository, SystemRepository

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


def unscoped(clock: Clock, document_class: type, actor: str) -> Any:
    """For jobs only (the retention job of entrypoints/scheduler.py), never for a request."""
    return SystemRepository(document_class, clock, actor=actor)


def transport_from(settings: Settings) -> Transport:
    """The Kafka transport of this process; without Kafka (local mode only) envelopes are held in `outgoing`."""
    if not settings.kafka_bootstrap_servers:
        return HeldTransport()
    return KafkaTransport.connect(settings.kafka_bootstrap_servers, client_id=f"{SERVICE}-transport")


@dataclass
class Runtime:
    settings: Settings
    config: PlatformConfig
    deps: Deps
    # Read once at start-up and shared with the HTTP app (its Idempotency-Key store and its access log).
    keys: KeySet | None = None
    access_log: AccessLog | None = None


def build_runtime(
    environ: Mapping[str, str] | None = None, clock: Clock | None = None, transport: Transport | None = None
) -> Runtime:
    env = os.environ if environ is None else environ
    settings = Settings.from_env(SERVICE, env)
    config = load_platform_config(settings.config_path)
    catalogue = load_catalogue(config)  # an invalid catalogue stops the process here
    keys = load_keys_with_country_keys(settings, config)
    cipher = FieldCipher.from_config(keys, config)
    mongo.connect(settings)  # lazy: no network until the first operation
    clock = clock or SystemClock()
    # THB_ACCESS_LOG_MONGODB_URI names a separate audit store; by default the service's own database.
    access_log_db = mongo.get_database(mongo.access_log_alias(settings, env))
    access_log = AccessLog(access_log_db, clock, purposes=config.purpose_codes)

    def record_read(caller: Caller, resource_type: str, ids: Sequence[str]) -> None:
        record_for_request(access_log, resource_type, ids)  # caller and purpose from the request context

    deps = Deps(
        clock=clock,
        config=config,
        catalogue=catalogue,
        repository=partial(scoped, clock),
        next_sequence=next_sequence,
        envelopes=EnvelopeSealer(CountryKeys.from_keyset(keys, config.countries)),
        transport=transport or transport_from(settings),
        message_log=MongoMessageLog(mongo.get_database()),
        contents=ContentSealer(cipher),
        record_read=record_read,
        new_event=event_factory(clock.now),
        system_repository=partial(unscoped, clock),
    )
    return Runtime(settings, config, deps, keys=keys, access_log=access_log)
