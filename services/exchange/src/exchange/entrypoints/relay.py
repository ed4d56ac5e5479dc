"""The exchange relay process: `python -m exchange.entrypoints.relay`.

Delivers envelopes left undelivered: a send (or a receipt, a withdrawal ...) writes the form and its envelope
in one write (`outgoing`), then hands the envelope to the transport; when that fails (Kafka down, a timeout, the
process died in between), the envelope stays in the record. Between passes this process finds such records
(adapters/undelivered.py: an indexed equality query, one record claimed at a time with a lease, records
written in the last `grace_s` left to the request that wrote them) and calls `outgoing.deliver` for each, as
the owning country's system caller (`records.inbox_caller`): the message log, the transport, and the envelope
leaves `outgoing`. A record whose delivery fails again is held for `retry_s` (its back-off) and the pass stops
(the broker is the likely cause). A second delivery of an envelope is harmless: the receiver stores an
envelope id once.

It is also the exchange's outbox relay: the events written with each case record (domain/events.py, also the
scheduler's) are published to `exchange.events.v1`, in order per record.

Started like every relay, by plumbing.worker.run_relay, the delivery job as its periodic task (every
EXCHANGE_RELAY_INTERVAL_S, default 5 s; grace EXCHANGE_RELAY_GRACE_S, default 30 s; back-off
EXCHANGE_RELAY_RETRY_S, default 30 s); its readiness is plumbing's (connected to Kafka).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping

from exchange.adapters.documents import ExchangeCaseDocument
from exchange.adapters.undelivered import UndeliveredRecords
from exchange.bootstrap import SERVICE, build_runtime
from exchange.service_layer import outgoing
from exchange.service_layer.deps import Deps
from exchange.service_layer.records import cases, inbox_caller
from plumbing.errors import Conflict, NotFound
from plumbing.worker import run_relay

log = logging.getLogger(__name__)

# Seconds between passes, the grace left to the request that wrote a record, a record's back-off after a failure.
INTERVAL_ENV, GRACE_ENV, RETRY_ENV = (
    "EXCHANGE_RELAY_INTERVAL_S",
    "EXCHANGE_RELAY_GRACE_S",
    "EXCHANGE_RELAY_RETRY_S",
)


class DeliveryJob:
    """One pass: deliver the waiting envelopes of at most `max_records` records. Returns envelopes delivered."""

    def __init__(
        self, deps: Deps, records: UndeliveredRecords, *, retry_s: float = 30.0, max_records: int = 100
    ) -> None:
        self.deps = deps
        self.records = records
        self.retry_s = retry_s
        self.max_records = max_records

    def run_once(self) -> int:
        delivered = 0
        for _ in range(self.max_records):
            claimed = self.records.claim()
            if claimed is None:
                break
            caller = inbox_caller(claimed.owner_country)
            try:
                doc = cases(self.deps, caller).get(claimed.record_id)
                waiting = len(doc.outgoing)
                handed_over = len(outgoing.deliver(self.deps, caller, doc))
            except (NotFound, Conflict):
                # Gone, or changed by a command meanwhile (which delivers what it wrote): look again next pass.
                self.records.release(claimed.record_id)
                continue
            except Exception:
                self.records.hold(claimed.record_id, self.retry_s)
                raise
            delivered += handed_over
            if handed_over < waiting:
                self.records.hold(claimed.record_id, self.retry_s)
                break  # the transport failed: the broker is the likely cause, try the rest after the back-off
            self.records.release(claimed.record_id)
        if delivered:
            log.info("exchange relay delivered %d envelope(s)", delivered)
        return delivered


def job(deps: Deps, environ: Mapping[str, str] | None = None) -> DeliveryJob:
    """The job of this process, its timings from the environment (seconds)."""
    env = os.environ if environ is None else environ
    records = UndeliveredRecords(
        deps.config.country_codes, deps.clock, grace_s=float(env.get(GRACE_ENV, "30"))
    )
    return DeliveryJob(deps, records, retry_s=float(env.get(RETRY_ENV, "30")))


def main() -> None:
    runtime = build_runtime()  # the Kafka transport, keys, catalogue; no HTTP
    delivery = job(runtime.deps)
    try:
        run_relay(
            SERVICE,
            [ExchangeCaseDocument],
            settings=runtime.startup.settings,
            periodic=[delivery.run_once],
            periodic_interval_s=float(os.environ.get(INTERVAL_ENV, "5")),
        )
    finally:
        runtime.deps.transport.close()


if __name__ == "__main__":
    main()
