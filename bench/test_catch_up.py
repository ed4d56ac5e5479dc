"""The catch-up figure of `make bench` (figure 4; run with `pytest -m bench bench/`, never by `make test`).

How long the platform takes to be whole again after an outage while identification events kept coming:

- **consumer down**: the referral consumer (it records every identification event it receives, once, in its
  inbox `thb_referral.received_events`, `_id` = "referral:<event id>") is stopped for BENCH_OUTAGE_S while
  registration events are produced at BENCH_EVENTS_PER_S straight to `identification.events.v1` (copies of a
  real registration event with new ids, validated like the service's own); then it is started again.
- **broker down**: the broker is stopped for BENCH_OUTAGE_S while people are registered through the gateway,
  paced to BENCH_EVENTS_PER_S events (each registration makes the events the warm-up counted: the person's and
  her case's); the events wait in the identification outbox; then the broker is started again and the relay
  publishes them.

Caught up = the referral group's committed offsets equal the topic's end offsets (kafka-python: the consumer
commits a record after its durable write) with every produced event on the topic, and the inbox holds every one
of those events exactly once (checked in the database). The figure is the time from the restart to that point
(given up after BENCH_CATCH_UP_LIMIT_S, 180 s by default), beside the backlog (events produced during the outage). The issue's outage is 10 minutes (30,000 events at
50/s); by default 60 s here (3,000 events) to fit `make bench`: BENCH_OUTAGE_S=600 for the full one.

Results: printed, and written to .local/bench/catch_up.json (with its rows of the summary table);
docs/performance.md records them with the machine and date. No target is asserted: a missed one is a finding.
"""

from __future__ import annotations

import os
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from kafka import KafkaConsumer
from kafka.structs import TopicPartition
from pymongo import MongoClient

from bench.figures import row, write_result
from plumbing.events import new_event, to_kafka
from plumbing.kafka import make_producer

pytestmark = pytest.mark.bench

OUTAGE_S = float(os.environ.get("BENCH_OUTAGE_S", "60"))
EVENTS_PER_S = float(os.environ.get("BENCH_EVENTS_PER_S", "50"))
LIMIT_S = float(os.environ.get("BENCH_CATCH_UP_LIMIT_S", "180"))
TARGET_S = 60.0
TOPIC = "identification.events.v1"
GROUP = "referral"
CONSUMER = "referral-consumer"
REGISTERED = "identification.person.registered.v1"
USER = "al-police"
PERSON = {
    "date_of_birth": "2009",
    "sex": "unknown",
    "duplicate_check": {"outcome": "new_person", "reason": "no_candidates"},
}
BUDGET_S = int(OUTAGE_S + LIMIT_S + 300)
RESULT: dict[str, Any] = {}  # both scenarios' results, written after each


def _register(client: httpx.Client) -> dict[str, Any]:
    response = client.post(
        "/v1/identification/persons", json=PERSON, headers={"Idempotency-Key": str(uuid.uuid4())}
    )
    response.raise_for_status()
    return dict(response.json())


def _gateway(platform: Any) -> httpx.Client:
    headers = {"Authorization": f"Bearer {platform.token(USER, fresh=True)}", "X-Purpose": "identification"}
    return httpx.Client(base_url=platform.gateway, headers=headers, timeout=30)


def _received(platform: Any, subjects: set[str], since: datetime | None = None) -> list[dict[str, Any]]:
    """The referral inbox's records of events about these aggregates (received after `since`, if given)."""
    mongo: MongoClient = MongoClient(platform.env["MONGODB_URI"], tz_aware=True)
    try:
        where: dict[str, Any] = {"consumer": GROUP}
        if since is not None:
            where["received_at"] = {"$gte": since}
        rows = mongo["thb_referral"]["received_events"].find(where, {"subject": 1, "event_id": 1})
        return [r for r in rows if r.get("subject") in subjects]
    finally:
        mongo.close()


class Lag:
    """The referral group's lag on the identification topic, from the broker (committed vs end offsets)."""

    def __init__(self, bootstrap: str) -> None:
        # Never subscribes, so it never joins the group: it only reads the group's committed offsets.
        self.group = KafkaConsumer(
            bootstrap_servers=bootstrap, client_id="bench-lag", group_id=GROUP, enable_auto_commit=False
        )
        self.offsets = KafkaConsumer(
            bootstrap_servers=bootstrap, client_id="bench-lag", enable_auto_commit=False
        )
        partitions = self.offsets.partitions_for_topic(TOPIC) or set()
        self.partitions = [TopicPartition(TOPIC, p) for p in sorted(partitions)]
        if not self.partitions:
            self.close()
            raise RuntimeError(f"no partitions of {TOPIC} known yet")

    def ends(self) -> int:
        return sum(self.offsets.end_offsets(self.partitions).values())

    def lag(self) -> tuple[int, int]:
        """(end offsets summed, lag summed)."""
        ends = self.offsets.end_offsets(self.partitions)
        committed = {tp: self.group.committed(tp) or 0 for tp in self.partitions}
        lag = sum(max(0, end - committed[tp]) for tp, end in ends.items())
        return sum(ends.values()), lag

    def close(self) -> None:
        self.group.close(autocommit=False)
        self.offsets.close()


