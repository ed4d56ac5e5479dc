"""The identification outbox relay process: `python -m identification.entrypoints.relay`.

Publishes the pending events of persons, cases, notifications and duplicate searches to the topics of
openapi/asyncapi.yaml, in order per document, until SIGTERM/SIGINT. Between passes it also performs follow-up
steps an API process did not complete (service_layer/follow_up.py).
"""

from __future__ import annotations

import logging
from functools import partial

from identification.adapters.documents import AGGREGATES
from identification.bootstrap import SERVICE, next_sequence
from identification.service_layer import follow_up
from plumbing import mongo, telemetry, worker_endpoints
from plumbing.clock import SystemClock
from plumbing.config import Settings
from plumbing.kafka import ensure_topics, make_producer
from plumbing.logging import configure_logging
from plumbing.outbox import Relay
from plumbing.steps import StepRunner

log = logging.getLogger(__name__)


def main() -> None:
    settings = Settings.from_env(SERVICE)
    settings.require("mongodb_uri", "kafka_bootstrap_servers")
    configure_logging(SERVICE, settings.log_level)
    # PRODUCER spans continuing each event's traceparent are exported like the API's (OTEL_TRACES_EXPORTER).
    telemetry.setup_tracing(SERVICE)
    mongo.connect(settings)
    bootstrap = str(settings.kafka_bootstrap_servers)
    try:
        ensure_topics(bootstrap)
    except Exception as exc:  # noqa: BLE001 - Kafka may be down at start; events stay pending and are retried
        log.warning("topics not ensured now: %s", type(exc).__name__)
    clock = SystemClock()
    steps = StepRunner(follow_up.handlers(clock, next_sequence), clock=clock.now)
    relay = Relay(
        AGGREGATES,
        partial(make_producer, bootstrap, client_id=f"{SERVICE}-relay"),
        periodic=[steps.run_once],
    )
    worker_endpoints.serve(relay.ready)
    relay.run()


if __name__ == "__main__":
    main()
