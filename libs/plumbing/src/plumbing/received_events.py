"""Record-and-list of events another service published, for consumers whose effect is the record itself.

The skeleton services (referral, exchange, return) use this to prove delivery across process boundaries:
their consumer applies each identification event once (inbox) and their API lists what arrived, scoped to the
caller's country. Records hold ids and codes only, as the event schemas allow nothing else.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

from flask import current_app
from pymongo.collection import Collection
from pymongo.database import Database

from plumbing import mongo, request_context, telemetry, worker_endpoints
from plumbing.app import create_app
from plumbing.clock import SystemClock
from plumbing.config import Settings, load_platform_config
from plumbing.inbox import Inbox
from plumbing.kafka import ConsumerLoop, ensure_topics
from plumbing.logging import configure_logging
from plumbing.pagination import PageRequest, build_page
from plumbing.service_auth import service_validator

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
    # One line per delivery, ids only; the trace id (of the consumer span continuing the producer's trace) is
    # added by the JSON formatter, so one request can be followed into this service.
    fields = {"event_id": envelope.get("id"), "event_type": envelope.get("type")}
    logger.info("event applied" if first_time else "duplicate delivery ignored", extra={"fields": fields})
    return first_time


def list_for_country(database: Database, country: str, page: PageRequest) -> dict[str, Any]:
    condition: dict[str, Any] = {"country": country, **page.mongo_filter("updated_at", "_id")}
    rows = list(
        _collection(database).find(condition).sort(page.mongo_sort("updated_at", "_id")).limit(page.fetch)
    )
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
    configure_logging(service, settings.log_level)
    telemetry.setup_tracing(service)
    mongo.connect(settings)
    database = mongo.get_database()
    bootstrap = str(settings.kafka_bootstrap_servers)
    ensure_topics(bootstrap)
    # Event ids are unique platform-wide, so one inbox per consuming service is enough.
    inbox = Inbox(_collection(database), service)
    loop = ConsumerLoop(
        list(topics), group_id=service, handler=lambda envelope: record(inbox, envelope), bootstrap=bootstrap
    )
    worker_endpoints.serve(loop.ready)
    loop.run()


def create_http_app(service: str, spec_path: Any, environ: Mapping[str, str] | None = None) -> Any:
    """The API of a skeleton service: health, readiness, metrics and the list of received events."""
    settings = Settings.from_env(service, environ)
    config = load_platform_config(settings.config_path)
    validator, jwks = service_validator(settings, config, environ)
    return create_app(
        service, spec_path, settings=settings, validator=validator, clock=SystemClock(), jwks=jwks
    )


def list_received_events(limit: int = 50, cursor: str | None = None) -> dict[str, Any]:
    """Handler of `GET /v1/<service>/received-events`: the caller's country only."""
    caller = request_context.current_caller()
    database = current_app.extensions["plumbing"]["database"]()
    return list_for_country(database, caller.country, PageRequest.parse(limit, cursor))
