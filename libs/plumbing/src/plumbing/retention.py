"""Retention: each owned record is anonymised (or deleted) once its period from config/platform.yaml has passed.

docs/data-protection.md "Retention" decides, per record type, when its period starts (`created`, `last-update`, or
`closed`: what closed means is the service's rule) and what anonymising removes and keeps. This module is the
mechanism every service shares; a service declares one `Retained` per document class (its `closed_at` and its
`anonymise`) and runs a `ServiceRetention` on its scheduler (plumbing.scheduler), built with its deadline jobs by
`SchedulerParts.for_service` and run by `scheduler_main`.

Why the job stays cheap (no per-pass cost that grows with the collection): every record carries
`retention_due_at`, the earliest instant it can have passed its period. The repository sets it on insert
(`first_look`: created + period, since no period starts before the record exists), and the job claims only
records whose `retention_due_at` has come (an indexed, bounded range). For a claimed record the job decides from
the record alone (and, for a person, her cases): an open record cannot be due before now + period, a closed one
is due at its start + period; if that is still ahead the record is looked at again then, otherwise it is
anonymised in ONE version-guarded write (the record as it was read, so a change made meanwhile wins and the job
looks again next pass), and the job records what it did in the access log (actor `system:retention-job`, purpose
`retention`, the record's id), so that an auditor sees it like a read.

A drill runs the job once as if on another day: `<package>.entrypoints.scheduler --retention --as-of 2040-01-01`
(`drill_options`; `--prune-access-log` removes the access log's old entries too), on a copy of the data, to see
what a date would remove.
"""

from __future__ import annotations

import argparse
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

from plumbing.clock import Clock, as_utc, to_millis
from plumbing.config import PlatformConfig
from plumbing.documents import OwnedDocument
from plumbing.errors import Conflict, NotFound
from plumbing.scheduler import Claimed, DeadlineJob

if TYPE_CHECKING:
    from plumbing.startup import Startup

log = logging.getLogger(__name__)

ACTOR = "system:retention-job"
PURPOSE = "retention"  # a purpose of config/platform.yaml: what the job's access-log entries are recorded for
DUE = "retention_due_at"
ACCESS_LOG = "access-log"  # the record type of config/platform.yaml `retention` the access log keeps


def first_look(
    document_class: type[OwnedDocument], created_at: datetime, config: PlatformConfig
) -> datetime | None:
    """When the retention job first looks at a new record of `document_class`: created + its period (None for a
    class without a retention rule of a document kind, e.g. one deleted by a TTL index)."""
    rule = config.retention.get(document_class.RETENTION_CLASS or "")
    return rule.due_at(as_utc(created_at)) if rule is not None else None


# The record's document -> the instant its period starts, for `starts: closed` (None while it is open).
ClosedAt = Callable[[Any], datetime | None]
# Removes the personal content from the document in place, keeping what the decided rule keeps.
Anonymise = Callable[[Any], None]
# (record, action) -> None: records in the access log what the job did to one record.
LogAction = Callable[[OwnedDocument, str], None]


@dataclass(frozen=True)
class Retained:
    """How one document class is retained: `closed_at` for a record type whose period starts when it is closed,
    `anonymise` for one whose action is anonymise (a delete needs neither)."""

    document_class: type[OwnedDocument]
    closed_at: ClosedAt | None = None
    anonymise: Anonymise | None = None


