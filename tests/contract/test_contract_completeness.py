"""Contracts an integrator can use without reading the code: shared components defined once (common.yaml),
every response header declared, typed schemas, a valid example for every request body and parameter, and every
problem type and error code an operation can answer listed in its `x-problem-types` (docs/problems.md).

The examples are also sent to the running services: tests/integration/test_contract_examples.py."""

from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import Mapping
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import yaml
from connexion.validators.parameter import draft4_format_checker
from jsonschema import Draft4Validator

from plumbing import json_input
from plumbing.pagination import decode_cursor
from plumbing.problems import catalogue
from plumbing.validation import BodySchemaValidator
from tools.contracts import (
    OPENAPI_DIR,
    REPO_ROOT,
    SERVICE_CONTRACTS,
    Operation,
    all_operations,
    load_contract,
    load_own_contract,
)
from tools.problem_types import platform_problems, resolve, schema_nodes

PLACEHOLDER_ID = "00000000-0000-4000-8000-000000000000"
OPERATIONS = all_operations()
SHARED_PARAMETERS = {
    ("header", "Idempotency-Key"),
    ("query", "limit"),
    ("query", "cursor"),
    ("query", "updated_since"),
}
# Codes raised in a service's code that never reach a client, and why.
UNREACHABLE_CODES = {
    # statistics.render_* check the tables they were given by the service itself (an internal invariant)
    "statistics_table_invalid",
    # the contract requires a label in every language a caller can ask for; mk falls back to en
    "label_missing",
    # is_child() never asks for a date before the earliest birth date (persons.is_child guards it)
    "date_before_birth",
}
# Every service package's source, for the codes its rules raise.
RULE_CODE = re.compile(r'(?:ErrorDetail|DomainError|Violation)\(\s*"([a-z][a-z0-9_]*)"')


@cache
def bundled(service: str) -> dict[str, Any]:
    return load_contract(service)


@cache
def common() -> dict[str, Any]:
    return dict(yaml.safe_load((OPENAPI_DIR / "common.yaml").read_text(encoding="utf-8")))


def path_item(op: Operation) -> dict[str, Any]:
    return dict(bundled(op.service)["paths"][op.path])


def problems_of(op: Operation) -> dict[str, list[str]]:
    listed = op.spec.get("x-problem-types")
    assert isinstance(listed, dict) and listed, f"{op.label} has no x-problem-types"
    return {str(slug): list(codes or []) for slug, codes in listed.items()}


def responses_of(op: Operation) -> dict[str, dict[str, Any]]:
    document = bundled(op.service)
    operation = document["paths"][op.path][op.method]
    return {status: resolve(document, response) for status, response in operation["responses"].items()}


def parameters_of(op: Operation) -> list[dict[str, Any]]:
    document = bundled(op.service)
    item = document["paths"][op.path]
    spec = item[op.method]
    return [resolve(document, p) for p in [*(item.get("parameters") or []), *(spec.get("parameters") or [])]]


def body_media(op: Operation) -> dict[str, Any] | None:
    document = bundled(op.service)
    body = resolve(document, document["paths"][op.path][op.method].get("requestBody"))
    if not body:
        return None
    return dict(body["content"]["application/json"])


def body_examples(media: Mapping[str, Any]) -> list[Any]:
    if "example" in media:
        return [media["example"]]
    return [entry["value"] for entry in (media.get("examples") or {}).values()]


def label(op: Operation) -> str:
    return op.label


# -- shared components -------------------------------------------------------------------------------------------
@pytest.mark.parametrize("service", SERVICE_CONTRACTS)
def test_shared_components_are_referenced_not_copied(service: str) -> None:
    own = load_own_contract(service)
    components = own.get("components") or {}
    copies = [name for name in components.get("schemas") or {} if name.endswith("Problem")]
    assert not copies, (
        f"{service} defines its own problem schema {copies}: use common.yaml#/components/schemas/Problem"
    )
    assert not components.get("responses"), f"{service}: problem responses come from common.yaml"
    for name, parameter in (components.get("parameters") or {}).items():
        where = (parameter.get("in"), parameter.get("name"))
        assert where not in SHARED_PARAMETERS, f"{service}: parameter {name} copies common.yaml's {where}"
    for template, item in (own.get("paths") or {}).items():
        for method, spec in item.items():
            for parameter in spec.get("parameters") or []:
                if "$ref" not in parameter:
                    where = (parameter.get("in"), parameter.get("name"))
                    assert where not in SHARED_PARAMETERS, f"{method.upper()} {template} copies {where}"


