"""The transport port: hands a sealed envelope to the receiving country's inbox.

One interface, so that the deployment decides the wire: inside one shared deployment a Kafka topic per
destination country (adapters/kafka_transport.py: `exchange.inbox.<country>`, keyed by envelope id, the compact
JWE as the value), later HTTPS between national installations. The envelope is the same on every wire, and it
carries no readable form content (adapters/envelope.py).
"""

from __future__ import annotations

from abc import ABC, abstractmethod


class TransportError(Exception):
    """The envelope could not be handed over now; it stays in the sender's record for a later attempt."""


class Transport(ABC):
    @abstractmethod
    def deliver(self, recipient: str, envelope_id: str, token: str) -> None:
        """Hand the envelope to `recipient`'s inbox, at least once. Raises `TransportError` when it cannot."""

    def close(self) -> None:  # noqa: B027 - optional: most transports hold nothing
        """Release what the transport holds (a producer); called when its process stops."""


class HeldTransport(Transport):
    """Holds every envelope in the sender's record (`outgoing`), sealed, for a relay to deliver later: what tests
    use, and a process without KAFKA_BOOTSTRAP_SERVERS (local mode only; production requires Kafka)."""

    def deliver(self, recipient: str, envelope_id: str, token: str) -> None:
        raise TransportError("no transport wired")
