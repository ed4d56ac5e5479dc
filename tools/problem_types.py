"""Which problem types and error codes the platform itself can answer for an operation, read from its contract.

The gateway and the app factory answer some problems for every operation before a handler runs, depending only
on the operation's shape: a body can be malformed JSON (400), too large (413), of the wrong type (415) or break
its schema (422 with the schema's keywords as codes); a cursor can be forged (400); any call can be refused
(401, 403), limited (429) or meet a dependency that is down (503). `platform_problems` derives that set; the
contract test checks that every operation's `x-problem-types` lists at least it, so a contract cannot forget
what the plumbing will answer. What a service's own rules answer (its domain codes, 404 for a record named in
the body, 409 for a state) is written in the contract by hand; the test checks it against the service's code.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from plumbing.openapi_bundle import follow_ref

# Keywords whose failure is reported as an error code (plumbing.validation reports the keyword itself).
SCHEMA_KEYWORDS = frozenset(
    {
        "type",
        "enum",
        "format",
        "pattern",
        "minLength",
        "maxLength",
        "minimum",
        "maximum",
        "exclusiveMinimum",
        "exclusiveMaximum",
        "multipleOf",
        "minItems",
        "maxItems",
        "uniqueItems",
        "minProperties",
        "maxProperties",
        "required",
        "additionalProperties",
        "oneOf",
        "anyOf",
        "allOf",
        "not",
    }
)
# plumbing.json_input: a body that is not plain JSON (400) and text that hides or reorders what is read (422).
BODY_SYNTAX_CODES = frozenset({"json", "depth", "duplicate-member", "number", "unicode", "encoding"})


def resolve(document: Mapping[str, Any], node: Any) -> Any:
    """Follow local `$ref`s (contracts are read bundled: tools.contracts.load_contract)."""
    return follow_ref(document, node)


def schema_nodes(document: Mapping[str, Any], schema: Any) -> Iterator[Mapping[str, Any]]:
    """Every schema object reachable from `schema` (each component once)."""
    stack: list[Any] = [schema]
    seen: set[int] = set()
    while stack:
        node = resolve(document, stack.pop())
        if not isinstance(node, Mapping) or id(node) in seen:
            continue
        seen.add(id(node))
        yield node
        for key in ("items", "not"):
            if key in node:
                stack.append(node[key])
        additional = node.get("additionalProperties")
        if isinstance(additional, Mapping):
            stack.append(additional)
        for key in ("allOf", "oneOf", "anyOf"):
            stack.extend(node.get(key) or [])
        stack.extend((node.get("properties") or {}).values())


def schema_codes(document: Mapping[str, Any], schema: Any) -> set[str]:
    """The error codes validating against `schema` can produce."""
    codes: set[str] = set()
    for node in schema_nodes(document, schema):
        for keyword in SCHEMA_KEYWORDS & set(node):
            if keyword == "additionalProperties" and node[keyword] is True:
                continue
            if keyword == "required" and not node[keyword]:
                continue
            codes.add(keyword)
        if node.get("x-past-date") is True:
            codes.add("date-range")
        if node.get("type") == "string":
            codes.add("characters")
    return codes


def parameters(
    document: Mapping[str, Any], path_item: Mapping[str, Any], spec: Mapping[str, Any]
) -> list[Any]:
    return [
        resolve(document, p) for p in [*(path_item.get("parameters") or []), *(spec.get("parameters") or [])]
    ]


def platform_problems(
    document: Mapping[str, Any], path_item: Mapping[str, Any], method: str, spec: Mapping[str, Any]
) -> dict[str, set[str]]:
    """slug -> error codes: what the gateway and plumbing can answer for this operation before its handler."""
    found: dict[str, set[str]] = {
        # Content-Length that is not a number, X-Acting-User that is not a plain token (docs/security.md).
        "bad-request": {"type", "pattern"},
        "unauthorized": set(),
        "forbidden": set(),
        # strict validation: a query parameter the contract does not declare
        "validation-failed": {"unknown-parameter"},
        "rate-limited": set(),
        "service-unavailable": set(),
    }
    params = parameters(document, path_item, spec)
    for param in params:
        schema = param.get("schema") or {}
        codes = schema_codes(document, schema) - {"characters"}
        if param.get("required"):
            codes.add("required")
        name, place = param.get("name"), param.get("in")
        if place == "header" and name == "Idempotency-Key":
            found["bad-request"].add("pattern")
            if param.get("required"):
                found.setdefault("idempotency-key-required", set()).add("required")
                codes.discard("required")
        if place == "query" and name == "cursor":
            found["bad-request"].add("cursor")
        if place == "query" and name == "updated_since":
            found["bad-request"].add("range")
        if place == "path":
            found.setdefault("not-found", set())
        found["validation-failed"] |= codes
    if method.lower() == "post":
        found.setdefault("idempotency-key-reused", set())
        found.setdefault("idempotency-key-in-progress", set())
    if spec.get("x-personal-data") is True:
        found.setdefault("access-log-unavailable", set())
        # The scoped repository refuses a record of a person whose processing is restricted to other purposes
        # than the request's (plumbing.restrictions), in every operation that answers personal data.
        found["forbidden"].add("processing_restricted")
    body = resolve(document, spec.get("requestBody"))
    if body:
        found["bad-request"] |= BODY_SYNTAX_CODES
        for slug in ("request-timeout", "payload-too-large", "unsupported-media-type"):
            found.setdefault(slug, set())
        for media in (body.get("content") or {}).values():
            found["validation-failed"] |= schema_codes(document, media.get("schema") or {})
        if body.get("required"):
            found["validation-failed"].add("required")
    return found
