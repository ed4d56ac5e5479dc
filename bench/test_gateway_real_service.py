"""Figure 5 of `make bench`, the gateway on the real service (run with `pytest -m bench bench/`, never by `make test`).

The same authenticated call as figure 1 - `GET /v1/identification/persons/{id}` by `al-police` with
`X-Purpose: identification`, the token in the Authorization header - driven by wrk (keep-alive, CONNECTIONS
connections, enough to saturate the service) straight to the identification service, through the gateway, and
through nginx (`proxy_pass` with upstream keep-alive, 1 worker: bench/__main__.py's configuration) in front of the
same service. The platform is the test session's (its rate budgets lifted, so no 429s); nothing is pinned to a core.

Reported: saturation throughput of each path (target: the gateway at least 95% of direct, "the gateway is never
the bottleneck"), p50/p99 at saturation, and CPU per request: the utime+stime (/proc/<pid>/stat) that the
gateway's processes (gunicorn master and worker) and nginx's (master and worker) used during their own runs,
divided by the requests served there; the identification API's own CPU per request in each run as context.
Paths are measured in turn, ROUNDS times, and each round's figures are kept; the rows give the medians and the
spread of the gateway's share of direct over the rounds (each round's gateway run against the same round's direct
run, the two seconds apart: the machine's drift between rounds cancels).

Environment: BENCH_FIG5_DURATION (seconds per run, default 8), BENCH_FIG5_ROUNDS (default 3),
BENCH_FIG5_CONNECTIONS (default 32). Results: .local/bench/gateway_real_service.json.
"""

from __future__ import annotations

import os
import shutil
import statistics
import tempfile
import uuid
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest

from bench.__main__ import free_port, nginx_conf, process
from bench.figures import new_person, row, write_result
from bench.measure import cpu_seconds, group_pids, write_report_script, wrk_get

pytestmark = pytest.mark.bench

DURATION = int(os.environ.get("BENCH_FIG5_DURATION", "8"))
ROUNDS = int(os.environ.get("BENCH_FIG5_ROUNDS", "3"))
CONNECTIONS = int(os.environ.get("BENCH_FIG5_CONNECTIONS", "32"))
USER = "al-police"
PERSON = new_person("Saturation", "2009", "male")


def _median(values: list[float]) -> float:
    return round(statistics.median(values), 1)


