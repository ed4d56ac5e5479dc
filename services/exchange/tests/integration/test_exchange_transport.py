"""The exchange over the real Kafka and Mongo-wire servers: the Kafka transport, the inbox consumer and the relay.

XK sends a notification to ME through the service layer with the Kafka transport (exchange.inbox.me); ME's
consumer handler takes it from the topic and stores it once; the automatic receipt travels back
(exchange.inbox.xk) and XK's form shows received. The same envelope produced again stores nothing new. Envelopes
signed with another country's key or re-addressed, and garbage, are refused, committed, and the consumer goes
on to the next record. An envelope the transport could not hand over (Kafka unreachable) stays in the sender's
record until the relay's job delivers it. An envelope larger than Kafka's default record limit (an attachment)
crosses too. Every wait polls with a bounded timeout; time inside the service is a fixed clock, advanced.

The consumer runs in a thread as plumbing's ConsumerLoop with the consumer process's own handlers, in a group
of its own, on the real inbox topics (created from asyncapi.yaml as the workers create them).
"""

from __future__ import annotations

import base64
import logging
import os
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import pytest
from kafka import KafkaConsumer
from kafka.structs import TopicPartition
from pymongo import MongoClient
from pymongo.collection import Collection

from devstack.process import free_port
from exchange.adapters.documents import ExchangeCaseDocument
from exchange.adapters.kafka_transport import (
    PRODUCER_OPTIONS,
    KafkaTransport,
    inbox_topic,
    inbox_topic_specs,
)
from exchange.adapters.undelivered import UndeliveredRecords
from exchange.bootstrap import Runtime, build_runtime
from exchange.entrypoints import consumer
from exchange.entrypoints.relay import DeliveryJob
from exchange.service_layer import cases, sending
from plumbing import mongo as connections
from plumbing.clock import FixedClock
from plumbing.kafka import ConsumerLoop, ensure_topics, load_topics, make_producer
from services.exchange.tests.unit.conftest import notification
from services.exchange.tests.unit.fakes import user
from services.exchange.tests.unit.test_exchange_envelope import inner_jws, rewrap
from services.exchange.tests.unit.test_exchange_service import verification_request

pytestmark = pytest.mark.integration

XK, ME = user("xk-contact-point"), user("me-contact-point")
NOW = datetime(2026, 6, 1, 9, 30, tzinfo=UTC)


def until(predicate: Callable[[], Any], timeout_s: float, what: str) -> Any:
    deadline = time.monotonic() + timeout_s
    while True:
        value = predicate()
        if value:
            return value
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


# ---------------------------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def bootstrap(kafka: Any) -> str:
    return str(kafka.env["KAFKA_BOOTSTRAP_SERVERS"])


@pytest.fixture(scope="module")
def runtime(mongo: Any, bootstrap: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Runtime]:
    """One process's wiring, as bootstrap builds it for the API, the consumer and the relay: the Kafka transport
    from KAFKA_BOOTSTRAP_SERVERS, keys generated in local mode, a scratch database."""
    environ = {
        "THB_MODE": "local",
        "MONGODB_URI": mongo.env["MONGODB_URI"],
        "MONGODB_DB": f"thb_exchange_it_{uuid.uuid4().hex[:8]}",
        "KAFKA_BOOTSTRAP_SERVERS": bootstrap,
        "THB_KEYS_FILE": str(tmp_path_factory.mktemp("keys") / "keys.json"),
    }
    ExchangeCaseDocument._collection = None  # bind to this database (another module may have used another)
    built = build_runtime(environ, FixedClock(NOW))
    assert isinstance(built.deps.transport, KafkaTransport)
    # What the consumer process creates at start: asyncapi.yaml's topics, and the inboxes of configured countries.
    countries = built.startup.config.country_codes
    ensure_topics(bootstrap, [*load_topics(), *inbox_topic_specs(countries, load_topics())])
    yield built
    built.deps.transport.close()
    connections.disconnect()
    client: MongoClient = MongoClient(environ["MONGODB_URI"])
    client.drop_database(environ["MONGODB_DB"])
    client.close()
    ExchangeCaseDocument._collection = None


