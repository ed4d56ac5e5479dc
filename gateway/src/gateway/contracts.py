"""The gateway's routes, built from the service contracts in openapi/ at start-up.

There is no hand-written route table: every operation of every `openapi/<service>.yaml` becomes a route unless
it is marked `x-internal: true`, so a contract change cannot drift from what the gateway exposes. The same
contracts yield the combined document served to integrators (`/v1/openapi.json`).
"""

from __future__ import annotations

import copy
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import thb_contracts
from plumbing.openapi_bundle import BundleError, follow_ref, load_bundled
from plumbing.problems import catalogue

# The services behind the gateway, from the registry (openapi/services.toml).
SERVICES: tuple[str, ...] = tuple(service.name for service in thb_contracts.services())
HTTP_METHODS: tuple[str, ...] = ("get", "put", "post", "delete", "patch", "head", "options", "trace")
_PARAM = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")


class ContractError(Exception):
    """A contract the gateway cannot route safely: the gateway refuses to start."""


def audience_of(service: str) -> str:
    """The Keycloak client id of a service: a token may call the service only if `aud` contains it."""
    return f"{service}-api"


def default_openapi_dir() -> Path:
    """The contracts package's folder (`THB_OPENAPI_DIR` overrides it; see thb_contracts)."""
    return Path(str(thb_contracts.files()))


@dataclass(frozen=True)
class Operation:
    service: str
    method: str  # upper case
    template: str  # the path as the contract writes it: /v1/identification/persons/{person_id}
    operation_id: str
    roles: frozenset[str]
    body_types: frozenset[str]  # media types of requestBody.content (lower case); empty: no body accepted
    body_required: bool

    @property
    def audience(self) -> str:
        return audience_of(self.service)

    @property
    def label(self) -> str:
        return f"{self.method} {self.template}"


@dataclass
class _PathEntry:
    template: str
    service: str
    regex: re.Pattern[str] | None  # None for a template without parameters (exact match)
    operations: dict[str, Operation] = field(default_factory=dict)


@dataclass(frozen=True)
class Match:
    """Result of matching a request path: the path's template, its operations, and the one for the method."""

    template: str
    service: str
    operation: Operation | None
    allowed: tuple[str, ...]


class RouteTable:
    """Literal paths in a dict; templated paths as one regex each, tried longest-literal-prefix first."""

    def __init__(self, operations: Iterable[Operation]) -> None:
        self._exact: dict[str, _PathEntry] = {}
        self._templated: list[_PathEntry] = []
        by_template: dict[str, _PathEntry] = {}
        for op in operations:
            entry = by_template.get(op.template)
            if entry is None:
                entry = _PathEntry(op.template, op.service, _compile(op.template))
                by_template[op.template] = entry
            if op.method in entry.operations:
                raise ContractError(f"{op.label} declared twice")
            entry.operations[op.method] = op
        for entry in by_template.values():
            if entry.regex is None:
                self._exact[entry.template] = entry
            else:
                self._templated.append(entry)
        # OpenAPI: concrete paths win over templated ones; among templated ones the more literal text wins.
        self._templated.sort(key=lambda e: len(_PARAM.sub("", e.template)), reverse=True)
        self.operations: tuple[Operation, ...] = tuple(
            op for entry in by_template.values() for op in entry.operations.values()
        )

    def match(self, path: str, method: str) -> Match | None:
        entry = self._exact.get(path)
        if entry is None:
            for candidate in self._templated:
                assert candidate.regex is not None
                if candidate.regex.fullmatch(path):
                    entry = candidate
                    break
        if entry is None:
            return None
        allowed = tuple(sorted(entry.operations))
        return Match(entry.template, entry.service, entry.operations.get(method.upper()), allowed)


def _compile(template: str) -> re.Pattern[str] | None:
    if not _PARAM.search(template):
        return None
    pattern = ""
    last = 0
    for found in _PARAM.finditer(template):
        pattern += re.escape(template[last : found.start()])
        # One non-empty path segment: a parameter never swallows '/', so /persons/a/b does not match {id}.
        pattern += "[^/]+"
        last = found.end()
    pattern += re.escape(template[last:])
    return re.compile(pattern)


def load_contracts(
    openapi_dir: Path | None = None, services: Sequence[str] = SERVICES
) -> dict[str, dict[str, Any]]:
    directory = openapi_dir or default_openapi_dir()
    contracts: dict[str, dict[str, Any]] = {}
    for service in services:
        path = directory / f"{service}.yaml"
        if not path.exists():
            raise ContractError(f"contract {path} is missing")
        try:
            # The shared components (common.yaml) bundled in, so every reference is local (plumbing.openapi_bundle).
            contracts[service] = load_bundled(path)
        except BundleError as error:
            raise ContractError(f"{path}: {error}") from None
    return contracts


def _resolve(document: Mapping[str, Any], node: Any) -> Any:
    """Follow a local `$ref` (the contracts keep request bodies and parameters in components)."""
    try:
        return follow_ref(document, node)
    except (ValueError, KeyError) as error:
        raise ContractError(str(error)) from None


