"""Kafka plumbing: topics from openapi/asyncapi.yaml, the producer, and the consumer loop with its DLT.

Delivery contract (docs/events.md): every record reaches its topic at least once; a consumer commits a record's
offset only after its handler returned (the handler's durable write, normally through plumbing.inbox, is done),
so a crash redelivers and the inbox makes the second delivery a no-op. A record the handler keeps failing on,
or one that is not a valid event at all, goes to `<topic>.dlt` with headers saying where it came from and why,
and the partition moves on.

Not every record is a CloudEvent: a topic whose records are opaque bytes (the exchange's sealed envelopes) is
consumed with a raw handler (`ConsumerLoop(raw_handlers={topic: handler})`), under the same contract (commit
after the handler returned, bounded retries, DLT). In asyncapi.yaml the event types are the messages with the
`cloudEventBinary` trait; other messages (dead letters, envelopes) name no event type.
"""

from __future__ import annotations

import logging
import os
import re
import signal
import threading
import time
import traceback
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cache
from pathlib import Path
from types import FrameType
from typing import Any

import yaml
from kafka import KafkaConsumer, KafkaProducer
from kafka.admin import KafkaAdminClient
from kafka.errors import KafkaError, TopicAlreadyExistsError
from kafka.structs import OffsetAndMetadata, TopicPartition
from prometheus_client import Counter, Gauge

import thb_contracts
from plumbing.errors import is_unavailability
from plumbing.events import MalformedEvent, from_kafka
from plumbing.telemetry_kafka import consumer_span, current_traceparent, inject_headers, producer_span

log = logging.getLogger(__name__)

DLT_SUFFIX = ".dlt"
# Header names of a dead letter; the rest of its headers are the original record's, unchanged.
H_ORIGIN_TOPIC = "dlt.origin.topic"
H_ORIGIN_PARTITION = "dlt.origin.partition"
H_ORIGIN_OFFSET = "dlt.origin.offset"
H_ERROR_CLASS = "dlt.error.class"
H_ERROR_MESSAGE = "dlt.error.message"
H_ERROR_WHERE = "dlt.error.where"
H_ATTEMPTS = "dlt.attempts"
H_GROUP = "dlt.consumer.group"
H_FAILED_AT = "dlt.failed.at"
DLT_HEADER_PREFIX = "dlt."
ERROR_MESSAGE_MAX = 200

CONSUMED = Counter(
    "kafka_consumer_records_total", "Records handled by consumer loops", ["group", "topic", "outcome"]
)
DEAD_LETTERS = Counter("kafka_dlt_records_total", "Records sent to a dead-letter topic", ["group", "topic"])
CONSUMER_LAG = Gauge(
    "kafka_consumer_lag", "Records behind the partition's high watermark", ["group", "topic"]
)


# --------------------------------------------------------------------------------------------- topics


@dataclass(frozen=True)
class TopicSpec:
    name: str
    partitions: int
    retention_ms: int
    dead_letter_of: str | None = None
    # The topic's `max.message.bytes` (`x-max-message-bytes`); None: the broker's default (about 1 MB).
    max_message_bytes: int | None = None


def asyncapi_path() -> Path:
    """$ASYNCAPI_PATH, else the contracts package's asyncapi.yaml (openapi/ in a checkout)."""
    configured = os.environ.get("ASYNCAPI_PATH")
    if configured:
        return Path(configured)
    return Path(str(thb_contracts.asyncapi()))


@cache
def _asyncapi(path: Path) -> dict[str, Any]:
    with path.open(encoding="utf-8") as handle:
        return yaml.safe_load(handle)


def load_topics(path: Path | None = None) -> list[TopicSpec]:
    """Every channel of the AsyncAPI document with its partitions and (finite, required) retention."""
    doc = _asyncapi(path or asyncapi_path())
    specs = []
    for channel in doc["channels"].values():
        retention = channel.get("x-retention-ms")
        if not isinstance(retention, int) or retention <= 0:
            raise ValueError(f"channel {channel['address']} must state a finite x-retention-ms")
        largest = channel.get("x-max-message-bytes")
        if largest is not None and (not isinstance(largest, int) or largest <= 0):
            raise ValueError(f"channel {channel['address']}: x-max-message-bytes must be a positive integer")
        specs.append(
            TopicSpec(
                name=channel["address"],
                partitions=int(channel.get("x-partitions", 1)),
                retention_ms=retention,
                dead_letter_of=channel.get("x-dead-letter-of"),
                max_message_bytes=largest,
            )
        )
    return specs


