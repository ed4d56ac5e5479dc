"""Rectification (GDPR Art. 16 and 19) of person data a form of ours carried across: which content pointers a
correction of the person concerns, and the content of the correction drafted from identification.

Identification's `identification.person.corrected.v1` names the person's members that changed (`surnames`,
`date_of_birth`, ...), never their values. The form type's catalogue `prefill` says which content pointer comes
from which member (`/person/surnames: person.surnames`); only those pointers are ever concerned, and only where the
sent content holds a value (a form that never carried a date of birth has none to correct). `case.<field>`
pointers (the category, the needs) come from the case, not from the person, and are never touched here.

The correction's content is the old form's content with every `person.<field>` pointer replaced by identification's
current value (identification's codes turned into the catalogue's, as pre-filling does: domain/prefill.py). A value
the correction's schema refuses is left out (the old value stays) and reported; a corrected member identification no
longer holds (a date of birth replaced by a range) is removed from the content and reported. Everything else is the
old content, unchanged.
"""

from __future__ import annotations

import copy
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from typing import Any

from exchange.domain.catalogue import FormType
from exchange.domain.prefill import as_form_codes, breaks, with_value

PERSON = "person"
_EMPTY: tuple[Any, ...] = (None, "", [], {})


@dataclass(frozen=True)
class Refreshed:
    content: dict[str, Any]
    copied: list[str] = field(default_factory=list)  # pointers set to identification's current value
    left_out: list[str] = field(
        default_factory=list
    )  # the schema refuses the current value: the old one stays
    removed: list[str] = field(default_factory=list)  # corrected members identification no longer holds

    def report(self, at: str) -> dict[str, Any]:
        """What the draft keeps of it: pointers and an instant, never values."""
        return {"at": at, "copied": self.copied, "left_out": self.left_out, "removed": self.removed}


def person_pointers(kind: FormType, members: Collection[str] | None = None) -> dict[str, str]:
    """The content pointers `kind` takes from the person (pointer -> member), only of `members` when given."""
    out = {}
    for pointer, source in kind.prefill.items():
        record, _, name = source.partition(".")
        if record == PERSON and (members is None or name in members):
            out[pointer] = name
    return out


def pointers_carried(kind: FormType, content: Mapping[str, Any], members: Collection[str]) -> list[str]:
    """The pointers of `members` the sent `content` holds a value at (sorted)."""
    return sorted(p for p in person_pointers(kind, members) if _get(content, p) not in _EMPTY)


def refreshed(
    kind: FormType,
    version: int,
    old: Mapping[str, Any],
    person: Mapping[str, Any],
    corrected: Collection[str],
) -> Refreshed:
    """The old `content` with the person's pointers set to identification's current values (`person`), checked
    against `kind` `version` (the correction's). `corrected`: the members the pending mark names, whose old value
    is removed when identification holds none any more."""
    validator = kind.versions[version].validator
    content = copy.deepcopy(dict(old))
    copied: list[str] = []
    left_out: list[str] = []
    removed: list[str] = []
    for pointer, name in sorted(person_pointers(kind).items()):
        value = as_form_codes(person.get(name))
        if value in _EMPTY:
            if name in corrected and _get(content, pointer) not in _EMPTY:
                content = _without(content, pointer)
                removed.append(pointer)
            continue
        candidate = with_value(content, pointer, value)
        if breaks(validator, candidate, pointer):
            left_out.append(pointer)
            continue
        content = candidate
        copied.append(pointer)
    return Refreshed(content, copied, left_out, removed)


def _get(content: Mapping[str, Any], pointer: str) -> Any:
    node: Any = content
    for name in pointer.strip("/").split("/"):
        if not isinstance(node, Mapping) or name not in node:
            return None
        node = node[name]
    return node


def _without(content: dict[str, Any], pointer: str) -> dict[str, Any]:
    out = copy.deepcopy(content)
    node: Any = out
    *parents, last = pointer.strip("/").split("/")
    for name in parents:
        node = node.get(name)
        if not isinstance(node, dict):
            return out
    node.pop(last, None)
    return out
