"""Replay dead letters to their original topic.

    python -m plumbing.cli.replay_dlt --topic identification.events.v1.dlt [--group dlt-replay]
                                      [--dry-run] [--limit N] [--bootstrap HOST:PORT]

Reads from the group's committed offsets to the end offsets seen at start, republishes each record (key, value,
original headers) to the topic in its `dlt.origin.topic` header, commits after each ack, and prints one line per
record (locations and error classes only, never payload). --dry-run lists without publishing or committing.
Exit status: 0 done, 1 error, 2 some records had no valid origin and were skipped.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys

from plumbing.dlt import ReplayError, replay_dead_letters


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m plumbing.cli.replay_dlt", description=__doc__.split("\n")[1]
    )
    parser.add_argument(
        "--topic", required=True, help="the dead-letter topic, e.g. identification.events.v1.dlt"
    )
    parser.add_argument("--group", default="dlt-replay", help="consumer group whose offsets track the replay")
    parser.add_argument("--bootstrap", default=os.environ.get("KAFKA_BOOTSTRAP_SERVERS"))
    parser.add_argument("--dry-run", action="store_true", help="list the dead letters, change nothing")
    parser.add_argument("--limit", type=int, default=None, help="replay at most N records")
    parser.add_argument("--timeout", type=float, default=60.0, help="seconds to reach the end offsets")
    args = parser.parse_args(argv)
    if not args.bootstrap:
        parser.error("--bootstrap or KAFKA_BOOTSTRAP_SERVERS is required")
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s %(message)s")
    try:
        done = replay_dead_letters(
            args.topic,
            args.bootstrap,
            group_id=args.group,
            dry_run=args.dry_run,
            limit=args.limit,
            timeout_s=args.timeout,
            on_record=lambda item: print(item.describe(args.topic), flush=True),
        )
    except ReplayError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    replayed = sum(1 for d in done if d.action == "replayed")
    skipped = sum(1 for d in done if d.action == "skipped")
    print(f"{args.topic}: {replayed} replayed, {skipped} skipped, {len(done) - replayed - skipped} listed")
    return 2 if skipped else 0


if __name__ == "__main__":
    sys.exit(main())
