"""What the command handlers need, wired once per process (bootstrap) or by tests (tests/unit/fakes.py)."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol, TypeVar

from plumbing.auth import Caller
from plumbing.clock import Clock
from plumbing.config import PlatformConfig
from plumbing.documents import OwnedDocument
from plumbing.repository import Page
from referral.adapters.sealing import ReferralSealer
from referral.domain.catalogue import ReferralCatalogue

SOURCE = "/referral"

D = TypeVar("D", bound=OwnedDocument)


class Repository(Protocol[D]):
    """Owned records of one document class as one caller may see them: what the handlers use of
    `plumbing.repository.ScopedRepository` (production) or the tests' fake.

    Every read is limited to the caller's scope (the class's policy, adapters/documents.scope_policies); a record
    outside it is `NotFound`, like a missing one. `insert` sets ownership from the caller. `update` writes `doc`,
    `version + 1` and `events` at once, guarded by the version `doc` was read with (`Conflict` when it changed).

    `update_where` is the one conditional update (`plumbing.repository` and `plumbing.fake_store` both offer it):
    apply MongoDB update `operators` (`$inc`/`$set`/`$push`/`$pull`) to the record when it is in scope AND
    matches `condition`, bumping `version`, stamping updated_at/by and appending `events`, in ONE
    single-document update (atomic in MongoDB); True when it matched. False says only that nothing was written
    (missing, out of scope or condition not met, deliberately alike): `get` tells them apart. It is what makes
    capacity safe under concurrency (domain/capacity.py)."""

    def get(self, record_id: str) -> D: ...

    def find(self, *, limit: int | None = None, **filters: Any) -> list[D]: ...

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

    def update_where(
        self,
        record_id: str,
        condition: Mapping[str, Any],
        operators: Mapping[str, Any],
        *,
        events: Iterable[Mapping[str, Any]] = (),
    ) -> bool: ...


class SystemRepository(Protocol[D]):
    """Unscoped records of one class, for the consumer (proposals) and the scheduler (deadlines): what they use of
    `plumbing.repository.SystemRepository` or `plumbing.fake_store.FakeSystemRepository` (`update_where` as
    above, without a scope)."""

    def get(self, record_id: str) -> D: ...

    def find(self, *, limit: int | None = None, **filters: Any) -> list[D]: ...

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

    def update_where(
        self,
        record_id: str,
        condition: Mapping[str, Any],
        operators: Mapping[str, Any],
        *,
        events: Iterable[Mapping[str, Any]] = (),
    ) -> bool: ...


# (document class, caller) -> that caller's repository of that class, under the class's scope policy
RepositoryFactory = Callable[[type, Caller], Repository[Any]]
# (document class, actor) -> the unscoped repository of that class, writing as `actor`
SystemRepositoryFactory = Callable[[type, str], SystemRepository[Any]]
# (event type, aggregate id, data) -> a validated envelope for the outbox (plumbing.events.new_event with this
# service's SOURCE and clock)
EventFactory = Callable[[str, str, Mapping[str, Any]], dict[str, Any]]
# caller, resource type, ids read: one access-log entry, durable before any personal data is returned
# (plumbing.access_log.record_for_request; raises AccessLogUnavailable -> 503 when it cannot be written)
ReadRecorder = Callable[[Caller, str, Sequence[str]], None]
# country or None (every country) -> the statistic rows of sent referrals: codes and instants only
StatisticsSource = Callable[[str | None], Iterable[Mapping[str, Any]]]


@dataclass
class Deps:
    clock: Clock
    config: PlatformConfig
    catalogue: ReferralCatalogue
    sealer: ReferralSealer
    repository: RepositoryFactory
    system_repository: SystemRepositoryFactory
    new_event: EventFactory
    record_read: ReadRecorder
    statistics_source: StatisticsSource
