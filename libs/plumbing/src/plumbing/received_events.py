"""Record-and-list of events another service published, for consumers whose effect is the record itself.

The skeleton services (referral, exchange, return) use this to prove delivery across process boundaries:
their consumer applies each identification event once (inbox) and their API lists what arrived, scoped to the
caller's country. Records hold ids and codes only, as the event schemas allow nothing else.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

from pymongo.collection import Collection
from pymongo.database import Database

from plumbing import mongo
from plumbing.config import Settings
from plumbing.inbox import Inbox
from plumbing.kafka import ConsumerLoop, ensure_topics
from plumbing.pagination import PageRequest, build_page

logger = logging.getLogger(__name__)
COLLECTION = "received_events"


def _collection(database: Database) -> Collection:
    return database[COLLECTION]


def record(inbox: Inbox, envelope: Mapping[str, Any]) -> bool:
    """Apply once: the owning country comes from the event so the API can scope the list by country."""
    data = envelope.get("data") or {}
    country = data.get("owner_country") if isinstance(data, Mapping) else None
    # `updated_at` doubles as the list's sort key, like every other listable record.
    first_time = inbox.record_once(envelope, extra={"country": country, "updated_at": inbox.clock()})
    if not first_time:
        logger.info("duplicate delivery ignored", extra={"fields": {"event_id": envelope.get("id")}})
    return first_time


def list_for_country(database: Database, country: str, page: PageRequest) -> dict[str, Any]:
    condition: dict[str, Any] = {"country": country, **page.mongo_filter("updated_at", "_id")}
    rows = list(_collection(database).find(condition).sort(page.mongo_sort("updated_at", "_id")).limit(page.fetch))
    result = build_page(rows, page, key=lambda row: (row["updated_at"], row["_id"]))
    return result.body(
        lambda row: {
            "event_id": row["event_id"],
            "event_type": row["type"],
            "aggregate_id": row["subject"],
            "country": row.get("country"),
            "received_at": row["received_at"].isoformat().replace("+00:00", "Z"),
        }
    )


def run_recording_consumer(service: str, topics: Sequence[str]) -> None:
    """Entry point body of a skeleton service's consumer process: runs until SIGTERM/SIGINT."""
    settings = Settings.from_env(service)
    settings.require("mongodb_uri", "kafka_bootstrap_servers")
    mongo.connect(settings)
    database = mongo.get_database()
    bootstrap = str(settings.kafka_bootstrap_servers)
    ensure_topics(bootstrap)
    # Event ids are unique platform-wide, so one inbox per consuming service is enough.
    inbox = Inbox(_collection(database), service)
    ConsumerLoop(list(topics), group_id=service, handler=lambda envelope: record(inbox, envelope), bootstrap=bootstrap).run()
