"""Transactional outbox on single-document atomicity, and the relay that empties it into Kafka.

Writers (API handlers): validate, build envelopes with plumbing.events.new_event, and write the aggregate's
change and its new envelopes in ONE single-document write, appending to `pending_events` (preferably with
`$push`, see `push_events`). Then, optionally, `notify_relay()` so the relay publishes at once instead of at its
next poll. A standalone MongoDB has no multi-document transactions, so the events must live in the aggregate's
own document: that is what makes "stored" and "will be published" one atomic fact.

The relay (its own process, started by plumbing.worker.run_relay: a service's worker entry point, or
`python -m plumbing.cli.relay`) loops over the registered collections:

1. claim a batch of documents (up to CLAIM_BATCH) that have pending events and no live lease, with conditional
   updates setting `outbox_lease_until` / `outbox_lease_owner` (so replicas never work on the same document at
   once; plumbing.leases.claim_batch), then read them. The documents with pending events are found through
   `outbox_pending`, set by every write that appends events and removed by the relay once nothing is left: a
   sparse index on it holds only them, so a claim costs the same at a thousand records and at a million
   (`pending_events.0` cannot be indexed that way; measured, the claim that scanned for it took 19 ms at a few
   hundred exchange records); their ids are read for ten batches at once (READ_AHEAD). A sweep at start-up marks documents whose pending events were written without
   the mark, e.g. before it existed or by a writer outside the repository (a scan of each collection: once per
   start, not periodically, as it grows with the data);
2. publish their pending events in list order per document, in rounds: the next event of every document of the
   batch is sent, then every acknowledgement is waited for (one broker round trip per round, not per event; an
   event is never sent before its document's previous one was acknowledged);
3. remove the acknowledged events (events appended meanwhile are untouched) and release the lease: for the
   documents whose list is still exactly what was published, in one conditional `update_many` for the batch
   that also removes their marks; otherwise `$pull` by id, then release as in 5;
4. on a failure stop for that document (later events must not overtake it), keep the lease as a per-document
   back-off, send no further round and back off globally; never crash: the events stay pending and are retried.
   When the round had no acknowledgement and only errors of a broker away (kafka-python's retriable ones), the
   documents are released instead of held, and the back-off asks the broker every `probe_interval_s` and ends
   once it answers; writes' wake-ups do not end it (each would claim and release a batch for nothing);
5. release the lease, and the mark only when nothing is left (an event appended meanwhile keeps it).

Guarantee: every event reaches its topic at least once, in order per aggregate. A duplicate is possible when
the relay dies (or the $pull fails) between the ack and the $pull (with batches: any acknowledged event of the
batch), or when a relay is paused longer than its lease while a send is in flight; consumers apply each event
once through plumbing.inbox.
"""

from __future__ import annotations

import logging
import os
import select
import signal
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from types import FrameType
from typing import Any

from kafka import KafkaProducer
from mongoengine import BooleanField, DateTimeField, DictField, Document, ListField, StringField
from prometheus_client import Counter, Gauge
from pymongo.collection import Collection

from plumbing.events import to_kafka
from plumbing.kafka import topic_for_event
from plumbing.leases import ReadAhead, claim_batch
from plumbing.telemetry_kafka import inject_headers, producer_span

log = logging.getLogger(__name__)

PENDING = "pending_events"
# Documents claimed from one read of candidates (the read costs the backlog's size on the embedded server) and
# published together: their events share the broker round trips, their claims one update and their removals one.
CLAIM_BATCH = 200
# Candidate ids read at once for the next batches: the read costs the backlog's size on the embedded server
# whatever its limit, so a backlog is read once per ten batches (plumbing.leases.ReadAhead).
READ_AHEAD = 10 * CLAIM_BATCH
BACKLOG_BATCH = 50  # a batch this large means a backlog: its pace is logged
MARK = "outbox_pending"  # True while the document may have pending events (see the module doc)
LEASE_UNTIL = "outbox_lease_until"
LEASE_OWNER = "outbox_lease_owner"
WAKE_ENV = "OUTBOX_WAKE_ADDRESS"