class Running:
    """The consumer loop in a thread, stopped and joined at the end."""

    def __init__(self, loop: ConsumerLoop) -> None:
        self.loop = loop
        self.thread = threading.Thread(
            target=loop.run, kwargs={"install_signal_handlers": False}, daemon=True
        )

    def __enter__(self) -> ConsumerLoop:
        self.thread.start()
        until(self.loop.ready.is_set, 60, "the consumer joined its group")
        return self.loop

    def __exit__(self, *exc: Any) -> None:
        self.loop.stop()
        self.thread.join(timeout=30)
        assert not self.thread.is_alive(), "consumer loop did not stop"


@pytest.fixture(scope="module")
def inbox(runtime: Runtime, bootstrap: str) -> Iterator[ConsumerLoop]:
    """The consumer process's inbox handlers for every configured country, in a group of this module's own."""
    loop = ConsumerLoop(
        [],
        f"exchange-it-{uuid.uuid4().hex[:6]}",
        {},
        bootstrap,
        raw_handlers=consumer.inbox_handlers(runtime.deps),
        producer_options=PRODUCER_OPTIONS,
        max_attempts=2,
        backoff_s=0.05,
        max_backoff_s=0.2,
        session_timeout_ms=6000,
        heartbeat_interval_ms=1000,
    )
    with Running(loop) as running:
        yield running


@pytest.fixture(scope="module")
def producer(bootstrap: str) -> Iterator[Any]:
    """A plain producer, for what no country would send: replays, forgeries, garbage."""
    made = make_producer(bootstrap, client_id="exchange-it-attacker", **PRODUCER_OPTIONS)
    yield made
    made.close()


def committed(bootstrap: str, group: str, topic: str) -> int:
    probe = KafkaConsumer(bootstrap_servers=bootstrap, group_id=group, enable_auto_commit=False)
    try:
        return probe.committed(TopicPartition(topic, 0)) or 0
    finally:
        probe.close(autocommit=False)


def produce(producer: Any, country: str, token: str, key: str = "attacker") -> int:
    return int(producer.send(inbox_topic(country), key=key.encode(), value=token.encode()).get(10).offset)


def me_records(runtime: Runtime) -> dict[str, dict[str, Any]]:
    found = ExchangeCaseDocument._get_collection().find(
        {"owner_country": "ME"}, {"reference": 1, "version": 1}
    )
    return {str(doc["_id"]): dict(doc) for doc in found}


def me_case(runtime: Runtime, reference: str) -> dict[str, Any] | None:
    return next((c for c in cases.list_cases(runtime.deps, ME) if c["reference"] == reference), None)


def status(runtime: Runtime, caller: Any, case_id: str, form_id: str) -> str:
    forms = cases.get_case(runtime.deps, caller, case_id)["forms"]
    return str(next(f["status"] for f in forms if f["id"] == form_id))


def read_form(runtime: Runtime, case_id: str, form_id: str) -> dict[str, Any]:
    """ME's officer reads the content (the access-log entry needs an HTTP request: recorded by a list here)."""
    reads: list[Any] = []
    deps = replace(runtime.deps, record_read=lambda caller, kind, ids: reads.append((caller.sub, kind, ids)))
    content = cases.read_form(deps, ME, case_id, form_id)
    assert reads == [(ME.sub, "exchange-form", [form_id])]
    return dict(content)


def raw(case_id: str) -> dict[str, Any]:
    return dict(ExchangeCaseDocument._get_collection().find_one({"_id": case_id}))


# ---------------------------------------------------------------------------------------------- tests


