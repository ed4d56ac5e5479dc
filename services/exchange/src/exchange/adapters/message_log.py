"""The message log in MongoDB: one hash chain per country (`exchange.domain.evidence`), metadata only.

Entries are `{_id: "<country>:<seq>", country, seq, ...fields, prev_hash, hash}`. Concurrent writers cannot
fork a chain: whoever inserts `<country>:<seq>` first owns that link, a writer that loses the race re-reads the
tip and tries the next one. The tip is found from a head document per country (`message_log_head`,
plumbing.chain_head), never by sorting the log, so an append costs the same at any length. An entry is appended
once per (country, envelope id, direction): a retried delivery does not log twice.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from pymongo.collection import Collection
from pymongo.errors import DuplicateKeyError
from pymongo.write_concern import WriteConcern

from exchange.domain.evidence import GENESIS_HASH, ChainReport, chained, first_logged_since, verify_chain
from plumbing.chain_head import ChainHead

COLLECTION = "message_log"


class MongoMessageLog:
    def __init__(self, database: Any, *, collection: str = COLLECTION, max_attempts: int = 50) -> None:
        durable = WriteConcern(w="majority", j=True)
        self.entries_collection: Collection = database.get_collection(collection, write_concern=durable)
        self.heads: Collection = database.get_collection(f"{collection}_head", write_concern=durable)
        self.max_attempts = max_attempts
        self._indexed = False
        self._chains: dict[str, ChainHead] = {}

    def _ensure_indexes(self) -> None:
        if not self._indexed:
            self.entries_collection.create_index([("country", 1), ("seq", 1)], unique=True)
            self.entries_collection.create_index(
                [("country", 1), ("envelope_id", 1), ("direction", 1)], unique=True
            )
            self._indexed = True

    def append(self, country: str, fields: Mapping[str, Any]) -> dict[str, Any]:
        """Append an entry to the country's chain, or return the entry already logged for this envelope and
        direction. Usually one write before it returns: the insert after the tip this process last appended (the
        head is moved after, plumbing.chain_head); a collision's index tells a retried delivery (the envelope is
        logged already) from a lost race for the link (another writer appended: walk to the tip and retry)."""
        self._ensure_indexes()
        chain = self._chain(country)
        seq, digest = chain.guess()
        for _ in range(self.max_attempts):
            entry = chained({"seq": seq, "hash": digest} if seq else None, {**fields, "country": country})
            try:
                self.entries_collection.insert_one({"_id": f"{country}:{entry['seq']}", **entry})
            except DuplicateKeyError as exc:
                index = (exc.details or {}).get("keyPattern")
                if index is None or "envelope_id" in index:  # logged already (or the server does not say)
                    existing = self.entries_collection.find_one(
                        {
                            "country": country,
                            "envelope_id": fields["envelope_id"],
                            "direction": fields["direction"],
                        },
                        projection={"_id": 0},
                    )
                    if existing is not None:
                        return dict(existing)
                seq, digest = chain.tip()  # another writer took this link: walk past it
                continue
            chain.advance_later(int(entry["seq"]), str(entry["hash"]))
            return entry
        raise RuntimeError("message log: too many concurrent writers")

    def _chain(self, country: str) -> ChainHead:
        if country not in self._chains:
            self._chains[country] = self._new_chain(country)
        return self._chains[country]

    def _new_chain(self, country: str) -> ChainHead:
        return ChainHead(
            self.entries_collection,
            self.heads,
            head_id=country,
            genesis_hash=GENESIS_HASH,
            entry_id=lambda seq: f"{country}:{seq}",
        )

    def entries(self, country: str) -> list[dict[str, Any]]:
        cursor = self.entries_collection.find({"country": country}, projection={"_id": 0}).sort("seq", 1)
        return [dict(doc) for doc in cursor]

    def after(self, country: str, seq: int, limit: int) -> list[dict[str, Any]]:
        # A bounded range on the (country, seq) index, sorted here: the embedded server answers a sort with a
        # limit by scanning the collection (docs/performance.md), a range on a secondary index in constant time.
        query = {"country": country, "seq": {"$gt": seq, "$lte": seq + limit}}
        found = self.entries_collection.find(query, projection={"_id": 0})
        return sorted((dict(doc) for doc in found), key=lambda entry: int(entry["seq"]))

    def first_since(self, country: str, since: datetime) -> int:
        tip, _ = self._chain(country).read_tip()

        def at_seq(seq: int) -> Mapping[str, Any] | None:
            return self.entries_collection.find_one({"_id": f"{country}:{seq}"}, projection={"_id": 0})

        return first_logged_since(tip, at_seq, since)

    def verify(self, country: str) -> ChainReport:
        return verify_chain(self.entries(country))