class RetentionJob:
    """Performs the retention of one document class's records, one claimed record at a time (`act`)."""

    def __init__(
        self,
        retained: Retained,
        *,
        records: Callable[[type, str], Any],
        config: PlatformConfig,
        clock: Clock,
        log_action: LogAction,
        drill: bool = False,
    ) -> None:
        self.retained = retained
        self.drill = drill
        self.rule = config.retention_for(retained.document_class.RETENTION_CLASS or "")
        if self.rule.starts == "closed" and retained.closed_at is None:
            raise ValueError(
                f"{retained.document_class.__name__} needs closed_at: its period starts when closed"
            )
        if self.rule.action == "anonymise" and retained.anonymise is None:
            raise ValueError(
                f"{retained.document_class.__name__} needs anonymise: its records are anonymised"
            )
        self.records = records(retained.document_class, ACTOR)
        self.clock = clock
        self.log_action = log_action

    @property
    def name(self) -> str:
        return f"retention-{self.rule.record_type}-{self.retained.document_class.__name__}"

    def job(self) -> DeadlineJob:
        return DeadlineJob(self.name, self.retained.document_class, self.act, due_field=DUE)

    def act(self, claimed: Claimed) -> bool:
        """Anonymise or delete the record if its period has passed (True), else set when to look again."""
        try:
            doc = self.records.get(str(claimed.id))
        except NotFound:
            return False
        now = self.clock.now()
        due = self.due_at(doc, now)
        if due is None or due > now:
            if not self.drill:  # a drill's instant is not today: it must not move when today's job looks
                self._look_again(doc, due)
            return False
        action = self.rule.action
        try:
            if action == "delete":
                self.records.delete(doc, expected_version=doc.version)
            else:
                assert self.retained.anonymise is not None
                self.retained.anonymise(doc)
                doc.anonymised_at = to_millis(now)
                setattr(doc, DUE, None)
                self.records.update(doc)
        except Conflict:
            return False  # changed meanwhile (or events still unpublished): looked at again next pass
        self.log_action(doc, "anonymised" if action == "anonymise" else "deleted")
        return True

    def due_at(self, doc: Any, now: datetime) -> datetime | None:
        """When `doc`'s period has passed: None once anonymised; for an open record, not before now + period."""
        if doc.anonymised_at is not None:
            return None
        starts = self.rule.starts
        if starts == "created":
            start: datetime | None = doc.created_at
        elif starts == "last-update":
            start = doc.updated_at
        else:
            assert self.retained.closed_at is not None
            start = self.retained.closed_at(doc)
        return self.rule.due_at(as_utc(start) if start is not None else now)

    def _look_again(self, doc: Any, due: datetime | None) -> None:
        # Guarded by the version read: a record changed meanwhile keeps its value and is decided again when due.
        self.records.reschedule(str(doc.id), doc.version, DUE, due)


class ServiceRetention:
    """A service's retention on its scheduler: the jobs for its document classes (`retained`) and the task
    that removes its access-log entries past `access-log`'s period (AccessLog.prune, from a checkpoint)."""

    def __init__(
        self,
        service: str,
        retained: Sequence[Retained],
        *,
        records: Callable[[type, str], Any],
        config: PlatformConfig,
        clock: Clock,
        access_log: Any,
    ) -> None:
        self.service = service
        self.retained = tuple(retained)
        self.records = records
        self.config = config
        self.clock = clock
        self.access_log = access_log

    def jobs(self, *, drill: bool = False) -> list[DeadlineJob]:
        """One scheduler job per retained class (`drill`: for `run_drill`, which acts on what is due at its
        instant and reschedules nothing)."""
        log_action = access_log_action(self.access_log, self.service)
        return [
            RetentionJob(
                item,
                records=self.records,
                config=self.config,
                clock=self.clock,
                log_action=log_action,
                drill=drill,
            ).job()
            for item in self.retained
        ]

    def tasks(self) -> list[Callable[[], int]]:
        rule = self.config.retention_for(ACCESS_LOG)

        def prune_access_log() -> int:
            now = self.clock.now()
            return int(self.access_log.prune(lambda written: rule.due_at(written) <= now))

        return [prune_access_log]


def access_log_action(access_log: Any, service: str) -> LogAction:
    """A `LogAction` writing one access-log entry per record, in the record owner's country (its auditors read
    it): actor `system:retention-job`, purpose `retention`, operation `retention.<action>`."""
    from plumbing.auth import Caller

    def record(doc: OwnedDocument, action: str) -> None:
        access_log.record_read(
            Caller.job(ACTOR, service, doc.owner_country, doc.owner_agency),
            PURPOSE,
            f"retention.{'anonymise' if action == 'anonymised' else 'delete'}",
            type(doc).RETENTION_CLASS or type(doc).__name__,
            [str(doc.id)],
            action,
            None,
            None,
        )

    return record


@dataclass(frozen=True)
class Drill:
    """A scheduler started with `--retention [--as-of DATE] [--prune-access-log]`: one retention pass as of
    `as_of`; the access log's old entries are removed too only when asked (a drill is about what a date would
    anonymise; removing audit entries is not something to try out by default)."""

    as_of: datetime
    prune_access_log: bool = False


def drill_options(argv: Sequence[str] | None) -> Drill | None:
    """The drill asked for on a scheduler's command line; None without `--retention` (the normal loop)."""
    parser = argparse.ArgumentParser(add_help=False)
    parser.add_argument("--retention", action="store_true")
    parser.add_argument("--as-of", type=datetime.fromisoformat)
    parser.add_argument("--prune-access-log", action="store_true")
    known, _ = parser.parse_known_args(list(argv or ()))
    if not known.retention:
        return None
    instant = known.as_of or datetime.now(UTC)
    return Drill(instant if instant.tzinfo else instant.replace(tzinfo=UTC), known.prune_access_log)