def test_a_notification_crosses_kafka_is_stored_once_receipted_and_a_replay_stores_nothing(
    runtime: Runtime, inbox: ConsumerLoop, producer: Any, bootstrap: str
) -> None:
    case_id, form = sending.draft_and_send(runtime.deps, XK, notification(), idempotency_key="it-1")
    # `deliver` returned: the broker acknowledged the envelope, and it left the sender's record.
    assert raw(case_id)["outgoing"] == []
    sent_logged = len(runtime.deps.message_log.entries("XK"))
    reference = cases.get_case(runtime.deps, XK, case_id)["reference"]
    received = until(lambda: me_case(runtime, reference), 60, "ME stored the notification")
    assert status(runtime, ME, received["id"], form.id) == "received"
    assert read_form(runtime, received["id"], form.id)["content"]["person"]["surnames"] == ["Krasniqi"]
    # The automatic receipt came back over exchange.inbox.xk.
    until(lambda: status(runtime, XK, case_id, form.id) == "received", 60, "XK's form shows received")
    assert raw(received["id"])["received_envelopes"] == [form.envelope_id]
    # A received envelope is logged just after its record is stored (receiving.py): wait for XK's entry of the
    # receipt, or the counts below would race it.
    until(lambda: len(runtime.deps.message_log.entries("XK")) > sent_logged, 30, "XK logged the receipt")

    # The same envelope produced twice more (a redelivery, a replay): nothing new anywhere.
    before_me, before_xk = me_records(runtime), raw(case_id)["version"]
    logs = {c: len(runtime.deps.message_log.entries(c)) for c in ("XK", "ME")}
    wire = on_the_wire(bootstrap, form.envelope_id)
    last = produce(producer, "ME", wire, key=form.envelope_id)
    until(lambda: committed(bootstrap, inbox.group_id, inbox_topic("ME")) > last, 30, "the replay consumed")
    assert me_records(runtime) == before_me
    assert raw(case_id)["version"] == before_xk  # no second receipt
    assert {c: len(runtime.deps.message_log.entries(c)) for c in ("XK", "ME")} == logs


def on_the_wire(bootstrap: str, envelope_id: str) -> str:
    """The envelope as it went over the wire (read back from exchange.inbox.me by its key)."""
    reader = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False, **_fetch())
    try:
        partition = TopicPartition(inbox_topic("ME"), 0)
        reader.assign([partition])
        reader.seek_to_beginning(partition)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            for records in reader.poll(timeout_ms=500).values():
                for record in records:
                    if record.key == envelope_id.encode():
                        return str(record.value.decode("ascii"))
        raise AssertionError("the envelope is not on exchange.inbox.me")
    finally:
        reader.close()


def _fetch() -> dict[str, Any]:
    return {"max_partition_fetch_bytes": PRODUCER_OPTIONS["max_request_size"]}


def test_forged_re_addressed_and_garbage_envelopes_are_refused_and_the_consumer_moves_on(
    runtime: Runtime,
    inbox: ConsumerLoop,
    producer: Any,
    bootstrap: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, logger=consumer.__name__)
    sealer = runtime.deps.envelopes
    message = {"case": {"reference": "XK-EX-2026-9999", "participants": ["XK", "ME"]}, "form": {}, "body": {}}
    # AL signs, with its own valid key, a message claiming to come from XK.
    al_token = sealer.seal(message, sender="AL", recipient="ME", envelope_id=str(uuid.uuid4())).token
    forged_id = str(uuid.uuid4())
    forged = rewrap(
        sealer, inner_jws(sealer, al_token, "ME"), sender="XK", recipient="ME", envelope_id=forged_id
    )  # type: ignore[arg-type]
    # XK's genuine signed message in a new envelope (a new id, to pass replay detection).
    xk_token = sealer.seal(message, sender="XK", recipient="ME", envelope_id=str(uuid.uuid4())).token
    moved_id = str(uuid.uuid4())
    moved = rewrap(
        sealer, inner_jws(sealer, xk_token, "ME"), sender="XK", recipient="ME", envelope_id=moved_id
    )  # type: ignore[arg-type]
    before = me_records(runtime)
    for token in (forged, moved, "not-a-jwe", al_token[::-1]):
        produce(producer, "ME", token)
    # A genuine notification behind them still arrives: the refusals were committed, not retried for ever.
    case_id, form = sending.draft_and_send(runtime.deps, XK, notification(), idempotency_key="it-2")
    reference = cases.get_case(runtime.deps, XK, case_id)["reference"]
    until(lambda: me_case(runtime, reference), 60, "the genuine notification behind the refused ones")
    assert set(me_records(runtime)) - set(before) == {me_case(runtime, reference)["id"]}  # type: ignore[index]
    lines = [getattr(r, "fields", {}) for r in caplog.records if r.name == consumer.__name__]
    refusals = [(line["reason"], line.get("envelope_id")) for line in lines if line.get("inbox") == "ME"]
    assert ("forged", forged_id) in refusals and ("re-addressed", moved_id) in refusals
    assert [reason for reason, _ in refusals].count("malformed") >= 2
    # Nothing refused went to the dead letters.
    assert not dead_letters(bootstrap, inbox_topic("ME") + ".dlt", inbox.group_id)


