"""Figure 6 of `make bench`, the footprint (run with `pytest -m bench bench/`, never by `make test`).

Memory: the resident set (VmRSS, /proc/<pid>/status) of every process of the running platform, one line per
process (a gunicorn master and each of its workers separately; the rows also give each process group's sum), at
idle (the largest of three samples a second apart, after the tests before this one) and under load (the largest
of samples every half second while threads send person reads and registrations through the gateway for LOAD_S
seconds). Target: every Python process of the platform under 120 MB at idle. The servers (Kafka's and Keycloak's
JVMs, the Mongo-wire server, itself a Python process) are reported separately, as context.

Start-up: (1) each service's API process and the gateway, stopped and spawned again one at a time through the
session's own process objects, timed from the spawn until its readiness URL (/readyz, the probe devstack and the
chart use) answers 200, polled every 50 ms; (2) the whole stack as a developer starts it: `python -m devstack run`
in a subprocess with a data folder of its own (.local/bench-stack: its own Mongo-wire server, Kafka and a second
Keycloak seeded with this checkout's realm template), timed from the spawn until it writes its run/urls.json,
which it does once every process answered its readiness probe; its progress lines are time-stamped on arrival to
give the phases. "Warm" means Keycloak's build and realm template and Kafka's formatted storage already exist; the
first run in a checkout formats Kafka's storage, so it is repeated once (the row says when a run was still not
warm, and then claims no target). That is a second test, after the memory figure, so the second stack never
disturbs it. Target: the whole stack ready in under 60 s on a warm cache.

Environment: BENCH_FOOTPRINT_LOAD_S (default 20), BENCH_FOOTPRINT_STACK (0 skips the whole-stack start).
Results: .local/bench/footprint.json and .local/bench/stack_start.json.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import threading
import time
import urllib.request
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest

from bench.figures import new_person, row, write_result
from bench.measure import command, group_pids, groups_of, is_python, rss_mib
from devstack.paths import REPO_ROOT, data_dir

pytestmark = pytest.mark.bench

LOAD_S = float(os.environ.get("BENCH_FOOTPRINT_LOAD_S", "20"))
WHOLE_STACK = os.environ.get("BENCH_FOOTPRINT_STACK", "1") != "0"
LIMIT_MB = 120
STACK_TARGET_S = 60
USER = "al-police"
PERSON = new_person("Footprint", "2011", "female")


def sample(groups: dict[str, tuple[str, int]], peak: dict[int, dict[str, Any]]) -> None:
    """One reading of every member of every group, keeping each pid's largest RSS in `peak`."""
    for name, (kind, pgid) in groups.items():
        for pid in group_pids(pgid):
            rss = rss_mib(pid)
            if rss is None:
                continue
            seen = peak.setdefault(
                pid,
                {
                    "group": name,
                    "kind": kind,
                    "pid": pid,
                    "leader": pid == pgid,  # a gunicorn master, or the process devstack started
                    "command": command(pid),
                    "python": is_python(pid),
                    "rss_mb": 0.0,
                },
            )
            seen["rss_mb"] = round(max(seen["rss_mb"], rss), 1)


def by_group(processes: list[dict[str, Any]]) -> dict[str, float]:
    sums: dict[str, float] = {}
    for p in processes:
        sums[p["group"]] = round(sums.get(p["group"], 0.0) + p["rss_mb"], 1)
    return sums