def _events_per_registration(platform: Any) -> tuple[int, dict[str, Any]]:
    """Register one person, wait until referral has her events; (how many, the registration event's data)."""
    with _gateway(platform) as client:
        person = _register(client)
    subjects = {person["id"], person["case_id"]}
    deadline = time.monotonic() + 60
    seen: list[dict[str, Any]] = []
    while time.monotonic() < deadline:
        seen = _received(platform, subjects)
        if len(seen) >= 2:
            break
        time.sleep(0.5)
    time.sleep(3)  # anything later (a follow-up step's event) arrives too
    seen = _received(platform, subjects)
    mongo: MongoClient = MongoClient(platform.env["MONGODB_URI"])
    try:
        registered = mongo["thb_referral"]["received_events"].find_one(
            {"subject": person["id"], "type": REGISTERED}
        )
    finally:
        mongo.close()
    assert registered is not None, "the warm-up registration never reached the referral consumer"
    return len(seen), dict(registered["data"])


def _wait_caught_up(
    platform: Any, bootstrap: str, first_end: int, produced: int, subjects: set[str], since: datetime
) -> dict[str, Any]:
    """Poll until the group's lag is zero with every produced event on the topic and the inbox holding each
    once; returns the times (s since the call) and what the inbox holds."""
    started = time.monotonic()
    lag_zero_s: float | None = None
    lag_probe: Lag | None = None
    last: dict[str, Any] = {}
    while time.monotonic() - started < LIMIT_S:
        try:
            lag_probe = lag_probe or Lag(bootstrap)
            ends, lag = lag_probe.lag()
            last = {"end_offsets": ends, "lag": lag}
        except Exception as error:  # noqa: BLE001 - the broker may still be starting: try again
            last = {"error": repr(error)}
            if lag_probe is not None:
                lag_probe.close()
                lag_probe = None
            time.sleep(0.5)
            continue
        if lag == 0 and ends - first_end >= produced:
            lag_zero_s = lag_zero_s or time.monotonic() - started
            records = _received(platform, subjects, since)
            if len(records) >= produced:
                done_s = time.monotonic() - started
                if lag_probe is not None:
                    lag_probe.close()
                ids = [r["event_id"] for r in records]
                return {
                    "caught_up_s": round(done_s, 1),
                    "lag_zero_s": round(lag_zero_s, 1),
                    "applied": len(records),
                    "applied_once": len(ids) == len(set(ids)) == produced,
                    **last,
                }
        time.sleep(0.25)
    if lag_probe is not None:
        lag_probe.close()
    records = _received(platform, subjects, since)
    ids = [r["event_id"] for r in records]
    return {
        "caught_up_s": None,
        "lag_zero_s": lag_zero_s,
        "applied": len(records),
        "applied_once": False,
        "duplicates": len(ids) - len(set(ids)),
        **last,
    }


def _rows(name: str, outcome: dict[str, Any]) -> list[dict[str, Any]]:
    caught_up = outcome["caught_up_s"]
    backlog = (
        f"{outcome['produced']} events in {outcome['outage_s']:.0f} s ({outcome['achieved_per_s']:.1f}/s)"
    )
    return [
        row(
            "4",
            f"catch-up after the {name} was down ({backlog})",
            f"{caught_up:.1f} s" if caught_up is not None else f"> {LIMIT_S:.0f} s",
            "",
            "",
            f"< {TARGET_S:.0f} s",
            caught_up is not None and caught_up < TARGET_S,
        ),
        row(
            "4",
            f"{name}: every event applied once ({outcome['applied']} of {outcome['produced']})",
            "yes"
            if outcome["applied_once"]
            else f"not yet ({outcome.get('duplicates', 0)} applied twice)"
            if caught_up is None
            else "no",
            "",
            "",
            "yes",
            bool(outcome["applied_once"]),
        ),
    ]


def _write() -> None:
    rows = [r for name in ("consumer", "broker") if name in RESULT for r in RESULT[name]["rows"]]
    write_result(
        "catch_up",
        {name: {k: v for k, v in RESULT[name].items() if k != "rows"} for name in RESULT},
        rows,
    )