BACKLOG = Gauge("outbox_backlog_events", "Events stored but not yet published", ["collection"])
OLDEST_AGE = Gauge(
    "outbox_oldest_pending_age_seconds", "Age of the oldest unpublished event (0 when none)", ["collection"]
)
PUBLISHED = Counter("outbox_published_events_total", "Events the relay published", ["topic"])
FAILURES = Counter("outbox_publish_failures_total", "Relay publish attempts that failed", ["reason"])


class OutboxFields(Document):
    """The fields an aggregate document needs for the outbox (OwnedDocument inherits them).

    - `pending_events`: envelopes from plumbing.events.new_event, appended in the same write as the change;
      the relay removes each one (by `id`) after Kafka acknowledged it.
    - `outbox_lease_until` / `outbox_lease_owner`: written only by relays (the claim). Writers must never set
      them; mongoengine's save() only writes changed fields, so an ordinary save leaves them alone.
    - `outbox_pending`: True from the write that appends events until the relay finds nothing left to publish
      (`push_events` sets it); the relay's claim finds documents through it.
    """

    meta = {"abstract": True}

    pending_events = ListField(DictField())
    outbox_lease_until = DateTimeField(null=True)
    outbox_lease_owner = StringField(null=True)
    outbox_pending = BooleanField(null=True)


