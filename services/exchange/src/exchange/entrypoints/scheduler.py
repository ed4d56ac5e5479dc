"""The exchange scheduler process: `python -m exchange.entrypoints.scheduler`.

Every EXCHANGE_SCHEDULER_INTERVAL_S seconds (default 30) until SIGTERM/SIGINT, on plumbing's scheduler
(plumbing.retention.scheduler_main):
- the reply-deadline job (service_layer/deadlines.py: a reminder to the Contact Points when a reply is overdue, an
  escalation to the coordinator after a second period; in each country's own records). What was done is kept on
  each record, so a restarted or second scheduler repeats nothing; the events it writes are published by the
  relay;
- the retention job (service_layer/retention.py on plumbing.retention): a case record closed more than
  `retention.exchange-message` ago (P5Y; a record never closed counts from its last form) loses its forms'
  sealed content and attachments, its drafts and waiting envelopes, keeping the message log and the forms'
  metadata, digests and signatures, in one version-guarded write logged in the access log (actor
  `system:retention-job`, purpose `retention`); an open one is looked at again when its period can have passed;
- the removal of access-log entries past `retention.access-log`, from a checkpoint.

`--retention --as-of DATE` runs one retention pass as of that date instead (a drill, on a copy of the data: it
anonymises what that date would) and exits; no deadline job runs then.
"""

from __future__ import annotations

import os

from exchange.bootstrap import SERVICE, Runtime, build_runtime
from exchange.service_layer.deadlines import deadline_job
from exchange.service_layer.retention import retained
from plumbing.clock import Clock
from plumbing.retention import SchedulerParts, scheduler_main


def parts(runtime: Runtime) -> SchedulerParts:
    """What the scheduler runs over `runtime`: the deadline job and the retention of the case records."""
    return SchedulerParts.for_service(runtime.startup, runtime.deps, retained, deadlines=[deadline_job])


def main() -> None:
    built: list[Runtime] = []

    def build(clock: Clock | None) -> SchedulerParts:
        # The catalogue (reply and escalation periods, the form types that close a case), the event factory and the
        # access log; no HTTP. `clock` None: the system clock; a drill's fixed instant otherwise.
        runtime = build_runtime(clock=clock)
        built.append(runtime)
        return parts(runtime)

    try:
        scheduler_main(
            SERVICE, build, interval_s=float(os.environ.get("EXCHANGE_SCHEDULER_INTERVAL_S", "30"))
        )
    finally:
        for runtime in built:
            runtime.deps.transport.close()


if __name__ == "__main__":
    main()
