"""Every contract is valid, declares roles for every operation (default deny) and keeps the naming rules."""

from __future__ import annotations

import pytest
from openapi_spec_validator import validate

from plumbing.config import load_platform_config
from tools.contracts import (
    REPO_ROOT,
    SERVICE_CONTRACTS,
    all_operations,
    load_contract,
    load_own_contract,
    readme_with_table,
)

PRESENT = [s for s in SERVICE_CONTRACTS if (REPO_ROOT / "openapi" / f"{s}.yaml").exists()]


def known_roles() -> set[str]:
    """The one role catalogue: config/platform.yaml `roles` (the realm defines exactly these: test_auth_realm)."""
    return set(load_platform_config(REPO_ROOT / "config" / "platform.yaml").roles)


def test_every_service_has_a_contract() -> None:
    assert PRESENT == list(SERVICE_CONTRACTS)


@pytest.mark.parametrize("service", PRESENT)
def test_contract_is_valid_openapi(service: str) -> None:
    validate(load_contract(service))


@pytest.mark.parametrize("op", all_operations(), ids=lambda op: op.label)
def test_operation_declares_known_roles(op) -> None:
    assert op.roles, f"{op.label} has no x-roles: every operation must say who may call it"
    unknown = set(op.roles) - known_roles()
    assert not unknown, (
        f"{op.label} names roles the configuration (and realm) does not define: {sorted(unknown)}"
    )


@pytest.mark.parametrize("op", all_operations(), ids=lambda op: op.label)
def test_operation_lives_under_its_service_prefix(op) -> None:
    assert op.path.startswith(f"/v1/{op.service}/")


@pytest.mark.parametrize("op", all_operations(), ids=lambda op: op.label)
def test_operation_documents_auth_errors_as_problems(op) -> None:
    responses = op.spec["responses"]
    for status in ("401", "403"):
        assert status in responses, f"{op.label} does not document {status}"


@pytest.mark.parametrize("op", all_operations(), ids=lambda op: op.label)
def test_operation_documents_every_error_the_platform_can_answer(op) -> None:
    """What the app factory and the gateway answer before a handler runs: a parameter or body that breaks the
    contract is 422 (400 if malformed), a body can be too large (413) or of the wrong type (415), and any call
    can meet a budget (429) or an unavailable dependency (503). Fuzzing finds an undocumented one otherwise."""
    responses = set(op.spec["responses"])
    # 400 for every operation: a malformed Content-Length or X-Acting-User header is refused before routing.
    wanted = {"400", "429", "503"}
    if op.spec.get("parameters") or op.spec.get("requestBody"):
        wanted |= {"400", "422"}
    if op.spec.get("requestBody"):
        wanted |= {"408", "413", "415"}
    missing = sorted(wanted - responses)
    assert not missing, f"{op.label} does not document {missing}"


@pytest.mark.parametrize("op", all_operations(), ids=lambda op: op.label)
def test_operation_says_whether_it_returns_personal_data(op) -> None:
    assert isinstance(op.spec.get("x-personal-data"), bool), f"{op.label} lacks x-personal-data: true|false"


@pytest.mark.parametrize("service", PRESENT)
def test_component_names_carry_the_service_prefix(service: str) -> None:
    prefix = {"return": "Return"}.get(service, service.capitalize())
    # The contract's own components; the shared ones of common.yaml carry no prefix (test_contract_completeness).
    components = load_own_contract(service).get("components", {})
    for section in ("schemas", "parameters", "responses"):
        for name in components.get(section, {}):
            assert name.startswith(prefix), f"{service}: component {section}/{name} must start with {prefix}"


def test_readme_role_table_is_current() -> None:
    readme = (REPO_ROOT / "README.md").read_text()
    assert readme_with_table(readme) == readme, "run `python tools/contracts.py` to regenerate the role table"
