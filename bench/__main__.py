"""`python -m bench`: what the gateway adds, measured with wrk (docs/performance.md explains the method).

One run measures, for the same call (GET /v1/referral/received-events with a valid token):
- latency at 1 connection: direct to the service, through the gateway, through the connexion alternative;
- latency at half the direct saturation rate: direct and through the gateway (wrk `delay()` paces each
  connection; the achieved rate is reported);
- saturation throughput: direct, through the gateway, through the connexion alternative, through nginx.

The gateway (and every proxy) is pinned to core 0, the service to core 1 (`taskset`); wrk is not pinned.
Tokens are signed by a key made for the run; its JWKS is served locally, so Keycloak is not needed.

Needs `wrk` (Debian package `wrk`); nginx (Debian `nginx-light`) is optional: without it the reference row is
skipped with a message. Environment: BENCH_DURATION (seconds per measurement, default 10),
BENCH_CONNECTIONS (saturation connections, default 64). Results: printed, and written to
.local/bench/gateway_stand_in.json.
"""

from __future__ import annotations

import contextlib
import http.server
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml

import thb_contracts
from bench.figures import row, write_result
from gateway.testing import ALL_AUDIENCES, SigningKeys

REPO = Path(__file__).resolve().parents[1]
PATH = "/v1/referral/received-events"
GATEWAY_CORE = "0"
SERVICE_CORE = "1"

WRK_REPORT = """
done = function(summary, latency, requests)
  io.write(string.format('{"p50_us": %d, "p90_us": %d, "p99_us": %d, "requests": %d, "seconds": %f, "errors": %d, "non2xx": %d}\\n',
    latency:percentile(50), latency:percentile(90), latency:percentile(99), summary.requests,
    summary.duration / 1e6, summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout,
    summary.errors.status))
end
"""
WRK_PACED = """
local pause_ms = tonumber(os.getenv("BENCH_PAUSE_MS"))
delay = function() return pause_ms end
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_http(url: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(url, timeout=1) as response:  # noqa: S310 - local URL we built
                if response.status == 200:
                    return
        except OSError:
            pass
        if time.monotonic() > deadline:
            raise RuntimeError(f"{url} did not answer 200 within {timeout}s")
        time.sleep(0.1)


@contextlib.contextmanager
def process(
    argv: list[str], env: dict[str, str], log: Path, ready_url: str
) -> Iterator[subprocess.Popen[bytes]]:
    with open(log, "wb") as out:
        proc = subprocess.Popen(argv, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        wait_http(ready_url)
        yield proc
    finally:
        # The process group we created above, and only it.
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def gunicorn(app: str, port: int, core: str) -> list[str]:
    return [
        "taskset", "-c", core, sys.executable, "-m", "gunicorn", "-k", "plumbing.http_server.LimitedUvicornWorker",
        "--workers", "1", "--bind", f"127.0.0.1:{port}", app,
    ]  # fmt: skip


def serve_jwks(keys: SigningKeys) -> tuple[str, http.server.ThreadingHTTPServer]:
    body = json.dumps(keys.jwks).encode()

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - the stdlib's name
            self.send_response(200)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return f"http://127.0.0.1:{server.server_address[1]}/realms/thb", server


def bench_config(directory: Path) -> Path:
    """The platform configuration with budgets far above what wrk can send, so 429s never skew the numbers."""
    data = yaml.safe_load((REPO / "config" / "platform.yaml").read_text())
    data["rate_budgets"] = {
        "interactive": {"requests_per_minute": 100_000_000, "burst": 1_000_000},
        "machine_default": {"requests_per_minute": 100_000_000, "burst": 1_000_000},
        "clients": {},
    }
    target = directory / "platform.yaml"
    target.write_text(yaml.safe_dump(data, allow_unicode=True))
    shutil.copy(REPO / "config" / "platform.schema.json", directory / "platform.schema.json")
    return target


def wrk(
    url: str, token: str, *, connections: int, duration: int, script: Path, pause_ms: int | None = None
) -> dict[str, Any]:
    env = dict(os.environ)
    if pause_ms is not None:
        env["BENCH_PAUSE_MS"] = str(pause_ms)
    argv = [
        "wrk", "-t", "1" if connections < 4 else "2", "-c", str(connections), "-d", f"{duration}s",
        "--timeout", "5s", "-H", f"Authorization: Bearer {token}", "-s", str(script), url + PATH,
    ]  # fmt: skip
    out = subprocess.run(
        argv, env=env, capture_output=True, text=True, check=True, timeout=duration + 60
    ).stdout
    result: dict[str, Any] = json.loads(out.strip().splitlines()[-1])
    result["rps"] = round(result["requests"] / result["seconds"], 1)
    return result


def nginx_conf(directory: Path, port: int, upstream_port: int) -> Path:
    conf = directory / "nginx.conf"
    conf.write_text(
        f"""
