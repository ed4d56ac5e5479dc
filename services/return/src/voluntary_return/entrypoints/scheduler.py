"""The return scheduler process: `python -m voluntary_return.entrypoints.scheduler`.

Runs the return service's deadline job (service_layer/deadlines.py: the reintegration plan and each follow-up
report coming due, then overdue) on plumbing's scheduler every RETURN_SCHEDULER_INTERVAL_S seconds (default 30)
until SIGTERM/SIGINT. What was sent is kept on each case, so a restarted or second scheduler repeats nothing; the
events it writes are published by the relay.
"""

from __future__ import annotations

import os

from plumbing.scheduler import run_scheduler
from voluntary_return.bootstrap import SERVICE, build_runtime
from voluntary_return.service_layer.deadlines import deadline_job


def main() -> None:
    runtime = build_runtime()  # the catalogue's reintegration periods and the event factory; no HTTP
    run_scheduler(
        SERVICE,
        lambda: [deadline_job(runtime.deps)],
        settings=runtime.settings,
        clock=runtime.deps.clock,
        interval_s=float(os.environ.get("RETURN_SCHEDULER_INTERVAL_S", "30")),
    )


if __name__ == "__main__":
    main()
