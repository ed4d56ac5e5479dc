"""The exchange scheduler process: `python -m exchange.entrypoints.scheduler`.

Runs the reply-deadline job (service_layer/deadlines.py: a reminder to the Contact Points when a reply is
overdue, an escalation to the coordinator after a second period; in each country's own records) on plumbing's
scheduler every EXCHANGE_SCHEDULER_INTERVAL_S seconds (default 30) until SIGTERM/SIGINT. What was done is kept
on each record, so a restarted or second scheduler repeats nothing; the events it writes are published by the
relay.
"""

from __future__ import annotations

import os

from exchange.bootstrap import SERVICE, build_runtime
from exchange.service_layer.deadlines import deadline_job
from plumbing.scheduler import run_scheduler


def main() -> None:
    runtime = build_runtime()  # the catalogue (reply and escalation periods) and the event factory; no HTTP
    try:
        run_scheduler(
            SERVICE,
            lambda: [deadline_job(runtime.deps)],
            settings=runtime.settings,
            clock=runtime.deps.clock,
            interval_s=float(os.environ.get("EXCHANGE_SCHEDULER_INTERVAL_S", "30")),
        )
    finally:
        runtime.deps.transport.close()


if __name__ == "__main__":
    main()
