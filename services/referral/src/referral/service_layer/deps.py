"""What the command handlers need, wired once per process (bootstrap) or by tests (tests/unit/fakes.py)."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from plumbing.auth import Caller
from plumbing.clock import Clock
from plumbing.config import PlatformConfig
from plumbing.ports import ScopedRecords as Repository
from plumbing.ports import SystemRecords as SystemRepository
from referral.adapters.sealing import ReferralSealer
from referral.domain.catalogue import ReferralCatalogue

SOURCE = "/referral"


class CaseRecords(Protocol):
    """The country's own identification API, read on behalf of the current user (plumbing.identification_records:
    plumbing.on_behalf, so identification applies her scope and logs her as the reader): {"case": ...,
    "person": ...} of one case; 404 for a case she may not see, like a missing one."""

    def case_and_person(self, case_id: str) -> Mapping[str, Mapping[str, Any]]: ...


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
    # Set by the HTTP app where the deployment has identification (a worker has no user to act for; an agency that
    # deploys referral alone has no identification): copying a referral's case fields from the case it names.
    identification: CaseRecords | None = None