def test_gateway_is_not_the_bottleneck_of_the_real_service(running_platform: Any) -> None:
    nginx = shutil.which("nginx") or ("/usr/sbin/nginx" if Path("/usr/sbin/nginx").exists() else None)
    if shutil.which("wrk") is None or nginx is None:
        pytest.skip("needs wrk and nginx: apt-get install -y wrk nginx-light (make bench does so)")
    token = running_platform.token(USER, fresh=True)
    headers = {"Authorization": f"Bearer {token}", "X-Purpose": "identification"}
    created = httpx.post(
        running_platform.gateway + "/v1/identification/persons",
        json=PERSON,
        headers={**headers, "Idempotency-Key": f"bench-{uuid.uuid4()}"},
        timeout=60,
    )
    created.raise_for_status()
    path = f"/v1/identification/persons/{created.json()['id']}"
    service = running_platform.urls["identification"]
    groups = {
        "gateway": running_platform.processes["gateway"].process.proc.pid,
        "service": running_platform.processes["identification-api"].process.proc.pid,
    }

    with tempfile.TemporaryDirectory(prefix="thb-bench-fig5-") as tmp:
        work = Path(tmp)
        script = write_report_script(work)
        nginx_port = free_port()
        conf = nginx_conf(work, nginx_port, urlsplit(service).port or 80)
        nginx_url = f"http://127.0.0.1:{nginx_port}"
        with process(
            [nginx, "-c", str(conf), "-p", str(work)],
            dict(os.environ),
            work / "nginx.log",
            nginx_url + "/nginx-ready",
        ) as nginx_process:
            groups["nginx"] = nginx_process.pid
            urls = {
                "direct": service + path,
                "gateway": running_platform.gateway + path,
                "nginx": nginx_url + path,
            }
            for url in urls.values():  # warm-up: connections, key sets, code paths
                wrk_get(url, headers, connections=8, duration=2, script=script)
            runs: dict[str, list[dict[str, Any]]] = {name: [] for name in urls}
            for _ in range(ROUNDS):
                for name, url in urls.items():
                    pids = {group: group_pids(pgid) for group, pgid in groups.items()}
                    before = {group: cpu_seconds(members) for group, members in pids.items()}
                    result = wrk_get(url, headers, connections=CONNECTIONS, duration=DURATION, script=script)
                    used = {group: cpu_seconds(members) - before[group] for group, members in pids.items()}
                    served = max(result["requests"], 1)
                    result["cpu_us_per_request"] = {
                        group: round(s * 1e6 / served, 1) for group, s in used.items()
                    }
                    runs[name].append(result)
                    print(
                        f"bench: {name}: {result['rps']} rps, p50 {result['p50_us'] / 1000:.1f} ms, "
                        f"p99 {result['p99_us'] / 1000:.1f} ms, errors {result['errors']}, non-2xx {result['non2xx']}, "
                        f"CPU us/request {result['cpu_us_per_request']}",
                        flush=True,
                    )

    paths: dict[str, dict[str, Any]] = {
        name: {
            "rps": _median([r["rps"] for r in results]),
            "p50_ms": _median([r["p50_us"] / 1000 for r in results]),
            "p99_ms": _median([r["p99_us"] / 1000 for r in results]),
            "errors": sum(r["errors"] + r["non2xx"] for r in results),
            "service_cpu_us_per_request": _median([r["cpu_us_per_request"]["service"] for r in results]),
        }
        for name, results in runs.items()
    }
    gateway_cpu = _median([r["cpu_us_per_request"]["gateway"] for r in runs["gateway"]])
    nginx_cpu = _median([r["cpu_us_per_request"]["nginx"] for r in runs["nginx"]])
    share = paths["gateway"]["rps"] / paths["direct"]["rps"]
    shares = [g["rps"] / max(d["rps"], 1) for g, d in zip(runs["gateway"], runs["direct"], strict=True)]
    nginx_share = paths["nginx"]["rps"] / paths["direct"]["rps"]
    result = {
        "call": "GET /v1/identification/persons/{id} as al-police, X-Purpose: identification",
        "duration_s": DURATION,
        "rounds": ROUNDS,
        "connections": CONNECTIONS,
        "cores": os.cpu_count(),
        "paths": paths,
        "gateway_share_per_round": [round(s, 3) for s in shares],
        "gateway_cpu_us_per_request": gateway_cpu,
        "nginx_cpu_us_per_request": nginx_cpu,
        "runs": runs,
    }

    def latency(name: str) -> str:
        return f"{paths[name]['p50_ms']:.1f} / {paths[name]['p99_ms']:.1f} ms"

    write_result(
        "gateway_real_service",
        result,
        [
            row(
                "5",
                "gateway saturation vs direct (GET person, real service)",
                f"{paths['gateway']['rps']} rps",
                f"{paths['direct']['rps']} rps",
                f"{share:.0%} (rounds {min(shares):.0%}-{max(shares):.0%})",
                ">= 95%",
                share >= 0.95,
            ),
            row(
                "5",
                f"gateway p50 / p99 at saturation ({CONNECTIONS} connections)",
                latency("gateway"),
                latency("direct"),
                "",
                "",
                None,
            ),
            row(
                "5",
                "gateway CPU per request vs nginx (same service, same run)",
                f"{gateway_cpu:.0f} µs",
                f"{nginx_cpu:.0f} µs",
                f"{gateway_cpu / nginx_cpu:.1f}x" if nginx_cpu else "",
                "context",
                None,
            ),
            row(
                "5",
                "nginx saturation vs direct (reference)",
                f"{paths['nginx']['rps']} rps",
                f"{paths['direct']['rps']} rps",
                f"{nginx_share:.0%}",
                "context",
                None,
            ),
        ],
    )
