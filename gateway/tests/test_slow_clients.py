"""Slow clients against the real gateway command: `python -m gateway` under gunicorn with the platform's worker
(plumbing.http_server.LimitedUvicornWorker), one worker process, a 2 s head and body timeout.

No Keycloak and no services are needed: the realm's key set is served by a tiny HTTP server in this process
(keys from gateway.testing.SigningKeys, so a test can mint a token the gateway accepts), and every service
address is a closed port. That is the real gateway code path up to the point of forwarding, which is all a slow
client reaches.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest

from devstack.paths import REPO_ROOT
from devstack.process import ManagedProcess, free_port
from gateway.contracts import SERVICES
from gateway.testing import SigningKeys

pytestmark = pytest.mark.integration

TIMEOUT = 2.0  # THB_HTTP_HEADER_TIMEOUT and THB_HTTP_BODY_TIMEOUT for this gateway
SLOW_CONNECTIONS = 300
PERSONS = "/v1/identification/persons"


@dataclass(frozen=True)
class RunningGateway:
    url: str
    port: int
    issuer: str
    keys: SigningKeys
    log: Path


@pytest.fixture(scope="module")
def keys() -> SigningKeys:
    return SigningKeys()


@pytest.fixture(scope="module")
def issuer(keys: SigningKeys) -> Iterator[str]:
    """The realm's JWKS endpoint, as the gateway fetches it at start."""
    document = json.dumps(keys.jwks).encode()

    class Certs(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - the http.server interface
            found = self.path.endswith("/protocol/openid-connect/certs")
            self.send_response(200 if found else 404)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(document) if found else 0))
            self.end_headers()
            if found:
                self.wfile.write(document)

        def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - the interface's name
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Certs)
    thread = threading.Thread(target=server.serve_forever, name="test-jwks", daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/realms/thb"
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="module")
def gateway(
    keys: SigningKeys, issuer: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RunningGateway]:
    port = free_port()
    nowhere = f"http://127.0.0.1:{free_port()}"  # nothing listens: a forwarded request answers 503
    env = {
        **os.environ,
        "THB_MODE": "local",
        "THB_CONFIG": str(REPO_ROOT / "config" / "platform.yaml"),
        "OIDC_ISSUER": issuer,
        **{f"THB_UPSTREAM_{service.upper()}": nowhere for service in SERVICES},
        "THB_HTTP_HEADER_TIMEOUT": str(TIMEOUT),
        "THB_HTTP_BODY_TIMEOUT": str(TIMEOUT),
    }
    log = tmp_path_factory.mktemp("slow-clients") / "gateway.log"
    process = ManagedProcess(
        "slow-clients-gateway", [sys.executable, "-m", "gateway", "--port", str(port)], log, env=env
    )
    process.start()
    url = f"http://127.0.0.1:{port}"
    try:
        process.wait_until(
            lambda: httpx.get(f"{url}/readyz", timeout=2).status_code == 200, timeout=60, what="ready"
        )
        yield RunningGateway(url, port, issuer, keys, log)
    finally:
        process.stop()


@dataclass(frozen=True)
class SlowOutcome:
    closed_after: float | None  # seconds from connect to the server's close; None: still open at the end
    answer: bytes