def topic_for_event(event_type: str, path: Path | None = None) -> str:
    """The topic an event type is published to, as declared in asyncapi.yaml (KeyError when undeclared)."""
    return _event_topics(path or asyncapi_path())[event_type]


def event_types(topic: str, path: Path | None = None) -> list[str]:
    """The event types published to `topic` according to asyncapi.yaml, sorted (empty for an unknown topic)."""
    return sorted(
        event for event, address in _event_topics(path or asyncapi_path()).items() if address == topic
    )


CLOUD_EVENT_TRAIT = "#/components/messageTraits/cloudEventBinary"


def is_event_message(message: Mapping[str, Any]) -> bool:
    """An event type of asyncapi.yaml: a message with the CloudEvents binary trait (a dead letter or an opaque
    record, such as the exchange's sealed envelope, is none)."""
    return any(trait.get("$ref") == CLOUD_EVENT_TRAIT for trait in message.get("traits") or ())


@cache
def _event_topics(path: Path) -> dict[str, str]:
    doc = _asyncapi(path)
    messages = doc.get("components", {}).get("messages", {})
    mapping: dict[str, str] = {}
    for channel in doc["channels"].values():
        for ref in (channel.get("messages") or {}).values():
            message = messages[ref["$ref"].rsplit("/", 1)[-1]]
            if not channel.get("x-dead-letter-of") and is_event_message(message):
                mapping[message["name"]] = channel["address"]
    return mapping


def ensure_topics(
    bootstrap: str, specs: Iterable[TopicSpec] | None = None, *, timeout_ms: int = 30000
) -> list[str]:
    """Create the missing topics (the broker has auto-creation off); returns the names it created."""
    wanted = {spec.name: spec for spec in (load_topics() if specs is None else specs)}
    admin = KafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=timeout_ms, client_id="topics")
    try:
        missing = [name for name in wanted if name not in set(admin.list_topics())]
        if not missing:
            return []
        request = {
            name: {"num_partitions": wanted[name].partitions, "configs": _configs(wanted[name])}
            for name in missing
        }
        try:
            admin.create_topics(request, timeout_ms=timeout_ms, wait_for_metadata=True)
        except TopicAlreadyExistsError:
            pass  # another process created it between our list and create: that is what we wanted
        return missing
    finally:
        admin.close()


def _configs(spec: TopicSpec) -> dict[str, str]:
    configs = {"retention.ms": str(spec.retention_ms), "cleanup.policy": "delete"}
    if spec.max_message_bytes is not None:
        configs["max.message.bytes"] = str(spec.max_message_bytes)
    return configs


# --------------------------------------------------------------------------------------------- producer


def make_producer(
    bootstrap: str,
    *,
    client_id: str = "plumbing",
    request_timeout_ms: int = 5000,
    delivery_timeout_ms: int = 15000,
    max_block_ms: int = 5000,
    **overrides: Any,
) -> KafkaProducer:
    """An idempotent, acks=all producer whose every wait is bounded.

    Bounded waits are what let a relay notice a broker outage, keep its events pending and retry later rather
    than hang: send() blocks at most max_block_ms for metadata, and a future fails after delivery_timeout_ms.
    Raises kafka.errors.KafkaTimeoutError when no broker answers at construction within max_block_ms too
    (kafka-python's own bootstrap wait is 30 s).
    """
    config: dict[str, Any] = {
        "bootstrap_servers": bootstrap,
        "client_id": client_id,
        "acks": "all",
        "enable_idempotence": True,
        "retries": 10,
        "retry_backoff_ms": 200,
        "max_in_flight_requests_per_connection": 5,  # idempotence keeps order up to 5
        "linger_ms": 0,
        "request_timeout_ms": request_timeout_ms,
        "delivery_timeout_ms": delivery_timeout_ms,
        "max_block_ms": max_block_ms,
        "bootstrap_timeout_ms": max_block_ms,
        "reconnect_backoff_max_ms": 2000,
    }
    config.update(overrides)
    return KafkaProducer(**config)


