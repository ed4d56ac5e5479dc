"""The access log: the one path every read of personal data goes through (docs/conventions.md "Access log").

A handler that returns personal data calls `record_read(...)` with the ids it is about to return *before* the
body is sent. The entry is written durably (write concern majority, journaled); if that fails the call raises
`AccessLogUnavailable`, which the app turns into a 503 without the body. Entries hold ids and codes only.

Tamper evidence: entries form a hash chain. Entry `seq` stores `prev_hash` (the previous entry's `hash`) and
its own `hash` = SHA-256 over the canonical JSON of all its other fields. Concurrent writers (threads,
processes, replicas) cannot fork the chain because `seq` is the document `_id`: whoever inserts `seq` first
owns it, and a writer that loses the race re-reads the tip and tries `seq + 1` with the new previous hash. A
separate chain-head document (`{_id: "head", seq, hash}`, only ever moved forward atomically) lets
`verify_chain()` also detect entries cut off the end of the log. The chain makes edits and deletions
*detectable*; someone able to rewrite the whole collection and the head could rebuild it, which is why the head
hash should also be exported elsewhere (see docs/data-protection.md).

An append is one round trip on the request path when the process appended last: the insert after the tip it
remembers; the head moves after the answer (plumbing.chain_head), so it may lag by the entries of the last few
milliseconds, as it always could for a writer that died between the two writes.
"""

from __future__ import annotations

import hashlib
import json
import logging
import random
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

import pymongo
from prometheus_client import Counter
from pymongo.collection import Collection
from pymongo.database import Database
from pymongo.errors import DuplicateKeyError, PyMongoError
from pymongo.write_concern import WriteConcern

from plumbing.chain_head import ChainHead
from plumbing.clock import Clock, SystemClock, as_utc, rfc3339, to_millis
from plumbing.errors import AccessLogUnavailable

if TYPE_CHECKING:
    from plumbing.auth import Caller

log = logging.getLogger(__name__)

GENESIS_HASH = "0" * 64
FORMAT_VERSION = 1
HEAD_ID = "head"
# Where the chain starts once old entries were removed (retention): the seq and hash of the last entry removed.
CHECKPOINT_ID = "checkpoint"

WRITE_FAILURES = Counter("access_log_write_failures", "Access-log entries that could not be written")
WRITES = Counter("access_log_writes", "Access-log entries written")


@dataclass(frozen=True)
class AccessLogEntry:
    seq: int
    time: datetime
    sub: str
    azp: str
    country: str
    agency: str
    roles: tuple[str, ...]
    acting_user: str | None
    purpose: str
    operation_id: str
    resource_type: str
    ids: tuple[str, ...]
    outcome: str
    request_id: str | None
    trace_id: str | None
    prev_hash: str
    hash: str

    @classmethod
    def from_document(cls, doc: dict[str, Any]) -> AccessLogEntry:
        return cls(
            seq=doc["_id"],
            time=as_utc(doc["time"]),
            sub=doc["sub"],
            azp=doc["azp"],
            country=doc["country"],
            agency=doc["agency"],
            roles=tuple(doc["roles"]),
            acting_user=doc.get("acting_user"),
            purpose=doc["purpose"],
            operation_id=doc["operation_id"],
            resource_type=doc["resource_type"],
            ids=tuple(doc["ids"]),
            outcome=doc["outcome"],
            request_id=doc.get("request_id"),
            trace_id=doc.get("trace_id"),
            prev_hash=doc["prev_hash"],
            hash=doc["hash"],
        )


@dataclass(frozen=True)
class ChainReport:
    ok: bool
    checked: int
    first_bad_seq: int | None = None
    reason: str | None = None


def entry_hash(doc: dict[str, Any]) -> str:
    """SHA-256 over the canonical JSON of every stored field except `hash` itself (sorted keys, no spaces,
    UTF-8, time as RFC 3339 with milliseconds). Any change to any field, or to the order, changes it."""
    body = {key: value for key, value in doc.items() if key != "hash"}
    body["_id"] = int(body["_id"])
    body["time"] = rfc3339(body["time"])
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