def operations_of(service: str, document: Mapping[str, Any]) -> list[Operation]:
    """The public operations of one contract, with the facts the gateway enforces."""
    prefix = f"/v1/{service}/"
    result: list[Operation] = []
    for template, item in (document.get("paths") or {}).items():
        item = _resolve(document, item)
        for method in HTTP_METHODS:
            spec = item.get(method)
            if spec is None or spec.get("x-internal") is True:
                continue
            label = f"{method.upper()} {template}"
            if not str(template).startswith(prefix):
                raise ContractError(f"{service}: {label} is outside {prefix}")
            roles = spec.get("x-roles")
            # Default deny: an operation that does not say who may call it is not routed at all.
            if not isinstance(roles, list) or not roles:
                raise ContractError(f"{service}: {label} has no x-roles")
            body = _resolve(document, spec.get("requestBody")) or {}
            content = body.get("content") or {}
            result.append(
                Operation(
                    service=service,
                    method=method.upper(),
                    template=str(template),
                    operation_id=str(spec.get("operationId", "")),
                    roles=frozenset(str(r) for r in roles),
                    body_types=frozenset(str(t).lower() for t in content),
                    body_required=bool(body.get("required", False)),
                )
            )
    return result


def build_routes(contracts: Mapping[str, Mapping[str, Any]]) -> RouteTable:
    return RouteTable(op for service, doc in contracts.items() for op in operations_of(service, doc))


# -- the combined document -------------------------------------------------------------------------------------
def _with_problems(operation: Mapping[str, Any], label: str) -> str:
    """The operation's description followed by its problem types as links to their pages, and their codes
    (Swagger UI shows descriptions, not extensions)."""
    lines = [str(operation.get("description") or "").rstrip(), ""] if operation.get("description") else []
    lines.append("**Problems** (`type` of the answer, and the `errors[].code` values that can come with it):")
    lines.append("")
    for slug, codes in (operation.get("x-problem-types") or {}).items():
        try:
            kind = catalogue().get(str(slug))
        except ValueError:
            raise ContractError(
                f"{label}: x-problem-types names {slug!r}, not in the problem catalogue"
            ) from None
        listed = ", ".join(f"`{code}`" for code in codes or [])
        lines.append(f"- {kind.status} [`{slug}`]({kind.uri})" + (f": {listed}" if listed else ""))
    return "\n".join(lines)


def combined_document(
    contracts: Mapping[str, Mapping[str, Any]],
    *,
    servers: Sequence[Mapping[str, str]],
    authorization_url: str,
    token_url: str,
    version: str = "1",
) -> dict[str, Any]:
    """One OpenAPI document for everything the gateway exposes (internal operations left out).

    Component names are already prefixed by their service (a contract test enforces it), so the components
    merge without renaming; a clash is refused rather than silently overwritten.
    """
    paths: dict[str, Any] = {}
    components: dict[str, dict[str, Any]] = {}
    tags = []
    for service, source in contracts.items():
        doc = copy.deepcopy(dict(source))
        tags.append({"name": service, "description": str((doc.get("info") or {}).get("title", service))})
        for template, item in (doc.get("paths") or {}).items():
            kept = {}
            for key, value in item.items():
                if key in HTTP_METHODS:
                    if value.get("x-internal") is True:
                        continue
                    value = dict(value)
                    value.setdefault("tags", [service])
                    if value.get("x-problem-types"):
                        value["description"] = _with_problems(value, f"{service}: {key.upper()} {template}")
                    value.pop("security", None)  # one scheme set for the whole document, below
                    kept[key] = value
                else:
                    kept[key] = value
            if any(k in HTTP_METHODS for k in kept):
                paths[template] = kept
        for section, entries in (doc.get("components") or {}).items():
            if section == "securitySchemes":
                continue
            target = components.setdefault(section, {})
            for name, value in entries.items():
                if name in target and target[name] != value:
                    raise ContractError(f"component {section}/{name} is defined differently by two services")
                target[name] = value
    components["securitySchemes"] = {
        "bearerAuth": {
            "type": "http",
            "scheme": "bearer",
            "bearerFormat": "JWT",
            "description": "An access token of the realm (national systems: client credentials grant).",
        },
        "oauth2": {
            "type": "oauth2",
            "description": (
                "Interactive login through the realm's public PKCE client `api-docs`. National systems get "
                "their token with the client credentials grant outside the page (README, Getting a token)."
            ),
            "flows": {
                "authorizationCode": {
                    "authorizationUrl": authorization_url,
                    "tokenUrl": token_url,
                    "scopes": {},
                },
            },
        },
    }
    return {
        "openapi": "3.0.3",
        "info": {
            "title": "Anti-trafficking case platform",
            "version": version,
            "description": (
                "Every public operation of the identification, referral, exchange and return services behind one "
                "gateway. Authenticate with a bearer token of the realm; each operation lists the roles "
                "(`x-roles`) that may call it. Errors are RFC 9457 problems: each operation lists the problem types "
                "it can answer (`x-problem-types`, with the `errors[].code` values of each), and every `type` is a "
                "page of this gateway (`GET /problems` lists them all)."
            ),
        },
        "servers": [dict(s) for s in servers],
        "security": [{"bearerAuth": []}, {"oauth2": []}],
        "tags": tags,
        "paths": paths,
        "components": components,
    }
