"""The return outbox relay process: `python -m voluntary_return.entrypoints.relay`.

Publishes the pending events of return cases to `return.events.v1` (openapi/asyncapi.yaml), in order per case,
until SIGTERM/SIGINT: those of commands and those the scheduler writes (entrypoints/scheduler.py). Started like
every relay, by plumbing.worker.run_relay.
"""

from __future__ import annotations

from plumbing.worker import run_relay
from voluntary_return.adapters.documents import AGGREGATES
from voluntary_return.bootstrap import SERVICE, build_runtime


def main() -> None:
    runtime = build_runtime()
    run_relay(SERVICE, AGGREGATES, settings=runtime.startup.settings)


if __name__ == "__main__":
    main()
