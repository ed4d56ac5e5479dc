"""The Kafka transport: a sealed envelope to the receiving country's inbox topic, acknowledged before it counts.

One topic per destination country, `exchange.inbox.<country, lower case>` (openapi/asyncapi.yaml), one
partition each, so that a country's inbox receives in the order envelopes were handed over (a withdrawal or a
receipt does not overtake the form it is about). Key: the envelope id; value: the compact JWE, as ASCII bytes;
headers: `content-type: application/jose` and the W3C trace context. Nothing else: the transport sees the
routing only (countries and envelope id), never content.

`deliver` returns only once the broker has acknowledged the record (acks=all, idempotent producer; every wait
bounded: plumbing.kafka.make_producer and LazyProducer). Any failure, the broker down, a timeout or a record
the broker refuses, raises `TransportError`: the envelope then stays in the sender's record (`outgoing`) and the
relay delivers it later. After a failure, deliveries fail at once for `cooldown_s`, so that requests do not each
wait for a broker that is down (the relay retries them). A delivery may reach the topic twice (a timeout after
the broker stored it, or the relay racing a request); the receiver stores an envelope id once.

The producer is made on the first delivery in each process (never before gunicorn forks). Kafka's client has
no TLS or SASL settings on this platform yet (docs/deploy.md, known limits): plumbing.kafka.make_producer is
the one place they would go.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import replace
from functools import partial
from typing import Any

from exchange.adapters.transport import Transport, TransportError
from plumbing.kafka import LazyProducer, TopicSpec, make_producer

log = logging.getLogger(__name__)

INBOX_PREFIX = "exchange.inbox."
CONTENT_TYPE = b"application/jose"  # RFC 7515/7516: a JOSE object in compact serialisation
# The largest record an inbox takes (its topic's max.message.bytes in asyncapi.yaml): MongoDB's 16 MiB document
# limit bounds the envelope a case record can hold in `outgoing`, so no storable envelope is refused for size.
MAX_ENVELOPE_BYTES = 16 * 1024 * 1024
# What a producer and a DLT producer of envelopes need on top of make_producer's defaults: room for the largest
# envelope plus the record's framing.
PRODUCER_OPTIONS: dict[str, Any] = {"max_request_size": MAX_ENVELOPE_BYTES + 64 * 1024}


def inbox_topic(country: str) -> str:
    """The inbox topic of a partner country: `exchange.inbox.xk` for XK."""
    return INBOX_PREFIX + country.lower()


def inbox_topic_specs(countries: Iterable[str], declared: Sequence[TopicSpec]) -> list[TopicSpec]:
    """The inbox topics (and their DLTs) of `countries`. Those asyncapi.yaml declares keep their declaration; a
    country added to the configuration only (a new partner) gets topics like the declared inboxes, so that
    adding a partner stays a configuration change (the consumer creates them at start)."""
    by_name = {spec.name: spec for spec in declared}
    inboxes = sorted(
        (s for s in declared if s.name.startswith(INBOX_PREFIX) and s.dead_letter_of is None),
        key=lambda s: s.name,
    )
    if not inboxes:
        raise ValueError(f"asyncapi.yaml declares no {INBOX_PREFIX}<country> topic to derive inboxes from")
    template = inboxes[0]
    template_dlt = next((s for s in declared if s.dead_letter_of == template.name), None)
    specs = []
    for country in sorted(countries):
        name = inbox_topic(country)
        specs.append(by_name.get(name) or replace(template, name=name))
        dlt = name + ".dlt"
        if dlt in by_name:
            specs.append(by_name[dlt])
        elif template_dlt is not None:
            specs.append(replace(template_dlt, name=dlt, dead_letter_of=name))
    return specs


def make_envelope_producer(bootstrap: str, *, client_id: str) -> Any:
    """A producer for envelopes: make_producer's (idempotent, acks=all) with short bounded waits, since a
    request may be the one waiting: reaching a broker (kafka-python bootstraps inside the constructor, 30 s by
    default) and metadata at most 2 s each, a delivery at most 6 s."""
    return make_producer(
        bootstrap,
        client_id=client_id,
        bootstrap_timeout_ms=2000,
        max_block_ms=2000,
        request_timeout_ms=3000,
        delivery_timeout_ms=6000,
        **PRODUCER_OPTIONS,
    )


class KafkaTransport(Transport):
    def __init__(
        self,
        producer: LazyProducer,
        *,
        cooldown_s: float = 5.0,
        topic_for: Callable[[str], str] = inbox_topic,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.producer = producer
        self.cooldown_s = cooldown_s
        self.topic_for = topic_for
        self._monotonic = monotonic
        self._failed_until = 0.0
        self._lock = threading.Lock()

    @classmethod
    def connect(cls, bootstrap: str, *, client_id: str, cooldown_s: float = 5.0) -> KafkaTransport:
        """The transport of a process: nothing connects before the first delivery."""
        factory = partial(make_envelope_producer, bootstrap, client_id=client_id)
        return cls(LazyProducer(factory, send_timeout_s=7.0), cooldown_s=cooldown_s)

    def deliver(self, recipient: str, envelope_id: str, token: str) -> None:
        topic = self.topic_for(recipient)
        with self._lock:
            cooling = self._monotonic() < self._failed_until
        if cooling:
            raise TransportError("kafka unavailable a moment ago; left for the relay")
        try:
            self.producer.send(
                topic,
                token.encode("ascii"),
                key=envelope_id.encode("ascii"),
                headers=[("content-type", CONTENT_TYPE)],
            )
        except Exception as exc:  # noqa: BLE001 - whatever failed, the envelope was not handed over
            with self._lock:
                self._failed_until = self._monotonic() + self.cooldown_s
            log.warning(
                "exchange envelope not handed to kafka: %s",
                type(exc).__name__,
                extra={"fields": {"envelope_id": envelope_id, "topic": topic}},
            )
            raise TransportError(type(exc).__name__) from None

    def close(self) -> None:
        self.producer.close()
