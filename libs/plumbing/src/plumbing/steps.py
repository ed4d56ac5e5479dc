"""Follow-up steps: a command that touches two aggregates, made crash-safe without transactions.

A standalone MongoDB cannot write two documents atomically. So a command writes its first aggregate together
with a *step* describing the second write (`pending_steps`, in the same single-document write, like its
events), then performs the step itself and removes it. If the process dies in between, the step is still
stored: a `StepRunner` (hosted by the service's worker process, never by an API process) finds steps past their
`due` time and performs them. Handlers must be idempotent (the second document's id is fixed in the step), since
a step can run twice: once in the request, once in the runner racing a slow request.

Step shape: `{"id", "name", "at", "due", ...data}`: ids, codes and times only, like events.
"""

from __future__ import annotations

import logging
import os
import socket
import uuid
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

from mongoengine import Document
from prometheus_client import Counter

from plumbing.leases import claim

log = logging.getLogger(__name__)

STEPS = "pending_steps"
STEPS_LEASE = "steps_lease_until"
# How long a request has to complete its own step before the runner takes over.
DEFAULT_GRACE = timedelta(seconds=30)

COMPLETED = Counter(
    "steps_completed_total", "Follow-up steps the runner completed after a request did not", ["step"]
)
FAILED = Counter("steps_failed_total", "Follow-up step attempts that failed (retried later)", ["step"])

D = TypeVar("D", bound=Document)
# (the first aggregate, the step) -> None; must be idempotent.
StepHandler = Callable[[Any, Mapping[str, Any]], None]


def new_step(name: str, at: datetime, *, grace: timedelta = DEFAULT_GRACE, **data: Any) -> dict[str, Any]:
    """A step to store with the first write (`ScopedRepository.insert/update(..., steps=[...])`)."""
    return {"id": str(uuid.uuid4()), "name": name, "at": at, "due": at + grace, **data}


def complete(document_class: type[Document], doc_id: Any, step_id: str) -> None:
    """Remove one step after its write succeeded (no version bump: the step is bookkeeping, not content)."""
    document_class._get_collection().update_one({"_id": doc_id}, {"$pull": {STEPS: {"id": step_id}}})


# (document class, document id, step id) -> None: removes a completed step (`complete`, or a test store's own).
StepCompleter = Callable[[type, Any, str], None]


def perform(
    document_class: type[D],
    doc: D,
    step: Mapping[str, Any],
    handler: StepHandler,
    completer: StepCompleter = complete,
) -> bool:
    """Run a step now, in the request that stored it, and remove it. A failure is logged, not raised: the first
    write is already accepted and the step stays stored for the runner, so the request must not fail (a client
    retrying a failed request could create the first aggregate twice)."""
    try:
        handler(doc, step)
        completer(document_class, doc.pk, step["id"])
    except Exception as exc:  # noqa: BLE001 - see above; the runner completes it when due
        log.warning("step %s left to the runner: %s", step["name"], type(exc).__name__)
        FAILED.labels(step["name"]).inc()
        return False
    return True


class StepRunner:
    """Performs overdue steps of the given document classes: `handlers[document_class][step name]`.

    One document at a time is claimed with find-and-modify on `steps_lease_until`, so replicas never run the
    same document's steps at once. A failing step keeps the lease as its back-off and is retried after it.
    """

    def __init__(
        self,
        handlers: Mapping[type[Document], Mapping[str, StepHandler]],
        *,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        lease: timedelta = timedelta(seconds=60),
        owner: str | None = None,
    ) -> None:
        self.handlers = handlers
        self.clock = clock
        self.lease = lease
        self.owner = owner or f"{socket.gethostname()}:{os.getpid()}"

    def run_once(self) -> int:
        """Perform every overdue step that can be claimed now; returns how many completed."""
        completed = 0
        for document_class, by_name in self.handlers.items():
            collection = document_class._get_collection()
            while (raw := self._claim(collection)) is not None:
                done, all_done = self._run_document(document_class, by_name, raw)
                completed += done
                if all_done:
                    collection.update_one({"_id": raw["_id"]}, {"$set": {STEPS_LEASE: None}})
        return completed

    def _claim(self, collection: Any) -> dict[str, Any] | None:
        now = self.clock()
        return claim(
            collection,
            {f"{STEPS}.due": {"$lte": now}},
            STEPS_LEASE,
            now,
            {"$set": {STEPS_LEASE: now + self.lease}},
        )

    def _run_document(
        self, document_class: type[Document], by_name: Mapping[str, StepHandler], raw: dict[str, Any]
    ) -> tuple[int, bool]:
        now = self.clock()
        doc = document_class._from_son(raw)
        done = 0
        for step in raw.get(STEPS) or []:
            if _aware(step["due"]) > now:
                continue
            handler = by_name.get(step["name"])
            if handler is None:
                log.error("no handler for step %s of %s", step["name"], document_class.__name__)
                FAILED.labels(step["name"]).inc()
                return done, False
            try:
                handler(doc, step)
            except Exception as exc:  # noqa: BLE001 - the step stays stored; the lease is its back-off
                log.warning("step %s failed: %s", step["name"], type(exc).__name__)
                FAILED.labels(step["name"]).inc()
                return done, False
            complete(document_class, raw["_id"], step["id"])
            COMPLETED.labels(step["name"]).inc()
            log.info("step %s completed by the runner", step["name"])
            done += 1
        return done, True


def _aware(value: datetime) -> datetime:
    return value if value.tzinfo else value.replace(tzinfo=UTC)
