"""`make run` starts the whole platform, every API becomes ready, each country's demo user gets a token,
`make demo` plays the XK-ME return story on it twice (each run a new story, as the README promises), and Ctrl-C
stops every process within 30 seconds."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path

import httpx
import pytest

from devstack.keycloak import password_grant
from tools.contracts import REPO_ROOT

pytestmark = pytest.mark.smoke

START_BUDGET_SECONDS = 420
STOP_BUDGET_SECONDS = 30
DEMO_BUDGET_SECONDS = 600
DEMO_PASSWORD_FILE = REPO_ROOT / "realm" / "local-realm.json"


def _live_group_members(groups: set[int]) -> list[int]:
    """Processes (not zombies) in the given process groups: each platform process leads its own group, so
    this also finds gunicorn workers and JVM children."""
    members = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        state, pgid = fields[0], int(fields[2])
        if pgid in groups and state != "Z":
            members.append(int(stat.parent.name))
    return members


def _wait_for(path: Path, proc: subprocess.Popen[bytes], log: Path) -> dict:
    deadline = time.monotonic() + START_BUDGET_SECONDS
    while time.monotonic() < deadline:
        assert proc.poll() is None, f"make run exited early:\n{log.read_text()[-4000:]}"
        if path.exists():
            return json.loads(path.read_text())
        time.sleep(1)
    raise AssertionError(f"make run not ready within {START_BUDGET_SECONDS}s:\n{log.read_text()[-4000:]}")


def _demo_users_by_country() -> dict[str, tuple[str, str]]:
    local = json.loads(DEMO_PASSWORD_FILE.read_text())
    users: dict[str, tuple[str, str]] = {}
    for user in local["users"]:
        country = user["username"].split("-", 1)[0].upper()
        password = next(c["value"] for c in user.get("credentials", []) if c.get("type") == "password")
        users.setdefault(country, (user["username"], password))
    return users


def _demo(env: dict[str, str]) -> set[str]:
    """Run `make demo` against the running platform; the transnational case references it printed."""
    done = subprocess.run(
        ["make", "demo"],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=DEMO_BUDGET_SECONDS,
    )
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-4000:]
    headings = [
        line for line in done.stdout.splitlines() if line.startswith("== ") and "transnational case" in line
    ]
    assert len(headings) == 2, done.stdout[-4000:]  # two children
    assert "Kosovo (host) return case: closed" in done.stdout
    assert "Montenegro (origin) return case: closed" in done.stdout
    assert done.stdout.count("reception referral in Montenegro: child_shelter -> completed") == 2
    return {line.split("transnational case ", 1)[1].rstrip(" =") for line in headings}


def test_make_run_starts_serves_and_stops(tmp_path: Path) -> None:
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("MONGODB_URI", "KAFKA_BOOTSTRAP_SERVERS", "OIDC_ISSUER")
    }
    env["THB_DATA_DIR"] = str(tmp_path / "local")
    log = tmp_path / "make-run.log"
    pids: list[int] = []
    with open(log, "wb") as out:
        # Its own process group, so Ctrl-C can be delivered the way a terminal does: to make and its children.
        proc = subprocess.Popen(
            ["make", "run"],
            cwd=REPO_ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        state = _wait_for(tmp_path / "local" / "run" / "urls.json", proc, log)
        for name, url in state["services"].items():
            assert httpx.get(f"{url}/readyz", timeout=5).status_code == 200, name
        issuer = state["env"]["OIDC_ISSUER"]
        for country, (username, password) in _demo_users_by_country().items():
            token = password_grant(issuer, username, password)
            assert token.status_code == 200, f"{country}: {token.text[:200]}"
            assert "access_token" in token.json()
        pids = state["pids"]
        assert pids, "make run reported no processes"
        references = [_demo(env) for _ in range(2)]
        assert references[0].isdisjoint(references[1]), "a second `make demo` starts a new story"
    finally:
        started = time.monotonic()
        os.killpg(proc.pid, signal.SIGINT)
        try:
            proc.wait(timeout=STOP_BUDGET_SECONDS + 15)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
    elapsed = time.monotonic() - started
    survivors = _live_group_members(set(pids))
    assert not survivors, f"processes still running after Ctrl-C: {survivors}"
    assert elapsed <= STOP_BUDGET_SECONDS, f"stopping took {elapsed:.1f}s"
