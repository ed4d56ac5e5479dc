"""The body of a worker process: the one way to run an outbox relay or a consumer.

A service's worker entry point (`python -m <package>.entrypoints.relay` / `.consumer`) says only what is its
own — which collections hold its outbox and what runs between passes; which topics it consumes and its handler
table — and calls `run_relay` or `run_consumer`. Both start the same way and run until SIGTERM/SIGINT:

1. settings from the environment (plumbing.config.Settings; MONGODB_URI and KAFKA_BOOTSTRAP_SERVERS are
   required: without them the process refuses to start);
2. JSON logs, tracing (PRODUCER/CONSUMER spans continue each event's trace);
3. the service's database, registered for mongoengine's documents and as a pymongo Database (plumbing.mongo);
4. the topics of asyncapi.yaml (plumbing.kafka.ensure_topics);
5. /healthz, /readyz (connected to Kafka) and /metrics on THB_WORKER_PORT (plumbing.worker_endpoints).

`python -m plumbing.cli.relay` is the same relay for collections named on the command line.
"""

from __future__ import annotations

import logging
import signal
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from functools import partial
from typing import Any

from mongoengine import Document
from pymongo.collection import Collection
from pymongo.database import Database

from plumbing import mongo, telemetry, worker_endpoints
from plumbing.config import Settings
from plumbing.kafka import (
    ConsumerLoop,
    Handlers,
    RawHandler,
    TopicSpec,
    ensure_topics,
    load_topics,
    make_producer,
)
from plumbing.logging import configure_logging
from plumbing.outbox import Relay

log = logging.getLogger(__name__)


def start(service: str, settings: Settings | None = None) -> tuple[Settings, Database, str]:
    """Steps 1-3 of every worker: (settings, the service's database, the Kafka bootstrap servers)."""
    settings = settings or Settings.from_env(service)
    settings.require("mongodb_uri", "kafka_bootstrap_servers")
    configure_logging(service, settings.log_level)
    telemetry.setup_tracing(service)
    mongo.connect(settings)  # lazy: no network until the first operation
    return settings, mongo.get_database(), str(settings.kafka_bootstrap_servers)


def run_relay(
    service: str,
    sources: Iterable[type[Document] | Collection | str],
    *,
    settings: Settings | None = None,
    periodic: Sequence[Callable[[], object]] = (),
    worker_port: int | None = None,
    **relay_options: Any,
) -> None:
    """Publish the outbox of `sources` (document classes, collections, or collection names in the service's
    database) until SIGTERM/SIGINT; `periodic` tasks (e.g. a StepRunner's run_once) run between passes.
    `relay_options` go to plumbing.outbox.Relay (lease_s, poll_interval_s, wake_address, ...)."""
    settings, database, bootstrap = start(service, settings)
    try:
        ensure_topics(bootstrap)
    except Exception as exc:  # noqa: BLE001 - Kafka may be down at start; events stay pending and are retried
        log.warning("topics not ensured now: %s", type(exc).__name__)
    collections = [database[source] if isinstance(source, str) else source for source in sources]
    relay = Relay(
        collections,
        partial(make_producer, bootstrap, client_id=f"{service}-relay"),
        periodic=periodic,
        **relay_options,
    )
    worker_endpoints.serve(relay.ready, worker_port)
    log.info("relay for %s started on %d collection(s)", service, len(collections))
    relay.run()


