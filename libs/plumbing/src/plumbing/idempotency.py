"""Idempotency-Key for every POST (docs/conventions.md "HTTP API").

One document per (caller, operation, key) in the service's `idempotency_keys` collection. Its `_id` is a hash
of the caller (azp + sub), the operationId and the key, so a stored response is only ever replayed to the same
principal of the same client for the same operation; anyone else sending the same key is a new request in its
own key space, and the key itself is not stored. The unique `_id` insert is the lock: the first request inserts
`in_progress` and runs; a concurrent request with the same key fails the insert and gets 409
`idempotency-key-in-progress`. When the first request ends its response (status, a safe subset of headers,
body) is stored and later requests with the same key and the same body fingerprint get it replayed; a
different body gets 409 `idempotency-key-reused`.

A replay is a read. It passes the same authentication, role and X-Purpose checks as a fresh request (this
middleware sits after them), and when the stored answer carried personal data it is written to the access log
before it is sent, naming the ids the first answer named (kept with the response; ids only) and the purpose of
*this* request; if the log cannot be written the answer is 503 and nothing is replayed.

The body fingerprint is keyed (plumbing.crypto.RequestFingerprinter, HMAC-SHA256 with a per-service key): the
body of a registration holds names and dates of birth, and an unkeyed hash would let a reader of this store
confirm a guessed identity.

Responses that say "try again" (5xx, 429) are not stored — the key is released so the retry can run. A lock
older than `lock_timeout` (its worker died mid-request) is taken over. Documents expire through a TTL index on
`expires_at`, and expired documents are also ignored on read (a Mongo-wire server without TTL support, or a TTL
monitor that has not run yet, must not turn into a replay after the promised period).

The stored body can hold personal data returned by the POST: a service whose POST operations return personal
data must give the store a sealer (AES-GCM, plumbing.crypto.ResponseSealer), and the app factory refuses to
build such a service without one. Bodies are kept for the retention period of the key only.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Protocol

from pymongo import ASCENDING, ReturnDocument
from pymongo.collection import Collection
from pymongo.errors import DuplicateKeyError
from starlette.concurrency import run_in_threadpool
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from plumbing import metrics, request_context
from plumbing.clock import Clock, as_utc
from plumbing.mongo import request_budget
from plumbing.problems import FieldError, Problem

# Where a request's access-log record waits for the idempotency store (set by access_log.record_for_request).
READ_RECORD = "idempotency.read"

HEADER = "Idempotency-Key"
REPLAYED_HEADER = "Idempotent-Replayed"
COLLECTION = "idempotency_keys"
_KEY = re.compile(r"^[\x21-\x7e]{1,255}$")
# Headers that describe the stored response; hop-by-hop, per-request and credential-bearing ones are dropped.
_KEPT_HEADERS = frozenset(
    {"content-type", "location", "etag", "link", "content-language", "vary", "last-modified"}
)


@dataclass(frozen=True)
class ReadRecord:
    """What the access log recorded for an answer: the resource type and the ids it named (ids only)."""

    resource_type: str
    ids: tuple[str, ...]


@dataclass(frozen=True)
class StoredResponse:
    status: int
    headers: list[tuple[str, str]]
    body: bytes
    read: ReadRecord | None = None  # replayed with the answer, so its replay is logged like the first read


class Sealer(Protocol):
    """Encrypts stored bodies (plumbing.crypto.ResponseSealer); required where a POST returns personal data."""

    def seal(self, plaintext: bytes, associated: bytes) -> bytes: ...

    def open(self, sealed: bytes, associated: bytes) -> bytes: ...


class Fingerprinter(Protocol):
    """Keyed body fingerprints (plumbing.crypto.RequestFingerprinter)."""

    def fingerprint(self, operation_id: str, body: bytes) -> str: ...

    def matches(self, stored: str, operation_id: str, body: bytes) -> bool: ...


class IdempotencyStore:
    def __init__(
        self,
        collection: Callable[[], Collection],
        clock: Clock,
        ttl: timedelta = timedelta(hours=24),
        lock_timeout: timedelta = timedelta(minutes=2),
        sealer: Sealer | None = None,
        *,
        fingerprinter: Fingerprinter,
    ) -> None:
        if ttl < timedelta(hours=24):
            raise ValueError("conventions keep idempotency keys at least 24 h")
        self._collection = collection
        self.clock = clock
        self.ttl = ttl
        self.lock_timeout = lock_timeout
        self.sealer = sealer
        self.fingerprinter = fingerprinter

    def ensure_indexes(self) -> None:
        self._collection().create_index(
            [("expires_at", ASCENDING)], expireAfterSeconds=0, name="ttl_expires_at"
        )

    @staticmethod
    def record_id(client: str, operation_id: str, key: str) -> str:
        return hashlib.sha256(f"{client}\x1f{operation_id}\x1f{key}".encode()).hexdigest()

    def begin(self, client: str, operation_id: str, key: str, body: bytes) -> StoredResponse | None:
        """None: this request holds the lock and must run. A StoredResponse: replay it. Else a 409 Problem."""
        now = self.clock.now()
        record_id = self.record_id(client, operation_id, key)
        document = {
            "_id": record_id,
            "state": "in_progress",
            "fingerprint": self.fingerprinter.fingerprint(operation_id, body),
            "created_at": now,
            "locked_until": now + self.lock_timeout,
            "expires_at": now + self.ttl,
        }
        collection = self._collection()
        for _ in range(3):
            try:
                collection.insert_one(document)
                return None
            except DuplicateKeyError:
                existing = collection.find_one({"_id": record_id})
            if existing is None:
                continue  # expired and removed between our insert and read: try the insert again
            if as_utc(existing["expires_at"]) <= now:
                collection.delete_one({"_id": record_id, "expires_at": existing["expires_at"]})
                continue
            if not self.fingerprinter.matches(str(existing["fingerprint"]), operation_id, body):
                raise Problem("idempotency-key-reused")
            if existing["state"] == "completed":
                return self._stored(record_id, existing)
            if as_utc(existing["locked_until"]) <= now:
                # The first request's worker died holding the lock: take it over atomically.
                taken = collection.find_one_and_update(
                    {"_id": record_id, "state": "in_progress", "locked_until": existing["locked_until"]},
                    {"$set": {"locked_until": now + self.lock_timeout}},
                    return_document=ReturnDocument.AFTER,
                )
                if taken is not None:
                    return None
            raise Problem("idempotency-key-in-progress", retry_after=1)
        raise Problem("idempotency-key-in-progress", retry_after=1)

    def _stored(self, record_id: str, existing: Mapping[str, Any]) -> StoredResponse:
        body = bytes(existing["body"])
        if self.sealer is not None:
            body = self.sealer.open(body, record_id.encode())
        read = existing.get("read")
        return StoredResponse(
            existing["status"],
            [(k, v) for k, v in existing["headers"]],
            body,
            ReadRecord(read["resource_type"], tuple(read["ids"])) if read else None,
        )

    def complete(self, client: str, operation_id: str, key: str, response: StoredResponse) -> None:
        record_id = self.record_id(client, operation_id, key)
        body = response.body if self.sealer is None else self.sealer.seal(response.body, record_id.encode())
        fields: dict[str, Any] = {
            "state": "completed",
            "status": response.status,
            "headers": [[k, v] for k, v in response.headers],
            "body": body,
            "completed_at": self.clock.now(),
        }
        if response.read is not None:
            fields["read"] = {"resource_type": response.read.resource_type, "ids": list(response.read.ids)}
        self._collection().update_one(
            {"_id": record_id, "state": "in_progress"}, {"$set": fields, "$unset": {"locked_until": ""}}
        )

    def release(self, client: str, operation_id: str, key: str) -> None:
        self._collection().delete_one(
            {"_id": self.record_id(client, operation_id, key), "state": "in_progress"}
        )


def _should_store(status: int) -> bool:
    return status < 500 and status != 429


class IdempotencyMiddleware:
    """Applies the store to contract POSTs; sits after validation so rejected requests do not consume a key.

    `post_operations` maps operationIds to their policies (plumbing.security.OperationPolicy); replays of
    operations with `personal_data` are written to `access_log` before anything is sent.
    """

    def __init__(
        self,
        app: ASGIApp,
        store: IdempotencyStore,
        post_operations: Mapping[str, Any],
        service: str,
        access_log: Any = None,
    ):
        self.app = app
        self.store = store
        self.post_operations = post_operations
        self.service = service
        self.access_log = access_log

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "POST":
            await self.app(scope, receive, send)
            return
        operation_id = scope.get("extensions", {}).get("connexion_routing", {}).get("operation_id")
        key = _header(scope, b"idempotency-key")
        if operation_id not in self.post_operations or key is None:
            await self.app(scope, receive, send)
            return
        if not _KEY.match(key):
            raise Problem("bad-request", errors=[FieldError("/header/Idempotency-Key", "pattern")])
        context = request_context.current()
        if context is None or context.caller is None:
            # POSTs of the contract are all secured; this is a wiring error, not a client error
            raise RuntimeError("idempotency needs the authenticated caller")
        client = f"{context.caller.azp}/{context.caller.sub}"

        messages: list[Message] = []
        body = b""
        while True:
            message = await receive()
            messages.append(message)
            body += message.get("body", b"")
            if not message.get("more_body", False):
                break

        stored = await run_in_threadpool(_bounded, self.store.begin, client, operation_id, key, body)
        if stored is not None:
            await self._replay(stored, operation_id, context, send)
            return

        replay = iter(messages)

        async def replay_receive() -> Message:
            try:
                return next(replay)
            except StopIteration:
                return await receive()

        status = 500
        kept: list[tuple[str, str]] = []
        chunks: list[bytes] = []

        async def capture(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                for name, value in message.get("headers", []):
                    if name.decode("latin-1").lower() in _KEPT_HEADERS:
                        kept.append((name.decode("latin-1"), value.decode("latin-1")))
            elif message["type"] == "http.response.body":
                chunks.append(message.get("body", b""))
            await send(message)

        try:
            await self.app(scope, replay_receive, capture)
        except BaseException:
            await run_in_threadpool(_bounded, self.store.release, client, operation_id, key)
            raise
        if _should_store(status):
            response = StoredResponse(status, kept, b"".join(chunks), context.extra.get(READ_RECORD))
            await run_in_threadpool(_bounded, self.store.complete, client, operation_id, key, response)
        else:
            await run_in_threadpool(_bounded, self.store.release, client, operation_id, key)

    async def _replay(self, stored: StoredResponse, operation_id: str, context: Any, send: Send) -> None:
        policy = self.post_operations[operation_id]
        if getattr(policy, "personal_data", False) and stored.status < 300:
            # Fail closed: an answer with personal data leaves only once this read is durably logged.
            if self.access_log is None:
                raise RuntimeError(f"{self.service}: replaying personal data needs the access log")
            read = stored.read or ReadRecord("stored-response", ())
            await run_in_threadpool(
                self.access_log.record_read,
                context.caller,
                context.purpose or "",
                operation_id,
                read.resource_type,
                list(read.ids),
                "replayed",
                context.request_id,
                context.trace_id,
            )
        metrics.IDEMPOTENT_REPLAYS.labels(self.service).inc()
        headers = [(k.encode("latin-1"), v.encode("latin-1")) for k, v in stored.headers]
        headers.append((REPLAYED_HEADER.lower().encode(), b"true"))
        await send({"type": "http.response.start", "status": stored.status, "headers": headers})
        await send({"type": "http.response.body", "body": stored.body})


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", []):
        if key.lower() == name:
            return value.decode("latin-1")
    return None


def _bounded(call: Callable[..., Any], *args: Any) -> Any:
    """A store call within the request's database budget (plumbing.mongo.request_budget): a hung server fails
    it (503) instead of holding the request."""
    with request_budget():
        return call(*args)
