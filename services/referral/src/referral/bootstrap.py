"""Wiring: settings, platform configuration, keys and cipher, the referral catalogue, Mongo, the access log, and
the repositories under each document class's own scope policy (adapters/documents.scope_policies)."""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any

from plumbing import mongo
from plumbing.access_log import AccessLog, record_for_request
from plumbing.auth import Caller
from plumbing.clock import Clock, SystemClock
from plumbing.config import PlatformConfig, Settings, load_platform_config
from plumbing.crypto import FieldCipher, RequestFingerprinter, ResponseSealer
from plumbing.events import new_event
from plumbing.keys import load_keys
from plumbing.repository import ScopedRepository, ScopePolicy, SystemRepository
from plumbing.service_auth import allowed_clients
from referral.adapters.documents import ReferralDocument, scope_policies
from referral.adapters.sealing import ReferralSealer
from referral.domain.catalogue import ReferralCatalogue
from referral.service_layer.deps import SOURCE, Deps
from referral.service_layer.statistics import stat_row

SERVICE = "referral"


def load_catalogue(config: PlatformConfig) -> ReferralCatalogue:
    """The packaged catalogue, checked against the configuration (an invalid one stops the process here)."""
    return ReferralCatalogue.packaged(config.label_languages, config.country_codes)


def _scoped(clock: Clock, policies: Mapping[type, ScopePolicy], document_class: type, caller: Caller) -> Any:
    return ScopedRepository(document_class, caller, clock, policies.get(document_class))


def _unscoped(clock: Clock, document_class: type, actor: str) -> Any:
    return SystemRepository(document_class, clock, actor=actor)


def _statistics_rows(country: str | None) -> Iterable[Mapping[str, Any]]:
    """Codes and instants of sent referrals (the service's one unscoped read for statistics)."""
    query = {"owner_country": country} if country else {}
    return [stat_row(doc) for doc in ReferralDocument.objects(__raw__=query)]


@dataclass
class Runtime:
    settings: Settings
    config: PlatformConfig
    deps: Deps
    allowed_azp: frozenset[str]
    response_sealer: ResponseSealer
    request_fingerprinter: RequestFingerprinter
    access_log: AccessLog


def build_runtime(environ: Mapping[str, str] | None = None, clock: Clock | None = None) -> Runtime:
    env = os.environ if environ is None else environ
    settings = Settings.from_env(SERVICE, env)
    config = load_platform_config(settings.config_path)
    catalogue = load_catalogue(config)
    keys = load_keys(settings, config)
    cipher = FieldCipher.from_config(keys, config)
    mongo.connect(settings)  # lazy: no network until the first operation
    clock = clock or SystemClock()
    # THB_ACCESS_LOG_MONGODB_URI names a separate audit store; by default the service's own database.
    access_log_db = mongo.get_database(mongo.access_log_alias(settings, env))
    access_log = AccessLog(access_log_db, clock, purposes=config.purpose_codes)

    def record_read(caller: Caller, resource_type: str, ids: Sequence[str]) -> None:
        record_for_request(access_log, resource_type, ids)  # caller and purpose from the request context

    def event(event_type: str, aggregate_id: str, data: Mapping[str, Any]) -> dict[str, Any]:
        return new_event(event_type, aggregate_id, dict(data), SOURCE, clock=clock.now)

    deps = Deps(
        clock=clock,
        config=config,
        catalogue=catalogue,
        sealer=ReferralSealer(cipher),
        repository=partial(_scoped, clock, scope_policies(config)),
        system_repository=partial(_unscoped, clock),
        new_event=event,
        record_read=record_read,
        statistics_source=_statistics_rows,
    )
    return Runtime(
        settings,
        config,
        deps,
        allowed_clients(settings, config, env),
        ResponseSealer(keys),
        RequestFingerprinter(keys, SERVICE),
        access_log,
    )