def run_consumer(
    service: str,
    topics: Sequence[str],
    handlers: Callable[[Database], Handlers],
    *,
    settings: Settings | None = None,
    raw_handlers: Mapping[str, RawHandler] | None = None,
    extra_topics: Sequence[TopicSpec] = (),
    own_lanes: Iterable[str] = (),
    **loop_options: Any,
) -> None:
    """Consume `topics` as the consumer group `service` until SIGTERM/SIGINT. `handlers(database)` builds the
    handler table `{event type: handler}` once the database is registered; types without an entry are skipped
    (plumbing.kafka.ConsumerLoop). `raw_handlers` `{topic: handler}` consume topics whose records are not
    CloudEvents (subscribed too). `extra_topics` are created at start besides asyncapi.yaml's (topics derived
    from configuration). `loop_options` go to ConsumerLoop (max_attempts, backoff_s, producer_options, ...).

    `own_lanes`: topics each consumed by a loop of its own (its own connection and thread, the same group and
    handlers), so that a backlog on one does not hold up the records of the others (a loop handles its records
    one after the other). The other topics share the first loop. Kafka gives each topic's partitions to the
    group's members that subscribed to it, so the lanes split the work and nothing is consumed twice."""
    settings, database, bootstrap = start(service, settings)
    # A consumer subscribing to a missing topic would wait for metadata: fail, restart.
    ensure_topics(bootstrap, [*load_topics(), *extra_topics])
    table = handlers(database)
    raw = dict(raw_handlers or {})
    split = lanes(topics, raw, own_lanes)
    loops = [
        ConsumerLoop(
            events,
            service,
            table,
            bootstrap,
            raw_handlers={t: raw[t] for t in raws},
            # One client id per lane, so the broker's logs and the group's member list tell the lanes apart.
            client_id=service if len(split) == 1 else f"{service}-lane-{n}",
            **loop_options,
        )
        for n, (events, raws) in enumerate(split)
    ]
    consumer = loops[0] if len(loops) == 1 else ConsumerLanes(loops)
    worker_endpoints.serve(consumer.ready)
    consumer.run()


def lanes(
    topics: Sequence[str], raw_topics: Iterable[str], own_lanes: Iterable[str]
) -> list[tuple[list[str], list[str]]]:
    """The loops of a consumer process as (event topics, raw topics): the topics of `own_lanes` one loop each,
    every other topic in the first."""
    raw = list(raw_topics)
    every = list(dict.fromkeys([*topics, *raw]))
    separate = [topic for topic in dict.fromkeys(own_lanes) if topic in every]
    groups = [[topic for topic in every if topic not in separate], *([topic] for topic in separate)]
    return [([t for t in group if t not in raw], [t for t in group if t in raw]) for group in groups if group]


class ConsumerLanes:
    """Consumer loops of one process, each in its own thread (see run_consumer's `own_lanes`): stopped together
    by SIGTERM/SIGINT or stop(); when one ends on its own (a failure it could not handle) the others are stopped
    too and run() raises it, so that the process exits and is restarted whole."""

    def __init__(self, loops: Sequence[ConsumerLoop]) -> None:
        self.loops = list(loops)
        self._ended = threading.Event()
        self.ready = _AllReady(self.loops)

    def stop(self, *_: Any) -> None:
        for loop in self.loops:
            loop.stop()
        self._ended.set()

    def run(self, *, install_signal_handlers: bool = True) -> None:
        failures: list[BaseException] = []

        def lane(loop: ConsumerLoop) -> None:
            try:
                loop.run(install_signal_handlers=False)
            except BaseException as exc:  # noqa: BLE001 - raised again by run() below
                failures.append(exc)
            finally:
                self._ended.set()

        previous: dict[signal.Signals, Any] = {}
        if install_signal_handlers and threading.current_thread() is threading.main_thread():
            previous = {
                signum: signal.signal(signum, self.stop) for signum in (signal.SIGTERM, signal.SIGINT)
            }
        threads = [
            threading.Thread(target=lane, args=(loop,), name=f"consumer-lane-{n}")
            for n, loop in enumerate(self.loops)
        ]
        try:
            for thread in threads:
                thread.start()
            while not self._ended.wait(1.0):  # timed, so that a signal's handler runs promptly in this thread
                pass
            self.stop()
            for thread in threads:
                thread.join()
        finally:
            for signum, handler in previous.items():
                signal.signal(signum, handler)
        if failures:
            raise failures[0]


class _AllReady:
    """Ready while every loop of the process is: what /readyz answers for a consumer with lanes."""

    def __init__(self, loops: Sequence[ConsumerLoop]) -> None:
        self._loops = loops

    def is_set(self) -> bool:
        return all(loop.ready.is_set() for loop in self._loops)
