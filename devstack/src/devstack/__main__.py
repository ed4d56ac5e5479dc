"""Command line of the local stack: `python -m devstack run` (what `make run` calls)."""

from __future__ import annotations

import argparse
import sys

from devstack import run


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m devstack")
    parser.add_argument("command", choices=["run"], help="run: the whole platform, supervised, until Ctrl-C")
    parser.parse_args()
    return run.main()


if __name__ == "__main__":
    sys.exit(main())
