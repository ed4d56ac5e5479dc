"""The consumer's inbox handlers on fakes, driven through plumbing's consumer loop one record at a time (no
Kafka): an envelope is stored once and committed after the store; a replay stores nothing new; a refused
envelope (forged, re-addressed, not for this inbox, not even ASCII) is logged with its reason and routing only
and committed; one about a form not held yet is retried and dead-lettered; a store that fails is never
committed before it is retried and dead-lettered."""

from __future__ import annotations

import json
import logging
from types import SimpleNamespace
from typing import Any

import pytest

from exchange.adapters.documents import ExchangeCaseDocument
from exchange.adapters.envelope import EnvelopeRefused
from exchange.entrypoints import consumer
from exchange.service_layer import cases, sending
from plumbing.kafka import CONSUMED, ConsumerLoop, RawRecord
from plumbing.logging import JsonFormatter
from services.exchange.tests.unit.conftest import notification
from services.exchange.tests.unit.fakes import World, user
from services.exchange.tests.unit.test_exchange_envelope import inner_jws, rewrap

XK, ME, AL = user("xk-contact-point"), user("me-contact-point"), user("al-contact-point")


class DeadLetters:
    def __init__(self) -> None:
        self.sent: list[tuple[str, dict[str, Any]]] = []

    def send(self, topic: str, **record: Any) -> Any:
        self.sent.append((topic, record))
        return SimpleNamespace(get=lambda timeout=None: None)


def counted(inbox: str, outcome: str) -> float:
    return float(CONSUMED.labels("exchange", f"exchange.inbox.{inbox.lower()}", outcome)._value.get())


def loop(world: World, dlt: DeadLetters) -> ConsumerLoop:
    return ConsumerLoop(
        consumer.TOPICS, "exchange", {}, "127.0.0.1:1", max_attempts=2, backoff_s=0, producer=dlt,
        raw_handlers=consumer.inbox_handlers(world.deps),
    )  # fmt: skip


def record(country: str, value: bytes | None, offset: int = 0) -> Any:
    return SimpleNamespace(
        topic=f"exchange.inbox.{country.lower()}",
        partition=0,
        offset=offset,
        key=b"k",
        value=value,
        headers=[],
    )


def sent_token(world: World, sender: Any = XK, recipient: str = "ME", key: str = "k-1") -> tuple[str, str]:
    """A notification drafted and sent; returns (the sender's case id, the token that went on the wire)."""
    case_id, _ = sending.draft_and_send(world.deps, sender, notification(recipient), idempotency_key=key)
    _, _, token = world.transport.queue.pop()
    return case_id, token


def me_rows(world: World) -> dict[str, int]:
    return {
        k: v["version"]
        for k, v in world.store.rows(ExchangeCaseDocument).items()
        if v["owner_country"] == "ME"
    }


@pytest.fixture
def logs(caplog: pytest.LogCaptureFixture) -> Any:
    caplog.set_level(logging.INFO)
    formatter = JsonFormatter("exchange")
    return lambda: [json.loads(formatter.format(r)) for r in caplog.records]


def test_one_handler_per_configured_country_and_the_identification_events_unchanged(world: World) -> None:
    table = consumer.inbox_handlers(world.deps)
    assert set(table) == {f"exchange.inbox.{c.lower()}" for c in world.deps.config.country_codes}
    assert consumer.TOPICS == ("identification.events.v1", "return.events.v1")


def test_an_envelope_is_stored_once_its_receipt_goes_back_and_a_replay_stores_nothing(
    world: World, logs: Any
) -> None:
    dlt = DeadLetters()
    running = loop(world, dlt)
    case_id, token = sent_token(world)
    assert running._process(record("ME", token.encode())) is True  # committed after the store
    (me_case,) = cases.list_cases(world.deps, ME)
    assert me_case["reference"] == cases.get_case(world.deps, XK, case_id)["reference"]
    # The automatic receipt went back through the transport, to XK.
    ((recipient, _, receipt),) = world.transport.queue
    assert recipient == "XK"
    before = me_rows(world)
    assert running._process(record("ME", token.encode(), offset=1)) is True  # produced twice: a replay
    assert me_rows(world) == before and len(world.transport.queue) == 1 and dlt.sent == []
    assert counted("ME", "stored") == 1 and counted("ME", "duplicate") == 1  # kafka_consumer_records_total
    outcomes = [line for line in logs() if line["msg"].startswith("exchange envelope ")]
    assert [line["msg"] for line in outcomes] == ["exchange envelope stored", "exchange envelope duplicate"]
    assert outcomes[0]["from"] == "XK" and outcomes[0]["to"] == "ME" and outcomes[0]["inbox"] == "ME"
    # XK's inbox takes the receipt: the form shows received on XK's side.
    assert running._process(record("XK", receipt.encode())) is True
    form = next(
        f for f in cases.get_case(world.deps, XK, case_id)["forms"] if f["form_type"] == "notification"
    )
    assert form["status"] == "received"


