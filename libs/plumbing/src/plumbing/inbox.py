"""Apply-once for consumers: Kafka delivers at least once, each consumer applies each event exactly once.

Two shapes, both relying only on single-document atomicity (a standalone MongoDB has nothing more):

1. The effect IS the inbox record (a consumer that records events it received, e.g. the skeleton services):
   `Inbox(collection, "referral.identification-events").record_once(envelope)` inserts one document whose
   `_id` is "<consumer>:<event id>"; a second delivery hits the `_id` uniqueness and returns False. Each call
   logs one line ("event applied" / "duplicate delivery ignored", ids and type only; the JSON formatter adds
   the trace id of the consumer span). Fields named in `keep` are computed from each envelope and stored with
   its record; `Inbox.page(request, **where)` lists the records (plumbing.pagination, `updated_at` =
   `received_at`) and `Inbox.view(row)` shows one as ids and codes.

2. The effect is a change to an aggregate document: make the change and the dedupe mark one atomic update,
   guarded by the event id not being in the document's `applied_event_ids`:

       apply_once(Referral, {"_id": referral_id}, envelope["id"], {"$set": {"status": "open"}})

   which runs update_one({"_id": ..., "applied_event_ids": {"$ne": id}},
                         {"$set": {...}, "$addToSet": {"applied_event_ids": id}}).
   A redelivery matches nothing, so it changes nothing. With upsert=True the first delivery may create the
   document; a concurrent duplicate then collides on `_id` and is reported as already applied.

Never do "read, check, then write" in two steps: two deliveries racing would both pass the check.
Inbox records and `applied_event_ids` must be kept at least as long as the topic plus its DLT retain events
(asyncapi.yaml), or a replay could apply an old event again.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from mongoengine import Document
from pymongo.collection import Collection
from pymongo.errors import DuplicateKeyError

from plumbing import request_context
from plumbing.config import platform_config
from plumbing.pagination import Page, PageRequest, find_page

APPLIED = "applied_event_ids"
INBOX_ENTRY = "inbox-entry"  # its record type in the configuration's `retention`
logger = logging.getLogger(__name__)


def _collection(source: type[Document] | Collection) -> Collection:
    if isinstance(source, Collection):
        return source
    return source._get_collection()


class Inbox:
    """Records `(consumer, event id)` once. Stores the envelope (ids and codes only, by the event schemas)."""

    def __init__(
        self,
        collection: type[Document] | Collection,
        consumer_name: str,
        *,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        keep: Mapping[str, Callable[[Mapping[str, Any]], Any]] | None = None,
        kept_for: timedelta | None = None,
    ) -> None:
        """`keep` names fields stored with every record, each computed from the envelope (ids and codes only),
        e.g. `{"country": plumbing.events.owner_country}` to list the records by country. `kept_for` is how long
        a record stays (a TTL index on `received_at`); by default the platform configuration's retention of
        `inbox-entry`, as long as the topics keep their events, so no redelivery can outlive its record."""
        if not consumer_name or ":" in consumer_name:
            raise ValueError("consumer_name must be non-empty and contain no ':'")
        self.collection = _collection(collection)
        self.consumer_name = consumer_name
        self.clock = clock
        self.keep = dict(keep or {})
        self._kept_for = kept_for
        self._expiry_ready = False
        self._page_indexes: set[tuple[str, ...]] = set()

    def key(self, event_id: str) -> str:
        return f"{self.consumer_name}:{event_id}"

    def record_once(self, event: Mapping[str, Any], extra: Mapping[str, Any] | None = None) -> bool:
        """Insert the inbox record; True the first time this consumer sees the event id, False afterwards.
        `extra` fields (ids and codes) are stored beside the envelope's, e.g. what a listing is scoped by."""
        self._ensure_expiry()
        received_at = self.clock()
        document = {
            "_id": self.key(str(event["id"])),
            "consumer": self.consumer_name,
            "event_id": str(event["id"]),
            "type": event.get("type"),
            "subject": event.get("subject"),
            "time": event.get("time"),
            "data": event.get("data"),
            "received_at": received_at,
            "updated_at": received_at,  # the sort key of every listable record (plumbing.pagination)
            **{name: compute(event) for name, compute in self.keep.items()},
            **(extra or {}),
        }
        try:
            self.collection.insert_one(document)
            first_time = True
        except DuplicateKeyError:
            first_time = False
        fields = {"event_id": document["event_id"], "event_type": document["type"]}
        logger.info("event applied" if first_time else "duplicate delivery ignored", extra={"fields": fields})
        return first_time

    def _ensure_expiry(self) -> None:
        """The TTL index that removes records past their retention (once per process; idempotent on the server)."""
        if self._expiry_ready:
            return
        if self._kept_for is None:
            self._kept_for = platform_config().retention_for(INBOX_ENTRY).fixed_length()
        self.collection.create_index(
            "received_at",
            expireAfterSeconds=int(self._kept_for.total_seconds()),
            name="retention_received_at",
        )
        self._expiry_ready = True

    def page(self, request: PageRequest, **where: Any) -> Page[dict[str, Any]]:
        """This consumer's records matching `where` (e.g. `country=...`), oldest first, one page."""
        self._ensure_page_index(tuple(sorted(where)))
        return find_page(self.collection, {"consumer": self.consumer_name, **where}, request)

    def _ensure_page_index(self, members: tuple[str, ...]) -> None:
        """The index a page of these members is served by (the consumer and the members by equality, then the
        page's order), made once per process and set of members; idempotent on the server."""
        if members in self._page_indexes:
            return
        keys = [("consumer", 1), *((name, 1) for name in members), ("updated_at", 1), ("_id", 1)]
        self.collection.create_index(keys, name="page_" + "_".join(["consumer", *members]))
        self._page_indexes.add(members)

    def view(self, row: Mapping[str, Any]) -> dict[str, Any]:
        """One record as an API shows it, ids and codes only: event id and type, aggregate id, the fields kept
        with it (`keep`), and when it arrived."""
        shown = {"event_id": row["event_id"], "event_type": row["type"], "aggregate_id": row["subject"]}
        shown.update({name: row.get(name) for name in self.keep})
        shown["received_at"] = row["received_at"].isoformat().replace("+00:00", "Z")
        return shown

    def seen(self, event_id: str) -> bool:
        return self.collection.count_documents({"_id": self.key(event_id)}, limit=1) == 1


