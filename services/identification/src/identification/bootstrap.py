"""Wiring: on what every process reads at start (plumbing.startup: settings, platform configuration, keys and
cipher, Mongo, the access log), the indicator catalogue and the repositories."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from functools import partial
from typing import Any

from pymongo import ReturnDocument

from identification.adapters.common_keys import CommonKeys
from identification.adapters.documents import CaseCounter
from identification.adapters.indicator_store import CatalogueSource
from identification.adapters.person_keys import OutdatedKeys, PersonKeys
from identification.adapters.sealing import PersonSealer
from identification.domain import names
from identification.service_layer.deps import Deps
from plumbing.auth import Caller
from plumbing.clock import Clock
from plumbing.repository import ExistencePolicy, ScopedRepository, ScopePolicy, system_repositories
from plumbing.rows import ProjectingRepository
from plumbing.service_auth import allowed_clients
from plumbing.startup import Startup
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
    startup: Startup
    deps: Deps
    # Read by every process, not only the API: outside local mode none starts without THB_ALLOWED_AZP.
    allowed_azp: frozenset[str]


def scoped(clock: Clock, document_class: type, caller: Caller, policy: ScopePolicy | None = None) -> Any:
    return ScopedRepository(document_class, caller, clock, policy)


def projecting(clock: Clock, document_class: type, caller: Caller, policy: ScopePolicy | None = None) -> Any:
    """A scoped repository that also answers raw rows (the duplicate search's candidates, plumbing.rows)."""
    return ProjectingRepository(document_class, caller, clock, policy)


def build_runtime(environ: Mapping[str, str] | None = None, clock: Clock | None = None) -> Runtime:
    startup = Startup.read(SERVICE, environ, clock)
    config, clock = startup.config, startup.clock
    deps = Deps(
        clock=clock,
        config=config,
        sealer=PersonSealer(startup.cipher),
        indicator_sets=CatalogueSource(),
        repository=partial(scoped, clock),
        existence_repository=partial(projecting, clock, policy=ExistencePolicy.from_config(config)),
        common_keys=CommonKeys(),
        keys_outdated=OutdatedKeys(PersonKeys(names.KEY_SCHEME, config.country_codes, clock)),
        next_sequence=next_sequence,
        # For the follow-up steps only (service_layer/follow_up.py), in the API and in the relay.
        system_repository=system_repositories(clock),
        complete_step=complete,
    )
    # THB_ALLOWED_AZP, required outside local mode; locally the realm's clients of every configured country.
    return Runtime(startup, deps, allowed_clients(startup.settings, config, startup.environ))
