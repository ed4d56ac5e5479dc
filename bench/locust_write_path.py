"""Locust user of the write-path figure (bench/test_write_path.py starts it as its own process, headless).

One task is one completed screening as the identification contract defines it: `POST /v1/identification/persons`
(which registers the person and opens her first-contact case, the response names `case_id`) and then
`POST /v1/identification/screenings` on that case. Each request is a locust entry of its own ("register",
"screen"), and the pair is a third entry, "completed screening", whose time is the sum of both and whose count
is the figure's throughput (failed pairs are counted as failures).

Settings (environment): BENCH_TOKEN (a bearer token of an officer), BENCH_PACE (completed screenings per second
per user, 0 = as fast as the platform answers).
"""

from __future__ import annotations

import os
import time
import uuid

from locust import constant, constant_throughput, task
from locust.contrib.fasthttp import FastHttpUser

from bench.write_path_bodies import PERSON, screening

TOKEN = os.environ.get("BENCH_TOKEN", "")
PACE = float(os.environ.get("BENCH_PACE", "0"))


class Officer(FastHttpUser):
    wait_time = constant_throughput(PACE) if PACE > 0 else constant(0)
    connection_timeout = 30.0
    network_timeout = 30.0

    def headers(self) -> dict[str, str]:
        return {
            "Authorization": f"Bearer {TOKEN}",
            "X-Purpose": "identification",
            "Idempotency-Key": f"bench-{uuid.uuid4()}",
        }

    @task
    def completed_screening(self) -> None:
        started = time.perf_counter()
        failure: Exception | None = None
        with self.client.post(
            "/v1/identification/persons",
            json=PERSON,
            headers=self.headers(),
            name="register",
            catch_response=True,
        ) as registered:
            if registered.status_code != 201:
                failure = Exception(f"register {registered.status_code}: {registered.text[:200]}")
                registered.failure(failure)
        if failure is None:
            case_id = registered.json()["case_id"]
            with self.client.post(
                "/v1/identification/screenings",
                json=screening(case_id),
                headers=self.headers(),
                name="screen",
                catch_response=True,
            ) as screened:
                if screened.status_code != 201:
                    failure = Exception(f"screen {screened.status_code}: {screened.text[:200]}")
                    screened.failure(failure)
        self.environment.events.request.fire(
            request_type="FLOW",
            name="completed screening",
            response_time=(time.perf_counter() - started) * 1000,
            response_length=0,
            exception=failure,
            context={},
        )