def push_events(envelopes: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """The update fragment that appends envelopes atomically: merge it into the command's single update.

    `$push` (rather than save() of a re-read list) never rewrites the list, so it cannot resurrect an event the
    relay just removed or lose one it did not see. It also sets the mark the relay finds the document by.
    """
    return {"$push": {PENDING: {"$each": [dict(e) for e in envelopes]}}, "$set": {MARK: True}}


def notify_relay(address: str | None = None) -> None:
    """Wake the relay at once (best effort): one UDP datagram to $OUTBOX_WAKE_ADDRESS ("host:port").

    It carries no data, and losing it costs only latency: the relay also polls.
    """
    target = address or os.environ.get(WAKE_ENV)
    if not target:
        return
    try:
        host, port = _split_address(target)
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            sock.sendto(b"w", (host, port))
    except (OSError, ValueError) as exc:
        log.debug("relay wake-up not sent: %s", type(exc).__name__)


def _split_address(address: str) -> tuple[str, int]:
    host, _, port = address.rpartition(":")
    return host or "127.0.0.1", int(port)


def _collection(source: type[Document] | Collection) -> Collection:
    if isinstance(source, Collection):
        return source
    return source._get_collection()


def _parse_time(value: Any) -> datetime | None:
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    if isinstance(value, str):
        try:
            return datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return None
    return None


ProducerFactory = Callable[[], KafkaProducer]
TopicFor = Callable[[Mapping[str, Any]], str]


def default_topic_for(envelope: Mapping[str, Any]) -> str:
    """The topic asyncapi.yaml declares for the envelope's type."""
    return topic_for_event(str(envelope["type"]))


# Why a claimed document stopped publishing before its last event (None: it did not).
# KAFKA: the broker refused this document's event (held as a back-off for that document); BROKER: the round had
# no acknowledgement and only errors of a broker away (released: the relay's own back-off and probe wait for the
# broker, and the document is taken again as soon as it answers, not a back-off later).
KAFKA, BROKER, UNPUBLISHABLE, LOST = "kafka", "broker", "unpublishable", "lease lost"


def _broker_away(error: BaseException) -> bool:
    """A failure of the broker's reachability (no broker at construction, a timeout, a connection lost:
    kafka-python's retriable errors), not of a record (too large, a topic refused)."""
    return bool(getattr(error, "retriable", False))


@dataclass
class _Claimed:
    """A document the relay holds the lease of during one batch: its pending events as read after the claim,
    and how many of them (a prefix: sent in order) the broker acknowledged."""

    doc_id: Any
    events: list[dict[str, Any]]
    lease_until: datetime
    acked: int = 0
    stopped: str | None = None

    @property
    def complete(self) -> bool:
        return self.stopped is None and self.acked == len(self.events)


class Relay:
    """Publishes the outbox of the given document classes (or pymongo collections); see the module doc.

    `producer` is a KafkaProducer or a zero-argument factory (preferred: after a failure the relay closes the
    producer and makes a fresh one, and it can start while the broker is down).

    `send_timeout_s` must be at least the producer's delivery timeout (make_producer: 15 s), so that a send the
    relay gives up on is really over inside the producer too; otherwise the producer could still deliver it
    later, next to the relay's retry (a duplicate). `lease_s` must exceed `send_timeout_s`.

    `read_ahead`: candidate ids read at once (plumbing.leases.ReadAhead); CLAIM_BATCH reads once per batch.

    After a Kafka failure the relay backs off (doubling up to `max_backoff_s`) but asks the broker every
    `probe_interval_s` meanwhile and ends the wait once it answers: after a long outage, publishing resumes
    seconds after the broker is back, not up to a whole back-off later.
    """

    def __init__(
        self,
        sources: Iterable[type[Document] | Collection],
        producer: KafkaProducer | ProducerFactory,
        topic_for: TopicFor | None = None,
        *,
        owner: str | None = None,
        lease_s: float = 60.0,
        poll_interval_s: float = 1.0,
        send_timeout_s: float = 20.0,
        max_backoff_s: float = 30.0,
        wake_address: str | None = None,
        metrics_interval_s: float = 5.0,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        periodic: Sequence[Callable[[], object]] = (),
        periodic_interval_s: float = 5.0,
        read_ahead: int = READ_AHEAD,
        probe_interval_s: float = 2.0,
    ) -> None:
        if lease_s <= send_timeout_s:
            raise ValueError("lease_s must exceed send_timeout_s, or a send could outlive its lease")
        self.collections = [_collection(s) for s in sources]
        self._read_ahead = {collection.full_name: ReadAhead(read_ahead) for collection in self.collections}
        if isinstance(producer, KafkaProducer):
            self._producer: KafkaProducer | None = producer
            self._factory: ProducerFactory | None = None
        else:
            self._producer = None
            self._factory = producer
        self.topic_for = topic_for or default_topic_for
        self.owner = owner or f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self.lease = timedelta(seconds=lease_s)
        self.poll_interval_s = poll_interval_s
        self.send_timeout_s = send_timeout_s
        self.max_backoff_s = max_backoff_s
        self.probe_interval_s = probe_interval_s
        self.wake_address = wake_address if wake_address is not None else os.environ.get(WAKE_ENV)
        self.metrics_interval_s = metrics_interval_s
        self.clock = clock
        # Other work of the same worker process (e.g. plumbing.steps.StepRunner.run_once), run between passes.
        self.periodic = tuple(periodic)
        self.periodic_interval_s = periodic_interval_s
        self._periodic_due = 0.0
        self._swept = False  # the sweep runs once per start (retried on the next pass if it failed)
        self._backoff_s = poll_interval_s
        self._stopping = threading.Event()
        self._metrics_due = 0.0
        self._sock: socket.socket | None = None
        self.ready = threading.Event()  # set while the relay can reach Kafka (worker readiness)
        self.published_total = 0  # this instance's count (the Prometheus counter is per process)

    # ------------------------------------------------------------------ one pass

    def run_once(self) -> tuple[int, bool]:
        """Publish everything claimable now. Returns (events published, whether Kafka failed)."""
        published = 0
        self._run_sweep()
        for collection in self.collections:
            while not self.stopping:
                started = time.monotonic()
                batch = self._claims(collection)
                if not batch:
                    break
                claimed = time.monotonic()
                count, ok = self._publish_batch(collection, batch)
                published += count
                if len(batch) >= BACKLOG_BATCH:
                    # A backlog is being drained (after an outage): say at what pace, and where the time goes.
                    log.info(
                        "outbox batch: %d event(s) of %d document(s) published from %s in %.0f ms "
                        "(claim %.0f ms, publish and finish %.0f ms)",
                        count, len(batch), collection.name, (time.monotonic() - started) * 1000,
                        (claimed - started) * 1000, (time.monotonic() - claimed) * 1000,
                    )  # fmt: skip
                if not ok:
                    return published, True  # the broker is the likely culprit: back off, don't try the rest
        return published, False

    def _claims(self, collection: Collection) -> list[dict[str, Any]]:
        """Up to CLAIM_BATCH documents to publish, claimed together (plumbing.leases.claim_batch)."""
        now = self.clock()
        until = now + self.lease
        return claim_batch(
            collection,
            {MARK: True},
            LEASE_UNTIL,
            now,
            {"$set": {LEASE_UNTIL: until, LEASE_OWNER: self.owner}},
            {PENDING: 1, LEASE_UNTIL: 1},
            limit=CLAIM_BATCH,
            mine={LEASE_OWNER: self.owner, LEASE_UNTIL: until},
            read_ahead=self._read_ahead.get(collection.full_name),
        )

    def sweep(self) -> int:
        """Mark the documents that hold pending events without the mark (written before it existed, or by a
        writer that does not use `push_events`). A scan of each collection: run at start-up and rarely."""
        marked = 0
        for collection in self.collections:
            collection.create_index(MARK, sparse=True)  # holds only the documents the relay has work in
            unmarked = {f"{PENDING}.0": {"$exists": True}, MARK: {"$ne": True}}
            marked += collection.update_many(unmarked, {"$set": {MARK: True}}).modified_count
        if marked:
            log.warning("outbox: %d document(s) had pending events without the mark; marked", marked)
        return marked

    def _renew(self, collection: Collection, doc_id: Any) -> datetime | None:
        """Extend our lease if we still hold it; None when it was lost (another relay may own the document)."""
        now = self.clock()
        until = now + self.lease
        result = collection.update_one(
            {"_id": doc_id, LEASE_OWNER: self.owner, LEASE_UNTIL: {"$gt": now}},
            {"$set": {LEASE_UNTIL: until}},
        )
        return until if result.matched_count == 1 else None

    def _hold(self, collection: Collection, doc_id: Any, seconds: float) -> None:
        """Keep the lease for `seconds` more as this document's back-off after a failure."""
        collection.update_one(
            {"_id": doc_id, LEASE_OWNER: self.owner},
            {"$set": {LEASE_UNTIL: self.clock() + timedelta(seconds=seconds)}},
        )

    def _release(self, collection: Collection, doc_id: Any) -> None:
        """Free the lease; with nothing left to publish, also the mark. One conditional write each way, so an
        event appended meanwhile (which sets the mark again in its own write) is never left unmarked."""
        free = {"$set": {LEASE_UNTIL: None, LEASE_OWNER: None}}
        ours = {"_id": doc_id, LEASE_OWNER: self.owner}
        if collection.update_one(
            {**ours, f"{PENDING}.0": {"$exists": False}}, {**free, "$unset": {MARK: ""}}
        ).matched_count:
            return
        collection.update_one(ours, free)

    def _publish_batch(self, collection: Collection, docs: Sequence[dict[str, Any]]) -> tuple[int, bool]:
        """Publish the claimed documents' events, then remove the acknowledged ones and free the leases.
        Returns (events published, False when Kafka failed).

        Sent in rounds: round k sends the k-th pending event of every document still going, all before waiting
        for any acknowledgement, then waits for them all. So a backlog of one-event documents costs one broker
        round trip per batch, not per event, while an event is still never sent before the previous event of
        its document was acknowledged: a document's events cannot overtake one another even if the broker
        refused one of them and accepted the next (e.g. a record too large), or a topic differs."""
        claimed = [
            _Claimed(
                doc["_id"], list(doc.get(PENDING) or []), _parse_time(doc.get(LEASE_UNTIL)) or self.clock()
            )
            for doc in docs
        ]
        failed = False
        while not failed and not self.stopping:
            due = [entry for entry in claimed if entry.stopped is None and entry.acked < len(entry.events)]
            if not due:
                break
            failed = self._publish_round(collection, due)
        self._finish(collection, claimed)
        return sum(entry.acked for entry in claimed), not failed

    def _publish_round(self, collection: Collection, due: list[_Claimed]) -> bool:
        """Send the next event of each document, then wait for every acknowledgement; True when Kafka failed."""
        sent: list[tuple[_Claimed, str, Any]] = []
        errors: list[tuple[str, BaseException]] = []
        margin = timedelta(seconds=self.send_timeout_s + 1.0)
        for entry in due:
            if entry.lease_until - self.clock() < margin:
                renewed = self._renew(collection, entry.doc_id)
                if renewed is None:
                    log.warning("lease lost on %s; leaving the document to its new owner", collection.name)
                    entry.stopped = LOST
                    continue
                entry.lease_until = renewed
            envelope = entry.events[entry.acked]
            try:
                topic = self.topic_for(envelope)
                record = to_kafka(envelope)
            except Exception as exc:  # noqa: BLE001 - a stored envelope we cannot encode must not stop the relay
                # Nothing is dropped: the event stays pending (blocking only its own aggregate) for an operator.
                log.error("unpublishable event in %s: %s", collection.name, type(exc).__name__)
                FAILURES.labels("unpublishable").inc()
                entry.stopped = UNPUBLISHABLE
                continue
            try:
                sent.append((entry, topic, self._send(topic, record, envelope)))
            except Exception as exc:  # noqa: BLE001 - no metadata, buffer full: the broker is away
                errors.append((topic, exc))
                entry.stopped = KAFKA
                break  # send nothing more; what was sent already is still waited for below
        # One deadline for the round: every record was handed to the producer before it started, so each had
        # at least the producer's own delivery timeout (see the class doc).
        deadline = time.monotonic() + self.send_timeout_s
        acknowledged = 0
        for entry, topic, future in sent:
            try:
                future.get(timeout=max(0.0, deadline - time.monotonic()))
            except Exception as exc:  # noqa: BLE001 - Kafka trouble: keep the event, retry after a back-off
                errors.append((topic, exc))
                entry.stopped = KAFKA
                continue
            entry.acked += 1
            acknowledged += 1
            PUBLISHED.labels(topic).inc()
            self.published_total += 1
        if errors and not acknowledged and all(_broker_away(error) for _, error in errors):
            for entry in due:
                if entry.stopped == KAFKA:
                    entry.stopped = BROKER
        if errors:
            topic, error = errors[0]
            log.warning(
                "publish to %s failed (%s, %d event(s)); will retry", topic, type(error).__name__, len(errors)
            )
            FAILURES.labels("kafka").inc(len(errors))
            self.ready.clear()
            self._drop_producer()
        elif sent:
            self.ready.set()
        return bool(errors)

    def _finish(self, collection: Collection, claimed: list[_Claimed]) -> None:
        """Remove each document's acknowledged events and free (or keep, as a back-off) its lease.

        The documents whose events were all acknowledged are finished together in one conditional update, and
        so are those to release with none of their events published (their list is untouched, so they stay
        marked: a broker away, a pass ended early); the others (a failure, a lease lost) one by one."""
        complete = [entry for entry in claimed if entry.complete]
        if complete:
            self._finish_complete(collection, complete)
        untouched = [
            entry.doc_id
            for entry in claimed
            if not entry.complete and entry.stopped in (None, BROKER) and not entry.acked
        ]
        if untouched:
            collection.update_many(
                {"_id": {"$in": untouched}, LEASE_OWNER: self.owner},
                {"$set": {LEASE_UNTIL: None, LEASE_OWNER: None}},
            )
        released = set(untouched)
        for entry in claimed:
            if entry.complete or entry.doc_id in released:
                continue
            self._pull(collection, entry)
            if entry.stopped == KAFKA:
                self._hold(collection, entry.doc_id, min(self._backoff_s, self.max_backoff_s))
            elif entry.stopped == UNPUBLISHABLE:
                self._hold(collection, entry.doc_id, self.max_backoff_s)
            elif entry.stopped in (None, BROKER):
                # Stopping, the pass ended early (another document's failure) or the broker is away: the rest
                # waits for a next pass.
                self._release(collection, entry.doc_id)
            # LOST: the lease is another relay's; only our acknowledged events are ours to remove.

    def _pull(self, collection: Collection, entry: _Claimed) -> None:
        """Remove the acknowledged events, by id: an event appended meanwhile is untouched. Not conditional on
        the lease: an acknowledged event may always go (a new owner would only publish it once more)."""
        if entry.acked:
            ids = [envelope["id"] for envelope in entry.events[: entry.acked]]
            collection.update_one({"_id": entry.doc_id}, {"$pull": {PENDING: {"id": {"$in": ids}}}})

    def _finish_complete(self, collection: Collection, complete: list[_Claimed]) -> None:
        """Empty the outbox, free the lease and remove the mark of the fully published documents: one
        `update_many` per number of events read (normally one for the whole batch), applied, atomically per
        document, only where the list is still exactly what was read and published. It is when the lease is
        still ours (no other relay removed anything since our read, which came after our claim) and the list has
        no element at index n: writers only append (`push_events`), so an event appended meanwhile, which must
        keep the mark, makes a document not match. Any document that did not is finished as before: pull, then
        `_release`. (No list of event ids in the condition: the embedded server tests `$in` membership one by
        one, which made the update cost grow with the square of the batch.)"""
        by_count: dict[int, list[Any]] = {}
        for entry in complete:
            by_count.setdefault(len(entry.events), []).append(entry.doc_id)
        updated = 0
        for count, doc_ids in by_count.items():
            where = {
                "_id": {"$in": doc_ids},  # first: the embedded server plans by it
                LEASE_OWNER: self.owner,
                f"{PENDING}.{count}": {"$exists": False},
            }
            done = {"$set": {PENDING: [], LEASE_UNTIL: None, LEASE_OWNER: None}, "$unset": {MARK: ""}}
            updated += collection.update_many(where, done).matched_count
        if updated == len(complete):
            return
        # `update_many` says how many it updated, not which: read which still hold our lease or our events.
        by_id = {entry.doc_id: entry for entry in complete}
        rows = collection.find({"_id": {"$in": list(by_id)}}, {f"{PENDING}.id": 1, LEASE_OWNER: 1})
        for row in rows:
            entry = by_id[row["_id"]]
            stored = {envelope.get("id") for envelope in row.get(PENDING) or []}
            if any(envelope["id"] in stored for envelope in entry.events):
                self._pull(collection, entry)
            if row.get(LEASE_OWNER) == self.owner:
                self._release(collection, entry.doc_id)

    def _send(self, topic: str, record: Any, envelope: Mapping[str, Any]) -> Any:
        """Hand the record to the producer; the future resolves with the broker's acknowledgement. The span
        covers the hand-over (the acknowledgement is waited for with the rest of the round)."""
        producer = self._get_producer()
        with producer_span(topic, envelope.get("traceparent"), envelope.get("type")):
            headers = inject_headers(record.headers)
            return producer.send(topic, key=record.key, value=record.value, headers=headers)

    def _get_producer(self) -> KafkaProducer:
        if self._producer is None:
            assert self._factory is not None
            self._producer = self._factory()
        return self._producer

    def _drop_producer(self) -> None:
        # Only producers we made are replaced; a caller's producer is kept (its retries handle reconnects).
        if self._factory is None or self._producer is None:
            return
        producer, self._producer = self._producer, None
        try:
            producer.close(timeout=1)
        except Exception as exc:  # noqa: BLE001 - closing a broken producer may fail; we replace it anyway
            log.debug("closing producer failed: %s", type(exc).__name__)

    # ------------------------------------------------------------------ metrics

    def backlog(self) -> dict[str, tuple[int, float]]:
        """Per collection: (pending events, age in seconds of the oldest pending event)."""
        now = self.clock()
        result: dict[str, tuple[int, float]] = {}
        for collection in self.collections:
            count, oldest = 0, None
            cursor = collection.find({MARK: True}, {f"{PENDING}.time": 1})
            for doc in cursor:
                events = doc.get(PENDING) or []
                count += len(events)
                for envelope in events:
                    moment = _parse_time(envelope.get("time"))
                    if moment and (oldest is None or moment < oldest):
                        oldest = moment
            age = max(0.0, (now - oldest).total_seconds()) if oldest else 0.0
            result[collection.name] = (count, age)
        return result

    def update_metrics(self) -> None:
        for name, (count, age) in self.backlog().items():
            BACKLOG.labels(name).set(count)
            OLDEST_AGE.labels(name).set(age)

    # ------------------------------------------------------------------ loop

    def stop(self, *_: Any) -> None:
        self._stopping.set()

    @property
    def stopping(self) -> bool:
        return self._stopping.is_set()

    def run(self, *, install_signal_handlers: bool = True) -> None:
        """Loop until stop() or SIGTERM/SIGINT; never raises on Kafka or Mongo trouble (logs and backs off)."""
        previous: dict[signal.Signals, Any] = {}
        if install_signal_handlers and threading.current_thread() is threading.main_thread():
            for signum in (signal.SIGTERM, signal.SIGINT):
                previous[signum] = signal.signal(signum, self._on_signal)
        self._open_wake_socket()
        try:
            while not self.stopping:
                try:
                    _, failed = self.run_once()
                except Exception as exc:  # noqa: BLE001 - e.g. Mongo unreachable: log, back off, go on
                    log.warning("relay pass failed: %s", type(exc).__name__)
                    FAILURES.labels("database").inc()
                    failed = True
                self._refresh_metrics()
                self._run_periodic()
                self._probe_kafka()
                if failed:
                    delay = self._backoff_s
                    self._backoff_s = min(self._backoff_s * 2, self.max_backoff_s)
                else:
                    self._backoff_s = self.poll_interval_s
                    delay = self.poll_interval_s
                if failed and not self.ready.is_set():
                    self._wait_for_broker(delay)
                else:
                    self._wait(delay)
        finally:
            for signum, old in previous.items():
                signal.signal(signum, old)
            if self._sock is not None:
                self._sock.close()
                self._sock = None
            if self._factory is not None:
                self._drop_producer()

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        self.stop()

    def _probe_kafka(self) -> None:
        """Readiness means "connected to Kafka", also while there is nothing to publish."""
        if self.ready.is_set():
            return
        try:
            from plumbing.kafka import load_topics

            # A producer connects lazily; its topic metadata arrives only from a reachable broker.
            if self._get_producer().partitions_for(load_topics()[0].name):
                self.ready.set()
        except Exception as exc:  # noqa: BLE001 - broker unreachable: stay unready, retry on the next pass
            log.debug("kafka probe failed: %s", type(exc).__name__)
            self._drop_producer()

    def _run_sweep(self) -> None:
        if self._swept:
            return
        try:
            self.sweep()
            self._swept = True
        except Exception as exc:  # noqa: BLE001 - e.g. Mongo unreachable: the next pass sweeps again
            log.warning("outbox sweep failed: %s", type(exc).__name__)

    def _run_periodic(self) -> None:
        if not self.periodic or time.monotonic() < self._periodic_due:
            return
        self._periodic_due = time.monotonic() + self.periodic_interval_s
        for task in self.periodic:
            try:
                task()
            except Exception as exc:  # noqa: BLE001 - a failing side task must never stop publishing
                log.warning("periodic task failed: %s", type(exc).__name__)

    def _refresh_metrics(self) -> None:
        if time.monotonic() < self._metrics_due:
            return
        self._metrics_due = time.monotonic() + self.metrics_interval_s
        try:
            self.update_metrics()
        except Exception as exc:  # noqa: BLE001 - metrics must never stop publishing
            log.debug("outbox metrics failed: %s", type(exc).__name__)

    def _open_wake_socket(self) -> None:
        if not self.wake_address:
            return
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            sock.bind(_split_address(self.wake_address))
        except OSError as exc:
            sock.close()
            log.warning("wake-up address unavailable (%s); polling only", type(exc).__name__)
            return
        sock.setblocking(False)
        self._sock = sock

    @property
    def wake_port(self) -> int | None:
        return self._sock.getsockname()[1] if self._sock else None

    def _wait_for_broker(self, seconds: float) -> None:
        """Back off up to `seconds` after a Kafka failure, asking the broker every probe_interval_s: the wait
        ends once it answers (or on a wake-up datagram, or stop())."""
        deadline = time.monotonic() + seconds
        while not self.stopping and (left := deadline - time.monotonic()) > 0:
            # Writes go on waking the relay while the broker is away: they must not end the back-off, or each
            # would claim and release a batch for nothing (load on the database the API is writing to).
            self._wait(min(left, self.probe_interval_s), wakes=False)
            if self.stopping:
                return
            self._run_periodic()  # the process's other work (follow-up steps) needs no broker
            self._probe_kafka()
            if self.ready.is_set():
                return

    def _wait(self, seconds: float, *, wakes: bool = True) -> None:
        """Sleep up to `seconds`, returning early on a wake-up datagram (unless not `wakes`: then it is only
        read) or stop()."""
        deadline = time.monotonic() + seconds
        while not self.stopping:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return
            step = min(remaining, 0.2)  # bounded so stop() is noticed quickly
            if self._sock is None:
                self._stopping.wait(step)
                continue
            readable, _, _ = select.select([self._sock], [], [], step)
            if readable:
                try:
                    while True:
                        self._sock.recv(64)  # drain: many writes, one pass
                except BlockingIOError:
                    pass
                if wakes:
                    return
