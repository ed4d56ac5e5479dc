"""What the command handlers need, wired once per process (bootstrap) or by tests (fakes)."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol, TypeVar

from identification.adapters.sealing import PersonSealer
from identification.domain.indicators import IndicatorCatalogue, IndicatorSet
from plumbing.auth import Caller
from plumbing.clock import Clock
from plumbing.config import PlatformConfig
from plumbing.documents import OwnedDocument
from plumbing.repository import Page
from plumbing.steps import StepCompleter

SOURCE = "/identification"

D = TypeVar("D", bound=OwnedDocument)


class Repository(Protocol[D]):
    """Owned records of one document class as one caller may see them: what the command handlers use of
    `plumbing.repository.ScopedRepository` (production) or `tests/unit/fakes.FakeRepository`.

    Every read is limited to the caller's scope; a record outside it is `NotFound`, like a missing one. `insert`
    sets ownership from the caller (never from `doc`) and raises `OutOfScope` when the caller's roles cannot
    create such a record. `update` writes `doc`, `version + 1`, `events` (outbox) and follow-up `steps` at once,
    guarded by the version `doc` was read with (`Conflict` when it changed meanwhile)."""

    def get(self, record_id: str) -> D: ...

    def find(self, *, limit: int | None = None, **filters: Any) -> list[D]:
        """Mongoengine-style filters (`status="open"`, `screenings__id=...`, `__raw__={...}`)."""
        ...

    def list_page(
        self,
        *,
        limit: int | None = None,
        cursor: str | None = None,
        updated_since: datetime | None = None,
        **filters: Any,
    ) -> Page[D]: ...

    def insert(
        self,
        doc: D,
        *,
        events: Iterable[Mapping[str, Any]] = (),
        steps: Iterable[Mapping[str, Any]] = (),
    ) -> D: ...

    def update(
        self,
        doc: D,
        *,
        expected_version: int | None = None,
        events: Iterable[Mapping[str, Any]] = (),
        steps: Iterable[Mapping[str, Any]] = (),
    ) -> D: ...


class SystemRepository(Protocol[D]):
    """Unscoped records of one document class, for the follow-up steps a command leaves (service_layer/follow_up)
    and for records whose owner the rules decide (an access request belongs to the case's agency):
    what they use of `plumbing.repository.SystemRepository` (production) or `fakes.FakeSystemRepository`."""

    def get(self, record_id: str) -> D: ...

    def insert(
        self,
        doc: D,
        *,
        owner_country: str,
        owner_agency: str,
        events: Iterable[Mapping[str, Any]] = (),
    ) -> D: ...

    def update(
        self,
        doc: D,
        *,
        expected_version: int | None = None,
        events: Iterable[Mapping[str, Any]] = (),
        steps: Iterable[Mapping[str, Any]] = (),
    ) -> D: ...


# (document class, caller) -> that caller's repository of that class (plumbing.repository.ScopedRepository)
RepositoryFactory = Callable[[type, Caller], Repository[Any]]
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


@dataclass
class Deps:
    clock: Clock
    config: PlatformConfig
    sealer: PersonSealer
    indicator_sets: IndicatorSets
    repository: RepositoryFactory
    # The same records by existence, not content: every record of the caller's country (ExistencePolicy), for a
    # duplicate search to tell an officer that a match is known in another agency. Never for reading content.
    existence_repository: RepositoryFactory
    next_sequence: SequenceAllocator
    # The follow-up steps of two-aggregate commands: their unscoped repositories, and how a done step is removed.
    system_repository: SystemRepositoryFactory
    complete_step: StepCompleter