worker_processes 1;
daemon off;
pid {directory}/nginx.pid;
error_log {directory}/nginx-error.log warn;
events {{ worker_connections 1024; }}
http {{
  access_log off;
  client_body_temp_path {directory}/nginx-body;
  proxy_temp_path {directory}/nginx-proxy;
  fastcgi_temp_path {directory}/nginx-fastcgi;
  uwsgi_temp_path {directory}/nginx-uwsgi;
  scgi_temp_path {directory}/nginx-scgi;
  upstream service {{ server 127.0.0.1:{upstream_port}; keepalive 64; }}
  server {{
    listen 127.0.0.1:{port};
    location = /nginx-ready {{ return 200 "ok"; }}
    location / {{
      proxy_pass http://service;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
    }}
  }}
}}
"""
    )
    return conf


def main() -> int:
    if shutil.which("wrk") is None:
        print(
            "bench: wrk is not installed. Install it with `apt-get install -y wrk nginx-light` (make bench does so when run as root)."
        )
        return 2
    nginx = shutil.which("nginx") or ("/usr/sbin/nginx" if Path("/usr/sbin/nginx").exists() else None)
    duration = int(os.environ.get("BENCH_DURATION", "10"))
    saturation_connections = int(os.environ.get("BENCH_CONNECTIONS", "64"))
    results: dict[str, Any] = {
        "duration_s": duration,
        "saturation_connections": saturation_connections,
        "cores": os.cpu_count(),
    }
    keys = SigningKeys()
    issuer, jwks_server = serve_jwks(keys)
    token = keys.token(roles=["case-manager"], audiences=ALL_AUDIENCES, iss=issuer, lifetime=3600)
    with tempfile.TemporaryDirectory(prefix="thb-bench-") as tmp:
        work = Path(tmp)
        report = work / "report.lua"
        report.write_text(WRK_REPORT)
        paced = work / "paced.lua"
        paced.write_text(WRK_PACED + WRK_REPORT)
        config = bench_config(work)
        base_env = {**os.environ, "PYTHONPATH": str(REPO), "THB_MODE": "local"}
        service_port = free_port()
        service_url = f"http://127.0.0.1:{service_port}"
        with process(
            gunicorn("bench.upstream:app", service_port, SERVICE_CORE),
            base_env,
            work / "service.log",
            service_url + "/readyz",
        ):

            def measure(name: str, url: str) -> None:
                print(
                    f"bench: {name}: warm-up, 1 connection, saturation ({saturation_connections} connections)",
                    flush=True,
                )
                wrk(url, token, connections=8, duration=2, script=report)
                results[name] = {
                    "one_connection": wrk(url, token, connections=1, duration=duration, script=report),
                    "saturation": wrk(
                        url, token, connections=saturation_connections, duration=duration, script=report
                    ),
                }

            def paced_run(name: str, url: str, rate: float) -> None:
                connections = 16
                # each connection waits `pause` between requests; the achieved rate is reported, not assumed
                pause_ms = max(1, int(connections * 1000 / rate))
                results[name]["half_saturation"] = wrk(
                    url, token, connections=connections, duration=duration, script=paced, pause_ms=pause_ms
                )

            measure("direct", service_url)
            half = results["direct"]["saturation"]["rps"] / 2
            results["half_saturation_target_rps"] = round(half, 1)
            paced_run("direct", service_url, half)

            gateway_port = free_port()
            gateway_env = {
                **base_env,
                "OIDC_ISSUER": issuer,
                "THB_CONFIG": str(config),
                "THB_ACCESS_LOG_LEVEL": "INFO",
                **{f"THB_UPSTREAM_{s.name.upper()}": service_url for s in thb_contracts.services()},
            }
            gateway_url = f"http://127.0.0.1:{gateway_port}"
            with process(
                gunicorn("gateway.asgi:app", gateway_port, GATEWAY_CORE),
                gateway_env,
                work / "gateway.log",
                gateway_url + "/readyz",
            ):
                measure("gateway", gateway_url)
                paced_run("gateway", gateway_url, half)

            proto_port = free_port()
            proto_url = f"http://127.0.0.1:{proto_port}"
            proto_env = {**base_env, "BENCH_UPSTREAM": service_url}
            with process(
                gunicorn("bench.connexion_proxy:app", proto_port, GATEWAY_CORE),
                proto_env,
                work / "connexion.log",
                proto_url + PATH,
            ):
                measure("connexion_asyncapp", proto_url)

            if nginx is None:
                print(
                    "bench: nginx not installed (apt-get install -y nginx-light): skipping the nginx reference"
                )
            else:
                nginx_port = free_port()
                conf = nginx_conf(work, nginx_port, service_port)
                argv = ["taskset", "-c", GATEWAY_CORE, nginx, "-c", str(conf), "-p", str(work)]
                with process(
                    argv, base_env, work / "nginx.log", f"http://127.0.0.1:{nginx_port}/nginx-ready"
                ):
                    measure("nginx", f"http://127.0.0.1:{nginx_port}")
    jwks_server.shutdown()
    summarise(results)
    out = write_result("gateway_stand_in", results, summary_rows(results))
    print(f"bench: results written to {out}")
    return 0


def summary_rows(results: dict[str, Any]) -> list[dict[str, Any]]:
    """The stand-in's lines of the `make bench` table: what the gateway adds in front of a bare ASGI app."""
    gateway, direct = results["gateway"], results["direct"]
    added_p50 = (gateway["one_connection"]["p50_us"] - direct["one_connection"]["p50_us"]) / 1000
    share = gateway["saturation"]["rps"] / direct["saturation"]["rps"]
    return [
        row(
            "5",
            "gateway adds, 1 connection p50 (stand-in service)",
            f"+{added_p50:.2f} ms",
            f"{direct['one_connection']['p50_us'] / 1000:.2f} ms",
            "",
            "<= +1 ms",
            added_p50 <= 1,
        ),
        row(
            "5",
            "gateway saturation vs direct (stand-in service)",
            f"{gateway['saturation']['rps']} rps",
            f"{direct['saturation']['rps']} rps",
            f"{share:.0%}",
            "context (stand-in)",
            None,
        ),
    ]


