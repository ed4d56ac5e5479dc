"""The scale figure of `make bench` (figure 3; run with `pytest -m bench bench/`, never by `make test`).

What an officer waits for once the identification database is large: a case read, a page of a national system's
synchronisation (`GET /v1/identification/persons?updated_since=...&limit=50`), a duplicate search, and a person
read while the access log holds many entries; at BENCH_SCALE_PEOPLE people (default 10,000) and, opt-in, again at
BENCH_SCALE_LARGE people (e.g. 1000000; 0, the default, skips it). The access log holds as many seeded entries as
there are people (BENCH_SCALE_ACCESS_LOG_PER_PERSON, default 1), so the issue's "1,000,000 access-log entries" go
with the 1M run. Target (issue #16): the large figures within 1.5x of the small ones; the number of decryptions
per duplicate search reported.

Seed: bench/seed_people.py writes people (names of Albania, Kosovo and Montenegro in both scripts and several
spellings) with identification's own document classes, sealer and keys (the platform's key file), in batches,
straight into the service's database; then access-log entries in the log's format and hash chain. The
identification API is stopped while it seeds (nothing else appends to its access log then) and started again, so
its workers find the new tip from the chain head.

Measured through the gateway with `al-police`'s token (keep-alive, one request at a time), each request naming a
different record of her agency (a random seeded one). Decryptions per search: the service's own counter
(`thb_field_decryptions_total` on the API's /metrics, aggregated over its workers) before and after each search,
beside the `candidates_examined` of the answer (each examined candidate is decrypted once).

Before the timed searches at each size, BENCH_SCALE_WARM_SEARCHES (default 100) searches for other people of the
country run untimed but for their own summary ("while the record fills"): a search records the keys it finds
common (identification's adapters/common_keys.py) and does not read their holders again, so the first search
that meets a common key pays for reading its holders and later ones do not. A country's database grows with its
searches; a seeded one has had none, and its first searches are reported apart (since the count below fills the
record first, they meet few keys it does not hold). The number of keys recorded is
reported with each size. Before them, once seeding is done, identification's count of common keys runs to the
end (`count_holders`), as the scheduler runs it weekly and after an install: every person's tokens read, those
held by more than COMMON_KEY recorded, so that the searches meet the record as it is in service; its time is
reported. After the reads, identification's re-keying walks every person again as after a new
key scheme, BENCH_SCALE_REKEYED (default 2,000) of them stale (`rekeying_pace`), for the time a new scheme takes
(the whole walk's reads, the rewrites' pace). The two query shapes
that can grow with the data (the page's scope alternative and the search's candidate selection) are also run
with pymongo and explained, so that the figures say where the time goes.

Results: printed, and written to .local/bench/scale.json (with its rows of the summary table); docs/performance.md
records the figures with the machine and date. Nothing here is asserted as a target.
"""

from __future__ import annotations

import base64
import json
import os
import random
import re
import statistics
import time
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import httpx
import pytest

from bench.figures import row, summary, write_result
from bench.seed_people import Seeder, person, search_body, seed_access_log

# `disruptive`: it stops and starts the identification API (conftest.py runs such tests last), and it leaves a
# large database behind it. Seeding a large size takes far longer than pytest's default limit (300 s).
LIMIT_S = int(os.environ.get("BENCH_SCALE_LIMIT_S", "0")) or (
    900 if not int(os.environ.get("BENCH_SCALE_LARGE", "0")) else 6 * 3600
)
pytestmark = [pytest.mark.bench, pytest.mark.disruptive, pytest.mark.timeout(LIMIT_S)]

