"""The write-path figure of `make bench` (figure 2; run with `pytest -m bench bench/`, never by `make test`).

What the platform sustains when officers register and screen people: one completed screening is what the
identification contract needs for a screened person, `POST /v1/identification/persons` (registers her and opens
her first-contact case) then `POST /v1/identification/screenings` on that case - two requests through the
gateway. The load comes from locust (bench/locust_write_path.py) as a separate process, headless, one process.

1. Saturation: steps of BENCH_WRITE_STEPS users (no think time), BENCH_WRITE_STEP_SECONDS each, stopping once a
   step adds less than 5 % throughput; the best step's completed screenings per second is the saturation rate.
2. Half saturation: users paced (locust's constant_throughput) to half that rate for BENCH_WRITE_SECONDS; its
   p99 (of each request and of the pair) is the latency figure.
3. Floor, same run, same Mongo-wire server: raw pymongo inserts of the same documents (the person, the case and
   the screening the service stored, copied with new ids, the client's default write concern as the service's
   domain writes), BENCH_WRITE_THREADS threads for BENCH_WRITE_FLOOR_SECONDS: document sets per second.

Results: printed, and written to .local/bench/write_path.json (with its rows of the summary table);
docs/performance.md records them with the machine and date. No target is asserted: a missed one is a finding.
"""

from __future__ import annotations

import csv
import os
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest
from pymongo import MongoClient

from bench.figures import RESULTS, row, write_result
from bench.write_path_bodies import PERSON, screening

pytestmark = pytest.mark.bench

STEPS = [int(n) for n in os.environ.get("BENCH_WRITE_STEPS", "4,8,16,32").split(",")]
STEP_SECONDS = int(os.environ.get("BENCH_WRITE_STEP_SECONDS", "15"))
HALF_SECONDS = int(os.environ.get("BENCH_WRITE_SECONDS", "60"))
HALF_USERS = int(os.environ.get("BENCH_WRITE_HALF_USERS", "16"))
FLOOR_SECONDS = int(os.environ.get("BENCH_WRITE_FLOOR_SECONDS", "10"))
FLOOR_THREADS = int(os.environ.get("BENCH_WRITE_THREADS", "8"))
USER = "al-police"
LOCUSTFILE = Path(__file__).with_name("locust_write_path.py")
REPO = Path(__file__).resolve().parents[1]
FLOW = "completed screening"
BUDGET_S = 240 + len(STEPS) * (STEP_SECONDS + 15) + HALF_SECONDS + FLOOR_SECONDS


def run_locust(platform: Any, users: int, seconds: int, pace: float, tag: str) -> dict[str, dict[str, float]]:
    """One headless locust run; per entry (register, screen, completed screening): count, failures, rate per
    second over the run, median and p99 in ms (locust's histogram, two significant digits)."""
    prefix = RESULTS / "locust" / tag
    prefix.parent.mkdir(parents=True, exist_ok=True)
    env = {
        **os.environ,
        "PYTHONPATH": str(REPO),
        "BENCH_TOKEN": platform.token(USER, fresh=True),
        "BENCH_PACE": str(pace),
    }
    argv = [
        str(Path(sys.executable).with_name("locust")),
        "-f",
        str(LOCUSTFILE),
        "--headless",
        "--host",
        platform.gateway,
        "--users",
        str(users),
        "--spawn-rate",
        str(users),
        "--run-time",
        f"{seconds}s",
        "--stop-timeout",
        "5",
        "--csv",
        str(prefix),
        "--only-summary",
        "--loglevel",
        "WARNING",
    ]
    completed = subprocess.run(argv, env=env, cwd=REPO, capture_output=True, text=True, timeout=seconds + 120)
    entries: dict[str, dict[str, float]] = {}
    with open(f"{prefix}_stats.csv", newline="") as stats:
        for line in csv.DictReader(stats):
            count = int(line["Request Count"])
            entries[line["Name"]] = {
                "count": count,
                "failures": int(line["Failure Count"]),
                "per_s": round(count / seconds, 1),
                "median_ms": float(line["50%"] or 0),
                "p99_ms": float(line["99%"] or 0),
            }
    if FLOW not in entries:
        raise AssertionError(
            f"locust reported nothing (exit {completed.returncode}):\n{completed.stderr[-2000:]}"
        )
    return entries


