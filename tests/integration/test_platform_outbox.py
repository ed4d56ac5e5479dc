"""Outbox and inbox across real processes: the identification API and its relay, Kafka, and the three skeleton
consumers (referral, exchange, return), as `make run` starts them (devstack's `platform` fixture).

What the foundation issue accepts: a service killed between accepting a write and publishing publishes after
restart; each event reaches its topic at least once and is applied exactly once by every consumer; one
aggregate's events arrive in order; the broker down for a minute loses nothing and the API stays ready.
"""

from __future__ import annotations

import time
from collections import Counter
from typing import Any

import httpx
import pytest
from pymongo import MongoClient

from devstack.demo import Gateway
from plumbing.events import from_kafka, to_kafka
from plumbing.kafka import make_producer
from tests.integration.platform_helpers import (
    CONSUMING_SERVICES,
    EVENTS_TOPIC,
    Client,
    notification,
    poll,
    read_topic,
    received_events,
)

pytestmark = pytest.mark.integration

REGISTERED = "identification.person.registered.v1"
EXCHANGE = "cross-border-exchange"


def _db(platform: Any) -> Any:
    client: MongoClient = MongoClient(platform.env["MONGODB_URI"], tz_aware=True)
    return client["thb_identification"]


def _pending(
    platform: Any, collection: str, doc_id: str, service: str = "identification"
) -> list[dict[str, Any]]:
    client: MongoClient = MongoClient(platform.env["MONGODB_URI"], tz_aware=True)
    with client:
        doc = client[f"thb_{service}"][collection].find_one({"_id": doc_id}, {"pending_events": 1}) or {}
    return list(doc.get("pending_events") or [])


def _send_notification(gw: Gateway) -> tuple[str, str]:
    """A notification about a child, XK to ME, drafted and sent: (form id, case reference)."""
    body = {**notification("Brokerdrill"), "legal_basis": "protection-of-vital-interests"}
    drafted, form = gw.located("xk-contact-point", "/v1/exchange/drafts", body, purpose=EXCHANGE)
    case = f"/v1/exchange/cases/{drafted['id']}"
    sent = gw.call("xk-contact-point", "POST", f"{case}/forms/{form}/send", purpose=EXCHANGE)
    return form, str(sent["reference"])


def _received_by_me(platform: Any, forms: dict[str, str]) -> Counter[str] | None:
    """How often each form is held by ME's record of its case; None until every one has arrived."""
    client: MongoClient = MongoClient(platform.env["MONGODB_URI"], tz_aware=True)
    with client:
        records = client["thb_exchange"]["exchange_cases"].find(
            {"owner_country": "ME", "reference": {"$in": sorted(set(forms.values()))}}, {"forms.id": 1}
        )
        held = Counter(
            item["id"] for record in records for item in record.get("forms", []) if item["id"] in forms
        )
    return held if set(held) == set(forms) else None


def _arrivals(platform: Any, aggregate_ids: set[str], country: str = "AL") -> dict[str, Counter[str]]:
    """Per consuming service: how often each event id of these aggregates is listed."""
    return {
        service: Counter(
            item["event_id"]
            for item in received_events(platform, service, country)
            if item["aggregate_id"] in aggregate_ids
        )
        for service in CONSUMING_SERVICES
    }


def _each_once(arrivals: dict[str, Counter[str]], event_ids: set[str]) -> bool:
    return all(set(c) == event_ids and set(c.values()) == {1} for c in arrivals.values())


def test_a_write_accepted_while_the_relay_is_down_is_published_after_restart_and_applied_once(
    running_platform: Any,
) -> None:
    platform = running_platform
    relay = platform.processes["identification-relay"].process
    api = platform.processes["identification-api"].process
    relay.kill()
    person = Client(platform, "al-police").register()

    # Accepted (201) and stored with its event pending in the person's document; nothing was published.
    pending = _pending(platform, "persons", person["id"])
    assert [e["type"] for e in pending] == [REGISTERED]
    event_id = pending[0]["id"]
    api.kill()  # the accepting process is gone too (SIGKILL: no shutdown hook runs)

    platform.start("identification-relay")
    poll(
        lambda: _each_once(_arrivals(platform, {person["id"]}), {event_id}),
        60,
        "the registration event at referral, exchange and return",
    )
    poll(lambda: not _pending(platform, "persons", person["id"]), 30, "the outbox to be emptied")
    # Published and applied: still exactly once everywhere after the relay removed it from the outbox.
    assert _each_once(_arrivals(platform, {person["id"]}), {event_id})
    platform.start("identification-api")