SMALL = int(os.environ.get("BENCH_SCALE_PEOPLE", "10000"))
LARGE = int(os.environ.get("BENCH_SCALE_LARGE", "0"))
LOG_PER_PERSON = float(os.environ.get("BENCH_SCALE_ACCESS_LOG_PER_PERSON", "1"))
READS = int(os.environ.get("BENCH_SCALE_READS", "200"))
PAGES = int(os.environ.get("BENCH_SCALE_PAGES", "50"))
SEARCHES = int(os.environ.get("BENCH_SCALE_SEARCHES", "40"))
WARM_SEARCHES = int(os.environ.get("BENCH_SCALE_WARM_SEARCHES", "100"))
SEED = int(os.environ.get("BENCH_SCALE_SEED", "1"))
REKEYED = int(os.environ.get("BENCH_SCALE_REKEYED", "2000"))
SLOW_SHAPE_MS = 2000.0  # a query shape this slow is timed once, not five times (explain)
USER = "al-police"
SYNC_NEWER = 200  # the synchronisation's `updated_since` leaves this many of the agency's records after it
OPERATIONS = ("case read", "sync page (updated_since, limit 50)", "duplicate search", "person read")
DECRYPTIONS = re.compile(r'^thb_field_decryptions_total\{outcome="ok"\} ([0-9.e+]+)$', re.MULTILINE)


def claims_of(token: str) -> dict[str, Any]:
    payload = token.split(".")[1]
    return dict(json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4))))


def single(value: Any) -> str:
    return str(value[0] if isinstance(value, list) else value)


def timed(call: Any) -> float:
    started = time.perf_counter()
    call()
    return (time.perf_counter() - started) * 1000


def decryptions(client: httpx.Client) -> float:
    found = DECRYPTIONS.search(client.get("/metrics").text)
    return float(found.group(1)) if found else float("nan")


def explain(
    collection: Any, where: dict[str, Any], limit: int, projection: dict[str, int] | None = None
) -> dict[str, Any]:
    """What the server does for one query shape of the service: its time from pymongo and its plan."""
    cursor = lambda: (  # noqa: E731
        collection.find(where, projection).sort([("updated_at", 1), ("_id", 1)]).limit(limit)
    )
    out: dict[str, Any] = {}
    try:
        # Five times, unless the first takes seconds (a walk of a large collection): then once is enough.
        times = [timed(lambda: list(cursor()))]
        if times[0] < SLOW_SHAPE_MS:
            times += [timed(lambda: list(cursor())) for _ in range(4)]
        out |= {"pymongo_median_ms": round(statistics.median(times), 2), "returned": len(list(cursor()))}
        plan = cursor().explain()
        stats = plan.get("executionStats", {})
        winning = plan.get("queryPlanner", {}).get("winningPlan", {})
        out |= {
            "docs_examined": stats.get("totalDocsExamined"),
            "keys_examined": stats.get("totalKeysExamined"),
            "plan": json.dumps(winning, default=str)[:300],
        }
    except Exception as error:  # noqa: BLE001 - a diagnostic: never the reason a size's figures are lost
        out["plan"] = f"failed: {type(error).__name__}: {error}"[:300]
    return out


