"""Evidence: canonical digests of form content and the hash chain of a country's message log.

A message-log entry holds metadata only (form type, version, case reference, sender, recipient, times, content
digest, envelope, signature and receipt ids), never content. Entry `seq` stores the previous entry's hash and
its own hash over every other field, like the access log: editing, removing or reordering an entry breaks the
chain from that entry on, and `verify_chain` names the first broken link.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

GENESIS_HASH = "0" * 64
DIGEST_PREFIX = "sha256:"


EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def logged_at(entry: Mapping[str, Any]) -> datetime:
    """When an entry was logged (its `logged_at`, else the instant it records)."""
    logged = entry.get("logged_at") or entry.get("received_at") or entry.get("sent_at")
    return datetime.fromisoformat(str(logged).replace("Z", "+00:00")) if logged else EPOCH


def first_logged_since(tip: int, at_seq: Callable[[int], Mapping[str, Any] | None], since: datetime) -> int:
    """The seq of the first entry of a chain (1..tip) logged at or after `since`, tip + 1 when there is none, by
    bisection over the seq (entries are logged in turn): log2(tip) point reads, whatever the chain's length."""
    low, high = 1, tip + 1
    while low < high:
        middle = (low + high) // 2
        entry = at_seq(middle)
        if entry is None or logged_at(entry) >= since:
            high = middle
        else:
            low = middle + 1
    return low


def canonical(value: Any) -> bytes:
    """Sorted keys, no spaces, UTF-8: the same content always gives the same bytes (and digest)."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def content_digest(content: Any) -> str:
    return DIGEST_PREFIX + hashlib.sha256(canonical(content)).hexdigest()


def entry_hash(entry: Mapping[str, Any]) -> str:
    return hashlib.sha256(canonical({k: v for k, v in entry.items() if k != "hash"})).hexdigest()


def chained(previous: Mapping[str, Any] | None, fields: Mapping[str, Any]) -> dict[str, Any]:
    """The next entry after `previous` (None: the first), with `seq`, `prev_hash` and `hash` set."""
    entry = {
        **fields,
        "seq": (int(previous["seq"]) + 1) if previous else 1,
        "prev_hash": previous["hash"] if previous else GENESIS_HASH,
    }
    entry["hash"] = entry_hash(entry)
    return entry


@dataclass(frozen=True)
class ChainReport:
    ok: bool
    checked: int
    first_broken_seq: int | None = None
    reason: str | None = None


def verify_chain(entries: Sequence[Mapping[str, Any]]) -> ChainReport:
    """Entries in `seq` order from 1: every link and hash, reporting the first that does not hold."""
    previous_hash = GENESIS_HASH
    for expected_seq, entry in enumerate(entries, start=1):
        seq = int(entry.get("seq", -1))
        if seq != expected_seq:
            return ChainReport(False, expected_seq - 1, expected_seq, "missing or reordered entry")
        if entry.get("prev_hash") != previous_hash:
            return ChainReport(False, expected_seq - 1, seq, "link to the previous entry broken")
        if entry.get("hash") != entry_hash(entry):
            return ChainReport(False, expected_seq - 1, seq, "entry altered")
        previous_hash = str(entry["hash"])
    return ChainReport(True, len(entries))
