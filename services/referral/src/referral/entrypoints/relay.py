"""The referral outbox relay process: `python -m referral.entrypoints.relay`.

Publishes the pending events of providers and referrals to `referral.events.v1` (openapi/asyncapi.yaml), in order
per document, until SIGTERM/SIGINT. Between passes it runs the deadline job (service_layer/deadlines.py:
reminders, escalation to the coordinator's office, expiry, follow-ups), whose progress is kept on each referral,
so a restarted relay repeats nothing. Started like every relay, by plumbing.worker.run_relay.
"""

from __future__ import annotations

from plumbing.worker import run_relay
from referral.adapters.documents import AGGREGATES
from referral.bootstrap import SERVICE, build_runtime
from referral.service_layer.deadlines import run_deadlines


def main() -> None:
    runtime = build_runtime()  # the catalogue's deadline profiles and the event factory; no HTTP
    run_relay(SERVICE, AGGREGATES, settings=runtime.settings, periodic=[lambda: run_deadlines(runtime.deps)])


if __name__ == "__main__":
    main()