@dataclass
class Reader:
    """The four operations at one size, as `al-police` does them through the gateway."""

    gateway: httpx.Client
    direct: httpx.Client  # the identification API itself: its /metrics only
    seeder: Seeder
    mine: list[tuple[str, str, datetime]]  # her agency's seeded people: (person id, case id, updated_at)
    everyone: list[
        int
    ]  # indexes of her country's seeded people (duplicate searches look at the whole country)
    since: str
    pick: random.Random
    searches: list[dict[str, Any]] = field(default_factory=list)
    warming: list[float] = field(default_factory=list)  # the untimed searches' times, while the record fills

    def case_read(self) -> None:
        self.gateway.get(f"/v1/identification/cases/{self.pick.choice(self.mine)[1]}").raise_for_status()

    def person_read(self) -> None:
        self.gateway.get(f"/v1/identification/persons/{self.pick.choice(self.mine)[0]}").raise_for_status()

    def sync_page(self) -> None:
        answer = self.gateway.get(
            "/v1/identification/persons", params={"updated_since": self.since, "limit": 50}
        )
        answer.raise_for_status()
        assert len(answer.json()["items"]) == 50

    def duplicate_search(self) -> float:
        index = self.pick.choice(self.everyone)
        target = person(self.seeder.seed, index, self.seeder.now)
        counted = decryptions(self.direct)
        started = time.perf_counter()
        answer = self.gateway.post(
            "/v1/identification/duplicate-searches",
            json=search_body(self.seeder.seed, index, self.seeder.now),
            headers={"Idempotency-Key": f"bench-{uuid.uuid4()}"},
        )
        elapsed = (time.perf_counter() - started) * 1000
        answer.raise_for_status()
        found = answer.json()
        self.searches.append(
            {
                "ms": elapsed,
                "candidates_examined": found["candidates_examined"],
                "decryptions": decryptions(self.direct) - counted,
                # Did the search find the person it was typed for (in full, or as a restricted match)?
                "found": target.id in {c["person_id"] for c in found["candidates"]}
                or target.case_id in {c.get("case_id") for c in found["restricted_candidates"]},
            }
        )
        return elapsed

    def measure(self) -> dict[str, list[float]]:
        # The API was started again: the gateway's pooled connections to the old one may fail once each.
        for _ in range(20):
            try:
                if self.gateway.get(f"/v1/identification/cases/{self.mine[0][1]}").status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.25)
        for call in (self.case_read, self.person_read, self.sync_page, self.duplicate_search):
            for _ in range(3):  # warm-up: connections, workers, code paths
                call()
        self.warming = [self.duplicate_search() for _ in range(WARM_SEARCHES)]
        self.searches.clear()
        return {
            "case read": [timed(self.case_read) for _ in range(READS)],
            "sync page (updated_since, limit 50)": [timed(self.sync_page) for _ in range(PAGES)],
            "duplicate search": [self.duplicate_search() for _ in range(SEARCHES)],
            "person read": [timed(self.person_read) for _ in range(READS)],
        }


def query_shapes(runtime: Any, seeder: Seeder, country: str, agency: str, since: datetime) -> dict[str, Any]:
    """The query shapes behind the page and the search, as the repository sends them (plumbing.repository
    .alternatives: the caller's conditions first, the agency's scope as one filter per branch)."""
    from identification.adapters.documents import PersonDocument
    from identification.domain import names
    from identification.service_layer import duplicates
    from identification.service_layer.persons import parse_birth

    persons = PersonDocument._get_collection()
    sample = search_body(seeder.seed, seeder.ids_by_country[country][0], seeder.now)
    birth = parse_birth(sample, seeder.now.date(), [])
    keys = names.blocking_keys(sample["given_names"], sample["surnames"], birth)
    sealer = runtime.deps.sealer
    name_tokens = sealer.search_tokens(country, {k for k in keys if not k.startswith("y:")})
    reads = duplicates.SearchKeys.of(keys, outdated=False)
    strong_tokens = sealer.search_tokens(country, set(reads.first))
    single_tokens = sealer.search_tokens(country, set(reads.single))
    return {
        "sync page: agency branch": explain(
            persons, {"updated_at": {"$gte": since}, "owner_country": country, "owner_agency": agency}, 51
        ),
        # What the search sends (service_layer/duplicates.select_candidates): the holders of its pairs of sounds in
        # its birth years (or of none), with the country, up to MAX_WALK; then each single key not yet known to be common,
        # its first COMMON_KEY + 1 holders. The server walks the blocking_keys index (its first member); its
        # explain says COLLSCAN, not mirroring that step: "variant: name keys alone" below is such a walk.
        "search: pairs of sounds in its years, and the country": explain(
            persons,
            {"blocking_keys": {"$in": strong_tokens}, "owner_country": country},
            duplicates.MAX_WALK,
            {"updated_at": 1, "blocking_keys": 1, "year_keys": 1},
        ),
        "search: one single key's first holders, and the country": explain(
            persons,
            {"blocking_keys": single_tokens[0], "owner_country": country},
            duplicates.COMMON_KEY + 1,
            {"updated_at": 1, "blocking_keys": 1, "year_keys": 1},
        ),
        # What it sent before the pairs: every name key at once, no limit.
        "search before the pairs: every name key and the country": explain(
            persons,
            {"blocking_keys": {"$in": name_tokens}, "owner_country": country},
            0,
            {"updated_at": 1, "blocking_keys": 1, "year_keys": 1},
        ),
        # Variants, for what an index could serve on this server (not what the service sends today).
        "variant: country-wide scope (owner_country, updated_at range)": explain(
            persons, {"owner_country": country, "updated_at": {"$gte": since}}, 51
        ),
        "variant: name keys alone ($in)": explain(persons, {"blocking_keys": {"$in": name_tokens}}, 301),
        "variant: one name key (equality)": explain(persons, {"blocking_keys": name_tokens[0]}, 301),
        "search example": sample,
    }


