"""The relay's batches on the real Mongo-wire server, with a scripted producer in place of Kafka: a failure, an
append or a lost lease lands exactly on the event chosen, which a real broker cannot be made to do.

What is checked is what the batch must never break: an event leaves the outbox only once acknowledged, a
document's events are never sent out of order (nor one before the previous was acknowledged), an event appended
while the batch is published stays pending and marked, and a lease taken over is left to its new owner."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from kafka.errors import KafkaTimeoutError
from pymongo.collection import Collection

from plumbing.events import new_event
from plumbing.outbox import LEASE_OWNER, LEASE_UNTIL, MARK, PENDING, Relay, push_events

pytestmark = pytest.mark.integration
ALIAS = "outbox-batches"


def event(case_id: str) -> dict[str, Any]:
    data = {"case_id": case_id, "person_id": str(uuid.uuid4()), "owner_country": "XK", "reason": "referred",
            "final_category": "victim"}  # fmt: skip
    return new_event("identification.case.closed.v1", case_id, data, "/identification")


class Acknowledgement:
    """A send's future: already acknowledged, or already failed."""

    def __init__(self, error: BaseException | None) -> None:
        self.error = error

    def get(self, timeout: float | None = None) -> None:
        if self.error is not None:
            raise self.error


class ScriptedProducer:
    """Stands in for the KafkaProducer: records the event ids in the order sent, fails the acknowledgement of
    the ids in `fail`, and runs `on_send(event id)` after each send (a write racing the relay)."""

    def __init__(self, fail: Iterable[str] = (), on_send: Callable[[str], None] | None = None) -> None:
        self.sent: list[str] = []
        self.acknowledged: list[str] = []
        self.fail = set(fail)
        self.on_send = on_send

    def send(self, topic: str, key: bytes, value: bytes, headers: list[tuple[str, bytes]]) -> Acknowledgement:
        event_id = dict(headers)["ce_id"].decode()
        self.sent.append(event_id)
        if self.on_send is not None:
            self.on_send(event_id)
        if event_id in self.fail:
            return Acknowledgement(KafkaTimeoutError("no acknowledgement"))
        self.acknowledged.append(event_id)
        return Acknowledgement(None)

    def close(self, timeout: float | None = None) -> None:
        pass


def relay_with(producer: ScriptedProducer, collection: Collection) -> Relay:
    return Relay([collection], lambda: producer, lambda envelope: "test.batches.v1")  # type: ignore[arg-type, return-value]


@pytest.fixture()
def cases(database: Any) -> Collection:
    return database[f"cases_{uuid.uuid4().hex[:6]}"]


def store(cases: Collection, count: int, events_each: int) -> dict[str, list[dict[str, Any]]]:
    """`count` documents with `events_each` pending events, written as services write them (with the mark)."""
    stored: dict[str, list[dict[str, Any]]] = {}
    for _ in range(count):
        case_id = str(uuid.uuid4())
        stored[case_id] = [event(case_id) for _ in range(events_each)]
        cases.update_one({"_id": case_id}, push_events(stored[case_id]), upsert=True)
    return stored


def ids(envelopes: list[dict[str, Any]]) -> list[str]:
    return [envelope["id"] for envelope in envelopes]


def pending(cases: Collection, case_id: str) -> list[str]:
    return ids(cases.find_one({"_id": case_id})[PENDING])


def test_one_batch_publishes_several_documents_and_empties_each_outbox(cases: Collection) -> None:
    stored = store(cases, 5, 3)
    producer = ScriptedProducer()
    assert relay_with(producer, cases).run_once() == (15, False)
    for case_id, envelopes in stored.items():
        assert [e for e in producer.sent if e in ids(envelopes)] == ids(envelopes)  # in order per document
        row = cases.find_one({"_id": case_id})
        assert row[PENDING] == [] and MARK not in row
        assert row[LEASE_OWNER] is None and row[LEASE_UNTIL] is None
    assert sorted(producer.sent) == sorted(e for envelopes in stored.values() for e in ids(envelopes))


