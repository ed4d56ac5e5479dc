"""What the command handlers need, wired once per process (bootstrap) or by tests (fakes)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from identification.adapters.sealing import PersonSealer
from identification.domain.indicators import IndicatorCatalogue
from plumbing.auth import Caller
from plumbing.clock import Clock
from plumbing.config import PlatformConfig

SOURCE = "/identification"

# (document class, caller) -> a repository with get/find/list_page/insert/update (plumbing.repository)
RepositoryFactory = Callable[[type, Caller], Any]
# country, year -> next sequence number (atomic)
SequenceAllocator = Callable[[str, int], int]


@dataclass
class Deps:
    clock: Clock
    config: PlatformConfig
    sealer: PersonSealer
    catalogue: IndicatorCatalogue
    repository: RepositoryFactory
    next_sequence: SequenceAllocator
