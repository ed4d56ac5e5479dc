"""Schemathesis against the whole platform through the gateway's combined document, with a real token.

Runs when the platform is up: THB_GATEWAY_URL and OIDC_ISSUER set (e.g. from `make run`'s
.local/run/urls.json). Otherwise it is skipped. At most THB_FUZZ_EXAMPLES (default 25) examples per operation;
the stateful phase links operations through their responses. Every answer must be documented and conform to
the contract, and no 5xx is accepted. `make fuzz` runs the same with THB_FUZZ_EXAMPLES raised.
"""

from __future__ import annotations

import os

import httpx
import pytest

pytestmark = pytest.mark.smoke

GATEWAY = os.environ.get("THB_GATEWAY_URL")
ISSUER = os.environ.get("OIDC_ISSUER")
EXAMPLES = int(os.environ.get("THB_FUZZ_EXAMPLES", "25"))

if not GATEWAY or not ISSUER:
    pytest.skip("needs the running platform: set THB_GATEWAY_URL and OIDC_ISSUER", allow_module_level=True)

import schemathesis  # noqa: E402 - only imported when the platform is there
from hypothesis import HealthCheck, settings  # noqa: E402


def _token() -> str:
    # The coordinator's office has every service in its audience and the broadest roles of the demo users.
    response = httpx.post(
        f"{ISSUER}/protocol/openid-connect/token",
        data={
            "grant_type": "password",
            "client_id": "thb-test",
            "username": "al-coordinator",
            "password": "thb-local-demo-1",
        },
    )
    response.raise_for_status()
    return str(response.json()["access_token"])


schema = schemathesis.openapi.from_url(f"{GATEWAY}/v1/openapi.json")
schema.config.base_url = GATEWAY
TOKEN = _token()


@schema.parametrize()
@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck))
def test_operation(case) -> None:
    case.headers = {**(case.headers or {}), "Authorization": f"Bearer {TOKEN}"}
    case.call_and_validate()


Workflow = schema.as_state_machine()
TestWorkflow = Workflow.TestCase
TestWorkflow.settings = settings(
    max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck), stateful_step_count=5
)


def _headers(self, case):  # noqa: ANN001 - the state machine's hook signature
    return {"Authorization": f"Bearer {TOKEN}"}


Workflow.get_call_kwargs = lambda self, case: {"headers": _headers(self, case)}
