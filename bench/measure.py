"""What the figures on the running platform read from Linux and wrk: a process group's members, their CPU time and
resident memory (/proc), and one wrk run of a GET with the headers a real client sends.

Every platform process and server runs in its own process group (devstack's ManagedProcess starts each in a new
session), so a gunicorn master and its workers, or kc.sh and its JVM, are found by the group id = the pid started.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

from bench.__main__ import WRK_REPORT

TICKS_PER_SECOND = os.sysconf("SC_CLK_TCK")


def _stat(pid: int) -> list[str]:
    """The fields of /proc/<pid>/stat after the command name (which may hold spaces): index n-3 is field n."""
    text = Path(f"/proc/{pid}/stat").read_text()
    return text[text.rindex(")") + 2 :].split()


def group_pids(pgid: int) -> list[int]:
    """Every live process of one process group."""
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if int(_stat(int(entry.name))[2]) == pgid:
                pids.append(int(entry.name))
        except (OSError, ValueError, IndexError):
            continue  # gone meanwhile
    return sorted(pids)


def groups_of(platform: Any, servers: dict[str, Any]) -> dict[str, tuple[str, int]]:
    """name -> (kind, process group id) of every platform process and of every server this session started."""
    out = {name: ("platform", item.process.proc.pid) for name, item in platform.processes.items()}
    for name, handle in servers.items():
        process = getattr(handle.server, "process", None)
        if process is not None and process.proc is not None:
            out[name] = ("server", process.proc.pid)
    return out


def group_cpu_seconds(groups: dict[str, tuple[str, int]]) -> dict[str, float]:
    """CPU time used so far by every member of each group (a gunicorn master and its workers together)."""
    return {name: cpu_seconds(group_pids(pgid)) for name, (_kind, pgid) in groups.items()}


def cpu_seconds(pids: list[int]) -> float:
    """User plus system CPU time the processes have used so far (fields 14 and 15 of /proc/<pid>/stat)."""
    total = 0
    for pid in pids:
        try:
            fields = _stat(pid)
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])
    return total / TICKS_PER_SECOND


def rss_mib(pid: int) -> float | None:
    """VmRSS of one process in MiB, None once it is gone (or for a kernel thread)."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


def command(pid: int) -> str:
    """The process's command line, shortened: the program (or the script it runs) and the module or app it runs."""
    try:
        argv = [
            a.decode(errors="replace")
            for a in Path(f"/proc/{pid}/cmdline").read_bytes().rstrip(b"\0").split(b"\0")
        ]
    except OSError:
        return "?"
    words = [os.path.basename(argv[0])]
    if len(argv) > 1 and "/" in argv[1] and not argv[1].startswith("-"):
        # an interpreter running a script: name the script (gunicorn, secantusd-py)
        words = [os.path.basename(argv[1])]
    for before, arg in zip(argv, argv[1:], strict=False):
        if before == "-m" or arg.endswith(":app") or arg.startswith("io.quarkus") or arg == "kafka.Kafka":
            words.append(arg)
    return " ".join(words)[:80]


def is_python(pid: int) -> bool:
    try:
        exe = os.readlink(f"/proc/{pid}/exe")
    except OSError:
        return False
    return "python" in os.path.basename(exe)


def wrk_get(
    url: str, headers: dict[str, str], *, connections: int, duration: int, script: Path
) -> dict[str, Any]:
    """One wrk run (keep-alive) of GET `url`; latency percentiles in microseconds, requests, errors and rate."""
    argv = [
        "wrk",
        "-t",
        "1" if connections < 4 else "2",
        "-c",
        str(connections),
        "-d",
        f"{duration}s",
        "--timeout",
        "5s",
    ]
    for name, value in headers.items():
        argv += ["-H", f"{name}: {value}"]
    argv += ["-s", str(script), url]
    out = subprocess.run(argv, capture_output=True, text=True, check=True, timeout=duration + 60).stdout
    result: dict[str, Any] = json.loads(out.strip().splitlines()[-1])
    result["rps"] = round(result["requests"] / result["seconds"], 1)
    return result


def write_report_script(directory: Path) -> Path:
    """wrk's Lua `done` hook printing one JSON line (the same as `python -m bench` uses)."""
    script = directory / "report.lua"
    script.write_text(WRK_REPORT)
    return script
