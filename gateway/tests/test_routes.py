"""Routes come from the contracts: matching, 405 data, internal operations, default deny, the combined document."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from gateway.contracts import (
    ContractError,
    build_routes,
    combined_document,
    load_contracts,
    operations_of,
)


def contract(service: str, paths: dict[str, Any], components: dict[str, Any] | None = None) -> dict[str, Any]:
    return {
        "openapi": "3.0.3",
        "info": {"title": service, "version": "1"},
        "paths": paths,
        "components": components or {},
    }


def op(roles: list[str] | None = None, **extra: Any) -> dict[str, Any]:
    spec: dict[str, Any] = {"operationId": "x", "responses": {"200": {"description": "ok"}}}
    if roles is not None:
        spec["x-roles"] = roles
    spec.update(extra)
    return spec


SAMPLE = {
    "referral": contract(
        "referral",
        {
            "/v1/referral/cases": {"get": op(["coordinator"]), "post": op(["coordinator"])},
            "/v1/referral/cases/search": {"post": op(["case-manager"])},
            "/v1/referral/cases/{case_id}": {
                "get": op(["coordinator"]),
                "delete": op(["coordinator"], **{"x-internal": True}),
            },
            "/v1/referral/cases/{case_id}/notes/{note_id}": {"put": op(["coordinator"])},
            "/v1/referral/internal/reindex": {"post": op(["coordinator"], **{"x-internal": True})},
        },
    )
}


def test_literal_path_wins_over_template() -> None:
    routes = build_routes(SAMPLE)
    found = routes.match("/v1/referral/cases/search", "POST")
    assert found is not None and found.template == "/v1/referral/cases/search"
    found = routes.match("/v1/referral/cases/abc", "GET")
    assert found is not None and found.template == "/v1/referral/cases/{case_id}"


def test_parameter_matches_one_segment_only() -> None:
    routes = build_routes(SAMPLE)
    assert routes.match("/v1/referral/cases/a/b", "GET") is None
    assert routes.match("/v1/referral/cases/", "GET") is None
    found = routes.match("/v1/referral/cases/a/notes/b", "PUT")
    assert found is not None and found.operation is not None


def test_undeclared_method_reports_the_allowed_ones() -> None:
    found = build_routes(SAMPLE).match("/v1/referral/cases", "PATCH")
    assert found is not None and found.operation is None
    assert found.allowed == ("GET", "POST")


def test_unknown_path_does_not_match() -> None:
    routes = build_routes(SAMPLE)
    assert routes.match("/v1/referral/other", "GET") is None
    assert routes.match("/v1/referral/cases.json", "GET") is None
    assert routes.match("/V1/referral/cases", "GET") is None


def test_internal_operations_are_not_routed() -> None:
    routes = build_routes(SAMPLE)
    assert routes.match("/v1/referral/internal/reindex", "POST") is None
    found = routes.match("/v1/referral/cases/abc", "DELETE")
    assert found is not None and found.operation is None and found.allowed == ("GET",)
    labels = {o.label for o in routes.operations}
    assert "DELETE /v1/referral/cases/{case_id}" not in labels


def test_operation_without_roles_refuses_to_start() -> None:
    broken = contract("referral", {"/v1/referral/cases": {"get": op(None)}})
    with pytest.raises(ContractError, match="x-roles"):
        operations_of("referral", broken)
    empty = contract("referral", {"/v1/referral/cases": {"get": op([])}})
    with pytest.raises(ContractError, match="x-roles"):
        operations_of("referral", empty)


def test_operation_outside_its_service_prefix_refuses_to_start() -> None:
    broken = contract("referral", {"/v1/identification/cases": {"get": op(["coordinator"])}})
    with pytest.raises(ContractError, match="outside"):
        operations_of("referral", broken)


def test_request_body_media_types_are_read_through_refs() -> None:
    doc = contract(
        "referral",
        {
            "/v1/referral/cases": {
                "post": op(["coordinator"], requestBody={"$ref": "#/components/requestBodies/ReferralBody"})
            }
        },
        {
            "requestBodies": {
                "ReferralBody": {"required": True, "content": {"application/json": {"schema": {}}}}
            }
        },
    )
    (operation,) = operations_of("referral", doc)
    assert operation.body_types == frozenset({"application/json"}) and operation.body_required


def test_combined_document_leaves_out_internal_operations_and_uses_configured_servers() -> None:
    doc = combined_document(
        SAMPLE,
        servers=[{"url": "https://api.example"}],
        authorization_url="https://sso.example/auth",
        token_url="https://sso.example/token",
    )
    assert doc["servers"] == [{"url": "https://api.example"}]
    assert "/v1/referral/internal/reindex" not in doc["paths"]
    assert "delete" not in doc["paths"]["/v1/referral/cases/{case_id}"]
    flows = doc["components"]["securitySchemes"]["oauth2"]["flows"]
    assert flows["authorizationCode"]["tokenUrl"] == "https://sso.example/token"
    assert flows["authorizationCode"]["authorizationUrl"] == "https://sso.example/auth"


def test_combined_document_refuses_a_component_clash() -> None:
    a = contract("referral", {}, {"schemas": {"Shared": {"type": "string"}}})
    b = contract("exchange", {}, {"schemas": {"Shared": {"type": "integer"}}})
    with pytest.raises(ContractError, match="Shared"):
        combined_document({"referral": a, "exchange": b}, servers=[], authorization_url="a", token_url="t")


def test_real_contracts_build_and_validate() -> None:
    from openapi_spec_validator import validate

    contracts = load_contracts()
    doc = combined_document(
        contracts, servers=[{"url": "/"}], authorization_url="https://sso/auth", token_url="https://sso/token"
    )
    validate(copy.deepcopy(doc))
    assert build_routes(contracts).operations
