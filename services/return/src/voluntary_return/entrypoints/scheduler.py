"""The return scheduler process: `python -m voluntary_return.entrypoints.scheduler`.

Runs on plumbing's scheduler (plumbing.retention.scheduler_main), every RETURN_SCHEDULER_INTERVAL_S seconds (default
30) until SIGTERM/SIGINT:
- the deadline job (service_layer/deadlines.py): the reintegration plan and each follow-up report coming due, then
  overdue. What was sent is kept on each case, so a restarted or second scheduler repeats nothing; the events it
  writes are published by the relay;
- the retention job (service_layer/retention.py on plumbing.retention): a return case 5 years after it was closed
  or stopped loses its sealed records (consent, assessments, determination, plan), each anonymisation logged in
  the access log; and the removal of access-log entries past their period.

`--retention --as-of DATE` runs one retention pass as of that date instead (a drill, on a copy of the data, to see
what that date would remove) and exits.
"""

from __future__ import annotations

import os

from plumbing.clock import Clock
from plumbing.retention import SchedulerParts, scheduler_main
from voluntary_return.bootstrap import SERVICE, build_runtime
from voluntary_return.service_layer.deadlines import deadline_job
from voluntary_return.service_layer.retention import retained


def build(clock: Clock | None) -> SchedulerParts:
    """The service wired on `clock` (None: the system clock; a drill's fixed instant): the catalogue's
    reintegration periods and the event factory, the access log; no HTTP."""
    runtime = build_runtime(clock=clock)
    return SchedulerParts.for_service(runtime.startup, runtime.deps, retained, deadlines=[deadline_job])


def main() -> None:
    scheduler_main(SERVICE, build, interval_s=float(os.environ.get("RETURN_SCHEDULER_INTERVAL_S", "30")))


if __name__ == "__main__":
    main()