async def slow_header_client(port: int, give_up_after: float, started: asyncio.Event) -> SlowOutcome:
    """Sends a request head one byte every 0.5 s (never finishing it) until the server answers or closes."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    opened = time.monotonic()
    head = b"GET /healthz HTTP/1.1\r\nHost: gateway.test\r\nX-Slow: " + b"a" * 1000
    answer = b""
    closed_after: float | None = None
    try:
        for index, byte in enumerate(head):
            if answer:
                break  # the server has answered: stop writing, read to the end below
            writer.write(bytes([byte]))
            await writer.drain()
            if index == 0:
                started.set()
            try:
                answer += await asyncio.wait_for(reader.read(4096), timeout=0.5)
            except TimeoutError:
                pass
            if reader.at_eof():
                break
            if time.monotonic() - opened > give_up_after:
                return SlowOutcome(None, answer)
        while not reader.at_eof() and time.monotonic() - opened < give_up_after:
            answer += await asyncio.wait_for(reader.read(4096), timeout=give_up_after)
        closed_after = time.monotonic() - opened
    except (ConnectionResetError, BrokenPipeError):
        closed_after = time.monotonic() - opened
    finally:
        writer.close()
    return SlowOutcome(closed_after, answer)


def _status(answer: bytes) -> int:
    return int(answer.split(b" ", 2)[1]) if answer.startswith(b"HTTP/1.1 ") else 0


def _problem_type(answer: bytes) -> str:
    head, _, body = answer.partition(b"\r\n\r\n")
    assert b"content-type: application/problem+json" in head.lower()
    return str(json.loads(body)["type"])


def test_slow_headers_do_not_starve_a_normal_request_and_are_all_closed(gateway: RunningGateway) -> None:
    async def scenario() -> tuple[list[SlowOutcome], dict[str, tuple[int, float]]]:
        events = [asyncio.Event() for _ in range(SLOW_CONNECTIONS)]
        slow = [asyncio.create_task(slow_header_client(gateway.port, 6 * TIMEOUT, event)) for event in events]
        await asyncio.wait_for(asyncio.gather(*(event.wait() for event in events)), timeout=10)
        normal: dict[str, tuple[int, float]] = {}
        async with httpx.AsyncClient(base_url=gateway.url, timeout=10) as client:
            for path in ("/healthz", PERSONS):  # PERSONS without a token: the gateway's own 401 problem
                began = time.monotonic()
                response = await client.get(path)
                normal[path] = (response.status_code, time.monotonic() - began)
        return list(await asyncio.gather(*slow)), normal

    outcomes, normal = asyncio.run(scenario())

    assert normal["/healthz"][0] == 200 and normal["/healthz"][1] < 5, normal
    assert normal[PERSONS][0] == 401 and normal[PERSONS][1] < 5, normal
    still_open = [o for o in outcomes if o.closed_after is None]
    assert still_open == [], f"{len(still_open)} slow connections were not closed within {6 * TIMEOUT} s"
    slowest = max(o.closed_after or 0.0 for o in outcomes)
    assert slowest < 3 * TIMEOUT, f"the slowest close took {slowest:.1f} s"
    assert {_status(o.answer) for o in outcomes} == {408}
    assert _problem_type(outcomes[0].answer).endswith("/request-timeout")


def test_a_slow_body_is_answered_408_and_closed(gateway: RunningGateway) -> None:
    token = gateway.keys.token(roles=("case-manager",), iss=gateway.issuer)
    head = (
        f"POST {PERSONS} HTTP/1.1\r\nHost: gateway.test\r\nAuthorization: Bearer {token}\r\n"
        "Content-Type: application/json\r\nContent-Length: 200\r\n\r\n"
    ).encode()

    async def scenario() -> tuple[bytes, float]:
        reader, writer = await asyncio.open_connection("127.0.0.1", gateway.port)
        began = time.monotonic()
        writer.write(head + b'{"names": ')  # 10 of the 200 bytes announced, then nothing
        await writer.drain()
        answer = await asyncio.wait_for(reader.read(), timeout=6 * TIMEOUT)  # until the server closes
        writer.close()
        return answer, time.monotonic() - began

    answer, took = asyncio.run(scenario())
    assert _status(answer) == 408, answer[:200]
    assert _problem_type(answer).endswith("/request-timeout")
    assert took < 3 * TIMEOUT
    time.sleep(0.5)  # the gateway writes its lines after the close
    log = gateway.log.read_text(errors="replace")
    assert "Traceback" not in log and "Exception in ASGI application" not in log
    assert token not in log