def test_scale_of_the_identification_reads(running_platform: Any) -> None:
    from identification.adapters.documents import PersonDocument
    from identification.bootstrap import build_runtime

    api = running_platform.processes["identification-api"]
    runtime = build_runtime(dict(api.process.env))  # the API's key file, configuration and database
    access_log = runtime.startup.access_log
    claims = claims_of(running_platform.token(USER))
    country, agency, azp = single(claims["country"]), single(claims["agency"]), str(claims["azp"])
    seeder = Seeder(runtime, seed=SEED)
    before = PersonDocument._get_collection().count_documents({})
    sizes = [SMALL] + ([LARGE] if LARGE > SMALL else [])
    runs: list[dict[str, Any]] = []
    pick = random.Random(SEED)

    for size in sizes:
        # Seed, the API stopped meanwhile (nothing else appends to its access log).
        seeded_before = seeder.seeded
        api.process.stop(timeout=10)
        try:
            seeding_s = seeder.seed_to(size, progress)
            ids = [pid for pairs in seeder.by_scope.values() for pid, _, _ in pairs]
            last_seq, _ = access_log.chain.read_tip()
            log_s = 0.0
            wanted = int(size * LOG_PER_PERSON)
            if wanted > last_seq:
                last_seq, log_s = seed_access_log(access_log, wanted - last_seq, ids, seed=SEED, azp=azp)
        finally:
            running_platform.start("identification-api")
        # A fresh token: seeding a large size outlives the reused one.
        headers = {
            "Authorization": f"Bearer {running_platform.token(USER, fresh=True)}",
            "X-Purpose": "identification",
        }
        counted = count_holders(runtime, running_platform)
        mine = seeder.scope(country, agency)
        newest = sorted(updated for _, _, updated in mine)
        since = newest[-SYNC_NEWER] if len(newest) >= SYNC_NEWER else newest[0]
        with (
            httpx.Client(base_url=running_platform.gateway, headers=headers, timeout=600) as gateway,
            httpx.Client(base_url=running_platform.urls["identification"], timeout=60) as direct,
        ):
            reader = Reader(
                gateway,
                direct,
                seeder,
                mine,
                seeder.ids_by_country[country],
                since.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
                pick,
            )
            samples = reader.measure()
        searches = reader.searches
        runs.append(
            {
                "people_seeded": seeder.seeded,
                "people_in_database": seeder.seeded + before,
                "people_of_the_country": len(reader.everyone),
                "people_of_the_agency": len(mine),
                "access_log_entries": last_seq,
                "seeding_s": round(seeding_s, 1),
                "seeding_s_per_10k_people": round(seeding_s / max(1, size - seeded_before) * 10_000, 1),
                "access_log_seeding_s": round(log_s, 1),
                "operations": {name: summary(values) for name, values in samples.items()},
                # summary() names its fields *_ms: for these two they are counts.
                "decryptions_per_search": summary([s["decryptions"] for s in searches]),
                "decryptions_max": max(s["decryptions"] for s in searches),
                "candidates_examined_per_search": summary(
                    [float(s["candidates_examined"]) for s in searches]
                ),
                "decryptions_equal_candidates_examined": all(
                    s["decryptions"] == s["candidates_examined"] for s in searches
                ),
                "searched_person_found": f"{sum(s['found'] for s in searches)}/{len(searches)}",
                "searches_while_the_record_fills": summary(reader.warming) if reader.warming else None,
                "common_keys_recorded": common_keys_recorded(),
                "holder_count": counted,
            }
        )
        # Written before the steps below and again after each: an hour of seeding a large size is not lost to
        # one of them failing afterwards.
        write_scale(sizes, runs)
        runs[-1]["rekeying"] = rekeying_pace(runtime, running_platform, ids)
        write_scale(sizes, runs)
        runs[-1]["query_shapes"] = query_shapes(runtime, seeder, country, agency, since)
        write_scale(sizes, runs)


