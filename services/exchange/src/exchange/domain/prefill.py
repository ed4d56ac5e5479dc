"""Pre-filling a form from the country's own identification case: what may be copied, and how.

A form type lists in its catalogue file (`prefill`) the content fields it may take from identification and where
each comes from: `person.<field>` (the person's record) or `case.<field>` (the case). Nothing else is ever copied,
whatever identification answers. The service layer reads the case and the person from the identification API on
the user's behalf (plumbing.on_behalf: her own scope, her name in identification's access log) and hands both
here.

Identification's codes are snake_case, the catalogue's kebab-case (`potential_victim` -> `potential-victim`); a
value the form's schema does not accept (a code it has no counterpart for, `no_indication`, a date in another
form) is left out rather than copied wrong, and reported as not copied. The officer completes and checks the
draft; pre-filling never sends anything.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from exchange.domain.catalogue import FormType


@dataclass(frozen=True)
class Prefilled:
    content: dict[str, Any]
    copied: list[str] = field(default_factory=list)  # content pointers filled
    left_out: list[str] = field(default_factory=list)  # pointers whose value the form does not accept


def prefill(kind: FormType, sources: Mapping[str, Mapping[str, Any]]) -> Prefilled:
    """The content a draft of `kind` (current version) starts with, from `sources` {"person": ..., "case": ...}."""
    version = kind.versions[kind.current_version] if kind.current_version else None
    if version is None:
        return Prefilled({})
    content: dict[str, Any] = {}
    copied: list[str] = []
    left_out: list[str] = []
    for pointer, source in sorted(kind.prefill.items()):
        record, _, name = source.partition(".")
        value = as_form_codes(sources.get(record, {}).get(name))
        if value in (None, "", [], {}):
            continue
        candidate = with_value(content, pointer, value)
        if breaks(version.validator, candidate, pointer):
            left_out.append(pointer)
            continue
        content = candidate
        copied.append(pointer)
    return Prefilled(content, copied, left_out)


def as_form_codes(value: Any) -> Any:
    if isinstance(value, str) and value.isidentifier() and value.islower():
        return value.replace("_", "-")
    if isinstance(value, list):
        return [as_form_codes(item) for item in value]
    return copy.deepcopy(value)


def with_value(content: dict[str, Any], pointer: str, value: Any) -> dict[str, Any]:
    out = copy.deepcopy(content)
    node = out
    *parents, last = pointer.strip("/").split("/")
    for name in parents:
        node = node.setdefault(name, {})
    node[last] = value
    return out


def breaks(validator: Any, content: dict[str, Any], pointer: str) -> bool:
    """Whether the value at `pointer` breaks the schema (missing required fields elsewhere do not count)."""
    target = tuple(pointer.strip("/").split("/"))
    for error in validator.iter_errors(content):
        path = tuple(str(part) for part in error.absolute_path)
        if error.validator == "required" and path != target:
            continue
        if path[: len(target)] == target or (
            error.validator == "additionalProperties" and target[:-1] == path
        ):
            return True
    return False