def stored_documents(platform: Any) -> dict[str, dict[str, Any]]:
    """One registration and screening through the gateway (also a check of the bodies), and the documents the
    service stored for them: collection -> document."""
    headers = {"Authorization": f"Bearer {platform.token(USER)}", "X-Purpose": "identification"}
    with httpx.Client(base_url=platform.gateway, headers=headers, timeout=30) as client:
        person = client.post(
            "/v1/identification/persons", json=PERSON, headers={"Idempotency-Key": str(uuid.uuid4())}
        )
        assert person.status_code == 201, person.text
        screened = client.post(
            "/v1/identification/screenings",
            json=screening(person.json()["case_id"]),
            headers={"Idempotency-Key": str(uuid.uuid4())},
        )
        assert screened.status_code == 201, screened.text
    ids = {person.json()["id"], person.json()["case_id"], screened.json()["id"]}
    mongo: MongoClient = MongoClient(platform.env["MONGODB_URI"])
    try:
        database = mongo["thb_identification"]
        found: dict[str, dict[str, Any]] = {}
        for name in database.list_collection_names():
            for doc_id in ids:
                doc = database[name].find_one({"_id": doc_id})
                if doc is not None:
                    found[name] = doc
        return found
    finally:
        mongo.close()


def floor_rate(platform: Any, documents: dict[str, dict[str, Any]]) -> float:
    """Sets of the same documents (one insert each, new ids) per second, FLOOR_THREADS threads of pymongo."""
    mongo: MongoClient = MongoClient(platform.env["MONGODB_URI"], maxPoolSize=FLOOR_THREADS + 2)
    database = mongo["thb_identification"]
    done = [0] * FLOOR_THREADS
    deadline = time.monotonic() + FLOOR_SECONDS

    def insert(index: int) -> None:
        while time.monotonic() < deadline:
            for name, doc in documents.items():
                database[f"bench_floor_{name}"].insert_one({**doc, "_id": str(uuid.uuid4())})
            done[index] += 1

    started = time.monotonic()
    threads = [threading.Thread(target=insert, args=(i,)) for i in range(FLOOR_THREADS)]
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        return sum(done) / (time.monotonic() - started)
    finally:
        for name in documents:
            database.drop_collection(f"bench_floor_{name}")
        mongo.close()


@pytest.mark.timeout(BUDGET_S)
def test_write_path_registration_and_screening_through_the_gateway(running_platform: Any) -> None:
    platform = running_platform
    documents = stored_documents(platform)
    run_locust(platform, 2, 5, 0, "warm-up")

    steps: list[dict[str, Any]] = []
    for users in STEPS:
        entries = run_locust(platform, users, STEP_SECONDS, 0, f"step-{users}")
        steps.append({"users": users, **entries})
        print(f"step {users} users: {entries[FLOW]}", flush=True)
        if len(steps) > 1 and entries[FLOW]["per_s"] < 1.05 * steps[-2][FLOW]["per_s"]:
            break
    best = max(steps, key=lambda step: step[FLOW]["per_s"])
    saturation = best[FLOW]["per_s"]
    half_target = saturation / 2
    half = run_locust(platform, HALF_USERS, HALF_SECONDS, half_target / HALF_USERS, "half")
    floor = floor_rate(platform, documents)

    result: dict[str, Any] = {
        "completed_screening": "POST /persons (registers, opens the case) + POST /screenings, via the gateway",
        "load_generator": "locust (FastHttpUser), one process, headless",
        "steps": steps,
        "saturation_per_s": saturation,
        "saturation_users": best["users"],
        "half": {"target_per_s": round(half_target, 1), "users": HALF_USERS, "seconds": HALF_SECONDS, **half},
        "floor": {
            "what": "pymongo insert_one of the same documents, new ids, default write concern",
            "collections": sorted(documents),
            "threads": FLOOR_THREADS,
            "sets_per_s": round(floor, 1),
        },
    }
    failures = sum(int(step[FLOW]["failures"]) for step in steps) + int(half[FLOW]["failures"])
    flow_p99 = half[FLOW]["p99_ms"]
    write_result(
        "write_path",
        result,
        [
            row(
                "2",
                f"completed screenings/s at saturation ({best['users']} users)",
                f"{saturation:.1f}/s",
                f"{floor:.0f} sets/s",
                f"{saturation / floor:.3f}" if floor else "",
                ">= 200/s",
                saturation >= 200,
            ),
            row(
                "2",
                f"p99 at half saturation ({half[FLOW]['per_s']:.1f}/s achieved): register / screen",
                f"{half['register']['p99_ms']:.0f} / {half['screen']['p99_ms']:.0f} ms",
                "",
                "",
                "< 100 ms each",
                max(half["register"]["p99_ms"], half["screen"]["p99_ms"]) < 100,
            ),
            row(
                "2",
                "p99 of the pair at half saturation (median)",
                f"{flow_p99:.0f} ms ({half[FLOW]['median_ms']:.0f} ms)",
                "",
                "",
                "",
                None,
            ),
            row("2", "failed pairs (all runs)", str(failures), "", "", "0", failures == 0),
        ],
    )
