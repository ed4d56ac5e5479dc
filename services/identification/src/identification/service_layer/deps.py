"""What the command handlers need, wired once per process (bootstrap) or by tests (fakes)."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from identification.adapters.sealing import PersonSealer
from identification.domain.indicators import IndicatorCatalogue, IndicatorSet
from plumbing.auth import Caller
from plumbing.clock import Clock
from plumbing.config import PlatformConfig
from plumbing.ports import ProjectedRecords
from plumbing.ports import ScopedRecords as Repository
from plumbing.ports import SystemRecords as SystemRepository
from plumbing.steps import StepCompleter

SOURCE = "/identification"


# (document class, caller) -> that caller's repository of that class (plumbing.repository.ScopedRepository)
RepositoryFactory = Callable[[type, Caller], Repository[Any]]
# The same, for repositories that also answer raw rows (plumbing.rows.ProjectingRepository)
ProjectingRepositoryFactory = Callable[[type, Caller], ProjectedRecords[Any]]
# (document class, actor) -> the unscoped repository of that class, writing as `actor`
SystemRepositoryFactory = Callable[[type, str], SystemRepository[Any]]
# country, year -> next sequence number (atomic)
SequenceAllocator = Callable[[str, int], int]


class IndicatorSets(Protocol):
    """The indicator catalogue as of now, and where new versions are published (adapters/indicator_store)."""

    def current(self) -> IndicatorCatalogue: ...

    def publish(
        self, item: IndicatorSet, raw: dict[str, Any], *, at: datetime, by: str, country: str
    ) -> IndicatorSet: ...


class CommonKeys(Protocol):
    """Blocking-key tokens duplicate searches found common (adapters/common_keys.py)."""

    def known(self, tokens: Iterable[str], now: datetime) -> set[str]: ...

    def add(self, tokens: Iterable[str], now: datetime) -> None: ...


@dataclass
class Deps:
    clock: Clock
    config: PlatformConfig
    sealer: PersonSealer
    indicator_sets: IndicatorSets
    repository: RepositoryFactory
    # The same records by existence, not content: every record of the caller's country (ExistencePolicy), for a
    # duplicate search to tell an officer that a match is known in another agency. Never for reading content.
    # It also answers raw rows, so that the search ranks candidates without building a document for each.
    existence_repository: ProjectingRepositoryFactory
    common_keys: CommonKeys
    # Whether some person's blocking keys are of an older `names.KEY_SCHEME` (re-keying not finished): the
    # duplicate search then reads the keys they have too (adapters/person_keys.OutdatedKeys).
    keys_outdated: Callable[[], bool]
    next_sequence: SequenceAllocator
    # The follow-up steps of two-aggregate commands: their unscoped repositories, and how a done step is removed.
    system_repository: SystemRepositoryFactory
    complete_step: StepCompleter
