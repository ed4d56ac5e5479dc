"""Wiring: on what every process reads at start (plumbing.startup: settings, platform configuration, keys and
cipher, Mongo, the access log), the return catalogue and the repositories under the platform's need-to-know
policy."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from plumbing.access_log import read_recorder
from plumbing.auth import Caller
from plumbing.clock import Clock
from plumbing.events import event_factory
from plumbing.repository import NeedToKnowPolicy, ScopedRepository, system_repositories
from plumbing.service_auth import allowed_clients
from plumbing.startup import Startup
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
    startup: Startup
    deps: Deps
    # Read by every process, not only the API: outside local mode none starts without THB_ALLOWED_AZP.
    allowed_azp: frozenset[str]


def _statistics_source(country: str | None) -> list[ReturnCaseDocument]:
    """The country's return cases (None: every country's), for statistics: the service's one unscoped read, of
    which only codes and instants are used (service_layer/statistics.py)."""
    query = {"owner_country": country} if country else {}
    return list(ReturnCaseDocument.objects(__raw__=query).only(*STATISTICS_FIELDS))


def build_runtime(environ: Mapping[str, str] | None = None, clock: Clock | None = None) -> Runtime:
    startup = Startup.read(SERVICE, environ, clock)
    config, clock = startup.config, startup.clock
    policy = NeedToKnowPolicy.from_config(config)

    def repository(document_class: type, caller: Caller) -> Any:
        return ScopedRepository(document_class, caller, clock, policy)

    deps = Deps(
        clock=clock,
        config=config,
        # The packaged catalogue, checked against the configuration: an invalid one stops the process here.
        catalogue=ReturnCatalogue.packaged(config.label_languages, config.country_codes),
        sealer=CaseSealer(startup.cipher),
        repository=repository,
        system_repository=system_repositories(clock),
        record_read=read_recorder(startup.access_log),
        statistics_source=_statistics_source,
        new_event=event_factory(SOURCE, clock.now),
    )
    return Runtime(startup, deps, allowed_clients(startup.settings, config, startup.environ))