def test_shared_component_names_carry_no_service_prefix() -> None:
    prefixes = [{"return": "Return"}.get(s, s.capitalize()) for s in SERVICE_CONTRACTS]
    for section, entries in common()["components"].items():
        for name in entries:
            assert not any(name.startswith(p) for p in prefixes), f"common.yaml {section}/{name}"


@pytest.mark.parametrize("service", SERVICE_CONTRACTS)
def test_every_object_schema_is_typed(service: str) -> None:
    """No bare `type: object`: each object declares its properties, or says what its members are (a map)."""
    document = bundled(service)
    roots: list[Any] = list((document.get("components") or {}).get("schemas", {}).values())
    for item in document["paths"].values():
        for spec in item.values():
            for media in (resolve(document, spec.get("requestBody")) or {}).get("content", {}).values():
                roots.append(media.get("schema"))
            for response in spec.get("responses", {}).values():
                for media in (resolve(document, response).get("content") or {}).values():
                    roots.append(media.get("schema"))
    for root in roots:
        for node in schema_nodes(document, root):
            if node.get("type") == "object":
                typed = "properties" in node or isinstance(node.get("additionalProperties"), Mapping)
                assert typed, f"{service}: an object schema without properties: {node}"


# -- response headers --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("op", OPERATIONS, ids=label)
def test_every_answer_declares_its_headers(op: Operation) -> None:
    for status, response in responses_of(op).items():
        headers = response.get("headers") or {}
        assert "X-Request-Id" in headers, f"{op.label} {status}: X-Request-Id is on every answer"
        if status.startswith(("4", "5")):
            assert "Content-Language" in headers, f"{op.label} {status}: problems carry Content-Language"
            assert "application/problem+json" in (response.get("content") or {}), f"{op.label} {status}"
        if status in ("429", "503"):
            assert "Retry-After" in headers, f"{op.label} {status}: Retry-After"
        if status == "429":
            assert {"RateLimit-Limit", "RateLimit-Remaining", "RateLimit-Reset"} <= set(headers), op.label
        if status == "401":
            assert "WWW-Authenticate" in headers, op.label
        if status.startswith("2") and op.method == "post":
            assert "Idempotent-Replayed" in headers, f"{op.label} {status}: a POST answer may be a replay"


# -- problems ----------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("op", OPERATIONS, ids=label)
def test_listed_problem_types_exist_and_match_the_declared_responses(op: Operation) -> None:
    listed = problems_of(op)
    declared = {status for status in op.spec["responses"] if status.startswith(("4", "5"))}
    statuses = set()
    for slug in listed:
        status = str(catalogue().get(slug).status)  # ValueError: not in the catalogue
        assert status in declared, f"{op.label} lists {slug} but does not declare the response {status}"
        statuses.add(status)
    assert declared == statuses, f"{op.label}: responses {sorted(declared - statuses)} name no problem type"


@pytest.mark.parametrize("op", OPERATIONS, ids=label)
def test_operation_lists_every_problem_the_platform_can_answer(op: Operation) -> None:
    document = bundled(op.service)
    derived = platform_problems(document, path_item(op), op.method, op.spec)
    listed = problems_of(op)
    for slug, codes in derived.items():
        assert slug in listed, f"{op.label} can answer {slug} but x-problem-types does not list it"
        missing = sorted(codes - set(listed[slug]))
        assert not missing, (
            f"{op.label}: {slug} can come with codes {missing} that x-problem-types does not list"
        )


