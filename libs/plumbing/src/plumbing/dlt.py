"""Replaying dead letters: put records from `<topic>.dlt` back on `<topic>` (docs/events.md).

Replay reads the DLT from the replay group's committed offsets up to the end offsets seen at start (so records
dead-lettered again during the replay are not chased in a loop), republishes each record's key, value and
original headers to the topic named in its `dlt.origin.topic` header, waits for the ack, and only then commits
past it. A crash mid-replay at worst republishes a record twice; consumers' inboxes make that harmless.

Only the DLT's own origin may be targeted (`X.dlt` -> `X`): a header cannot route a record anywhere else.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from kafka import KafkaConsumer, KafkaProducer
from kafka.structs import OffsetAndMetadata, TopicPartition

from plumbing.kafka import (
    DLT_HEADER_PREFIX,
    DLT_SUFFIX,
    H_ERROR_CLASS,
    H_ERROR_MESSAGE,
    H_ORIGIN_OFFSET,
    H_ORIGIN_PARTITION,
    H_ORIGIN_TOPIC,
    make_producer,
)

log = logging.getLogger(__name__)

REPLAYED_FROM = "replay.from"  # not dlt.*: it survives a second trip to the DLT, for forensics


class ReplayError(RuntimeError):
    pass


@dataclass(frozen=True)
class DeadLetter:
    partition: int
    offset: int
    origin_topic: str | None
    origin_partition: str | None
    origin_offset: str | None
    error_class: str | None
    error_message: str | None
    action: str  # "replayed", "listed" (dry run) or "skipped" (no valid origin)
    new_partition: int | None = None
    new_offset: int | None = None

    def describe(self, dlt_topic: str) -> str:
        where = f"{dlt_topic}[{self.partition}]@{self.offset}"
        origin = f"{self.origin_topic}[{self.origin_partition}]@{self.origin_offset}"
        if self.action == "replayed":
            target = f"{self.origin_topic}[{self.new_partition}]@{self.new_offset}"
            return f"replayed {where} (from {origin}, {self.error_class}) -> {target}"
        return f"{self.action} {where} (from {origin}, {self.error_class}: {self.error_message})"


def _header(headers: list[tuple[str, bytes | None]], name: str) -> str | None:
    for key, value in headers:
        if key == name and value is not None:
            return value.decode("utf-8", errors="replace")
    return None


def replay_dead_letters(
    dlt_topic: str,
    bootstrap: str,
    *,
    group_id: str = "dlt-replay",
    dry_run: bool = False,
    limit: int | None = None,
    timeout_s: float = 60.0,
    producer: KafkaProducer | None = None,
    on_record: Callable[[DeadLetter], None] | None = None,
) -> list[DeadLetter]:
    """Republish the dead letters of `dlt_topic` to their origin topic; returns what was done, in order."""
    if not dlt_topic.endswith(DLT_SUFFIX):
        raise ReplayError(f"{dlt_topic} is not a dead-letter topic (*{DLT_SUFFIX})")
    origin_expected = dlt_topic[: -len(DLT_SUFFIX)]
    consumer = KafkaConsumer(
        bootstrap_servers=bootstrap,
        group_id=group_id,
        client_id=f"{group_id}-replay",
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        consumer_timeout_ms=1000,
    )
    own_producer = producer is None and not dry_run
    if own_producer:
        producer = make_producer(bootstrap, client_id=f"{group_id}-replay")
    done: list[DeadLetter] = []
    try:
        partitions = consumer.partitions_for_topic(dlt_topic)
        if not partitions:
            raise ReplayError(f"topic {dlt_topic} does not exist")
        tps = [TopicPartition(dlt_topic, p) for p in sorted(partitions)]
        # Manual assignment (still committing as group_id): replay is a one-shot batch, no rebalancing wanted.
        consumer.assign(tps)
        end = consumer.end_offsets(tps)
        for tp in tps:
            committed = consumer.committed(tp)
            if committed is None:
                consumer.seek_to_beginning(tp)
            else:
                consumer.seek(tp, committed)
        deadline = time.monotonic() + timeout_s
        while any(consumer.position(tp) < end[tp] for tp in tps):
            if time.monotonic() > deadline:
                raise ReplayError(f"replay of {dlt_topic} did not reach the end offsets within {timeout_s}s")
            if limit is not None and len(done) >= limit:
                break
            batches = consumer.poll(timeout_ms=500)
            for tp, records in batches.items():
                for record in records:
                    if record.offset >= end[tp] or (limit is not None and len(done) >= limit):
                        consumer.seek(tp, record.offset)  # beyond this run's snapshot: leave it
                        break
                    item = _replay_one(record, origin_expected, producer, dry_run)
                    if not dry_run:
                        consumer.commit({tp: OffsetAndMetadata(record.offset + 1, "", -1)})
                    done.append(item)
                    if on_record:
                        on_record(item)
        return done
    finally:
        consumer.close(autocommit=False)
        if own_producer and producer is not None:
            producer.close(timeout=5)


def _replay_one(
    record: Any, origin_expected: str, producer: KafkaProducer | None, dry_run: bool
) -> DeadLetter:
    headers = list(record.headers or [])
    origin = _header(headers, H_ORIGIN_TOPIC)
    base = {
        "partition": record.partition,
        "offset": record.offset,
        "origin_topic": origin,
        "origin_partition": _header(headers, H_ORIGIN_PARTITION),
        "origin_offset": _header(headers, H_ORIGIN_OFFSET),
        "error_class": _header(headers, H_ERROR_CLASS),
        "error_message": _header(headers, H_ERROR_MESSAGE),
    }
    if origin != origin_expected:
        log.error("dead letter at offset %d names no valid origin; skipped", record.offset)
        return DeadLetter(action="skipped", **base)
    if dry_run:
        return DeadLetter(action="listed", **base)
    assert producer is not None
    kept = [(k, v or b"") for k, v in headers if not k.startswith(DLT_HEADER_PREFIX) and k != REPLAYED_FROM]
    kept.append((REPLAYED_FROM, f"{record.topic}/{record.partition}/{record.offset}".encode()))
    metadata = producer.send(origin, key=record.key, value=record.value, headers=kept).get(timeout=30)
    return DeadLetter(action="replayed", new_partition=metadata.partition, new_offset=metadata.offset, **base)