class LazyProducer:
    """One producer for the threads of one process, made on first use: for code that hands a record to Kafka
    from a request or a job and must know, when `send` returns, that the broker has it.

    - `factory` makes the KafkaProducer (e.g. `partial(make_producer, bootstrap, client_id=...)`); nothing
      touches the network before the first `send`, so it may be built before a fork (gunicorn) and used after:
      a process that did not make the producer (a forked child) makes its own and never uses the inherited one.
    - `send` waits for the acknowledgement (acks=all with make_producer) at most `send_timeout_s`, and raises
      whatever failed (a KafkaError: KafkaTimeoutError, KafkaConnectionError when no broker answers ...).
      After a failure the producer is closed and the next `send` makes a fresh one.
    - Each send runs in a PRODUCER span continuing the caller's trace (or `traceparent`), and the record carries
      that span's `traceparent` header (plumbing.telemetry_kafka).
    """

    def __init__(self, factory: Callable[[], KafkaProducer], *, send_timeout_s: float = 20.0) -> None:
        self.factory = factory
        self.send_timeout_s = send_timeout_s
        self._producer: KafkaProducer | None = None
        self._pid: int | None = None
        self._lock = threading.Lock()

    def send(
        self,
        topic: str,
        value: bytes | None,
        *,
        key: bytes | None = None,
        headers: Sequence[tuple[str, bytes]] = (),
        traceparent: str | None = None,
    ) -> Any:
        """Send one record and wait for the broker's acknowledgement; returns its RecordMetadata."""
        producer = self._get()
        try:
            with producer_span(topic, traceparent or current_traceparent()):
                future = producer.send(topic, key=key, value=value, headers=inject_headers(list(headers)))
                return future.get(timeout=self.send_timeout_s)
        except Exception:
            self._drop(producer)
            raise

    def _get(self) -> KafkaProducer:
        with self._lock:
            producer = self._producer
            if producer is None or self._pid != os.getpid():
                # None yet, or inherited from a parent process: that one is never used nor closed here.
                self._producer = None
                producer = self._producer = self.factory()
                self._pid = os.getpid()
            return producer

    def _drop(self, failed: KafkaProducer) -> None:
        with self._lock:
            ours = self._producer is failed  # else another thread replaced it already
            if ours:
                self._producer = None
        if not ours:
            return
        try:
            failed.close(timeout=1)
        except Exception as exc:  # noqa: BLE001 - closing a broken producer may fail; it is replaced anyway
            log.debug("closing producer failed: %s", type(exc).__name__)

    def close(self, timeout_s: float = 5.0) -> None:
        """Flush and close the producer of this process, if it made one."""
        with self._lock:
            producer, self._producer = self._producer, None
            own = self._pid == os.getpid()
        if producer is not None and own:
            producer.close(timeout=timeout_s)


# --------------------------------------------------------------------------------------------- errors


def error_message(exc: BaseException) -> str:
    """Text for a DLT header or a log line: only messages known to be free of payload values.

    Our own errors (plumbing.events.EventError and anything with `public_message = True`) build their messages
    from attribute names, pointers and keywords. Any other exception may quote data it was handed (a KeyError
    of a name, a driver error echoing a document), so its message is withheld; the class and the code
    location (`dlt.error.where`) still tell an operator what failed.
    """
    if getattr(exc, "public_message", False):
        return str(exc)[:ERROR_MESSAGE_MAX]
    return "message withheld: it may contain payload data"


def error_where(exc: BaseException) -> str:
    """module:function:line of the innermost frame of the exception (code location, no data)."""
    frames = traceback.extract_tb(exc.__traceback__) if exc.__traceback__ else []
    if not frames:
        return "unknown"
    frame = frames[-1]
    module = Path(frame.filename).stem
    return f"{module}:{frame.name}:{frame.lineno}"[:ERROR_MESSAGE_MAX]