def run_drill(
    service: str,
    jobs: Callable[[], Sequence[DeadlineJob]],
    *,
    clock: Clock,
    tasks: Callable[[], Sequence[Callable[[], int]]] = tuple,
    settings: Any = None,
) -> int:
    """One retention pass at `clock`'s instant; the number of records anonymised or deleted (each also logged).
    The body of a scheduler started with `--retention --as-of`.

    Each record whose `retention_due_at` has come by then is looked at exactly once, in one walk of the due ones
    (not through the scheduler's claims: a drill reschedules nothing, so the open records it leaves would be
    claimed again by every pass); then the tasks (the access log's pruning) run until they have nothing left."""
    from plumbing.scheduler import EARLIEST_DUE, Claimed
    from plumbing.worker import start

    start(service, settings)
    now = clock.now()
    total = removed_entries = 0
    for job in jobs():
        collection = job.document_class._get_collection()
        due = {**job.where, job.due_field: {"$gte": EARLIEST_DUE, "$lte": now}}
        for row in list(collection.find(due, {"_id": True, "owner_country": True})):
            try:
                total += bool(job.act(Claimed(row["_id"], row.get("owner_country"))))
            except Exception as exc:  # noqa: BLE001 - one record's failure is reported, the drill goes on
                log.warning("retention drill: %s failed on a record: %s", job.name, type(exc).__name__)
    for task in tasks():
        while removed := task():
            removed_entries += removed
    log.info("retention drill of %s as of %s: %d record(s)", service, now.isoformat(), total)
    print(
        f"retention as of {now.isoformat()}: {total} record(s) anonymised or deleted, "
        f"{removed_entries} access-log entries removed"
    )
    return total


class JobDeps(Protocol):
    """What a scheduler reads of a service's Deps: (document class, actor) -> the unscoped repository its jobs
    write through."""

    @property
    def system_repository(self) -> Callable[[type, str], Any]: ...


D = TypeVar("D", bound=JobDeps)


@dataclass(frozen=True)
class SchedulerParts:
    """What a service's scheduler process runs: its deadline jobs and tasks (both made once the database is
    registered) and its retention, with the settings and clock they were built with."""

    settings: Any
    clock: Clock
    retention: ServiceRetention
    deadlines: Callable[[], Sequence[DeadlineJob]] = tuple
    # Per-pass work not kept on documents' deadlines (e.g. identification's re-keying): each answers how many
    # items it changed.
    tasks: Callable[[], Sequence[Callable[[], int]]] = tuple

    @classmethod
    def for_service(
        cls,
        startup: Startup,
        deps: D,
        retained: Callable[[D], Sequence[Retained]],
        deadlines: Sequence[Callable[[D], DeadlineJob]] = (),
        tasks: Sequence[Callable[[D], Callable[[], int]]] = (),
    ) -> SchedulerParts:
        """The parts of a service's scheduler over its process's start (plumbing.startup: the service, settings,
        configuration, clock and access log) and its Deps: the retention of its `retained(deps)` classes, written
        through the Deps' unscoped repositories, and its deadline jobs (each made of the Deps once the database
        is registered), and its tasks, made the same way."""
        retention = ServiceRetention(
            startup.service,
            retained(deps),
            records=deps.system_repository,
            config=startup.config,
            clock=startup.clock,
            access_log=startup.access_log,
        )
        return cls(
            startup.settings,
            startup.clock,
            retention,
            lambda: [job(deps) for job in deadlines],
            lambda: [task(deps) for task in tasks],
        )


def scheduler_main(
    service: str,
    build: Callable[[Clock | None], SchedulerParts],
    *,
    argv: Sequence[str] | None = None,
    interval_s: float = 30.0,
) -> None:
    """The body of `<package>.entrypoints.scheduler`: `build(clock)` wires the service (clock None: the system
    clock). Normally the scheduler loop (plumbing.scheduler.run_scheduler) with the deadline and retention jobs
    and the access-log pruning; with `--retention [--as-of DATE] [--prune-access-log]` one retention drill at that
    instant, then exit."""
    import sys

    from plumbing.clock import FixedClock
    from plumbing.scheduler import run_scheduler

    drill = drill_options(sys.argv[1:] if argv is None else argv)
    parts = build(FixedClock(drill.as_of) if drill else None)
    if drill is not None:
        run_drill(
            service,
            lambda: parts.retention.jobs(drill=True),
            clock=parts.clock,
            tasks=parts.retention.tasks if drill.prune_access_log else tuple,
            settings=parts.settings,
        )
        return
    run_scheduler(
        service,
        lambda: [*parts.deadlines(), *parts.retention.jobs()],
        tasks=lambda: [*parts.retention.tasks(), *parts.tasks()],
        settings=parts.settings,
        clock=parts.clock,
        interval_s=interval_s,
    )
