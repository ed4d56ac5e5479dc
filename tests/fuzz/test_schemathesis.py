"""Schemathesis against the whole platform through the gateway's combined document, with a real token.

Runs against the session's platform (devstack/src/devstack/pytest_platform.py: real servers, every service, the gateway). At most
THB_FUZZ_EXAMPLES (default 25) examples per operation, then the stateful phase, which links operations through
their responses; the whole run is capped by THB_FUZZ_SECONDS (default 600). Every answer must be documented
and conform to the contract, and no 5xx is accepted. `make fuzz` runs the same with more examples.
"""

from __future__ import annotations

import os
import time
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.specs.openapi.checks import positive_data_acceptance

pytestmark = pytest.mark.smoke

# A schema-valid body can still break a domain rule (e.g. an impossible date); that answer is a documented 422
# (CONVENTIONS: 422 = schema or rule violation), so "valid data must be accepted" is not a check we want.
EXCLUDED = [positive_data_acceptance]
# make test runs the same examples every time (a red CI must be reproducible); `make fuzz` explores (random).
DERANDOMIZE = os.environ.get("THB_FUZZ_RANDOM") != "1"
EXAMPLES = int(os.environ.get("THB_FUZZ_EXAMPLES", "25"))
BUDGET_SECONDS = float(os.environ.get("THB_FUZZ_SECONDS", "600"))
# The coordinator's office has every service in its audience and the broadest roles of the demo users.
FUZZ_USER = "al-coordinator"
_started = time.monotonic()


@pytest.fixture(scope="module")
def token(platform: Any) -> str:
    return str(platform.token(FUZZ_USER))


@pytest.fixture(scope="module")
def api_schema(platform: Any) -> Any:
    loaded = schemathesis.openapi.from_url(f"{platform.gateway}/v1/openapi.json")
    loaded.config.base_url = platform.gateway
    return loaded


def _within_budget() -> None:
    if time.monotonic() - _started > BUDGET_SECONDS:
        pytest.fail(f"fuzzing exceeded its {BUDGET_SECONDS:.0f}s budget; lower THB_FUZZ_EXAMPLES")


def test_every_operation(api_schema: Any, token: str) -> None:
    """Each operation on its own (schemathesis' pytest plugin does not run under this pytest version, so the
    operations are driven through hypothesis here); every failure is collected and reported together."""
    failures: list[str] = []
    for result in api_schema.get_all_operations():
        operation = result.ok()

        @given(case=operation.as_strategy())
        @settings(
            max_examples=EXAMPLES,
            deadline=None,
            suppress_health_check=list(HealthCheck),
            database=None,
            derandomize=DERANDOMIZE,
        )
        def check(case: Any) -> None:
            _within_budget()
            case.call_and_validate(headers={"Authorization": f"Bearer {token}"}, excluded_checks=EXCLUDED)

        try:
            check()
        except Exception as error:  # noqa: BLE001 - collected so one run reports every operation's failure
            failures.append(f"{operation.label}: {type(error).__name__}: {str(error)[:1500]}")
    assert not failures, "\n\n".join(failures)


def test_stateful_workflows(api_schema: Any, token: str) -> None:
    class Workflow(api_schema.as_state_machine()):  # type: ignore[misc]
        def get_call_kwargs(self, case: Any) -> dict[str, Any]:
            return {"headers": {"Authorization": f"Bearer {token}"}}

        def validate_response(
            self, response: Any, case: Any, additional_checks: Any = None, **kwargs: Any
        ) -> None:
            case.validate_response(response, excluded_checks=EXCLUDED, transport_kwargs=kwargs or None)

    Workflow.run(
        settings=settings(
            max_examples=EXAMPLES,
            deadline=None,
            suppress_health_check=list(HealthCheck),
            stateful_step_count=5,
            derandomize=DERANDOMIZE,
        )
    )
