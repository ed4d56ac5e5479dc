"""Contracts that share components: `$ref`s into another file of the contracts' folder, bundled into one
self-contained document.

Every service contract refers to the shared components of `openapi/common.yaml` (the Problem schema, paging and
Idempotency-Key parameters, response headers, problem responses) with relative references such as
`common.yaml#/components/responses/NotFound`. Everything that reads a contract reads it through `load_bundled`:
the app factory (what connexion validates against), the gateway (routes, and the combined document at
`/v1/openapi.json` and `/docs/`), tools/contracts.py and the contract tests. So all of them see one document,
and a tool that knows only local references (`#/...`) keeps working.

The rules, checked here (a contract breaking one does not load):
- an external reference names a file in the same folder (no directories, no URLs) and one component:
  `<file>.yaml#/components/<section>/<Name>`;
- the component is copied under the same section and name, and the references inside it (local to its file)
  are rewritten the same way, so a shared component may use other shared components;
- a contract never defines a component under a name it also takes from a shared file (the shared names carry
  no service prefix, the service's own names always do: docs/conventions.md).
"""

from __future__ import annotations

import copy
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

_FILE = re.compile(r"^[A-Za-z0-9_-]+\.(yaml|yml|json)$")


class BundleError(ValueError):
    """A reference that cannot be bundled: the contract does not load."""


def load_bundled(path: Path | str) -> dict[str, Any]:
    """The contract at `path` with every reference to another file of its folder made local."""
    path = Path(path)
    return bundle(_load(path), path.parent)


def bundle(document: Mapping[str, Any], directory: Path | str) -> dict[str, Any]:
    """`document` (a contract read from `directory`) with its external component references made local."""
    return _Bundler(Path(directory)).run(document)


def _load(path: Path) -> dict[str, Any]:
    loaded = yaml.safe_load(path.read_text(encoding="utf-8"))
    if not isinstance(loaded, dict):
        raise BundleError(f"{path.name} is not an OpenAPI document")
    return loaded


def _unescape(token: str) -> str:
    return token.replace("~1", "/").replace("~0", "~")


def _escape(token: str) -> str:
    return token.replace("~", "~0").replace("/", "~1")


class _Bundler:
    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.files: dict[str, dict[str, Any]] = {}
        self.components: dict[str, dict[str, Any]] = {}
        self.imported: dict[tuple[str, str], str] = {}  # (section, name) -> the file it came from

    def run(self, document: Mapping[str, Any]) -> dict[str, Any]:
        own = copy.deepcopy(dict(document.get("components") or {}))
        self.components = {section: dict(entries or {}) for section, entries in own.items()}
        result = {key: self._rewrite(value, None) for key, value in document.items() if key != "components"}
        for section, entries in own.items():
            for name, value in (entries or {}).items():
                self.components[section][name] = self._rewrite(value, None)
        if self.components or "components" in document:
            result["components"] = self.components
        return result

    def _file(self, name: str) -> dict[str, Any]:
        if not _FILE.match(name):
            raise BundleError(f"$ref to {name!r}: only files of the contracts' own folder can be referenced")
        if name not in self.files:
            path = self.directory / name
            if not path.is_file():
                raise BundleError(f"$ref to {name}: no such file beside the contract")
            self.files[name] = _load(path)
        return self.files[name]

    def _rewrite(self, node: Any, source: str | None) -> Any:
        """`node` of `source` (None: the contract itself) with every reference made local to the contract."""
        if isinstance(node, list):
            return [self._rewrite(item, source) for item in node]
        if not isinstance(node, Mapping):
            return node
        rewritten = {key: self._rewrite(value, source) for key, value in node.items() if key != "$ref"}
        ref = node.get("$ref")
        if not isinstance(ref, str):
            return rewritten if "$ref" not in node else {**rewritten, "$ref": ref}
        file, _, fragment = ref.partition("#")
        if not file and source is None:
            return {**rewritten, "$ref": ref}  # local to the contract: unchanged
        section, name = self._component(ref, fragment)
        self._import(file or str(source), section, name)
        return {**rewritten, "$ref": f"#/components/{_escape(section)}/{_escape(name)}"}

    @staticmethod
    def _component(ref: str, fragment: str) -> tuple[str, str]:
        parts = fragment.split("/")
        if len(parts) != 4 or parts[0] != "" or parts[1] != "components":
            raise BundleError(
                f"$ref {ref!r}: a shared reference must name one component (#/components/<s>/<n>)"
            )
        return _unescape(parts[2]), _unescape(parts[3])

    def _import(self, file: str, section: str, name: str) -> None:
        key = (section, name)
        if key in self.imported:
            if self.imported[key] != file:
                raise BundleError(
                    f"component {section}/{name} comes from both {self.imported[key]} and {file}"
                )
            return
        if name in self.components.get(section, {}):
            raise BundleError(f"component {section}/{name} is defined by the contract and by {file}")
        try:
            value = self._file(file)["components"][section][name]
        except (KeyError, TypeError):
            raise BundleError(f"{file} has no component {section}/{name}") from None
        self.imported[key] = file
        self.components.setdefault(section, {})[name] = {}  # reserved: a reference cycle ends here
        self.components[section][name] = self._rewrite(copy.deepcopy(value), file)


def follow_ref(document: Mapping[str, Any], node: Any, limit: int = 30) -> Any:
    """`node`, or what its local `$ref` chain points at in `document` (a bundled contract has only local refs).
    Raises ValueError for a reference that is not local, names nothing, or loops."""
    for _ in range(limit):
        if not (isinstance(node, Mapping) and "$ref" in node):
            return node
        ref = str(node["$ref"])
        if not ref.startswith("#/"):
            raise ValueError(f"only local $ref are supported, got {ref}")
        target: Any = document
        for part in ref[2:].split("/"):
            target = target[_unescape(part)]
        node = target
    raise ValueError("$ref chain too long (a loop?)")
