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
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from pymongo.collection import Collection
from pymongo.errors import DuplicateKeyError


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

    def tip(self) -> tuple[int, str]:
        """(seq, hash) of the last entry; (0, genesis hash) for an empty chain. Found forward from the tip this
        instance last saw (see the module doc), else from the head document."""
        self._known = self._walk(*(self._known or self._head()))
        return self._known

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
        self._known = max(self._known or (0, self.genesis_hash), (seq, digest), key=lambda tip: tip[0])
        try:
            self.heads.update_one(
                {"_id": self.head_id, "seq": {"$lt": seq}},
                {"$set": {"seq": seq, "hash": digest}},
                upsert=True,
            )
        except DuplicateKeyError:
            pass  # the head is already past `seq`: the upsert found no matching document and collided