class AccessLog:
    """Durable, hash-chained access log in `db[collection]` (+ `db[collection + "_head"]`).

    `purposes` (the X-Purpose vocabulary) rejects unknown purposes early. `fault` is the test hook for
    failure injection: it is called before every database write and may raise a `PyMongoError` (for example
    `pymongo.errors.AutoReconnect`) to simulate an unavailable database. `timeout_s` bounds one `record_read`
    so that a stuck database turns into a prompt 503 rather than a hung request.
    """

    def __init__(
        self,
        db: Database,
        clock: Clock | None = None,
        *,
        collection: str = "access_log",
        purposes: Iterable[str] | None = None,
        fault: Callable[[], None] | None = None,
        timeout_s: float = 5.0,
        max_attempts: int = 100,
    ) -> None:
        durable = WriteConcern(w="majority", j=True)
        self.entries: Collection = db.get_collection(collection, write_concern=durable)
        self.head: Collection = db.get_collection(f"{collection}_head", write_concern=durable)
        # The tip is found from the head document, never by sorting the log (plumbing.chain_head).
        self.chain = ChainHead(self.entries, self.head, HEAD_ID, GENESIS_HASH)
        self.clock: Clock = clock or SystemClock()
        self.purposes = frozenset(purposes) if purposes is not None else None
        self.fault = fault
        self.timeout_s = timeout_s
        self.max_attempts = max_attempts
        self._indexes_ready = False
        self._index_lock = threading.Lock()

    # ------------------------------------------------------------------------------------------- write

    def record_read(
        self,
        caller: Caller,
        purpose: str,
        operation_id: str,
        resource_type: str,
        ids: Sequence[str],
        outcome: str,
        request_id: str | None,
        trace_id: str | None,
    ) -> AccessLogEntry:
        """Write one entry (one per request, naming every id returned) and return it once it is durable.

        Raises `AccessLogUnavailable` if it cannot be written; `ValueError` for a call that breaks the
        contract (unknown purpose, ids that are not strings) because that is a bug, not an outage."""
        if self.purposes is not None and purpose not in self.purposes:
            raise ValueError(f"unknown purpose {purpose!r}")
        if isinstance(ids, str) or not all(isinstance(i, str) for i in ids):
            raise ValueError("ids must be a sequence of id strings")
        fields = {
            "v": FORMAT_VERSION,
            "time": to_millis(self.clock.now()),
            "sub": caller.sub,
            "azp": caller.azp,
            "country": caller.country,
            "agency": caller.agency,
            "roles": sorted(caller.roles),
            "acting_user": caller.acting_user,
            "purpose": purpose,
            "operation_id": operation_id,
            "resource_type": resource_type,
            "ids": list(ids),
            "outcome": outcome,
            "request_id": request_id,
            "trace_id": trace_id,
        }
        try:
            with pymongo.timeout(self.timeout_s):
                self._ensure_indexes()
                doc = self._append(fields)
        except PyMongoError as exc:
            WRITE_FAILURES.inc()
            log.error("access log write failed: %s", type(exc).__name__)
            raise AccessLogUnavailable("the access log cannot be written") from None
        WRITES.inc()
        return AccessLogEntry.from_document(doc)

    def _append(self, fields: dict[str, Any]) -> dict[str, Any]:
        # One round trip when this process appended last: the insert after the remembered tip is the check.
        tip_seq, tip_hash = self.chain.guess()
        for attempt in range(self.max_attempts):
            seq = tip_seq + 1
            doc = {"_id": seq, **fields, "prev_hash": tip_hash}
            doc["hash"] = entry_hash(doc)
            self._fault()
            try:
                self.entries.insert_one(doc)
            except DuplicateKeyError:
                # Another writer took this seq: walk to the real tip. A little jitter keeps many contending
                # writers from retrying in lock-step.
                time.sleep(random.uniform(0, 0.002 * min(attempt, 10)))
                tip_seq, tip_hash = self.chain.tip()
                continue
            # The head only speeds up finding the tip: it is moved after the answer, not before it.
            self.chain.advance_later(seq, doc["hash"])
            return doc
        raise PyMongoError("access log: too much contention for the chain tip")

    def flush(self, timeout_s: float = 10.0) -> bool:
        """Wait until the head holds this process's last entry (plumbing.chain_head.ChainHead.flush)."""
        return self.chain.flush(timeout_s)

    def _fault(self) -> None:
        if self.fault is not None:
            self.fault()

    def _ensure_indexes(self) -> None:
        if self._indexes_ready:
            return
        with self._index_lock:
            if not self._indexes_ready:
                self.entries.create_index([("ids", 1), ("_id", 1)])
                self.entries.create_index([("sub", 1), ("time", 1)])
                self.entries.create_index([("time", 1)])
                self._indexes_ready = True

    # ------------------------------------------------------------------------------------------ verify

    def verify_chain(self) -> ChainReport:
        """Walk the whole chain: contiguous seqs from 1 (or from the checkpoint after `prune`), each `prev_hash`
        equal to the previous `hash`, each `hash` recomputed, and the head not beyond (or different from) the
        stored tip. Entries this process appended are in the head first."""
        self.flush()
        start_seq, previous_hash = self.checkpoint()
        expected_seq, checked = start_seq + 1, 0
        after = {"_id": {"$gt": start_seq}} if start_seq else {}
        for doc in self.entries.find(after).sort("_id", pymongo.ASCENDING):
            seq = doc["_id"]
            if seq != expected_seq:
                return ChainReport(False, checked, expected_seq, f"entry {expected_seq} is missing")
            if doc.get("prev_hash") != previous_hash:
                return ChainReport(False, checked, seq, "previous-hash link broken")
            if entry_hash(doc) != doc.get("hash"):
                return ChainReport(False, checked, seq, "entry content does not match its hash")
            previous_hash, expected_seq, checked = doc["hash"], seq + 1, checked + 1
        head = self.head.find_one({"_id": HEAD_ID})
        if head is None:
            if checked:
                return ChainReport(False, checked, None, "chain head is missing")
            return ChainReport(True, 0)
        if head["seq"] >= expected_seq:
            return ChainReport(False, checked, expected_seq, "entries after the last stored one were removed")
        linked = self.entries.find_one({"_id": head["seq"]}, projection={"hash": 1})
        if linked is None or linked["hash"] != head["hash"]:
            return ChainReport(False, checked, head["seq"], "chain head does not match its entry")
        return ChainReport(True, checked)

    # --------------------------------------------------------------------------------------- retention

    def checkpoint(self) -> tuple[int, str]:
        """(seq, hash) of the last entry removed by `prune`; (0, genesis hash) while none was."""
        found = self.head.find_one({"_id": CHECKPOINT_ID}, projection={"seq": 1, "hash": 1})
        return (int(found["seq"]), str(found["hash"])) if found else (0, GENESIS_HASH)

    def prune(self, due: Callable[[datetime], bool], *, limit: int = 1000) -> int:
        """Remove the oldest entries whose time is `due` (past their retention), from the start of the chain,
        never the tip; the number removed. The checkpoint (seq and hash of the last one removed) is written
        first, so `verify_chain` checks the rest from it whether or not the removal completes. Entries are
        read and removed by `_id` equality from the checkpoint on (no scan of the log: a call that finds nothing
        due costs three reads; about 2 ms per entry removed, measured on the embedded server); at most `limit`
        per call."""
        start_seq, _ = self.checkpoint()
        tip_seq, _ = self.chain.read_tip()
        removable: list[int] = []
        last_hash = ""
        while len(removable) < limit and start_seq + len(removable) + 1 < tip_seq:  # never the tip
            seq = start_seq + len(removable) + 1
            entry = self.entries.find_one({"_id": seq}, projection={"time": 1, "hash": 1})
            if entry is None or not due(as_utc(entry["time"])):
                break
            removable.append(seq)
            last_hash = str(entry["hash"])
        if not removable:
            return 0
        try:
            self.head.update_one(
                {"_id": CHECKPOINT_ID, "seq": {"$lt": removable[-1]}},
                {"$set": {"seq": removable[-1], "hash": last_hash}},
                upsert=True,
            )
        except DuplicateKeyError:
            return 0  # another process moved the checkpoint further meanwhile: it removes these
        # By id, not by a range of `_id`: some Mongo-wire servers scan the whole log for a range (docs/engineering.md)
        return int(self.entries.delete_many({"_id": {"$in": removable}}).deleted_count)

    # ------------------------------------------------------------------------------------------- query

    def query(
        self,
        *,
        person_id: str | None = None,
        actor_sub: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        purpose: str | None = None,
        country: str | None = None,
        after_seq: int | None = None,
        limit: int = 100,
    ) -> list[AccessLogEntry]:
        """Entries for auditors, oldest first: who read `person_id` (any record id), what `actor_sub` read, in
        [since, until), for `purpose`, by readers of `country`. Page with `after_seq` = the last entry's seq.

        Member order matters to the embedded server's planner (docs/engineering.md): the most selective indexed
        condition first (a record id, then an actor, then the period), the country last."""
        where: dict[str, Any] = {}
        if person_id is not None:
            where["ids"] = person_id
        if actor_sub is not None:
            where["sub"] = actor_sub
        period: dict[str, Any] = {}
        if since is not None:
            period["$gte"] = to_millis(since)
        if until is not None:
            period["$lt"] = to_millis(until)
        if period:
            where["time"] = period
        if purpose is not None:
            where["purpose"] = purpose
        if country is not None:
            where["country"] = country
        if after_seq is not None:
            where["_id"] = {"$gt": after_seq}
        cursor = self.entries.find(where).sort("_id", pymongo.ASCENDING).limit(max(1, min(limit, 1000)))
        return [AccessLogEntry.from_document(doc) for doc in cursor]


