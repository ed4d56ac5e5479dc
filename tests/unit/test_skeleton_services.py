"""The consumers (every service consuming identification events) hold only what is their own: which topics,
which handler per event type, their contract's operation. Running the consumer, the inbox, paging and the app
come from plumbing. No server is needed: nothing here touches the network."""

from __future__ import annotations

import importlib
from typing import Any

import pytest
from pymongo import MongoClient

import thb_contracts
from plumbing.events import owner_country
from plumbing.kafka import event_types

TOPIC = "identification.events.v1"
# Event types a service applies with a handler of its own (which records in the inbox too).
APPLIED = {
    "referral": (
        "identification.needs.identified.v1",
        "identification.person.corrected.v1",
        "identification.person.consent_withdrawn.v1",
        "identification.person.restriction_changed.v1",
        "return.reception.recorded.v1",
    ),
    "exchange": (
        "return.case.stopped.v1",
        "identification.person.corrected.v1",
        "identification.person.consent_withdrawn.v1",
        "identification.person.restriction_changed.v1",
    ),
    "return": (
        "exchange.form.sent.v1",
        "exchange.form.received.v1",
        "exchange.form.withdrawn.v1",
        "exchange.case.consent_withdrawn.v1",
        "identification.person.consent_withdrawn.v1",
        "identification.person.restriction_changed.v1",
    ),
}
# The topics each consumer reads beyond identification's events.
MORE_TOPICS = {
    "exchange": ("return.events.v1",),
    "referral": ("return.events.v1",),
    "return": ("exchange.events.v1",),
}
CONSUMERS = [s for s in thb_contracts.services() if any(w.endswith(".consumer") for w in s.workers)]


@pytest.fixture(scope="module")
def database() -> Any:
    client: MongoClient = MongoClient(
        "mongodb://127.0.0.1:1/", connect=False
    )  # never used: no operation runs
    yield client["thb_skeleton_tests"]
    client.close()


def test_there_are_skeleton_consumers() -> None:
    assert len(CONSUMERS) >= 3


@pytest.mark.parametrize("service", CONSUMERS, ids=lambda s: s.name)
def test_the_handler_table_records_every_event_it_consumes_once_in_the_services_inbox(
    service: Any, database: Any
) -> None:
    consumer = importlib.import_module(f"{service.package}.entrypoints.consumer")
    assert consumer.TOPICS == (TOPIC, *MORE_TOPICS.get(service.name, ()))
    table = consumer.handlers(database)
    assert set(table) == {t for topic in consumer.TOPICS for t in event_types(topic)} and table
    # A service with a domain of its own applies some events beyond recording them (referral: needs and a return's
    # reception -> proposals, a person's correction -> its open referrals' copies marked outdated; exchange: a
    # return stopped -> the partners told, a correction -> the forms sent about her marked; return: the exchange's
    # return forms -> the cases' timelines).
    recording = {t: h for t, h in table.items() if t not in APPLIED.get(service.name, ())}
    inboxes = {handler.__self__ for handler in recording.values()}
    assert len(inboxes) == 1  # one inbox per service: event ids are unique platform-wide
    (inbox,) = inboxes
    assert all(handler.__func__ is type(inbox).record_once for handler in recording.values())
    assert inbox.consumer_name == service.name  # also its consumer group (plumbing.worker.run_consumer)
    assert inbox.collection.name == "received_events"
    assert inbox.keep == {"country": owner_country}  # what the API scopes the list by


@pytest.mark.parametrize("service", CONSUMERS, ids=lambda s: s.name)
def test_the_api_module_has_the_contracts_handler_and_builds_its_app_only_when_asked(service: Any) -> None:
    http = importlib.import_module(f"{service.package}.entrypoints.http")
    assert callable(http.list_received_events)
    assert "app" not in vars(http)  # importing builds nothing (the app is made inside the gunicorn worker)