def drive_load(platform: Any, seconds: float) -> dict[str, int]:
    """Reads of one person and registrations of new ones through the gateway, from a few threads."""
    headers = {"Authorization": f"Bearer {platform.token(USER)}", "X-Purpose": "identification"}
    done = {"reads": 0, "registrations": 0, "failures": 0}
    lock = threading.Lock()
    with httpx.Client(base_url=platform.gateway, headers=headers, timeout=30) as client:
        created = client.post(
            "/v1/identification/persons", json=PERSON, headers={"Idempotency-Key": str(uuid.uuid4())}
        )
        created.raise_for_status()
        path = f"/v1/identification/persons/{created.json()['id']}"
    deadline = time.monotonic() + seconds

    def reader() -> None:
        with httpx.Client(base_url=platform.gateway, headers=headers, timeout=30) as client:
            while time.monotonic() < deadline:
                ok = client.get(path).is_success
                with lock:
                    done["reads" if ok else "failures"] += 1

    def registrar() -> None:
        with httpx.Client(base_url=platform.gateway, headers=headers, timeout=30) as client:
            while time.monotonic() < deadline:
                answer = client.post(
                    "/v1/identification/persons", json=PERSON, headers={"Idempotency-Key": str(uuid.uuid4())}
                )
                with lock:
                    done["registrations" if answer.is_success else "failures"] += 1

    threads = [threading.Thread(target=reader) for _ in range(4)] + [
        threading.Thread(target=registrar) for _ in range(2)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return done


def answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:  # noqa: S310 - local URL
            return bool(response.status == 200)
    except OSError:
        return False


def respawn(platform: Any, name: str) -> float:
    """Stop one platform process, spawn it again and time the spawn until its readiness URL answers 200."""
    item = platform.processes[name]
    item.process.stop(timeout=15)
    started = time.monotonic()
    item.process.start()
    while not answers(item.ready_url):
        if not item.process.alive():
            raise AssertionError(f"{name} exited while starting:\n{item.process.log_tail()}")
        if time.monotonic() - started > 90:
            raise AssertionError(f"{name} not ready within 90 s:\n{item.process.log_tail()}")
        time.sleep(0.05)
    return round(time.monotonic() - started, 2)


def seed_keycloak(stack_data: Path) -> None:
    """Give the bench's stack the realm template this checkout's Keycloak already made (with the admin password it
    is keyed by), as a developer's second `make run` would find it; a stale one just means a realm import."""
    source, target = data_dir("keycloak"), stack_data / "keycloak"
    templates = sorted(source.glob("template-*"), key=lambda p: p.stat().st_mtime)
    if any(target.glob("template-*")) or not templates or not (source / "admin-password").exists():
        return
    target.mkdir(parents=True, exist_ok=True)
    shutil.copy2(source / "admin-password", target / "admin-password")
    shutil.copytree(templates[-1], target / templates[-1].name)


def whole_stack_start(logs: Path) -> dict[str, Any]:
    """`python -m devstack run` from spawn until it writes its run/urls.json; stopped (SIGTERM) afterwards. Its data
    folder is the bench's own (.local/bench-stack), never the checkout's, so a `make run` going on is not touched."""
    stack_data = data_dir("bench-stack")
    seed_keycloak(stack_data)
    state = stack_data / "run" / "urls.json"
    warm = {
        "kafka_storage_formatted": (stack_data / "kafka" / "logs" / "meta.properties").exists(),
        "keycloak_template": any((stack_data / "keycloak").glob("template-*/keycloakdb.mv.db")),
    }
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("MONGODB_URI", "KAFKA_BOOTSTRAP_SERVERS", "OIDC_ISSUER", "THB_CONFIG")
    }
    env["THB_DATA_DIR"] = str(stack_data)
    state.unlink(missing_ok=True)
    phases: list[tuple[float, str]] = []
    started = time.monotonic()
    with open(logs / "devstack-run.out", "wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "devstack", "run"],
            cwd=REPO_ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.PIPE,
            start_new_session=True,
        )

    def stamp() -> None:
        assert proc.stderr is not None
        for line in proc.stderr:
            phases.append((round(time.monotonic() - started, 2), line.decode(errors="replace").strip()[:120]))

    reader = threading.Thread(target=stamp, daemon=True)
    reader.start()
    ready_s = None
    try:
        while time.monotonic() - started < 180 and proc.poll() is None:
            if state.exists():
                ready_s = round(time.monotonic() - started, 2)
                break
            time.sleep(0.1)
    finally:
        stop_started = time.monotonic()
        if proc.poll() is None:
            os.killpg(
                proc.pid, signal.SIGTERM
            )  # the group we created: devstack run alone; it stops its children
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        stop_s = round(time.monotonic() - stop_started, 2)
        reader.join(timeout=5)
    if any("importing the realm" in line for _, line in phases):
        warm["keycloak_template"] = False  # the seeded template was stale
    return {"ready_s": ready_s, "stop_s": stop_s, "exit": proc.returncode, "warm": warm, "phases": phases}


