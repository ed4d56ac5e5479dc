"""Contracts that share components: references into common.yaml made local, the same for every reader."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from plumbing.openapi_bundle import BundleError, bundle, load_bundled

SHARED = {
    "openapi": "3.0.3",
    "info": {"title": "shared", "version": "1"},
    "paths": {},
    "components": {
        "schemas": {
            "Problem": {
                "type": "object",
                "properties": {"errors": {"$ref": "#/components/schemas/ProblemError"}},
            },
            "ProblemError": {"type": "object", "properties": {"code": {"type": "string"}}},
        },
        "responses": {
            "NotFound": {
                "description": "404",
                "headers": {"X-Request-Id": {"$ref": "#/components/headers/RequestId"}},
                "content": {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}},
            }
        },
        "headers": {"RequestId": {"schema": {"type": "string"}}},
    },
}


def contract(paths: dict, components: dict | None = None) -> dict:
    return {
        "openapi": "3.0.3",
        "info": {"title": "t", "version": "1"},
        "paths": paths,
        "components": components or {},
    }


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    (tmp_path / "common.yaml").write_text(yaml.safe_dump(SHARED))
    return tmp_path


def test_external_references_become_local_with_what_they_use(folder: Path) -> None:
    doc = contract(
        {
            "/v1/demo/x": {
                "get": {"responses": {"404": {"$ref": "common.yaml#/components/responses/NotFound"}}}
            }
        },
        {"schemas": {"DemoThing": {"type": "string"}}},
    )
    (folder / "demo.yaml").write_text(yaml.safe_dump(doc))
    bundled = load_bundled(folder / "demo.yaml")
    response = bundled["paths"]["/v1/demo/x"]["get"]["responses"]["404"]
    assert response == {"$ref": "#/components/responses/NotFound"}
    components = bundled["components"]
    assert set(components["schemas"]) == {"DemoThing", "Problem", "ProblemError"}
    assert components["responses"]["NotFound"]["headers"]["X-Request-Id"] == {
        "$ref": "#/components/headers/RequestId"
    }
    assert components["schemas"]["Problem"]["properties"]["errors"] == {
        "$ref": "#/components/schemas/ProblemError"
    }
    assert "common.yaml" not in str(bundled)


def test_a_contract_without_shared_references_is_unchanged(folder: Path) -> None:
    doc = contract({"/v1/demo/x": {"get": {"responses": {"200": {"$ref": "#/components/responses/DemoOk"}}}}})
    assert bundle(doc, folder) == doc


@pytest.mark.parametrize(
    ("ref", "message"),
    [
        ("../common.yaml#/components/schemas/Problem", "own folder"),
        ("https://example.org/common.yaml#/components/schemas/Problem", "own folder"),
        ("missing.yaml#/components/schemas/Problem", "no such file"),
        ("common.yaml#/components/schemas/Nope", "no component"),
        ("common.yaml#/paths", "one component"),
    ],
)
def test_references_that_cannot_be_bundled_are_refused(folder: Path, ref: str, message: str) -> None:
    doc = contract({"/v1/demo/x": {"get": {"responses": {"200": {"$ref": ref}}}}})
    with pytest.raises(BundleError, match=message):
        bundle(doc, folder)


def test_a_contract_may_not_redefine_a_shared_name(folder: Path) -> None:
    doc = contract(
        {
            "/v1/demo/x": {
                "get": {"responses": {"404": {"$ref": "common.yaml#/components/responses/NotFound"}}}
            }
        },
        {"schemas": {"Problem": {"type": "string"}}},
    )
    with pytest.raises(BundleError, match="Problem"):
        bundle(doc, folder)


def refs(node: object) -> list[str]:
    if isinstance(node, dict):
        own = [str(node["$ref"])] if "$ref" in node else []
        return own + [ref for value in node.values() for ref in refs(value)]
    if isinstance(node, list):
        return [ref for item in node for ref in refs(item)]
    return []


def test_the_real_contracts_bundle_to_local_references_only() -> None:
    openapi = Path(__file__).parents[4] / "openapi"
    contracts = [p for p in sorted(openapi.glob("*.yaml")) if p.name != "asyncapi.yaml"]
    assert len(contracts) >= 5
    for path in contracts:
        external = [ref for ref in refs(load_bundled(path)) if not ref.startswith("#/")]
        assert not external, (path.name, external)
