"""What the command handlers need, wired once per process (bootstrap) or by tests (tests/unit/fakes.py)."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from plumbing.auth import Caller
from plumbing.clock import Clock
from plumbing.config import PlatformConfig
from plumbing.ports import ScopedRecords as Repository
from plumbing.ports import SystemRecords
from voluntary_return.adapters.sealing import CaseSealer
from voluntary_return.domain.catalogue import ReturnCatalogue

SOURCE = "/return"  # the CloudEvents `source` of the service's events


class IdentificationCases(Protocol):
    """The country's own identification API, read on behalf of the current user
    (plumbing.identification_records): {"case": ..., "person": ...}; 404 for a case she may not see."""

    def case_and_person(self, case_id: str) -> Mapping[str, Mapping[str, Any]]: ...


# (document class, caller) -> that caller's repository of that class, under the need-to-know policy
RepositoryFactory = Callable[[type, Caller], Repository[Any]]
# (event type, aggregate id, data) -> a validated envelope for the outbox (plumbing.events.new_event with this
# service's SOURCE and clock); service_layer/events.case_event builds the data from a case
EventFactory = Callable[[str, str, Mapping[str, Any]], dict[str, Any]]
# (document class, actor) -> the unscoped repository a worker uses (the consumer following the exchange, the
# scheduler sending reintegration reminders)
SystemRepositoryFactory = Callable[[type, str], SystemRecords[Any]]
# country or None (every country) -> its return cases, for statistics (codes and instants are all they read)
StatisticsSource = Callable[[str | None], Iterable[Any]]
# caller, resource type, ids read: one access-log entry, durable before any personal data is returned
ReadRecorder = Callable[[Caller, str, Sequence[str]], None]


@dataclass
class Deps:
    clock: Clock
    config: PlatformConfig
    catalogue: ReturnCatalogue
    sealer: CaseSealer
    repository: RepositoryFactory
    system_repository: SystemRepositoryFactory
    record_read: ReadRecorder
    statistics_source: StatisticsSource
    new_event: EventFactory
    # Set by the HTTP app where the deployment has identification: the person's age facts from the case.
    identification: IdentificationCases | None = None
