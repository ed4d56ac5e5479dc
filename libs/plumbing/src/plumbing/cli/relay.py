"""The outbox relay as a process, for collections named on the command line.

    python -m plumbing.cli.relay --service identification --collections persons,cases
                                 [--database NAME] [--poll-interval 1.0] [--lease 60]
                                 [--wake-address 127.0.0.1:7071] [--metrics-port 9464]

Environment: MONGODB_URI (its path names the database unless --database), KAFKA_BOOTSTRAP_SERVERS,
OUTBOX_WAKE_ADDRESS (the UDP address writers' notify_relay() sends to; optional, polling always runs).
Topics come from openapi/asyncapi.yaml by event type; missing topics are created at start when Kafka is up.
A service whose worker entry point already holds its document classes calls plumbing.outbox.run_relay instead.
Stops on SIGTERM/SIGINT after the event in flight.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from functools import partial

from pymongo import MongoClient

from plumbing.kafka import ensure_topics, make_producer
from plumbing.outbox import WAKE_ENV, Relay


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m plumbing.cli.relay", description=__doc__.split("\n")[1])
    parser.add_argument("--service", required=True, help="names the relay's Kafka client and lease owner")
    parser.add_argument(
        "--collections", required=True, help="comma-separated collections holding pending_events"
    )
    parser.add_argument("--database", default=None)
    parser.add_argument("--mongodb-uri", default=os.environ.get("MONGODB_URI"))
    parser.add_argument("--bootstrap", default=os.environ.get("KAFKA_BOOTSTRAP_SERVERS"))
    parser.add_argument("--poll-interval", type=float, default=1.0)
    parser.add_argument("--lease", type=float, default=60.0)
    parser.add_argument("--wake-address", default=os.environ.get(WAKE_ENV))
    parser.add_argument("--metrics-port", type=int, default=None)
    args = parser.parse_args(argv)
    if not args.mongodb_uri or not args.bootstrap:
        parser.error("MONGODB_URI and KAFKA_BOOTSTRAP_SERVERS (or the options) are required")
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s %(message)s")
    log = logging.getLogger("plumbing.cli.relay")

    client: MongoClient = MongoClient(args.mongodb_uri, tz_aware=True)
    database = client[args.database] if args.database else client.get_default_database()
    collections = [database[name.strip()] for name in args.collections.split(",") if name.strip()]
    try:
        ensure_topics(args.bootstrap)
    except Exception as exc:  # noqa: BLE001 - Kafka may be down at start; the relay keeps its events and retries
        log.warning("could not ensure topics now (%s); continuing", type(exc).__name__)
    if args.metrics_port:
        from prometheus_client import start_http_server

        start_http_server(args.metrics_port)
    relay = Relay(
        collections,
        partial(make_producer, args.bootstrap, client_id=f"{args.service}-relay"),
        owner=None,
        lease_s=args.lease,
        poll_interval_s=args.poll_interval,
        wake_address=args.wake_address,
    )
    log.info("relay for %s started on %d collection(s)", args.service, len(collections))
    relay.run()
    client.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