def test_one_aggregates_ten_events_are_published_and_consumed_in_order(running_platform: Any) -> None:
    platform = running_platform
    client = Client(platform, "al-case-manager")
    case_id = client.register()["case_id"]
    relay = platform.processes["identification-relay"].process
    relay.kill()  # all ten wait in the case's outbox, so the relay (not request timing) must keep the order

    categories = ["potential_victim", "person_at_risk", "no_indication"] * 3
    for category in categories:
        response = client.post(
            f"/cases/{case_id}/decisions", {"category": category, "reason_codes": ["test_order"]}
        )
        assert response.status_code in (200, 201), response.text
    response = client.post(f"/cases/{case_id}/closure", {"reason": "lost_contact"})
    assert response.status_code in (200, 201), response.text
    pending = _pending(platform, "cases", case_id)
    expected_ids = [e["id"] for e in pending if e["subject"] == case_id]
    assert len(expected_ids) == 10

    platform.start("identification-relay")
    poll(
        lambda: _each_once(_arrivals(platform, {case_id}), set(expected_ids)),
        60,
        "ten events at the consumers",
    )

    bootstrap = platform.env["KAFKA_BOOTSTRAP_SERVERS"]
    records = [r for r in read_topic(bootstrap, EVENTS_TOPIC) if r.key == case_id.encode()]
    assert len({r.partition for r in records}) == 1, "one key, one partition"
    events = [from_kafka(r.key, r.value, list(r.headers)) for r in sorted(records, key=lambda r: r.offset)]
    assert [e["id"] for e in events] == expected_ids
    decided = [e["data"] for e in events[:9]]
    assert [d["category"] for d in decided] == categories
    # Each decision names the one before it: the sequence a consumer sees is the sequence that happened.
    assert [d["previous_category"] for d in decided] == [None, *categories[:-1]]
    assert events[9]["type"] == "identification.case.closed.v1"
    assert events[9]["data"]["final_category"] == categories[-1]


def test_a_redelivered_event_is_applied_once_by_every_consumer(running_platform: Any) -> None:
    platform = running_platform
    person = Client(platform, "al-police").register()
    poll(lambda: all(_arrivals(platform, {person["id"]}).values()), 60, "the first delivery everywhere")
    bootstrap = platform.env["KAFKA_BOOTSTRAP_SERVERS"]
    (original,) = [r for r in read_topic(bootstrap, EVENTS_TOPIC) if r.key == person["id"].encode()]
    envelope = from_kafka(original.key, original.value, list(original.headers))
    record = to_kafka(envelope)
    producer = make_producer(bootstrap, client_id="test-replay")
    try:
        for _ in range(2):
            producer.send(EVENTS_TOPIC, key=record.key, value=record.value, headers=record.headers).get(15)
    finally:
        producer.close()
    copies = [r for r in read_topic(bootstrap, EVENTS_TOPIC) if r.key == person["id"].encode()]
    assert len(copies) == 3, "the topic now holds the event three times"
    # Every consumer group has read past the copies (committed offsets), yet lists the event once.
    poll(lambda: _consumed_past(platform, copies[-1]), 60, "the consumers to read the copies")
    assert _each_once(_arrivals(platform, {person["id"]}), {envelope["id"]})
    for service in CONSUMING_SERVICES:
        assert "duplicate delivery ignored" in platform.log_text(f"{service}-consumer")


BURST = 150


def _applied(platform: Any, service: str, person_ids: set[str]) -> int:
    """How many of these people's registrations the service's consumer has applied (its inbox, read directly:
    this is polled while the consumer works, faster than the listing API)."""
    client: MongoClient = MongoClient(platform.env["MONGODB_URI"])
    try:
        received = client[f"thb_{service}"]["received_events"]
        return received.count_documents({"subject": {"$in": sorted(person_ids)}, "type": REGISTERED})
    finally:
        client.close()


def test_consumers_killed_mid_batch_apply_every_event_once_after_restart(running_platform: Any) -> None:
    # A burst waits in the topic while the consumers are down; they are started, killed (SIGKILL) while working
    # through it - polls hold up to 50 records and each is committed only after it was applied - and started
    # again. Every registration is then applied by every consumer exactly once: nothing skipped with the
    # killed batch, nothing applied twice from the part that was redelivered.
    platform = running_platform
    names = [f"{service}-consumer" for service in CONSUMING_SERVICES]
    for name in names:
        platform.processes[name].process.kill()
    client = Client(platform, "al-police")
    people = {client.register()["id"] for _ in range(BURST)}
    event_ids = poll(lambda: _all_published(platform, people), 120, "the burst to be published")

    for name in names:
        platform.start(name)
    interrupted: dict[str, int] = {}
    for service, name in zip(CONSUMING_SERVICES, names, strict=True):
        poll(
            lambda service=service: _applied(platform, service, people) > 0, 120, f"{service} to start on it"
        )
        platform.processes[name].process.kill()
        interrupted[service] = _applied(platform, service, people)
    # The drill interrupted at least one consumer with part of the burst still to apply.
    assert any(count < BURST for count in interrupted.values()), interrupted
    print(f"applied when killed, of {BURST}: {interrupted}")

    for name in names:
        platform.start(name)
    poll(
        lambda: _each_once(_arrivals(platform, people), set(event_ids.values())),
        180,
        f"all {BURST} registrations at every consumer",
    )


def _all_published(platform: Any, people: set[str]) -> dict[str, str] | None:
    found = _registration_events(platform, people)
    return found if len(found) == len(people) else None