@pytest.mark.timeout(BUDGET_S)
def test_catch_up_after_the_consumer_was_down(running_platform: Any) -> None:
    platform = running_platform
    bootstrap = platform.env["KAFKA_BOOTSTRAP_SERVERS"]
    per_registration, data = _events_per_registration(platform)
    probe = Lag(bootstrap)
    first_end = probe.ends()
    probe.close()

    since = datetime.now(UTC)
    platform.processes[CONSUMER].process.stop(timeout=10)
    producer = make_producer(bootstrap, client_id="bench-catch-up")
    subjects: set[str] = set()
    produced = 0
    try:
        started = time.monotonic()
        while (elapsed := time.monotonic() - started) < OUTAGE_S:
            due = int(elapsed * EVENTS_PER_S) + 1
            while produced < due:
                person_id = str(uuid.uuid4())
                envelope = new_event(
                    REGISTERED,
                    person_id,
                    {**data, "person_id": person_id, "case_id": str(uuid.uuid4())},
                    "/identification",
                )
                record = to_kafka(envelope)
                producer.send(TOPIC, key=record.key, value=record.value, headers=record.headers)
                subjects.add(person_id)
                produced += 1
            time.sleep(max(0.0, (produced / EVENTS_PER_S) - (time.monotonic() - started)))
        producer.flush(timeout=30)
        outage_s = time.monotonic() - started
    finally:
        producer.close()

    restarted = time.monotonic()
    platform.start(CONSUMER)
    ready_s = time.monotonic() - restarted
    outcome = _wait_caught_up(platform, bootstrap, first_end, produced, subjects, since)
    if outcome["caught_up_s"] is not None:
        outcome["caught_up_s"] = round(outcome["caught_up_s"] + ready_s, 1)
        outcome["lag_zero_s"] = round(outcome["lag_zero_s"] + ready_s, 1)
    RESULT["consumer"] = {
        "how": "referral consumer stopped (SIGTERM); registration events produced straight to the topic",
        "events_per_registration": per_registration,
        "produced": produced,
        "outage_s": round(outage_s, 1),
        "achieved_per_s": round(produced / outage_s, 1),
        "consumer_ready_s": round(ready_s, 1),
        **outcome,
    }
    RESULT["consumer"]["rows"] = _rows("consumer", RESULT["consumer"])
    _write()


@pytest.mark.disruptive
@pytest.mark.timeout(BUDGET_S)
def test_catch_up_after_the_broker_was_down(running_platform: Any, kafka: Any) -> None:
    if kafka.server is None:
        pytest.skip("KAFKA_BOOTSTRAP_SERVERS names a broker this session did not start: not stopping it")
    platform = running_platform
    bootstrap = platform.env["KAFKA_BOOTSTRAP_SERVERS"]
    per_registration, _ = _events_per_registration(platform)
    probe = Lag(bootstrap)
    first_end = probe.ends()
    probe.close()
    registrations_per_s = EVENTS_PER_S / max(1, per_registration)

    subjects: set[str] = set()
    lock = threading.Lock()
    local = threading.local()
    platform.token(USER, fresh=True)

    def register() -> None:
        if not hasattr(local, "client"):
            local.client = httpx.Client(
                base_url=platform.gateway, headers={"X-Purpose": "identification"}, timeout=30
            )
        # A token as the platform hands it out (renewed every few minutes): one token for the whole outage
        # expired after five minutes, and the 10-minute run of 2026-12-07 counted 15,105 refused registrations.
        local.client.headers["Authorization"] = f"Bearer {platform.token(USER)}"
        person = _register(local.client)
        with lock:
            subjects.update((person["id"], person["case_id"]))

    since = datetime.now(UTC)
    kafka.server.stop()
    submitted = 0
    try:
        started = time.monotonic()
        with ThreadPoolExecutor(max_workers=16) as pool:
            futures = []
            while (elapsed := time.monotonic() - started) < OUTAGE_S:
                due = int(elapsed * registrations_per_s) + 1
                # Paced, but never more than the pool can hold: an API slower than the pace lowers the rate.
                while submitted < due and sum(not f.done() for f in futures) < 32:
                    futures.append(pool.submit(register))
                    submitted += 1
                time.sleep(0.01)
            failed = sum(1 for f in futures if f.exception() is not None)
        outage_s = time.monotonic() - started
    finally:
        restarted = time.monotonic()
        kafka.server.restart()
    broker_up_s = time.monotonic() - restarted
    produced = len(subjects) // 2 * per_registration
    outcome = _wait_caught_up(platform, bootstrap, first_end, produced, subjects, since)
    for key in ("caught_up_s", "lag_zero_s"):
        if outcome[key] is not None:
            outcome[key] = round(outcome[key] + broker_up_s, 1)
    RESULT["broker"] = {
        "how": "broker stopped; people registered through the gateway, their events held in the outbox",
        "events_per_registration": per_registration,
        "registrations": len(subjects) // 2,
        "failed_registrations": failed,
        "produced": produced,
        "outage_s": round(outage_s, 1),
        "achieved_per_s": round(produced / outage_s, 1),
        "broker_start_s": round(broker_up_s, 1),
        **outcome,
    }
    RESULT["broker"]["rows"] = _rows("broker", RESULT["broker"])
    _write()
