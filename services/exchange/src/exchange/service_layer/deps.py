"""What the command handlers need, wired once per process (bootstrap) or by tests (tests/unit/fakes.py)."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from exchange.adapters.envelope import Opened, Sealed
from exchange.adapters.sealing import ContentSealer
from exchange.adapters.transport import Transport
from exchange.domain.catalogue import FormCatalogue
from exchange.domain.events import EventFactory
from exchange.domain.evidence import ChainReport
from plumbing.auth import Caller
from plumbing.clock import Clock
from plumbing.config import PlatformConfig
from plumbing.ports import ScopedRecords as Repository
from plumbing.ports import SystemRecords as SystemRepository


class Envelopes(Protocol):
    """adapters/envelope.EnvelopeSealer."""

    def seal(
        self, message: Mapping[str, Any], *, sender: str, recipient: str, envelope_id: str
    ) -> Sealed: ...

    def open(self, token: str, *, recipient: str) -> Opened: ...


class MessageLog(Protocol):
    """adapters/message_log.MongoMessageLog: per country, hash-chained, metadata only; `append` is once per
    (country, envelope id, direction)."""

    def append(self, country: str, fields: Mapping[str, Any]) -> dict[str, Any]: ...

    def entries(self, country: str) -> list[dict[str, Any]]: ...

    def after(self, country: str, seq: int, limit: int) -> list[dict[str, Any]]:
        """Up to `limit` entries following `seq`, in order (a range of the chain, not a scan of it)."""
        ...

    def first_since(self, country: str, since: datetime) -> int:
        """The seq of the first entry logged at or after `since` (the tip + 1 when there is none)."""
        ...

    def verify(self, country: str) -> ChainReport: ...


class IdentificationCases(Protocol):
    """The country's own identification API, read on behalf of the current user (plumbing.identification_records:
    plumbing.on_behalf, so identification applies her scope and logs her as the reader). 404 for a case or person
    she may not see, like a missing one."""

    def case(self, case_id: str, *, purpose: str | None = None) -> Mapping[str, Any]: ...

    def person(self, person_id: str, *, purpose: str | None = None) -> Mapping[str, Any]: ...


# (document class, caller) -> that caller's repository of that class
RepositoryFactory = Callable[[type, Caller], Repository[Any]]
# (document class, actor) -> the unscoped repository of that class, for jobs only (the retention job:
# service_layer/retention.py on plumbing.retention), never for a request
SystemRepositoryFactory = Callable[[type, str], SystemRepository[Any]]
# country, year -> next sequence number (atomic)
SequenceAllocator = Callable[[str, int], int]
# caller, resource type, ids read: one access-log entry, durable before any content is returned
# (plumbing.access_log; raises AccessLogUnavailable -> 503 when it cannot be written)
ReadRecorder = Callable[[Caller, str, Sequence[str]], None]


@dataclass
class Deps:
    clock: Clock
    config: PlatformConfig
    catalogue: FormCatalogue
    repository: RepositoryFactory
    next_sequence: SequenceAllocator
    envelopes: Envelopes
    transport: Transport
    message_log: MessageLog
    contents: ContentSealer
    record_read: ReadRecorder
    new_event: EventFactory
    system_repository: SystemRepositoryFactory
    # Set by the HTTP app only (a worker has no user to act for): pre-filling drafts from identification.
    identification: IdentificationCases | None = None
