"""The referral scheduler process: `python -m referral.entrypoints.scheduler`.

Every REFERRAL_SCHEDULER_INTERVAL_S seconds (default 30) until SIGTERM/SIGINT, on plumbing's scheduler
(plumbing.retention.scheduler_main):
- the referral's deadline job (service_layer/deadlines.py: the overdue reminder to the provider, escalation to the
  coordinator's office, expiry, follow-ups to the referrer). What was done is kept on each referral, so a
  restarted or second scheduler repeats nothing; the events it writes are published by the relay;
- the retention job (service_layer/retention.py on plumbing.retention): a referral ended more than
  `retention.referral` ago (P5Y) loses its sealed copy of the case fields, in one version-guarded write logged in
  the access log (actor `system:retention-job`, purpose `retention`); an open one is looked at again a period
  later;
- the removal of access-log entries past `retention.access-log`, from a checkpoint.

`--retention --as-of DATE` runs one retention pass as of that date instead (a drill, on a copy of the data: it
anonymises what that date would) and exits; no deadline job runs then.
"""

from __future__ import annotations

import os

from plumbing.clock import Clock
from plumbing.retention import SchedulerParts, scheduler_main
from referral.bootstrap import SERVICE, build_runtime
from referral.service_layer.deadlines import deadline_job
from referral.service_layer.retention import retained


def build(clock: Clock | None) -> SchedulerParts:
    """The scheduler's parts on `clock` (None: the system clock; a drill's fixed instant otherwise)."""
    runtime = build_runtime(clock=clock)  # the catalogue's deadline profiles and the event factory; no HTTP
    return SchedulerParts.for_service(runtime.startup, runtime.deps, retained, deadlines=[deadline_job])


def main() -> None:
    scheduler_main(SERVICE, build, interval_s=float(os.environ.get("REFERRAL_SCHEDULER_INTERVAL_S", "30")))


if __name__ == "__main__":
    main()
