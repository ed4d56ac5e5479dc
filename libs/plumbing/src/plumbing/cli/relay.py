"""The outbox relay as a process, for collections named on the command line.

    python -m plumbing.cli.relay --service identification --collections persons,cases
                                 [--database NAME] [--poll-interval 1.0] [--lease 60]
                                 [--wake-address 127.0.0.1:7071] [--metrics-port 9464]

Environment: MONGODB_URI (its path names the database unless --database; else thb_<service>),
KAFKA_BOOTSTRAP_SERVERS, OUTBOX_WAKE_ADDRESS (the UDP address writers' notify_relay() sends to; optional, polling
always runs), THB_WORKER_PORT (health, readiness and metrics; --metrics-port overrides it).
Topics come from asyncapi.yaml by event type; missing topics are created at start when Kafka is up.
The same relay as a service's worker entry point: both call plumbing.worker.run_relay, which a service whose
entry point holds its document classes calls directly (identification.entrypoints.relay).
Stops on SIGTERM/SIGINT after the event in flight.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from pymongo.uri_parser import parse_uri

from plumbing.config import Settings, config_path_from_env
from plumbing.outbox import WAKE_ENV
from plumbing.worker import run_relay


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
    in_uri = parse_uri(args.mongodb_uri).get("database")
    if args.database and in_uri and args.database != in_uri:
        parser.error("--database names another database than MONGODB_URI's path")
    collections = [name.strip() for name in args.collections.split(",") if name.strip()]
    settings = Settings(
        service=args.service,
        mode="production",  # a relay reads no keys and validates no tokens: the mode changes nothing here
        mongodb_uri=args.mongodb_uri,
        mongodb_db=args.database or in_uri or f"thb_{args.service.replace('-', '_')}",
        kafka_bootstrap_servers=args.bootstrap,
        oidc_issuer=None,
        config_path=config_path_from_env(),
        keys_file=Path(os.environ.get("THB_KEYS_FILE") or ".local/keys.json"),
        log_level=os.environ.get("THB_LOG_LEVEL", "INFO").upper(),
    )
    run_relay(
        args.service,
        collections,
        settings=settings,
        worker_port=args.metrics_port,
        lease_s=args.lease,
        poll_interval_s=args.poll_interval,
        wake_address=args.wake_address,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