def test_a_failure_mid_batch_keeps_the_unacknowledged_events_pending_and_publishes_them_later_in_order(
    cases: Collection,
) -> None:
    stored = store(cases, 4, 3)
    failing_doc = next(iter(stored))
    second = stored[failing_doc][1]["id"]
    broken = ScriptedProducer(fail={second})
    relay = relay_with(broken, cases)
    published, failed = relay.run_once()
    assert failed
    # The document's next event was never sent after the one that failed, nor before it was acknowledged.
    assert stored[failing_doc][2]["id"] not in broken.sent
    assert published == len(broken.acknowledged)
    for case_id, envelopes in stored.items():
        acknowledged = [e for e in ids(envelopes) if e in broken.acknowledged]
        assert (
            pending(cases, case_id) == ids(envelopes)[len(acknowledged) :]
        )  # removed: only the acknowledged
        assert cases.find_one({"_id": case_id})[MARK] is True
    held = cases.find_one({"_id": failing_doc})
    assert held[LEASE_OWNER] == relay.owner  # kept as that document's back-off ...
    others = [cases.find_one({"_id": case_id}) for case_id in stored if case_id != failing_doc]
    assert all(row[LEASE_OWNER] is None for row in others)  # ... the rest free for any relay

    # The back-off over, a healthy broker gets the rest, each document's events in order, nothing lost.
    cases.update_one({"_id": failing_doc}, {"$set": {LEASE_UNTIL: datetime.now(UTC) - timedelta(seconds=1)}})
    healthy = ScriptedProducer()
    assert relay_with(healthy, cases).run_once() == (12 - published, False)
    delivered = broken.acknowledged + healthy.acknowledged
    for case_id, envelopes in stored.items():
        assert [e for e in delivered if e in ids(envelopes)] == ids(envelopes)
        assert pending(cases, case_id) == [] and MARK not in cases.find_one({"_id": case_id})


def test_an_event_appended_while_the_batch_is_published_stays_pending_and_marked(cases: Collection) -> None:
    stored = store(cases, 3, 1)
    racing = list(stored)[1]
    late = event(racing)

    def append_once(event_id: str) -> None:  # a writer's $push while the relay holds the lease
        if event_id == stored[racing][0]["id"]:
            cases.update_one({"_id": racing}, push_events([late]))

    producer = ScriptedProducer(on_send=append_once)
    relay = relay_with(producer, cases)
    batch = relay._claims(cases)
    assert sorted(doc["_id"] for doc in batch) == sorted(stored)
    assert relay._publish_batch(cases, batch) == (3, True)
    row = cases.find_one({"_id": racing})
    assert ids(row[PENDING]) == [late["id"]] and row[MARK] is True and row[LEASE_OWNER] is None
    for case_id in stored.keys() - {racing}:
        row = cases.find_one({"_id": case_id})
        assert row[PENDING] == [] and MARK not in row and row[LEASE_OWNER] is None
    assert relay.run_once() == (1, False)  # the appended event is found again by its mark
    assert producer.sent[-1] == late["id"] and MARK not in cases.find_one({"_id": racing})


def test_a_lease_taken_over_during_the_batch_is_left_to_its_new_owner(cases: Collection) -> None:
    stored = store(cases, 2, 2)
    taken, kept = list(stored)
    other_lease = datetime.now(UTC) + timedelta(minutes=5)

    def take_over(event_id: str) -> None:  # our lease ran out and another relay claimed the document
        if event_id == stored[taken][0]["id"]:
            cases.update_one({"_id": taken}, {"$set": {LEASE_OWNER: "other-relay", LEASE_UNTIL: other_lease}})

    producer = ScriptedProducer(on_send=take_over)
    relay = relay_with(producer, cases)
    batch = relay._claims(cases)
    # The lease is renewed before each round when it runs short: make the second round find it short.
    relay.lease = timedelta(seconds=relay.send_timeout_s + 0.5)
    relay._publish_batch(cases, [{**doc, LEASE_UNTIL: datetime.now(UTC)} for doc in batch])
    row = cases.find_one({"_id": taken})
    # Its acknowledged event is removed; the next one is not sent by us; lease and mark stay the new owner's.
    assert stored[taken][1]["id"] not in producer.sent
    assert ids(row[PENDING]) == [stored[taken][1]["id"]]
    assert row[LEASE_OWNER] == "other-relay" and row[MARK] is True
    assert row[LEASE_UNTIL] > datetime.now(UTC) + timedelta(
        minutes=4
    )  # not renewed, not held, not freed by us
    row = cases.find_one({"_id": kept})
    assert row[PENDING] == [] and row[LEASE_OWNER] is None and MARK not in row


def test_two_relays_claiming_batches_never_take_the_same_document(cases: Collection) -> None:
    store(cases, 6, 1)
    first = relay_with(ScriptedProducer(), cases)
    second = relay_with(ScriptedProducer(), cases)
    a = first._claims(cases)
    b = second._claims(cases)
    assert len(a) == 6 and b == []
    # Released by the first relay without publishing (say it stops), the second takes them.
    for doc in a:
        first._release(cases, doc["_id"])
    assert sorted(doc["_id"] for doc in second._claims(cases)) == sorted(doc["_id"] for doc in a)