def dead_letters(bootstrap: str, topic: str, group: str) -> list[Any]:
    reader = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False, **_fetch())
    try:
        partition = TopicPartition(topic, 0)
        reader.assign([partition])
        reader.seek_to_beginning(partition)
        end = reader.end_offsets([partition])[partition]
        found: list[Any] = []
        while reader.position(partition) < end:
            for records in reader.poll(timeout_ms=500).values():
                found += [r for r in records if dict(r.headers).get("dlt.consumer.group") == group.encode()]
        return found
    finally:
        reader.close()


def test_an_envelope_kafka_did_not_take_waits_in_outgoing_until_the_relay_delivers_it(
    runtime: Runtime, inbox: ConsumerLoop
) -> None:
    closed_port = free_port()  # nothing listens there: Kafka is unreachable for this process
    unreachable = KafkaTransport.connect(f"127.0.0.1:{closed_port}", client_id="exchange-it-down")
    down = replace(runtime.deps, transport=unreachable)
    started = time.monotonic()
    case_id, form = sending.draft_and_send(down, XK, notification(), idempotency_key="it-3")
    assert time.monotonic() - started < 15  # bounded: the request did not hang on the broker
    unreachable.close()
    (waiting,) = raw(case_id)["outgoing"]
    assert (waiting["envelope_id"], waiting["recipient"]) == (form.envelope_id, "ME")
    assert status(runtime, XK, case_id, form.id) == "sent"

    clock = runtime.deps.clock
    records = UndeliveredRecords(runtime.startup.config.country_codes, clock, grace_s=30)
    job = DeliveryJob(runtime.deps, records, retry_s=30)  # the relay process's job, with the real transport
    assert records.claim() is None  # within the grace: the request that wrote it may still be delivering
    clock.advance(seconds=31)  # type: ignore[attr-defined]
    assert job.run_once() == 1
    assert raw(case_id)["outgoing"] == [] and raw(case_id)["delivery_lease_until"] is None
    assert job.run_once() == 0
    reference = cases.get_case(runtime.deps, XK, case_id)["reference"]
    until(lambda: me_case(runtime, reference), 60, "ME stored what the relay delivered")
    until(lambda: status(runtime, XK, case_id, form.id) == "received", 60, "the receipt came back")
    sent = [
        e
        for e in runtime.deps.message_log.entries("XK")
        if e["envelope_id"] == form.envelope_id and e["direction"] == "sent"
    ]
    assert len(sent) == 1  # logged once, though handed over twice