def dead_letter_headers(
    headers: Sequence[tuple[str, bytes | None]],
    *,
    topic: str,
    partition: int,
    offset: int,
    exc: BaseException,
    attempts: int,
    group: str,
    now: datetime,
) -> list[tuple[str, bytes]]:
    kept = [(k, v or b"") for k, v in headers if not k.startswith(DLT_HEADER_PREFIX)]
    return kept + [
        (H_ORIGIN_TOPIC, topic.encode()),
        (H_ORIGIN_PARTITION, str(partition).encode()),
        (H_ORIGIN_OFFSET, str(offset).encode()),
        (H_ERROR_CLASS, f"{type(exc).__module__}.{type(exc).__qualname__}"[:ERROR_MESSAGE_MAX].encode()),
        (H_ERROR_MESSAGE, error_message(exc).encode("utf-8", errors="replace")),
        (H_ERROR_WHERE, error_where(exc).encode("utf-8", errors="replace")),
        (H_ATTEMPTS, str(attempts).encode()),
        (H_GROUP, group.encode()),
        (H_FAILED_AT, now.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z").encode()),
    ]


# --------------------------------------------------------------------------------------------- consumer

Handler = Callable[[dict[str, Any]], Any]
# The handler table of a consumer: event type -> its handler (as eShop's AddSubscription<Event, Handler> or
# cosmicpython's EVENT_HANDLERS). Types not in the table are skipped: see ConsumerLoop.
Handlers = Mapping[str, Handler]


@dataclass(frozen=True)
class RawRecord:
    """A record as it came off a topic whose records are not CloudEvents, for that topic's raw handler."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    headers: tuple[tuple[str, bytes | None], ...]


# A raw handler gets every record of its topic, unparsed. Like an event handler it makes its effect durable (and
# apply-once) before returning; a record it refuses for good it logs and returns from (committed, not retried).
# It may return an outcome code (`stored`, `duplicate`, `refused-forged`: lower case, from a small fixed set),
# counted as the `outcome` of kafka_consumer_records_total instead of `applied`.
RawHandler = Callable[[RawRecord], Any]
OUTCOME = re.compile(r"[a-z][a-z0-9-]{0,39}")


class ConsumerLoop:
    """Consume `topics` as `group_id`, hand each valid event envelope to its handler, commit after it returned.

    - `handler` is the handler table `{event type: handler}` (or one handler for every type). A valid event whose
      type has no entry is skipped: logged (ids and type only), counted as outcome `skipped`, and committed.
      Not dead-lettered: a topic carries every event of its producer, a consumer subscribes to the types it
      needs, and a producer may add a type (or a `.v2` beside a `.v1`) before every consumer handles it; the
      DLT is for records that need an operator. A type the platform does not know at all (no schema) is
      malformed and goes to the DLT like any other malformed record.
    - The handler gets the validated envelope (plumbing.events.from_kafka) and runs inside a CONSUMER span
      continuing the record's `traceparent`. It must make its effect durable and apply-once (plumbing.inbox)
      before returning: returning is what commits the offset.
    - A raising handler is retried `max_attempts` times in all, with exponential backoff from `backoff_s` up
      to `max_backoff_s`; then the raw record goes to `<topic>.dlt` and its offset is committed. A failure that
      is the moment's (the database or a called server not answering, plumbing.errors.is_unavailability) is
      retried with the same backoff until it passes, never dead-lettered.
    - A record that is not a valid event (headers, JSON, schema) goes to the DLT at once.
    - `raw_handlers` `{topic: handler}`: records of those topics (subscribed as well) are not CloudEvents; each
      goes unparsed (`RawRecord`) to its topic's handler, with the same span, retries, DLT and commit; the
      outcome code it may return is counted (kafka_consumer_records_total) instead of `applied`.
      `producer_options` go to the DLT producer (make_producer), e.g. a `max_request_size` for large records.
    - If the DLT itself cannot be written (broker down), nothing is committed: the loop seeks back and tries
      the record again later, so nothing is lost.
    - stop() (also on SIGTERM/SIGINT when run() installs handlers) ends the loop after the current record.
    """

    def __init__(
        self,
        topics: Sequence[str],
        group_id: str,
        handler: Handler | Handlers,
        bootstrap: str,
        max_attempts: int = 5,
        *,
        backoff_s: float = 0.2,
        max_backoff_s: float = 5.0,
        session_timeout_ms: int = 10000,
        heartbeat_interval_ms: int = 3000,
        max_poll_records: int = 50,
        poll_timeout_ms: int = 500,
        auto_offset_reset: str = "earliest",
        producer: KafkaProducer | None = None,
        client_id: str | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        consumer_config: dict[str, Any] | None = None,
        raw_handlers: Mapping[str, RawHandler] | None = None,
        producer_options: Mapping[str, Any] | None = None,
    ) -> None:
        if max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        self.raw_handlers: dict[str, RawHandler] = dict(raw_handlers or {})
        self.topics = list(topics) + [topic for topic in self.raw_handlers if topic not in topics]
        self.group_id = group_id
        self.handlers: Handlers | None = handler if isinstance(handler, Mapping) else None
        self.handler: Handler | None = None if isinstance(handler, Mapping) else handler
        self._producer_options = dict(producer_options or {})
        self.bootstrap = bootstrap
        self.max_attempts = max_attempts
        self.backoff_s = backoff_s
        self.max_backoff_s = max_backoff_s
        self.poll_timeout_ms = poll_timeout_ms
        self.clock = clock
        self._consumer_config: dict[str, Any] = {
            "bootstrap_servers": bootstrap,
            "group_id": group_id,
            "client_id": client_id or group_id,
            "enable_auto_commit": False,
            "auto_offset_reset": auto_offset_reset,
            "session_timeout_ms": session_timeout_ms,
            "heartbeat_interval_ms": heartbeat_interval_ms,
            "max_poll_records": max_poll_records,
            "request_timeout_ms": max(30000, session_timeout_ms + 5000),
            "reconnect_backoff_max_ms": 2000,
        }
        self._consumer_config.update(consumer_config or {})
        self._producer = producer
        self._own_producer = producer is None
        self._consumer: KafkaConsumer | None = None
        self._stopping = threading.Event()
        self.ready = threading.Event()  # set once connected and assigned: the worker's readiness

    # -- lifecycle

    def stop(self, *_: Any) -> None:
        self._stopping.set()

    @property
    def stopping(self) -> bool:
        return self._stopping.is_set()

    def run(self, *, install_signal_handlers: bool = True) -> None:
        """Consume until stop() (or SIGTERM/SIGINT). Survives a broker outage by reconnecting with backoff."""
        previous: dict[signal.Signals, Any] = {}
        if install_signal_handlers and threading.current_thread() is threading.main_thread():
            for signum in (signal.SIGTERM, signal.SIGINT):
                previous[signum] = signal.signal(signum, self._on_signal)
        try:
            self._run()
        finally:
            for signum, old in previous.items():
                signal.signal(signum, old)

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        self.stop()

    def _connect(self) -> bool:
        delay = self.backoff_s
        while not self.stopping:
            try:
                self._consumer = KafkaConsumer(**self._consumer_config)
                self._consumer.subscribe(self.topics)
                if self._producer is None:
                    self._producer = make_producer(
                        self.bootstrap, client_id=f"{self.group_id}-dlt", **self._producer_options
                    )
                return True
            except KafkaError as exc:
                log.warning("kafka not reachable (%s); retrying in %.1fs", type(exc).__name__, delay)
                self._stopping.wait(delay)
                delay = min(delay * 2, self.max_backoff_s)
        return False

    def _run(self) -> None:
        if not self._connect():
            return
        consumer = self._consumer
        assert consumer is not None
        try:
            while not self.stopping:
                try:
                    batches = consumer.poll(timeout_ms=self.poll_timeout_ms)
                except KafkaError as exc:
                    log.warning("poll failed (%s); retrying", type(exc).__name__)
                    self._stopping.wait(self.backoff_s)
                    continue
                if consumer.assignment():
                    self.ready.set()
                for tp, records in batches.items():
                    self._process_partition(consumer, tp, records)
                self._update_lag(consumer)
        finally:
            self.ready.clear()
            consumer.close(autocommit=False)
            if self._own_producer and self._producer is not None:
                self._producer.close(timeout=5)
                self._producer = None

    def _process_partition(self, consumer: KafkaConsumer, tp: TopicPartition, records: list[Any]) -> None:
        """Handle a partition's records in order and commit once after the last one done: a commit per record
        was a broker round trip each, the largest share of a catch-up. A crash before the commit redelivers
        records already applied, which the inbox recognises (apply once), as it always did for the last one."""
        done: int | None = None
        for record in records:
            if self.stopping or not self._process(record):
                # Not done: rewind so the record is fetched again (after restart or on the next poll).
                try:
                    consumer.seek(tp, record.offset)
                except (AssertionError, KafkaError, ValueError):
                    pass  # partition revoked meanwhile: its new owner starts from the committed offset
                break
            done = record.offset
        if done is None:
            return
        try:
            consumer.commit({tp: OffsetAndMetadata(done + 1, "", -1)})
        except KafkaError as exc:
            # A rebalance took the partition: the records will be redelivered and the inbox dedupes them.
            log.warning("commit failed (%s); records may be redelivered", type(exc).__name__)

    def _process(self, record: Any) -> bool:
        """True when the record is done (applied or dead-lettered) and may be committed."""
        headers = list(record.headers or [])
        raw = self.raw_handlers.get(record.topic)
        if raw is not None:
            view = RawRecord(
                record.topic, record.partition, record.offset, record.key, record.value, tuple(headers)
            )
            return self._apply(record, headers, lambda: raw(view), None)
        try:
            envelope = from_kafka(record.key, record.value, headers)
        except MalformedEvent as exc:
            return self._dead_letter(record, exc, attempts=0)
        handler = self.handler_for(envelope["type"])
        if handler is None:
            log.info(
                "no handler for %s: skipped %s[%d]@%d (event %s)",
                envelope["type"],
                record.topic,
                record.partition,
                record.offset,
                envelope["id"],
            )
            CONSUMED.labels(self.group_id, record.topic, "skipped").inc()
            return True
        return self._apply(record, headers, lambda: handler(envelope), envelope["type"])

    def _apply(
        self, record: Any, headers: list[Any], call: Callable[[], Any], event_type: str | None
    ) -> bool:
        """Run the handler call with retries; True when it returned or the record was dead-lettered. A failure
        that is the moment's (the database or a server the handler calls not answering: is_unavailability) is
        waited out however long it lasts, not counted as an attempt, never dead-lettered: the record is fine.
        Past the broker's poll interval the group rebalances and the record is delivered again (apply-once)."""
        delay = self.backoff_s
        attempt = 0
        while True:
            try:
                with consumer_span(record.topic, record.partition, record.offset, headers, event_type):
                    result = call()
                CONSUMED.labels(self.group_id, record.topic, self._outcome(record.topic, result)).inc()
                return True
            except Exception as exc:  # noqa: BLE001 - any handler failure is retried, then dead-lettered
                waiting = is_unavailability(exc)
                attempt += 0 if waiting else 1
                log.warning(
                    "handler failed on %s[%d]@%d %s: %s at %s",
                    record.topic,
                    record.partition,
                    record.offset,
                    "(waiting for a dependency)" if waiting else f"attempt {attempt}/{self.max_attempts}",
                    type(exc).__name__,
                    error_where(exc),
                )
                outcome = "dependency_unavailable" if waiting else "failed_attempt"
                CONSUMED.labels(self.group_id, record.topic, outcome).inc()
                if attempt >= self.max_attempts:
                    return self._dead_letter(record, exc, attempts=attempt)
                if self._stopping.wait(delay):
                    return False  # stopping: leave it uncommitted, the next run retries it
                delay = min(delay * 2, self.max_backoff_s)

    def _outcome(self, topic: str, result: Any) -> str:
        """`applied`, or what a raw handler says it did (a code from a small fixed set, e.g. `duplicate`)."""
        if topic in self.raw_handlers and isinstance(result, str) and OUTCOME.fullmatch(result):
            return result
        return "applied"

    def handler_for(self, event_type: str) -> Handler | None:
        """The handler of `event_type` (the table's entry, or the one handler), None when it is skipped."""
        if self.handlers is not None:
            return self.handlers.get(event_type)
        return self.handler

    def _dead_letter(self, record: Any, exc: BaseException, attempts: int) -> bool:
        assert self._producer is not None
        headers = dead_letter_headers(
            list(record.headers or []),
            topic=record.topic,
            partition=record.partition,
            offset=record.offset,
            exc=exc,
            attempts=attempts,
            group=self.group_id,
            now=self.clock(),
        )
        dlt = record.topic + DLT_SUFFIX
        try:
            future = self._producer.send(dlt, key=record.key, value=record.value, headers=headers)
            future.get(timeout=30)
        except KafkaError as send_error:
            log.error("cannot write %s (%s); will retry the record", dlt, type(send_error).__name__)
            self._stopping.wait(self.backoff_s)
            return False
        log.warning(
            "dead-lettered %s[%d]@%d to %s: %s",
            record.topic,
            record.partition,
            record.offset,
            dlt,
            type(exc).__name__,
        )
        DEAD_LETTERS.labels(self.group_id, record.topic).inc()
        CONSUMED.labels(self.group_id, record.topic, "dead_lettered").inc()
        return True

    def _update_lag(self, consumer: KafkaConsumer) -> None:
        lag: dict[str, int] = {}
        for tp in consumer.assignment():
            high = consumer.highwater(tp)  # from fetch responses: no extra request
            if high is None:
                continue
            try:
                position = consumer.position(tp, timeout_ms=100)
            except (KafkaError, AssertionError):
                continue
            if position is not None:
                lag[tp.topic] = lag.get(tp.topic, 0) + max(0, high - position)
        for topic, value in lag.items():
            CONSUMER_LAG.labels(self.group_id, topic).set(value)


def wait_until(predicate: Callable[[], bool], timeout_s: float, interval_s: float = 0.05) -> bool:
    """Poll `predicate` until true or the deadline passes (tests and start-up checks; never a fixed sleep)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval_s)
    return predicate()