def record_for_request(
    access_log: AccessLog, resource_type: str, ids: Sequence[str], outcome: str = "ok"
) -> AccessLogEntry:
    """The read of the current request's answer: caller, purpose, operation, request and trace id come from the
    request context. The record is also kept on the context, so that an Idempotency-Key replay of this answer
    is logged with the same ids (plumbing.idempotency)."""
    from plumbing import request_context
    from plumbing.idempotency import READ_RECORD, ReadRecord

    context = request_context.current()
    if context is None or context.caller is None:
        raise RuntimeError("record_for_request needs an authenticated request")
    entry = access_log.record_read(
        context.caller,
        context.purpose or "",
        context.operation_id or "",
        resource_type,
        list(ids),
        outcome,
        context.request_id,
        context.trace_id,
    )
    context.extra[READ_RECORD] = ReadRecord(resource_type, tuple(ids))
    return entry


def read_recorder(access_log: AccessLog) -> Callable[[Caller, str, Sequence[str]], None]:
    """The `record_read` of a service's Deps: (caller, resource type, ids) -> `record_for_request`. The entry's
    caller and purpose are the request context's (the verified token and X-Purpose), the same caller the handler
    passes; the argument is there so that a service layer tested on fakes sees who read what."""

    def record_read(caller: Caller, resource_type: str, ids: Sequence[str]) -> None:
        record_for_request(access_log, resource_type, ids)

    return record_read
