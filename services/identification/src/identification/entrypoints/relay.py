"""The identification outbox relay process: `python -m identification.entrypoints.relay`.

Publishes the pending events of persons, cases, notifications and duplicate searches to the topics of
openapi/asyncapi.yaml, in order per document, until SIGTERM/SIGINT. Between passes it also performs follow-up
steps an API process did not complete (service_layer/follow_up.py). Started like every relay, by
plumbing.worker.run_relay (settings, logs, tracing, Mongo, topics, worker endpoints).
"""

from __future__ import annotations

from identification.adapters.documents import AGGREGATES
from identification.bootstrap import SERVICE, next_sequence
from identification.service_layer import follow_up
from plumbing.clock import SystemClock
from plumbing.repository import system_repositories
from plumbing.steps import StepRunner
from plumbing.worker import run_relay


def main() -> None:
    clock = SystemClock()
    steps = StepRunner(follow_up.handlers(system_repositories(clock), next_sequence), clock=clock.now)
    run_relay(SERVICE, AGGREGATES, periodic=[steps.run_once])


if __name__ == "__main__":
    main()
