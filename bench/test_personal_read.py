"""The personal-data read figure of `make bench` (run with `pytest -m bench bench/`, never by `make test`).

What an officer waits for when she opens a person: `GET /v1/identification/persons/{id}` with her token, through
the gateway and straight to the service (keep-alive, one request at a time), and her case
(`GET /v1/identification/cases/{id}`) through the gateway; as context, the same stack answering no personal data
(`GET /v1/identification/indicator-sets`). The service reads the person,
decrypts the protected fields, writes the durable access-log entry before the body and answers. Its floor,
measured in the same run on the same Mongo-wire server: one pymongo `find_one` of that person plus one durable
insert (w=majority, j=true) - the two database operations a read cannot do without.

Each path is read in BLOCKS blocks of BLOCK_READS reads, in turn (floor, direct, gateway per block), so the
figure also shows whether a read gets slower as the access log grows (it did once: docs/performance.md).

Results: printed, and written to .local/bench/personal_read.json (with its rows of the summary table); docs/performance.md records the figures with
the machine and date. Nothing here is asserted as a target: a missed target is a finding to write down.
"""

from __future__ import annotations

import os
import statistics
import time
import uuid
from typing import Any

import httpx
import pytest
from pymongo import MongoClient
from pymongo.write_concern import WriteConcern

from bench.figures import new_person, row, summary, write_result

pytestmark = pytest.mark.bench

BLOCKS = int(os.environ.get("BENCH_READ_BLOCKS", "5"))
BLOCK_READS = int(os.environ.get("BENCH_READ_BLOCK", "200"))
USER = "al-police"
# The same stack (gateway, token, connexion, scope) answering no personal data from one small read: what a read
# costs before the person's own work (her record, the restriction check, the access-log entry).
STACK_ONLY = "/v1/identification/indicator-sets"
PERSON = new_person("Reader", "2010", "female")


def timed(call: Any, count: int) -> list[float]:
    out = []
    for _ in range(count):
        started = time.perf_counter()
        call()
        out.append((time.perf_counter() - started) * 1000)
    return out


def test_personal_data_read_against_its_database_floor(running_platform: Any) -> None:
    token = running_platform.token(USER)
    headers = {"Authorization": f"Bearer {token}", "X-Purpose": "identification"}
    gateway = httpx.Client(base_url=running_platform.gateway, headers=headers, timeout=60)
    direct = httpx.Client(base_url=running_platform.urls["identification"], headers=headers, timeout=60)
    created = gateway.post(
        "/v1/identification/persons", json=PERSON, headers={"Idempotency-Key": f"bench-{uuid.uuid4()}"}
    )
    created.raise_for_status()
    path = f"/v1/identification/persons/{created.json()['id']}"
    case = gateway.post(
        "/v1/identification/cases",
        json={"person_id": created.json()["id"]},
        headers={"Idempotency-Key": f"bench-{uuid.uuid4()}"},
    )
    case.raise_for_status()
    case_path = f"/v1/identification/cases/{case.json()['id']}"

    mongo = MongoClient(running_platform.env["MONGODB_URI"])
    database = mongo["thb_identification"]
    durable = database.get_collection("bench_floor", write_concern=WriteConcern(w="majority", j=True))

    def floor() -> None:
        database["persons"].find_one({"_id": created.json()["id"]})
        durable.insert_one({"ts": time.time(), "ids": [created.json()["id"]], "purpose": "identification"})

    def read(client: httpx.Client, what: str = path) -> None:
        client.get(what).raise_for_status()

    for client in (gateway, direct):  # warm-up: connections, key set, code paths
        timed(lambda client=client: read(client), 20)
    timed(lambda: read(gateway, case_path), 20)
    blocks: list[dict[str, Any]] = []
    try:
        for _ in range(BLOCKS):
            blocks.append(
                {
                    "floor": summary(timed(floor, BLOCK_READS)),
                    "direct": summary(timed(lambda: read(direct), BLOCK_READS)),
                    "gateway": summary(timed(lambda: read(gateway), BLOCK_READS)),
                    "gateway_case": summary(timed(lambda: read(gateway, case_path), BLOCK_READS)),
                    "gateway_no_personal_data": summary(
                        timed(lambda: read(gateway, STACK_ONLY), BLOCK_READS)
                    ),
                }
            )
    finally:
        durable.drop()
        mongo.close()
        gateway.close()
        direct.close()

    ratios = [round(b["gateway"]["median_ms"] / b["floor"]["median_ms"], 2) for b in blocks]
    worst_p99 = max(b["gateway"]["p99_ms"] for b in blocks)
    case_ratios = [round(b["gateway_case"]["median_ms"] / b["floor"]["median_ms"], 2) for b in blocks]
    case_middle = sorted(case_ratios)[len(case_ratios) // 2]
    case_median = statistics.median(b["gateway_case"]["median_ms"] for b in blocks)
    case_p99 = max(b["gateway_case"]["p99_ms"] for b in blocks)
    middle = sorted(ratios)[len(ratios) // 2]
    floor_median = statistics.median(b["floor"]["median_ms"] for b in blocks)
    gateway_median = statistics.median(b["gateway"]["median_ms"] for b in blocks)
    result: dict[str, Any] = {
        "reads_per_block": BLOCK_READS,
        "blocks": blocks,
        "gateway_median_over_floor": ratios,
        "gateway_case_median_over_floor": case_ratios,
        "last_block_over_first": {
            path_name: round(blocks[-1][path_name]["median_ms"] / blocks[0][path_name]["median_ms"], 2)
            for path_name in ("floor", "direct", "gateway")
        },
    }
    write_result(
        "personal_read",
        result,
        [
            row(
                "1",
                "GET person via gateway, p50 (median of blocks)",
                f"{gateway_median:.2f} ms",
                f"{floor_median:.2f} ms",
                f"{middle}x (blocks {min(ratios)}-{max(ratios)}x)",
                "<= 2.5x",
                middle <= 2.5,
            ),
            row(
                "1",
                "GET person via gateway, p99 (worst block)",
                f"{worst_p99:.1f} ms",
                "",
                "",
                "< 25 ms",
                worst_p99 < 25,
            ),
            row(
                "1",
                "GET case via gateway, p50 (median of blocks)",
                f"{case_median:.2f} ms",
                f"{floor_median:.2f} ms",
                f"{case_middle}x (blocks {min(case_ratios)}-{max(case_ratios)}x)",
                "<= 2.5x",
                case_middle <= 2.5,
            ),
            row(
                "1",
                "GET case via gateway, p99 (worst block)",
                f"{case_p99:.1f} ms",
                "",
                "",
                "< 25 ms",
                case_p99 < 25,
            ),
            row(
                "1",
                "context: GET indicator sets via gateway (no personal data), p50",
                f"{statistics.median(b['gateway_no_personal_data']['median_ms'] for b in blocks):.2f} ms",
                f"{floor_median:.2f} ms",
                f"{statistics.median(b['gateway_no_personal_data']['median_ms'] for b in blocks) / floor_median:.1f}x",
                "",
                None,
            ),
            row(
                "1",
                "GET person: last block / first block (growth)",
                f"{result['last_block_over_first']['gateway']}x",
                f"{result['last_block_over_first']['floor']}x",
                "",
                "no growth",
                None,
            ),
        ],
    )
