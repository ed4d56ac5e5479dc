"""Every contract's X-Purpose vocabulary comes from the platform configuration.

Design decision: a contract's purpose enum is a **subset** of `purposes` in config/platform.yaml, not equal to
it. The configuration is the platform-wide vocabulary (every service, every future service); a contract offers
only the purposes for which its personal-data operations may legitimately be used. `statistics`, for example,
is a purpose of the vocabulary, but statistics are served without personal data and so never carry X-Purpose.
What must never happen is the other direction: a purpose a contract accepts but the configuration does not know.
The access log (`plumbing.access_log.AccessLog(purposes=config.purpose_codes)`) would then refuse to record
the read, and a request valid by the contract would fail at run time instead of at review time.

Also checked: every operation with `x-personal-data: true` requires the X-Purpose header (the access log needs
it), and every contract that has the header uses one enum for it (one vocabulary per contract).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from plumbing.config import load_platform_config
from tools.contracts import REPO_ROOT, SERVICE_CONTRACTS, Operation, all_operations, load_contract

CONFIG = REPO_ROOT / "config" / "platform.yaml"


def _resolve(document: dict[str, Any], node: Any) -> Any:
    """Follow local `$ref`s (the contracts use only `#/components/...`)."""
    while isinstance(node, dict) and "$ref" in node:
        ref = node["$ref"]
        assert ref.startswith("#/"), f"only local references are expected, got {ref}"
        target: Any = document
        for part in ref[2:].split("/"):
            target = target[part.replace("~1", "/").replace("~0", "~")]
        node = target
    return node


def _purpose_parameters(document: dict[str, Any], op: Operation) -> list[dict[str, Any]]:
    item = document["paths"][op.path]
    parameters = [*item.get("parameters", []), *op.spec.get("parameters", [])]
    resolved = [_resolve(document, parameter) for parameter in parameters]
    return [p for p in resolved if p.get("in") == "header" and p.get("name", "").lower() == "x-purpose"]


def _enum(document: dict[str, Any], parameter: dict[str, Any]) -> frozenset[str]:
    schema = _resolve(document, parameter.get("schema", {}))
    enum = schema.get("enum")
    assert isinstance(enum, list) and enum, "the X-Purpose header must be an enum (the purpose vocabulary)"
    return frozenset(enum)


def _contract_purposes(service: str) -> dict[str, frozenset[str]]:
    """operationId -> the purposes that operation accepts (only operations with an X-Purpose header)."""
    document = load_contract(service)
    found: dict[str, frozenset[str]] = {}
    for op in all_operations():
        if op.service != service:
            continue
        for parameter in _purpose_parameters(document, op):
            found[op.operation_id] = _enum(document, parameter)
    return found


CONFIGURED = load_platform_config(CONFIG).purpose_codes
PRESENT = [s for s in SERVICE_CONTRACTS if (Path(REPO_ROOT) / "openapi" / f"{s}.yaml").exists()]


@pytest.mark.parametrize("service", PRESENT)
def test_contract_purposes_are_a_subset_of_the_configured_vocabulary(service: str) -> None:
    for operation_id, purposes in _contract_purposes(service).items():
        unknown = sorted(purposes - CONFIGURED)
        assert not unknown, (
            f"{operation_id} accepts X-Purpose values that config/platform.yaml does not define: {unknown}"
        )


@pytest.mark.parametrize("service", PRESENT)
def test_one_purpose_vocabulary_per_contract(service: str) -> None:
    vocabularies = set(_contract_purposes(service).values())
    assert len(vocabularies) <= 1, f"{service}: operations disagree on the purpose enum: {vocabularies}"


@pytest.mark.parametrize("op", all_operations(), ids=lambda op: op.label)
def test_personal_data_operations_require_a_purpose(op: Operation) -> None:
    if op.spec.get("x-personal-data") is not True:
        return
    parameters = _purpose_parameters(load_contract(op.service), op)
    assert parameters, f"{op.label} returns personal data but does not take X-Purpose"
    assert all(p.get("required") is True for p in parameters), f"{op.label}: X-Purpose must be required"


def test_the_check_sees_a_purpose_vocabulary() -> None:
    """Guard against a vacuous pass: the identification contract has personal-data operations."""
    purposes = _contract_purposes("identification")
    assert purposes, "no operation with X-Purpose found: the parser above no longer matches the contracts"
    assert "identification" in next(iter(purposes.values()))