def _registration_events(platform: Any, people: set[str]) -> dict[str, str]:
    """Person id -> the id of its registration event, as published (read from the topic)."""
    found: dict[str, str] = {}
    for record in read_topic(platform.env["KAFKA_BOOTSTRAP_SERVERS"], EVENTS_TOPIC):
        if record.key is not None and record.key.decode() in people:
            envelope = from_kafka(record.key, record.value, list(record.headers))
            if envelope["type"] == REGISTERED:
                found[record.key.decode()] = envelope["id"]
    return found


def _consumed_past(platform: Any, record: Any) -> bool:
    from kafka import KafkaConsumer
    from kafka.structs import TopicPartition

    bootstrap = platform.env["KAFKA_BOOTSTRAP_SERVERS"]
    tp = TopicPartition(record.topic, record.partition)
    for group in CONSUMING_SERVICES:
        probe = KafkaConsumer(bootstrap_servers=bootstrap, group_id=group, enable_auto_commit=False)
        try:
            committed = probe.committed(tp)
        finally:
            probe.close(autocommit=False)
        if committed is None or committed <= record.offset:
            return False
    return True


@pytest.mark.disruptive
def test_the_broker_down_for_a_minute_loses_nothing_and_the_api_stays_ready(
    running_platform: Any, kafka: Any
) -> None:
    if kafka.server is None:
        pytest.skip(
            "KAFKA_BOOTSTRAP_SERVERS names a broker this suite did not start; stopping it would disrupt its "
            "owner (make test and CI start their own broker, and there this test runs)"
        )
    platform = running_platform
    client = Client(platform, "xk-police")
    gw = Gateway(platform.gateway, platform.issuer)
    api_ready = platform.urls["identification"] + "/readyz"
    before = client.register()
    poll(lambda: _arrivals(platform, {before["id"]}, "XK")["referral"], 60, "delivery before the outage")

    kafka.server.kill()  # a crash (SIGKILL), not a clean stop: what the broker had not flushed is its problem
    accepted: dict[str, list[str]] = {}  # person id -> ids of its events, pending while the broker is down
    referrals: dict[str, list[str]] = {}  # referral id -> ids of its events, pending likewise
    returns: dict[str, list[str]] = {}  # return case id -> ids of its events, pending likewise
    forms: dict[str, str] = {}  # form id -> its case reference: notifications sent to ME during the outage
    try:
        stopped_at = time.monotonic()
        while time.monotonic() - stopped_at < 60:
            assert httpx.get(api_ready, timeout=5).status_code == 200, "the API must stay ready without Kafka"
            registered = client.register()
            accepted[registered["id"]] = [e["id"] for e in _pending(platform, "persons", registered["id"])]
            # A referral proposed on her case and, every other round, a form sent across the border: both
            # accepted while the broker is down, their events and envelope held by their services.
            proposal = {"service_type": "shelter", "case_id": registered["case_id"]}
            referral = gw.call(
                "xk-case-manager", "POST", "/v1/referral/referrals", proposal, purpose="referral"
            )
            referrals[referral["id"]] = [
                e["id"] for e in _pending(platform, "referrals", referral["id"], "referral")
            ]
            # A return case opened on it too (return reads her age from identification on the officer's behalf).
            opened = {"origin_country": "AL", "identification_case_id": registered["case_id"]}
            case = gw.call("xk-case-manager", "POST", "/v1/return/cases", opened, purpose="return")
            returns[case["id"]] = [e["id"] for e in _pending(platform, "return_cases", case["id"], "return")]
            if len(accepted) % 2:
                form, reference = _send_notification(gw)
                forms[form] = reference
            time.sleep(1)
    finally:
        kafka.server.restart()
    assert len(accepted) >= 10 and len(forms) >= 3
    assert all(len(ids) == 1 for ids in accepted.values()), "every accepted event was held in its outbox"
    assert all(ids for ids in referrals.values()), "every proposal's event was held in referral's outbox"
    assert all(ids for ids in returns.values()), "every return case's event was held in return's outbox"
    registered = set(accepted)
    event_ids = {ids[0] for ids in accepted.values()}
    poll(
        lambda: _each_once(_arrivals(platform, set(registered), "XK"), event_ids),
        120,
        f"all {len(event_ids)} events accepted during the outage at every consumer",
    )
    # The proposals' events reach referral's topic; every form sent during the outage is held once by ME.
    referral_events = {event for ids in referrals.values() for event in ids}
    poll(
        lambda: referral_events <= _published_ids(platform, "referral.events.v1"),
        120,
        f"all {len(referral_events)} referral events accepted during the outage on their topic",
    )
    return_events = {event for ids in returns.values() for event in ids}
    poll(
        lambda: return_events <= _published_ids(platform, "return.events.v1"),
        120,
        f"all {len(return_events)} return events accepted during the outage on their topic",
    )
    held = poll(lambda: _received_by_me(platform, forms), 120, f"all {len(forms)} forms delivered to ME")
    assert set(held.values()) == {1}, held


def _published_ids(platform: Any, topic: str) -> set[str]:
    records = read_topic(platform.env["KAFKA_BOOTSTRAP_SERVERS"], topic)
    return {from_kafka(r.key, r.value, list(r.headers))["id"] for r in records}
