"""Wiring: settings, platform configuration, keys and cipher, the return catalogue, Mongo, the access log, and the
repositories under the platform's need-to-know policy."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from plumbing import mongo
from plumbing.access_log import AccessLog, record_for_request
from plumbing.auth import Caller
from plumbing.clock import Clock, SystemClock
from plumbing.config import PlatformConfig, Settings, load_platform_config
from plumbing.crypto import FieldCipher, RequestFingerprinter, ResponseSealer
from plumbing.events import new_event
from plumbing.keys import load_keys
from plumbing.repository import NeedToKnowPolicy, ScopedRepository, SystemRepository
from plumbing.service_auth import allowed_clients
from voluntary_return.adapters.documents import ReturnCaseDocument
from voluntary_return.adapters.sealing import CaseSealer
from voluntary_return.domain.catalogue import ReturnCatalogue
from voluntary_return.service_layer.deps import SOURCE, Deps

SERVICE = "return"
# What statistics read of a case: never the sealed records.
STATISTICS_FIELDS = (
    "id", "owner_country", "side", "host_country", "origin_country", "age_group", "age_uncertain", "status",
    "created_at", "timeline",
)  # fmt: skip


@dataclass
class Runtime:
    settings: Settings
    config: PlatformConfig
    deps: Deps
    allowed_azp: frozenset[str]
    response_sealer: ResponseSealer
    request_fingerprinter: RequestFingerprinter
    access_log: AccessLog


def _statistics_source(country: str | None) -> list[ReturnCaseDocument]:
    """The country's return cases (None: every country's), for statistics: the service's one unscoped read, of
    which only codes and instants are used (service_layer/statistics.py)."""
    query = {"owner_country": country} if country else {}
    return list(ReturnCaseDocument.objects(__raw__=query).only(*STATISTICS_FIELDS))


def build_runtime(environ: Mapping[str, str] | None = None, clock: Clock | None = None) -> Runtime:
    env = os.environ if environ is None else environ
    settings = Settings.from_env(SERVICE, env)
    config = load_platform_config(settings.config_path)
    # The packaged catalogue, checked against the configuration: an invalid one stops the process here.
    catalogue = ReturnCatalogue.packaged(config.label_languages, config.country_codes)
    keys = load_keys(settings, config)
    cipher = FieldCipher.from_config(keys, config)
    mongo.connect(settings)  # lazy: no network until the first operation
    clock = clock or SystemClock()
    # THB_ACCESS_LOG_MONGODB_URI names a separate audit store; by default the service's own database.
    access_log_db = mongo.get_database(mongo.access_log_alias(settings, env))
    access_log = AccessLog(access_log_db, clock, purposes=config.purpose_codes)
    policy = NeedToKnowPolicy.from_config(config)

    def repository(document_class: type, caller: Caller) -> Any:
        return ScopedRepository(document_class, caller, clock, policy)

    def system_repository(document_class: type, actor: str) -> Any:
        return SystemRepository(document_class, clock, actor=actor)

    def record_read(caller: Caller, resource_type: str, ids: Sequence[str]) -> None:
        record_for_request(access_log, resource_type, ids)  # caller and purpose from the request context

    def event(event_type: str, aggregate_id: str, data: Mapping[str, Any]) -> dict[str, Any]:
        return new_event(event_type, aggregate_id, dict(data), SOURCE, clock=clock.now)

    deps = Deps(
        clock=clock,
        config=config,
        catalogue=catalogue,
        sealer=CaseSealer(cipher),
        repository=repository,
        system_repository=system_repository,
        record_read=record_read,
        statistics_source=_statistics_source,
        new_event=event,
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
