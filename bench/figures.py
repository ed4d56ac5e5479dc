"""What every benchmark reports: a series' median and p99, and its rows of the `make bench` summary table.

Each figure (a test in `bench/`) writes `.local/bench/<name>.json`; its "summary" rows are what
`python -m bench.summary` prints at the end of `make bench`, one table for all figures:
figure, what was measured, its value, the floor measured in the same run, the ratio, the target and whether it
was met. A figure that did not run this time keeps the rows of its last run (their date says when).
"""

from __future__ import annotations

import json
import os
import platform as host
import statistics
import time
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).resolve().parents[1] / ".local" / "bench"


def summary(samples_ms: list[float]) -> dict[str, float]:
    ordered = sorted(samples_ms)
    p99 = ordered[min(len(ordered) - 1, round(0.99 * (len(ordered) - 1)))]
    return {"median_ms": round(statistics.median(ordered), 2), "p99_ms": round(p99, 2), "n": len(ordered)}


def row(
    figure: str,
    what: str,
    value: str,
    floor: str = "",
    ratio: str = "",
    target: str = "",
    met: bool | None = None,
) -> dict[str, Any]:
    """One line of the summary table; `met` is None where the figure has no target (context rows)."""
    return {
        "figure": figure,
        "what": what,
        "value": value,
        "floor": floor,
        "ratio": ratio,
        "target": target,
        "met": met,
    }


def new_person(surname: str, date_of_birth: str, sex: str) -> dict[str, Any]:
    """A registration body (POST /v1/identification/persons) of a person the officer found to be new."""
    return {
        "given_names": ["Bench"],
        "surnames": [surname],
        "date_of_birth": date_of_birth,
        "sex": sex,
        "duplicate_check": {"outcome": "new_person", "reason": "no_candidates"},
    }


def machine() -> dict[str, str]:
    return {
        "date": time.strftime("%Y-%m-%d %H:%M"),
        "machine": f"{host.machine()}, {os.cpu_count()} cores, {host.platform()}",
        "python": host.python_version(),
    }


def write_result(name: str, result: dict[str, Any], rows: list[dict[str, Any]]) -> Path:
    """Write one figure's result (with the machine, date and its summary rows) and print it."""
    out = RESULTS / f"{name}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    whole = {**machine(), **result, "summary": rows}
    out.write_text(json.dumps(whole, indent=2) + "\n")
    print("\n" + json.dumps(whole, indent=2))
    return out
