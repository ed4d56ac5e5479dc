"""The identification scheduler process: `python -m identification.entrypoints.scheduler`.

Identification has no reply deadlines; its scheduler runs the retention job (service_layer/retention.py on
plumbing.retention: persons, cases, notifications, access requests and duplicate searches past their period are
anonymised, each logged in the access log), re-keys persons stored under an older key scheme
(service_layer/rekeying.py), counts the holders of blocking keys weekly for the record of common keys
(service_layer/common_keys_count.py) and removes access-log entries past theirs, every
IDENTIFICATION_SCHEDULER_INTERVAL_S seconds (default 30) until SIGTERM/SIGINT. `--retention --as-of DATE` runs
one retention pass as of that date instead (a drill, on a copy of the data) and exits.
"""

from __future__ import annotations

import os

from identification.bootstrap import SERVICE, build_runtime
from identification.service_layer.common_keys_count import count_task
from identification.service_layer.rekeying import rekey_task
from identification.service_layer.retention import retained
from plumbing.clock import Clock
from plumbing.retention import SchedulerParts, scheduler_main


def build(clock: Clock | None) -> SchedulerParts:
    runtime = build_runtime(clock=clock)
    access_log = runtime.startup.access_log
    return SchedulerParts.for_service(
        runtime.startup,
        runtime.deps,
        retained,
        tasks=[lambda deps: rekey_task(deps, access_log), count_task],
    )


def main() -> None:
    scheduler_main(
        SERVICE, build, interval_s=float(os.environ.get("IDENTIFICATION_SCHEDULER_INTERVAL_S", "30"))
    )


if __name__ == "__main__":
    main()