def _served_sources(package: str) -> list[Path]:
    """The service's modules its HTTP app imports (directly or not): the rules a client can meet. Modules the app
    does not import yet (a domain built before its API) are not the contract's business until they are. Imported
    in a fresh interpreter, so that what other tests imported does not count."""
    probe = (
        "import importlib, sys\n"
        f"importlib.import_module('{package}.entrypoints.http')\n"
        f"names = [n for n in sys.modules if n == '{package}' or n.startswith('{package}.')]\n"
        "print('\\n'.join(f for f in (getattr(sys.modules[n], '__file__', None) for n in names) if f))"
    )
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    return [Path(line) for line in result.stdout.splitlines() if line.endswith(".py")]


@pytest.mark.parametrize("service", SERVICE_CONTRACTS)
def test_every_rule_code_of_the_service_is_listed(service: str) -> None:
    package = next(s.package for s in __import__("thb_contracts").services() if s.name == service)
    raised = {code for path in _served_sources(package) for code in RULE_CODE.findall(path.read_text())}
    listed = {
        code
        for op in OPERATIONS
        if op.service == service
        for codes in problems_of(op).values()
        for code in codes
    }
    missing = sorted(raised - UNREACHABLE_CODES - listed)
    assert not missing, f"{service} raises codes no operation lists in x-problem-types: {missing}"


def test_the_rule_code_scan_sees_the_identification_codes() -> None:
    """Guard against a vacuous pass of the test above: the identification app reaches every rule module."""
    served = _served_sources("identification")
    source = REPO_ROOT / "services" / "identification" / "src" / "identification"
    raised = {code for path in served for code in RULE_CODE.findall(path.read_text())}
    assert {"formal_identification_not_authorised", "period_invalid", "indicator_wrong_list"} <= raised
    every_rule_module = {p.resolve() for p in source.rglob("*.py") if RULE_CODE.search(p.read_text())}
    assert every_rule_module <= {p.resolve() for p in served}


# -- examples ----------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("op", [op for op in OPERATIONS if body_media(op) is not None], ids=label)
def test_every_request_body_has_a_valid_example(op: Operation) -> None:
    media = body_media(op)
    assert media is not None
    examples = body_examples(media)
    assert examples, f"{op.label}: the request body has no example (Swagger UI's Try it out starts from it)"
    validator = BodySchemaValidator(
        resolved_schema(op, media["schema"]), format_checker=Draft4Validator.FORMAT_CHECKER
    )
    for example in examples:
        errors = [f"{list(e.absolute_path)} {e.validator}" for e in validator.iter_errors(example)]
        assert not errors, f"{op.label}: the example breaks the schema: {errors}"
        assert not json_input.unsafe_text(example), f"{op.label}: the example has control characters"
        if PLACEHOLDER_ID in repr(example):
            info = str(bundled(op.service)["info"].get("description"))
            assert PLACEHOLDER_ID in info, f"{op.service}: the placeholder id must be explained in info"


@pytest.mark.parametrize("op", [op for op in OPERATIONS if parameters_of(op)], ids=label)
def test_every_parameter_has_a_valid_example(op: Operation) -> None:
    for parameter in parameters_of(op):
        name = f"{op.label} {parameter['in']} {parameter['name']}"
        assert "example" in parameter, f"{name} has no example"
        example = parameter["example"]
        schema = resolved_schema(op, parameter.get("schema") or {})
        errors = [
            e.validator
            for e in Draft4Validator(schema, format_checker=draft4_format_checker).iter_errors(example)
        ]
        assert not errors, f"{name}: the example breaks the schema ({errors})"
        if parameter["name"] == "cursor":
            decode_cursor(example)  # a cursor the service can read
        if example == PLACEHOLDER_ID:
            assert "placeholder" in str(parameter.get("description")), (
                f"{name}: say that the example is a placeholder"
            )


def resolved_schema(op: Operation, schema: Any) -> Any:
    """The schema with every local reference inlined (jsonschema does not know the OpenAPI document)."""
    document = bundled(op.service)

    def inline(node: Any, depth: int = 0) -> Any:
        assert depth < 40, "schema nesting too deep"
        node = resolve(document, node)
        if isinstance(node, Mapping):
            return {key: inline(value, depth + 1) for key, value in node.items()}
        if isinstance(node, list):
            return [inline(item, depth + 1) for item in node]
        return node

    return inline(schema)