def summarise(results: dict[str, Any]) -> None:
    def ms(us: float) -> str:
        return f"{us / 1000:.2f}"

    print(
        "\n| path | 1 conn p50 ms | 1 conn p99 ms | half-sat rps | half-sat p50 ms | half-sat p99 ms | saturation rps | vs direct |"
    )
    print("|---|---|---|---|---|---|---|---|")
    direct_rps = results["direct"]["saturation"]["rps"]
    for name in ("direct", "gateway", "connexion_asyncapp", "nginx"):
        if name not in results:
            continue
        row = results[name]
        one, sat, half = row["one_connection"], row["saturation"], row.get("half_saturation")
        half_cells = [str(half["rps"]), ms(half["p50_us"]), ms(half["p99_us"])] if half else ["", "", ""]
        print(
            f"| {name} | {ms(one['p50_us'])} | {ms(one['p99_us'])} | "
            + " | ".join(half_cells)
            + f" | {sat['rps']} | {sat['rps'] / direct_rps:.0%} |"
        )
    gateway, direct = results["gateway"], results["direct"]
    print(
        "\nadded by the gateway: 1 connection p50 +{:.2f} ms, p99 +{:.2f} ms; half saturation p50 +{:.2f} ms, p99 +{:.2f} ms".format(
            (gateway["one_connection"]["p50_us"] - direct["one_connection"]["p50_us"]) / 1000,
            (gateway["one_connection"]["p99_us"] - direct["one_connection"]["p99_us"]) / 1000,
            (gateway["half_saturation"]["p50_us"] - direct["half_saturation"]["p50_us"]) / 1000,
            (gateway["half_saturation"]["p99_us"] - direct["half_saturation"]["p99_us"]) / 1000,
        )
    )


if __name__ == "__main__":
    sys.exit(main())
