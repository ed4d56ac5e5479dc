"""The tip of a hash chain stored in MongoDB, found without sorting the chain.

A hash-chained log (the access log, the exchange's message log) appends entry n+1 after reading entry n. Finding
n by sorting the collection with a limit costs a scan of the whole log on some Mongo-wire servers
(docs/engineering.md), so every append got slower as the log grew. Instead a head document holds the last known
`(seq, hash)` and the tip is found from it by `_id` equality forward (cheap on every server). The head lags by an
entry or two at most (a writer between its insert and its head update, or one that died there), so the walk is
short; without a head it starts from the genesis. The head only ever moves forward.

Each ChainHead also remembers the last tip it found or appended, and the next `tip()` walks forward from there
instead of from the head: one read by `_id` when no other writer appended meanwhile, one more per entry they
did (several processes append to one chain: API workers and consumers). Entries never change, so a remembered
tip is never wrong, only possibly behind.

Appending costs one round trip on the request path when this process appended last (`guess` + insert): the
insert at the remembered tip + 1 is itself the check (a duplicate key means another writer got there first, and
`tip()` walks on). A remembered tip older than `FRESH_S` is not trusted without a look (entries are only ever
removed from the start of the chain, years old, but a process idle that long re-reads it anyway). The head's
update is taken off the caller's path (`advance_later`): a thread of this process moves it to the newest entry it
appended, at most every HEAD_INTERVAL_S, so the entries of that interval cost one write; `flush()` waits for it (verification, tests, shutdown). A head
behind by the entries of the last few milliseconds is what the head has always tolerated (a writer that dies
between its insert and its update).
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable
from typing import Any

from pymongo.collection import Collection
from pymongo.errors import DuplicateKeyError, PyMongoError

log = logging.getLogger(__name__)

FRESH_S = 60.0  # a remembered tip younger than this is appended after without a look
IDLE_S = 5.0  # the head's thread ends after this long with nothing to write (started again when needed)
# The head's thread writes at most this often: a head write per read cost as much as the read's own entry
# (a py-spy profile of the personal-data read, docs/performance.md), and the head only shortens the walk to the tip.
HEAD_INTERVAL_S = 0.1


class ChainHead:
    """`entries` holds the chain (entry n has `_id` `entry_id(n)` and a `hash`); `heads` holds the head document
    `head_id` (several chains may share one heads collection, e.g. one chain per country)."""

    def __init__(
        self,
        entries: Collection,
        heads: Collection,
        head_id: str,
        genesis_hash: str,
        entry_id: Callable[[int], Any] = lambda seq: seq,
    ) -> None:
        self.entries = entries
        self.heads = heads
        self.head_id = head_id
        self.genesis_hash = genesis_hash
        self.entry_id = entry_id
        self._known: tuple[int, str] | None = None
        self._known_at = 0.0
        self._pending: tuple[int, str] | None = None  # the newest entry whose head update is still to write
        self._written = threading.Condition()
        self._writer: threading.Thread | None = None
        self._writer_pid = 0

    def tip(self) -> tuple[int, str]:
        """(seq, hash) of the last entry; (0, genesis hash) for an empty chain. Found forward from the tip this
        instance last saw (see the module doc), else from the head document."""
        self._remember(self._walk(*(self._known or self._head())))
        assert self._known is not None
        return self._known

    def guess(self) -> tuple[int, str]:
        """The tip to append after without a look: the one this instance appended or found last if that was
        within FRESH_S, else `tip()`. The append's insert checks it (a duplicate key: call `tip()` and retry)."""
        if self._known is not None and time.monotonic() - self._known_at < FRESH_S:
            return self._known
        return self.tip()

    def _remember(self, tip: tuple[int, str]) -> None:
        if self._known is None or tip[0] >= self._known[0]:
            self._known = tip
        self._known_at = time.monotonic()

    def read_tip(self) -> tuple[int, str]:
        """The tip as stored now, from the head document forward (for readers: nothing is remembered)."""
        return self._walk(*self._head())

    def _head(self) -> tuple[int, str]:
        head = self.heads.find_one({"_id": self.head_id}, projection={"seq": 1, "hash": 1})
        return (int(head["seq"]), str(head["hash"])) if head else (0, self.genesis_hash)

    def _walk(self, seq: int, digest: str) -> tuple[int, str]:
        while True:
            following = self.entries.find_one({"_id": self.entry_id(seq + 1)}, projection={"hash": 1})
            if following is None:
                return seq, digest
            seq, digest = seq + 1, str(following["hash"])

    def stored(self) -> dict[str, Any] | None:
        """The head document as stored (verification compares it with the chain's real tip)."""
        return self.heads.find_one({"_id": self.head_id})

    def advance(self, seq: int, digest: str) -> None:
        """Move the head to entry `seq` once it is durable. Only ever forward: a slower writer with a smaller seq
        never moves it back; a head that lags (a crash before this) is normal and repaired by the next write."""
        self._remember((seq, digest))
        try:
            self.heads.update_one(
                {"_id": self.head_id, "seq": {"$lt": seq}},
                {"$set": {"seq": seq, "hash": digest}},
                upsert=True,
            )
        except DuplicateKeyError:
            pass  # the head is already past `seq`: the upsert found no matching document and collided

    def advance_later(self, seq: int, digest: str) -> None:
        """`advance` off the caller's path: remember entry `seq` as the tip now, and let this process's head
        thread move the head to the newest such entry (one write for a burst)."""
        self._remember((seq, digest))
        with self._written:
            if self._pending is None or seq > self._pending[0]:
                self._pending = (seq, digest)
            self._written.notify_all()
            if self._writer is None or not self._writer.is_alive() or self._writer_pid != os.getpid():
                self._writer_pid = os.getpid()  # a thread started before a fork does not exist in the child
                self._writer = threading.Thread(target=self._write_heads, name="chain-head", daemon=True)
                self._writer.start()

    def flush(self, timeout_s: float = 10.0) -> bool:
        """Wait until the head holds every entry passed to `advance_later`; False if it could not within
        `timeout_s` (the database is unavailable: the head lags, which the next append repairs)."""
        deadline = time.monotonic() + timeout_s
        with self._written:
            while self._pending is not None:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._written.wait(min(left, 0.05))
        return True

    def _write_heads(self) -> None:
        while True:
            with self._written:
                if self._pending is None:
                    self._written.wait(IDLE_S)
                if self._pending is None:
                    self._writer = None
                    return
                seq, digest = self._pending
            try:
                self.advance(seq, digest)
            except PyMongoError as exc:  # the head lags until the next append succeeds in moving it
                log.warning("chain head %s not moved to %s: %s", self.head_id, seq, type(exc).__name__)
                time.sleep(0.5)
                continue
            with self._written:
                if self._pending == (seq, digest):
                    self._pending = None
                self._written.notify_all()
            time.sleep(HEAD_INTERVAL_S)  # entries appended meanwhile are taken together