def test_an_envelope_larger_than_kafkas_default_record_limit_crosses(
    runtime: Runtime, inbox: ConsumerLoop
) -> None:
    case_id, note = sending.draft_and_send(runtime.deps, XK, notification(), idempotency_key="it-4")
    # Its receipt first: a send while a receipt lands on the same record can fail with a Conflict (see
    # test_a_receipt_landing_during_a_send... in tests/unit/test_exchange_transport.py).
    until(lambda: status(runtime, XK, case_id, note.id) == "received", 60, "the notification's receipt")
    # The most a form may carry (3 scans at the catalogue's 220 kB cap): over 1 MB on the wire once encrypted.
    scans = [base64.b64encode(os.urandom(220_000)).decode("ascii") for _ in range(3)]
    attachments = [
        {"filename": f"page-{n}.pdf", "media_type": "application/pdf", "data": scan}
        for n, scan in enumerate(scans)
    ]
    body = verification_request(case_id, note.id, attachments)
    _, form = sending.draft_and_send(runtime.deps, XK, body, idempotency_key="it-5")
    assert raw(case_id)["outgoing"] == []  # handed over
    until(lambda: status(runtime, XK, case_id, form.id) == "received", 90, "the large form was received")
    reference = cases.get_case(runtime.deps, XK, case_id)["reference"]
    received = me_case(runtime, reference)
    assert received is not None
    assert [a["data"] for a in read_form(runtime, received["id"], form.id)["attachments"]] == scans


def test_the_relays_claim_reads_only_records_with_envelopes_waiting(
    runtime: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The claim on the Mongo-wire server among 3,000 records with nothing waiting finds the one waiting record
    and takes it once, with filters the server serves by the index on `outgoing.recipient`: that field first
    and no member starting with `$` (the embedded server's planner, docs/engineering.md: a `$` member means no
    index, otherwise the first member an index serves). Checked on the filters actually sent, not on timings,
    which a busy machine makes meaningless."""
    collection = ExchangeCaseDocument._get_collection()
    assert any(
        [field for field, _ in spec["key"]][:1] == ["outgoing.recipient"]
        for spec in collection.index_information().values()
    )
    sent: list[tuple[str, dict[str, Any]]] = []

    def spying(operation: str) -> Callable[..., Any]:
        original = getattr(Collection, operation)

        def spy(self: Collection, filter: Any = None, *args: Any, **kwargs: Any) -> Any:  # noqa: A002
            if self.name == collection.name:
                sent.append((operation, dict(filter or {})))
            return original(self, filter, *args, **kwargs)

        return spy

    for operation in ("find", "update_one"):
        monkeypatch.setattr(Collection, operation, spying(operation))
    filler = [
        {
            "_id": str(uuid.uuid4()),
            "owner_country": "AL",
            "owner_agency": "coordinator-office",
            "reference": f"AL-EX-2026-{n:05d}",
            "updated_at": NOW,
            "forms": [{"id": str(uuid.uuid4()), "form_type": "notification", "status": "received"}],
            "contents": {"x": "y" * 2000},
            "outgoing": [],
            "received_envelopes": [str(uuid.uuid4())],
        }
        for n in range(3000)
    ]
    collection.insert_many(filler)
    waiting_id = str(uuid.uuid4())
    collection.insert_one(
        {**filler[0], "_id": waiting_id, "reference": "AL-EX-2026-99999", "outgoing": [{"recipient": "ME"}]}
    )
    try:
        records = UndeliveredRecords(runtime.startup.config.country_codes, runtime.deps.clock, grace_s=0)
        claims = [records.claim() for _ in range(3)]  # the same query each time; a claimed record is leased
        taken = [claimed.record_id for claimed in claims if claimed is not None]
        assert taken.count(waiting_id) == 1 and len(set(taken)) == len(taken)
        # Candidates by the index on outgoing.recipient; the lease taken by a point write on _id, the record
        # taken read back by _id (plumbing.leases.claim).
        assert {operation for operation, _ in sent} == {"find", "update_one"}, sent
        assert any(
            next(iter(where)) == "outgoing.recipient" for operation, where in sent if operation == "find"
        )
        for operation, where in sent:
            assert next(iter(where)) in (
                ("outgoing.recipient", "_id") if operation == "find" else ("_id",)
            ), where
            assert not any(name.startswith("$") for name in where), where
    finally:
        collection.delete_many({"_id": {"$in": [waiting_id, *(doc["_id"] for doc in filler)]}})
