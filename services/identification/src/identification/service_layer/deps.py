"""What the command handlers need, wired once per process (bootstrap) or by tests (fakes)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from identification.adapters.sealing import PersonSealer
from identification.domain.indicators import IndicatorCatalogue, IndicatorSet
from plumbing.auth import Caller
from plumbing.clock import Clock
from plumbing.config import PlatformConfig

SOURCE = "/identification"

# (document class, caller) -> a repository with get/find/list_page/insert/update (plumbing.repository)
RepositoryFactory = Callable[[type, Caller], Any]
# country, year -> next sequence number (atomic)
SequenceAllocator = Callable[[str, int], int]


class IndicatorSets(Protocol):
    """The indicator catalogue as of now, and where new versions are published (adapters/indicator_store)."""

    def current(self) -> IndicatorCatalogue: ...

    def publish(
        self, item: IndicatorSet, raw: dict[str, Any], *, at: datetime, by: str, country: str
    ) -> IndicatorSet: ...


@dataclass
class Deps:
    clock: Clock
    config: PlatformConfig
    sealer: PersonSealer
    indicator_sets: IndicatorSets
    repository: RepositoryFactory
    next_sequence: SequenceAllocator
