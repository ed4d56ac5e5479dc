"""The referral scheduler process: `python -m referral.entrypoints.scheduler`.

Runs the referral's deadline job (service_layer/deadlines.py: the overdue reminder to the provider, escalation
to the coordinator's office, expiry, follow-ups to the referrer) on plumbing's scheduler every
REFERRAL_SCHEDULER_INTERVAL_S seconds (default 30) until SIGTERM/SIGINT. What was done is kept on each referral,
so a restarted or second scheduler repeats nothing; the events it writes are published by the relay.
"""

from __future__ import annotations

import os

from plumbing.scheduler import run_scheduler
from referral.bootstrap import SERVICE, build_runtime
from referral.service_layer.deadlines import deadline_job


def main() -> None:
    runtime = build_runtime()  # the catalogue's deadline profiles and the event factory; no HTTP
    run_scheduler(
        SERVICE,
        lambda: [deadline_job(runtime.deps)],
        settings=runtime.settings,
        clock=runtime.deps.clock,
        interval_s=float(os.environ.get("REFERRAL_SCHEDULER_INTERVAL_S", "30")),
    )


if __name__ == "__main__":
    main()
