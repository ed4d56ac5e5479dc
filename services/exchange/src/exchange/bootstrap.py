"""Wiring: settings, platform configuration, keys (with the country keys), the form catalogue, Mongo, the
message log and the access log. The HTTP entry points and the transport consumer of the next slice build on
`build_runtime`; the skeleton's entry points do not use it yet."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any

from pymongo import ReturnDocument

from exchange.adapters.documents import ExchangeCounter
from exchange.adapters.envelope import EnvelopeSealer
from exchange.adapters.message_log import MongoMessageLog
from exchange.adapters.sealing import ContentSealer
from exchange.adapters.transport import HeldTransport, Transport
from exchange.domain.catalogue import FormCatalogue
from exchange.service_layer.deps import Deps
from plumbing import mongo
from plumbing.access_log import AccessLog, record_for_request
from plumbing.auth import Caller
from plumbing.clock import Clock, SystemClock
from plumbing.config import PlatformConfig, Settings, load_platform_config
from plumbing.country_keys import CountryKeys, load_keys_with_country_keys
from plumbing.crypto import FieldCipher
from plumbing.repository import ScopedRepository

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


@dataclass
class Runtime:
    settings: Settings
    config: PlatformConfig
    deps: Deps


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
    access_log = AccessLog(mongo.get_database(), clock, purposes=config.purpose_codes)

    def record_read(caller: Caller, resource_type: str, ids: Sequence[str]) -> None:
        record_for_request(access_log, resource_type, ids)  # caller and purpose from the request context

    deps = Deps(
        clock=clock,
        config=config,
        catalogue=catalogue,
        repository=partial(scoped, clock),
        next_sequence=next_sequence,
        envelopes=EnvelopeSealer(CountryKeys.from_keyset(keys, config.countries)),
        transport=transport or HeldTransport(),
        message_log=MongoMessageLog(mongo.get_database()),
        contents=ContentSealer(cipher),
        record_read=record_read,
    )
    return Runtime(settings, config, deps)