def count_holders(runtime: Any, running_platform: Any) -> dict[str, Any]:
    """The count of common keys (identification's service_layer/common_keys_count.py) over the seeded database, as
    the scheduler runs it weekly and after an install: every person's tokens read window by window, those held by
    more than COMMON_KEY recorded. A seeded database was never counted (the platform's first count ran on it
    empty), so its counts are forgotten and the task is run here to the end, the scheduler stopped meanwhile."""
    from identification.adapters import common_keys
    from identification.adapters.documents import PersonDocument
    from identification.service_layer.common_keys_count import count_task

    database = PersonDocument._get_collection().database
    running_platform.processes["identification-scheduler"].process.stop(timeout=30)
    try:
        database[common_keys.COUNTS].delete_many({})
        started = time.perf_counter()
        recorded = count_task(runtime.deps, budget_s=4 * 3600)()
        seconds = time.perf_counter() - started
    finally:
        running_platform.start("identification-scheduler")
    return {"seconds": round(seconds, 1), "tokens_recorded": recorded}


def rekeying_pace(runtime: Any, running_platform: Any, seeded: list[str]) -> dict[str, Any]:
    """How long identification's re-keying (service_layer/rekeying.py) takes for a new key scheme: the walk of
    every person (adapters/person_keys.py) is started again from the beginning, as a release with a new scheme
    does, with REKEYED persons picked at random made stale (`keys_scheme` unset); the task then runs, as the
    scheduler runs it, until its walk is at the present. Measured: the whole walk's reads (every person of the
    database, window by window) and the rewrites of the stale (access log first, decrypt, HMAC, one conditional
    update each). The keys it writes are the ones they had; nothing else changes. From the two: how long a new
    scheme would take for the whole database, every person stale, at PASS_BUDGET_S of every 30 s.
    The platform's identification scheduler, which runs the same task, is stopped meanwhile: two re-keyers would
    share the persons and each count only its own."""
    from identification.adapters import person_keys
    from identification.adapters.documents import PersonDocument
    from identification.domain import names
    from identification.service_layer import rekeying

    class TimedWalk(person_keys.PersonKeys):
        """The walk, with the time its reads and its steps take and the persons and windows it reads."""

        read_s, persons_read, windows = 0.0, 0, 0

        def next_window(self, country: str, limit: int) -> Any:
            started = time.perf_counter()
            window = super().next_window(country, limit)
            self.read_s += time.perf_counter() - started
            if window is not None:
                self.persons_read += len(window.span.rows)
                self.windows += 1
            return window

        def passed(self, window: Any) -> None:
            started = time.perf_counter()
            super().passed(window)
            self.read_s += time.perf_counter() - started

    persons = PersonDocument._get_collection()
    total = persons.estimated_document_count()
    # Of the seeded persons (their ids known here): a scan of the collection for ids would cost minutes at 1M.
    chosen = random.Random(SEED).sample(seeded, min(REKEYED, len(seeded)))
    walk = TimedWalk(names.KEY_SCHEME, runtime.deps.config.country_codes, runtime.deps.clock)
    running_platform.processes["identification-scheduler"].process.stop(timeout=30)
    try:
        persons.update_many({"_id": {"$in": chosen}}, {"$unset": {"keys_scheme": ""}})
        persons.database[person_keys.WALKS].delete_many({})
        started = time.perf_counter()
        rewritten = rekeying.rekey_task(runtime.deps, runtime.startup.access_log, walk, budget_s=4 * 3600)()
        seconds = time.perf_counter() - started
        caught_up = not walk.any_stale()
    finally:
        running_platform.start("identification-scheduler")
    runtime.startup.access_log.flush()
    rewrite_s = seconds - walk.read_s
    per_s = rewritten / rewrite_s if rewrite_s > 0 else 0.0
    share = rekeying.PASS_BUDGET_S / 30
    return {
        "persons": len(chosen),
        "rewritten": rewritten,
        "caught_up": caught_up,
        "seconds": round(seconds, 2),
        "walk_read_s": round(walk.read_s, 2),
        "walk_persons_read": walk.persons_read,
        "walk_windows": walk.windows,
        "persons_per_s": round(per_s, 1),
        "hours_for_the_database": (round((walk.read_s + total / per_s) / share / 3600, 2) if per_s else None),
    }


