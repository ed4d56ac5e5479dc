"""`python -m bench.summary`: the one table `make bench` ends with, every figure's rows side by side.

Reads the results each figure wrote to .local/bench/*.json (bench/figures.py: write_result). Rows of a figure
that did not run in this `make bench` are marked with the date of the run they come from.
"""

from __future__ import annotations

import json
import sys
from typing import Any

from bench.figures import RESULTS

MARK = {True: "met", False: "NOT met", None: "-"}


def rows() -> list[tuple[str, dict[str, Any]]]:
    found = []
    for path in sorted(RESULTS.glob("*.json")):
        try:
            result = json.loads(path.read_text())
        except ValueError:
            continue
        for line in result.get("summary", []) if isinstance(result, dict) else []:
            found.append((str(result.get("date", "?")), line))
    return sorted(found, key=lambda item: (str(item[1]["figure"]), item[1]["what"]))


def table(found: list[tuple[str, dict[str, Any]]]) -> str:
    header = ("figure", "what", "value", "floor", "ratio", "target", "met", "run")
    lines = [header] + [
        (
            str(line["figure"]),
            line["what"],
            line["value"],
            line["floor"],
            line["ratio"],
            line["target"],
            MARK[line["met"]],
            date,
        )
        for date, line in found
    ]
    widths = [max(len(cells[i]) for cells in lines) for i in range(len(header))]
    out = [" | ".join(cell.ljust(widths[i]) for i, cell in enumerate(cells)) for cells in lines]
    out.insert(1, "-+-".join("-" * width for width in widths))
    return "\n".join(out)


def main() -> int:
    found = rows()
    if not found:
        print(f"bench: no results in {RESULTS}")
        return 1
    print("\n" + table(found))
    return 0


if __name__ == "__main__":
    sys.exit(main())