def test_memory_and_api_start_up(
    running_platform: Any, kafka: Any, mongo: Any, keycloak: Any, tmp_path: Path
) -> None:
    groups = groups_of(running_platform, {"kafka": kafka, "keycloak": keycloak, "mongo-wire": mongo})
    idle: dict[int, dict[str, Any]] = {}
    for _ in range(3):
        sample(groups, idle)
        time.sleep(1)

    loaded: dict[int, dict[str, Any]] = {}
    stop = threading.Event()

    def sampler() -> None:
        while not stop.is_set():
            sample(groups, loaded)
            stop.wait(0.5)

    watcher = threading.Thread(target=sampler, daemon=True)
    watcher.start()
    try:
        load = drive_load(running_platform, LOAD_S)
    finally:
        stop.set()
        watcher.join()

    apis = [name for name in running_platform.processes if name.endswith("-api")] + ["gateway"]
    respawn_s = {name: respawn(running_platform, name) for name in apis}

    platform_idle = [p for p in idle.values() if p["kind"] == "platform"]
    python_idle = [p for p in platform_idle if p["python"]]
    python_loaded = [p for p in loaded.values() if p["kind"] == "platform" and p["python"]]
    servers = by_group([p for p in idle.values() if p["kind"] == "server"])
    servers_loaded = by_group([p for p in loaded.values() if p["kind"] == "server"])
    largest_idle = max(python_idle, key=lambda p: p["rss_mb"])
    largest_loaded = max(python_loaded, key=lambda p: p["rss_mb"])
    over = [p for p in python_idle if p["rss_mb"] >= LIMIT_MB]
    result: dict[str, Any] = {
        "rss_note": "VmRSS per process, MB = MiB; a gunicorn master (leader) and each worker are separate processes",
        "idle": sorted(idle.values(), key=lambda p: (p["kind"], p["group"], p["pid"])),
        "under_load": sorted(loaded.values(), key=lambda p: (p["kind"], p["group"], p["pid"])),
        "idle_by_group": by_group(list(idle.values())),
        "under_load_by_group": by_group(list(loaded.values())),
        "load": {**load, "seconds": LOAD_S},
        "respawn_to_ready_s": respawn_s,
    }
    for p in sorted(idle.values(), key=lambda p: (p["kind"], p["group"], p["pid"])):
        peak = loaded.get(p["pid"], {}).get("rss_mb", "-")
        print(
            f"bench: {p['kind']:8} {p['group']:28} {p['pid']:>7} {'*' if p['leader'] else ' '} {p['command']:50} idle {p['rss_mb']:7.1f} MB, load {peak} MB"
        )
    slowest = max(respawn_s, key=respawn_s.__getitem__)
    fastest = min(respawn_s, key=respawn_s.__getitem__)
    rows = [
        row(
            "6",
            f"largest Python process at idle, RSS ({largest_idle['group']})",
            f"{largest_idle['rss_mb']:.0f} MB",
            "",
            f"{len(over)} of {len(python_idle)} at or over",
            f"every one < {LIMIT_MB} MB",
            not over,
        ),
        row(
            "6",
            f"platform Python processes, total RSS idle / load ({len(python_idle)} processes)",
            f"{sum(p['rss_mb'] for p in python_idle):.0f} / {sum(p['rss_mb'] for p in python_loaded):.0f} MB",
            "",
            "",
            "context",
            None,
        ),
        row(
            "6",
            f"largest Python process under load, RSS ({largest_loaded['group']})",
            f"{largest_loaded['rss_mb']:.0f} MB",
            "",
            f"{load['reads']} reads, {load['registrations']} registrations in {LOAD_S:.0f} s",
            "context",
            None,
        ),
        row(
            "6",
            "servers RSS idle / load: " + ", ".join(servers),
            ", ".join(f"{mb:.0f} / {servers_loaded.get(name, 0):.0f} MB" for name, mb in servers.items()),
            "",
            "",
            "context",
            None,
        ),
        row(
            "6",
            "API process spawn to /readyz 200 (slowest, fastest)",
            f"{respawn_s[slowest]:.1f} s ({slowest})",
            f"{respawn_s[fastest]:.1f} s ({fastest})",
            "",
            "context",
            None,
        ),
    ]
    write_result("footprint", result, rows)


def test_whole_stack_start(running_platform: Any, tmp_path: Path) -> None:
    """After the memory figure, so a second stack's start-up never disturbs it (the session's platform idles)."""
    if not WHOLE_STACK:
        pytest.skip(
            "the whole stack's cold start was turned off with BENCH_FOOTPRINT_STACK=0 (make bench runs it)"
        )
    stack = whole_stack_start(tmp_path)
    if not all(
        stack["warm"].values()
    ):  # the first run in this checkout formats Kafka's storage: once more, warm
        stack = {**whole_stack_start(tmp_path), "first_run_cold": stack}
    ready, warm = stack["ready_s"], all(stack["warm"].values())
    for at, line in stack["phases"]:
        print(f"bench: devstack run +{at:6.2f} s {line}")
    cache = (
        "warm cache" if warm else "cache not warm: " + ", ".join(k for k, v in stack["warm"].items() if not v)
    )
    write_result(
        "stack_start",
        stack,
        [
            row(
                "6",
                f"whole stack ready, python -m devstack run ({cache})",
                f"{ready:.1f} s" if ready is not None else "not ready in 180 s",
                "",
                "",
                f"< {STACK_TARGET_S} s (warm)",
                ready is not None and ready < STACK_TARGET_S if warm else None,
            )
        ],
    )