def common_keys_recorded() -> int:
    from identification.adapters.common_keys import COLLECTION
    from identification.adapters.documents import PersonDocument

    return int(PersonDocument._get_collection().database[COLLECTION].count_documents({}))


def write_scale(sizes: list[int], runs: list[dict[str, Any]]) -> None:
    write_result(
        "scale",
        {
            "sizes": sizes,
            "reads_per_operation": READS,
            "pages": PAGES,
            "searches": SEARCHES,
            "warm_searches": WARM_SEARCHES,
            "access_log_entries_per_person": LOG_PER_PERSON,
            "runs": runs,
        },
        summary_rows(runs),
    )


def progress(done: int, seconds: float) -> None:
    if done % 50_000 == 0:
        print(f"seeded {done} people in {seconds:.0f} s", flush=True)


def summary_rows(runs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    small, large = runs[0], runs[-1]
    rows = []
    for name in OPERATIONS:
        low, high = small["operations"][name], large["operations"][name]
        if large is small:
            rows.append(
                row(
                    "3",
                    f"{name} at {small['people_in_database']:,} people, p50 / p99",
                    f"{low['median_ms']:.1f} / {low['p99_ms']:.1f} ms",
                    "",
                    "",
                    "<= 1.5x at 1M (large size not run)",
                    None,
                )
            )
            continue
        ratio = high["median_ms"] / low["median_ms"]
        rows.append(
            row(
                "3",
                f"{name}: {large['people_in_database']:,} vs {small['people_in_database']:,} people, p50 (p99)",
                f"{high['median_ms']:.1f} ms ({high['p99_ms']:.1f})",
                f"{low['median_ms']:.1f} ms ({low['p99_ms']:.1f})",
                f"{ratio:.2f}x (p99 {high['p99_ms'] / low['p99_ms']:.2f}x)",
                "<= 1.5x at 1M",
                ratio <= 1.5 if large["people_in_database"] >= 1_000_000 else None,
            )
        )
    for run in runs:
        rows.append(
            row(
                "3",
                f"decryptions per duplicate search at {run['people_in_database']:,} people, median (max)",
                f"{run['decryptions_per_search']['median_ms']:.0f} ({run['decryptions_max']:.0f})",
                target="reported",
            )
        )
        if run.get("rekeying"):
            pace = run["rekeying"]
            rows.append(
                row(
                    "3",
                    f"re-keying at {run['people_in_database']:,} people: a walk of every person "
                    f"({pace['walk_persons_read']:,} read in {pace['walk_windows']:,} windows), rewrites of "
                    f"{pace['persons']:,} stale (hours for a new scheme, every person stale, at a pass's share)",
                    f"walk {pace['walk_read_s']:.0f} s, {pace['persons_per_s']:.0f} rewrites/s "
                    f"({pace['hours_for_the_database']} h)",
                    target="reported",
                )
            )
        if run.get("holder_count"):
            counted = run["holder_count"]
            rows.append(
                row(
                    "3",
                    f"count of common keys at {run['people_in_database']:,} people, before the searches "
                    "(tokens recorded)",
                    f"{counted['seconds']:.0f} s ({counted['tokens_recorded']:,})",
                    target="reported",
                )
            )
        if run.get("searches_while_the_record_fills"):
            first = run["searches_while_the_record_fills"]
            rows.append(
                row(
                    "3",
                    f"the {first['n']} untimed searches before, the record of common keys filled by the count "
                    f"({run['common_keys_recorded']} keys after), at {run['people_in_database']:,} people, "
                    "p50 (p99)",
                    f"{first['median_ms']:.1f} ms ({first['p99_ms']:.1f})",
                    target="context",
                )
            )
    return rows
