"""The Kafka transport without Kafka: what record it hands over (topic per country, key, value, headers), that a
failure of any kind is a `TransportError` (and the envelope stays in the sender's record), the cool-down after
a failure, the inbox topics of configured countries, and which transport a process gets."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest
from kafka.errors import KafkaConnectionError, KafkaTimeoutError

from exchange.adapters.documents import ExchangeCaseDocument
from exchange.adapters.envelope import routing
from exchange.adapters.kafka_transport import (
    MAX_ENVELOPE_BYTES,
    KafkaTransport,
    inbox_topic,
    inbox_topic_specs,
)
from exchange.adapters.transport import HeldTransport, Transport, TransportError
from exchange.bootstrap import transport_from
from exchange.service_layer import sending
from plumbing.config import Settings
from plumbing.kafka import LazyProducer, TopicSpec, load_topics
from services.exchange.tests.unit.conftest import notification
from services.exchange.tests.unit.fakes import World, user

XK = user("xk-contact-point")


class Sender:
    """Stands in for plumbing.kafka.LazyProducer: records what was sent, or fails like Kafka would."""

    def __init__(self, fail: Exception | None = None) -> None:
        self.sent: list[dict[str, Any]] = []
        self.fail = fail
        self.closed = False

    def send(self, topic: str, value: bytes, *, key: bytes, headers: list[tuple[str, bytes]]) -> Any:
        if self.fail is not None:
            raise self.fail
        self.sent.append({"topic": topic, "value": value, "key": key, "headers": headers})
        return SimpleNamespace(offset=len(self.sent) - 1)

    def close(self) -> None:
        self.closed = True


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_an_envelope_goes_to_the_recipients_topic_keyed_by_its_id_with_the_token_as_value(
    world: World,
) -> None:
    sender = Sender()
    world.deps.transport = KafkaTransport(sender)  # type: ignore[arg-type]
    case_id, form = sending.draft_and_send(world.deps, XK, notification(), idempotency_key="k-1")
    (record,) = sender.sent
    token = record["value"].decode("ascii")
    assert record["topic"] == "exchange.inbox.me" == inbox_topic("ME")
    assert record["key"] == form.envelope_id.encode() == routing(token).envelope_id.encode()
    assert ("content-type", b"application/jose") in record["headers"]
    assert b"Krasniqi" not in record["value"] and "Krasniqi" not in str(record["headers"])
    # Handed over: nothing waits in the sender's record.
    assert world.store.raw(ExchangeCaseDocument, case_id)["outgoing"] == []


@pytest.mark.parametrize(
    "failure",
    [KafkaTimeoutError("no ack in time"), KafkaConnectionError("no broker"), RuntimeError("anything else")],
    ids=["timeout", "no-broker", "other"],
)
def test_any_failure_is_a_transport_error_and_the_envelope_stays_in_outgoing(
    world: World, failure: Exception
) -> None:
    world.deps.transport = KafkaTransport(Sender(fail=failure))  # type: ignore[arg-type]
    case_id, form = sending.draft_and_send(world.deps, XK, notification(), idempotency_key="k-1")
    (waiting,) = world.store.raw(ExchangeCaseDocument, case_id)["outgoing"]
    assert (waiting["envelope_id"], waiting["recipient"]) == (form.envelope_id, "ME")
    with pytest.raises(TransportError):
        KafkaTransport(Sender(fail=failure)).deliver("ME", "e-1", "t.o.k.e.n")  # type: ignore[arg-type]


def test_after_a_failure_deliveries_fail_at_once_until_the_cooldown_has_passed() -> None:
    clock, sender = Clock(), Sender(fail=KafkaTimeoutError("down"))
    transport = KafkaTransport(sender, cooldown_s=5.0, monotonic=clock)  # type: ignore[arg-type]
    with pytest.raises(TransportError):
        transport.deliver("ME", "e-1", "t")
    sender.fail = None  # the broker is back, but the transport does not ask yet
    clock.now += 4.9
    with pytest.raises(TransportError):
        transport.deliver("ME", "e-2", "t")
    assert sender.sent == []
    clock.now += 0.2
    transport.deliver("ME", "e-3", "t")
    assert [r["key"] for r in sender.sent] == [b"e-3"]


def test_with_a_lazy_producer_nothing_connects_before_the_first_delivery_and_failures_are_transport_errors() -> (
    None
):
    made: list[int] = []

    def factory() -> Any:
        made.append(1)
        raise KafkaConnectionError("no broker")

    transport = KafkaTransport(LazyProducer(factory), cooldown_s=0)
    assert made == []
    with pytest.raises(TransportError):
        transport.deliver("XK", "e-1", "t")
    with pytest.raises(TransportError):
        transport.deliver("XK", "e-2", "t")
    assert len(made) == 2  # asked again after each failure
    transport.close()


def test_inbox_topics_are_declared_for_todays_countries_and_derived_for_a_new_one() -> None:
    declared = load_topics()
    specs = {s.name: s for s in inbox_topic_specs(["AL", "XK", "ME", "MK"], declared)}
    by_name = {s.name: s for s in declared}
    for country in ("al", "xk", "me"):
        assert specs[f"exchange.inbox.{country}"] == by_name[f"exchange.inbox.{country}"]
        assert specs[f"exchange.inbox.{country}.dlt"] == by_name[f"exchange.inbox.{country}.dlt"]
    mk, mk_dlt = specs["exchange.inbox.mk"], specs["exchange.inbox.mk.dlt"]
    assert "exchange.inbox.mk" not in by_name  # configuration only
    template = by_name["exchange.inbox.al"]
    assert (mk.partitions, mk.retention_ms, mk.max_message_bytes, mk.dead_letter_of) == (
        template.partitions,
        template.retention_ms,
        template.max_message_bytes,
        None,
    )
    assert mk_dlt.dead_letter_of == "exchange.inbox.mk"
    assert template.partitions == 1 and template.max_message_bytes == MAX_ENVELOPE_BYTES
    with pytest.raises(ValueError):
        inbox_topic_specs(["MK"], [TopicSpec("other.topic", 1, 1000)])


def test_a_process_with_kafka_gets_the_kafka_transport_and_one_without_holds_envelopes() -> None:
    local = {"THB_MODE": "local"}
    assert isinstance(transport_from(Settings.from_env("exchange", local)), HeldTransport)
    with_kafka = transport_from(
        Settings.from_env("exchange", {**local, "KAFKA_BOOTSTRAP_SERVERS": "127.0.0.1:1"})
    )
    assert isinstance(with_kafka, KafkaTransport)
    with_kafka.close()  # made nothing, closes nothing


def test_a_receipt_stored_on_the_record_during_a_send_does_not_fail_the_send(world: World) -> None:
    """Seen on the real servers: a send right after an earlier form's receipt came back over Kafka. The
    delivered envelope leaves the record by a conditional `$pull`, so the write in between conflicts with
    nothing."""
    case_id, form_id = sending.draft_form(world.deps, XK, notification(), idempotency_key="k-1")

    class ReceiptMeanwhile(Transport):
        def deliver(self, recipient: str, envelope_id: str, token: str) -> None:
            # Another process writes the same record meanwhile, as the consumer applying a receipt does.
            doc = world.store.load(ExchangeCaseDocument, world.store.raw(ExchangeCaseDocument, case_id))
            doc.identification_case_id = "written-meanwhile"
            world.deps.repository(ExchangeCaseDocument, XK).update(doc)

    world.deps.transport = ReceiptMeanwhile()
    sent = sending.send_form(world.deps, XK, case_id, form_id, idempotency_key="k-1")
    assert sent.status.value == "sent"
    stored = world.deps.repository(ExchangeCaseDocument, XK).get(case_id)
    assert stored.outgoing == [] and stored.identification_case_id == "written-meanwhile"