def forged(world: World) -> str:
    """AL signs, with its own valid key, a message claiming to come from XK, and wraps it for ME."""
    _, al_token = sent_token(world, AL, "ME", key="al-1")
    signed = inner_jws(world.deps.envelopes, al_token, "ME")  # type: ignore[arg-type]
    return rewrap(
        world.deps.envelopes,
        signed,
        sender="XK",
        recipient="ME",
        envelope_id="8f1e2f6a-3b0c-4d5e-9f00-0123456789ab",
    )  # type: ignore[arg-type]


def re_addressed(world: World) -> str:
    """XK's genuine signed message put into a new envelope (a new id, to slip past replay detection)."""
    _, token = sent_token(world, key="x-2")
    signed = inner_jws(world.deps.envelopes, token, "ME")  # type: ignore[arg-type]
    return rewrap(
        world.deps.envelopes,
        signed,
        sender="XK",
        recipient="ME",
        envelope_id="0b1e2f6a-3b0c-4d5e-9f00-0123456789ab",
    )  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("make", "inbox", "reason"),
    [
        (forged, "ME", "forged"),
        (re_addressed, "ME", "re-addressed"),
        (lambda world: sent_token(world, key="x-3")[1], "AL", "not-addressed-to-us"),
        (lambda world: sent_token(world, key="x-4")[1][::-1], "ME", "malformed"),
    ],
    ids=["forged", "re-addressed", "wrong-inbox", "garbage"],
)
def test_a_refused_envelope_stores_nothing_is_logged_with_routing_only_and_committed(
    world: World, logs: Any, make: Any, inbox: str, reason: str
) -> None:
    dlt = DeadLetters()
    running = loop(world, dlt)
    token = make(world)
    rows = dict(world.store.rows(ExchangeCaseDocument))
    before = counted(inbox, f"refused-{reason}")
    assert running._process(record(inbox, token.encode())) is True  # committed: no poison loop
    assert counted(inbox, f"refused-{reason}") == before + 1
    assert set(world.store.rows(ExchangeCaseDocument)) == set(rows)  # nothing new stored
    assert dlt.sent == [] and world.transport.queue == []
    (line,) = [line for line in logs() if line["logger"] == consumer.__name__]
    assert line["msg"] == "exchange envelope refused" and line["reason"] == reason
    assert line["inbox"] == inbox and line["topic"] == f"exchange.inbox.{inbox.lower()}"
    assert "Krasniqi" not in json.dumps(logs()) and token not in json.dumps(logs())


def test_a_value_that_is_not_ascii_or_missing_is_refused_as_malformed(world: World, logs: Any) -> None:
    running = loop(world, DeadLetters())
    assert running._process(record("ME", "é".encode())) is True
    assert running._process(record("ME", None)) is True
    assert [line["reason"] for line in logs() if line["msg"] == "exchange envelope refused"] == [
        "malformed"
    ] * 2
    assert world.store.rows(ExchangeCaseDocument) == {}


def test_an_envelope_about_a_form_not_held_is_retried_then_dead_lettered(world: World) -> None:
    case_id, token = sent_token(world)
    form_id = next(f["id"] for f in cases.get_case(world.deps, XK, case_id)["forms"])
    sending.withdraw_form(world.deps, XK, case_id, form_id, "sent-in-error", idempotency_key="w-1")
    _, _, withdrawal = world.transport.queue.pop()
    dlt = DeadLetters()
    running = loop(world, dlt)
    # The withdrawal overtook the notification: ME holds no such form yet.
    with pytest.raises(EnvelopeRefused) as error:
        consumer.receive(
            world.deps, "ME", RawRecord("exchange.inbox.me", 0, 0, b"k", withdrawal.encode(), ())
        )
    assert error.value.reason == "inapplicable"
    assert running._process(record("ME", withdrawal.encode())) is True
    ((topic, dead),) = dlt.sent
    assert topic == "exchange.inbox.me.dlt" and dead["value"] == withdrawal.encode()
    headers = dict(dead["headers"])
    assert headers["dlt.error.class"].endswith(b"EnvelopeRefused") and headers["dlt.attempts"] == b"2"
    # Replayed from the DLT once the notification has arrived, it applies.
    assert running._process(record("ME", token.encode())) is True
    assert running._process(record("ME", withdrawal.encode(), offset=2)) is True
    (me_case,) = cases.list_cases(world.deps, ME)
    form = next(f for f in cases.get_case(world.deps, ME, me_case["id"])["forms"] if f["id"] == form_id)
    assert form["status"] == "withdrawn"


def test_a_store_that_fails_is_retried_and_never_committed_before_the_dead_letter(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    _, token = sent_token(world)
    dlt = DeadLetters()
    running = loop(world, dlt)
    attempts: list[int] = []
    real = world.deps.repository

    def failing(document_class: type, caller: Any) -> Any:
        repository = real(document_class, caller)

        def insert(doc: Any, **kw: Any) -> Any:
            attempts.append(1)
            raise ConnectionError("mongo unreachable")

        monkeypatch.setattr(repository, "insert", insert)
        return repository

    world.deps.repository = failing
    committed = running._process(record("ME", token.encode()))
    assert attempts == [1, 1] and me_rows(world) == {}
    # Returning True here means "dead-lettered, then committed": the record is in the DLT before the commit.
    assert committed is True and [topic for topic, _ in dlt.sent] == ["exchange.inbox.me.dlt"]
