"""Wiring: settings, platform configuration, keys, cipher, indicator catalogue, Mongo, the access log."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from functools import partial
from typing import Any

from mongoengine.connection import DEFAULT_CONNECTION_NAME
from pymongo import ReturnDocument

from identification.adapters.documents import CaseCounter
from identification.adapters.indicator_store import CatalogueSource
from identification.adapters.sealing import PersonSealer
from identification.service_layer.deps import Deps
from plumbing import mongo
from plumbing.access_log import AccessLog
from plumbing.auth import Caller
from plumbing.clock import Clock, SystemClock
from plumbing.config import PlatformConfig, Settings, load_platform_config
from plumbing.crypto import FieldCipher, RequestFingerprinter, ResponseSealer
from plumbing.keys import load_keys
from plumbing.repository import ExistencePolicy, ScopedRepository, ScopePolicy, SystemRepository
from plumbing.rows import ProjectingRepository
from plumbing.service_auth import allowed_clients
from plumbing.steps import complete

SERVICE = "identification"


def next_sequence(country: str, year: int) -> int:
    """Atomic per-country, per-year counter (find_one_and_update with $inc, upserted)."""
    doc = CaseCounter._get_collection().find_one_and_update(
        {"_id": f"{country}-{year}"},
        {"$inc": {"value": 1}},
        upsert=True,
        return_document=ReturnDocument.AFTER,
    )
    return int(doc["value"])


@dataclass
class Runtime:
    settings: Settings
    config: PlatformConfig
    deps: Deps
    cipher: FieldCipher
    allowed_azp: frozenset[str]
    response_sealer: ResponseSealer
    request_fingerprinter: RequestFingerprinter

    access_log_alias: str = DEFAULT_CONNECTION_NAME

    def access_log(self, clock: Clock | None = None) -> AccessLog:
        database = mongo.get_database(self.access_log_alias)
        return AccessLog(database, clock or self.deps.clock, purposes=self.config.purpose_codes)


def scoped(clock: Clock, document_class: type, caller: Caller, policy: ScopePolicy | None = None) -> Any:
    return ScopedRepository(document_class, caller, clock, policy)


def projecting(clock: Clock, document_class: type, caller: Caller, policy: ScopePolicy | None = None) -> Any:
    """A scoped repository that also answers raw rows (the duplicate search's candidates, plumbing.rows)."""
    return ProjectingRepository(document_class, caller, clock, policy)


def unscoped(clock: Clock, document_class: type, actor: str) -> Any:
    """For the follow-up steps only (service_layer/follow_up.py), in the API and in the relay."""
    return SystemRepository(document_class, clock, actor=actor)


def build_runtime(environ: Mapping[str, str] | None = None, clock: Clock | None = None) -> Runtime:
    env = os.environ if environ is None else environ
    settings = Settings.from_env(SERVICE, env)
    config = load_platform_config(settings.config_path)
    keys = load_keys(settings, config)
    cipher = FieldCipher.from_config(keys, config)
    mongo.connect(settings)  # lazy: no network until the first operation
    access_log_alias = mongo.access_log_alias(settings, env)  # THB_ACCESS_LOG_MONGODB_URI, or its own
    clock = clock or SystemClock()
    deps = Deps(
        clock=clock,
        config=config,
        sealer=PersonSealer(cipher),
        indicator_sets=CatalogueSource(),
        repository=partial(scoped, clock),
        existence_repository=partial(projecting, clock, policy=ExistencePolicy.from_config(config)),
        next_sequence=next_sequence,
        system_repository=partial(unscoped, clock),
        complete_step=complete,
    )
    # THB_ALLOWED_AZP, required outside local mode; locally the realm's clients of every configured country.
    allowed = allowed_clients(settings, config, env)
    return Runtime(
        settings,
        config,
        deps,
        cipher,
        allowed,
        ResponseSealer(keys),
        RequestFingerprinter(keys, SERVICE),
        access_log_alias,
    )