def apply_once(
    target: type[Document] | Collection,
    filter: Mapping[str, Any],  # noqa: A002 - pymongo's own name for it
    event_id: str,
    update: Mapping[str, Any],
    *,
    upsert: bool = False,
) -> bool:
    """Apply `update` to the document matching `filter` unless it already applied `event_id`.

    Returns True when this call applied it; False when it was applied before (or no document matched and
    upsert is off: check your filter). `update` must use operators; `applied_event_ids` is added to its
    `$addToSet`.
    """
    if any(not key.startswith("$") for key in update):
        raise ValueError("update must consist of update operators ($set, $inc, ...)")
    guarded = {**filter, APPLIED: {"$ne": event_id}}
    combined: dict[str, Any] = {op: dict(fields) for op, fields in update.items()}
    add_to_set = combined.setdefault("$addToSet", {})
    if APPLIED in add_to_set:
        raise ValueError(f"{APPLIED} is managed by apply_once")
    add_to_set[APPLIED] = event_id
    try:
        result = _collection(target).update_one(guarded, combined, upsert=upsert)
    except DuplicateKeyError:
        return False  # upsert raced a document that already holds the event id
    return result.modified_count == 1 or result.upserted_id is not None


def applying(
    command: Callable[[Any, Mapping[str, Any]], Any],
    record: Callable[[Mapping[str, Any]], bool],
    deps: Callable[[], Any],
) -> Callable[[Mapping[str, Any]], bool]:
    """A consumer handler that applies `command(deps(), event)` and then records the event in the inbox: a crash
    in between is completed by the redelivery, so `command` must itself be applied once per event (shape 2, or
    ids derived from the event)."""

    def apply(event: Mapping[str, Any]) -> bool:
        command(deps(), event)
        return record(event)

    return apply


def country_listing(inbox_of: Callable[[Any], Inbox]) -> Callable[..., dict[str, Any]]:
    """The `GET /v1/<service>/received-events` handler of a service's HTTP module (`list_received_events =
    country_listing(received_events.inbox)`): a page of its inbox in the app's database, of the caller's country
    only (the inbox keeps with each record the `country` owning its aggregate)."""

    def list_received_events(limit: int = 50, cursor: str | None = None) -> dict[str, Any]:
        from plumbing.app import current_database  # the HTTP app's: a consumer records events without Flask

        inbox = inbox_of(current_database())
        page = inbox.page(PageRequest.parse(limit, cursor), country=request_context.current_caller().country)
        return page.body(inbox.view)

    return list_received_events
