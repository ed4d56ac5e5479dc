"""Wiring: on what every process reads at start (plumbing.startup: settings, platform configuration, keys and
cipher, Mongo, the access log), the referral catalogue and the repositories under each document class's own scope
policy (adapters/documents.scope_policies)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import partial
from typing import Any

from plumbing.access_log import read_recorder
from plumbing.auth import Caller
from plumbing.clock import Clock
from plumbing.config import PlatformConfig
from plumbing.events import event_factory
from plumbing.repository import ScopedRepository, ScopePolicy, system_repositories
from plumbing.service_auth import allowed_clients
from plumbing.startup import Startup
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


def _statistics_rows(country: str | None) -> Iterable[Mapping[str, Any]]:
    """Codes and instants of sent referrals (the service's one unscoped read for statistics)."""
    query = {"owner_country": country} if country else {}
    return [stat_row(doc) for doc in ReferralDocument.objects(__raw__=query)]


@dataclass
class Runtime:
    startup: Startup
    deps: Deps
    # Read by every process, not only the API: outside local mode none starts without THB_ALLOWED_AZP.
    allowed_azp: frozenset[str]


def build_runtime(environ: Mapping[str, str] | None = None, clock: Clock | None = None) -> Runtime:
    startup = Startup.read(SERVICE, environ, clock)
    config, clock = startup.config, startup.clock
    deps = Deps(
        clock=clock,
        config=config,
        catalogue=load_catalogue(config),
        sealer=ReferralSealer(startup.cipher),
        repository=partial(_scoped, clock, scope_policies(config)),
        system_repository=system_repositories(clock),
        new_event=event_factory(SOURCE, clock.now),
        record_read=read_recorder(startup.access_log),
        statistics_source=_statistics_rows,
    )
    return Runtime(startup, deps, allowed_clients(startup.settings, config, startup.environ))
