"""`python -m gateway [--port N] [--workers N]`: the gateway under gunicorn with uvicorn workers."""

from __future__ import annotations

import argparse
import os
import sys


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m gateway")
    parser.add_argument("--host", default=os.environ.get("THB_GATEWAY_HOST", "127.0.0.1"))
    parser.add_argument("--port", type=int, default=int(os.environ.get("THB_GATEWAY_PORT", "8080")))
    parser.add_argument("--workers", type=int, default=int(os.environ.get("THB_GATEWAY_WORKERS", "1")))
    args = parser.parse_args(argv)
    # No gunicorn access log: uvicorn's would print raw paths and queries; the gateway writes its own lines.
    command = [
        sys.executable,
        "-m",
        "gunicorn",
        "-k",
        # uvicorn's worker with the platform's HTTP limits (THB_HTTP_*, docs/http-limits.md).
        "plumbing.http_server.LimitedUvicornWorker",
        "--workers",
        str(args.workers),
        "--bind",
        f"{args.host}:{args.port}",
        "--graceful-timeout",
        "10",
        "gateway.asgi:app",
    ]
    os.execv(sys.executable, command)  # noqa: S606 - fixed argv, no shell


if __name__ == "__main__":
    main()
