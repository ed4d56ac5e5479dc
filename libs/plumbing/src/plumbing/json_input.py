"""What a JSON request body may be, before the contract looks at it (docs/security.md "Input").

`parse_body` turns the raw bytes into Python values or raises a 400 problem, never anything else:

- nesting deeper than `MAX_DEPTH` is refused *before* parsing (the standard parser recurses, and a body nested
  a thousand deep would end in a RecursionError); the contracts need far less than 32 levels;
- duplicate member names are refused (parsers disagree on which one wins, so the body is ambiguous);
- numbers must be finite (`1e309` would become infinity, `NaN` and `Infinity` are not JSON);
- strings must be valid Unicode: an escaped lone surrogate (`"\\ud800"`) parses, but can be neither stored nor
  encoded again;
- the charset named by Content-Type must exist, and the bytes must decode with it.

`unsafe_text` then finds strings holding characters that hide or reorder what an officer reads on screen:
NUL and the other C0 controls except tab, line feed and carriage return, DEL, the C1 controls, and the
bidirectional embeddings, overrides and isolates (U+202A-U+202E, U+2066-U+2069). Those are a 422 with the
field's pointer, after the contract validated the body (so every member name in a pointer is declared).
Nothing here ever repeats a submitted value.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterator
from typing import Any

from plumbing.problems import FieldError, Problem

MAX_DEPTH = 32
# A JSON string, written so that the regex engine never backtracks: runs of plain characters, then escapes.
_STRING = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"', re.DOTALL)
_BRACKET = re.compile(r"[\[\]{}]")
_UNSAFE = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


class _Malformed(ValueError):
    def __init__(self, code: str) -> None:
        super().__init__(code)
        self.code = code


def parse_body(raw: bytes, encoding: str = "utf-8") -> Any:
    """The body as JSON values; a 400 `bad-request` problem with pointer `/body` and a code otherwise."""
    try:
        text = raw.decode(encoding)
    except (UnicodeDecodeError, LookupError):
        raise _bad("encoding") from None
    try:
        if nesting_depth(text) > MAX_DEPTH:
            raise _Malformed("depth")
        body = json.loads(
            text,
            object_pairs_hook=_unique_members,
            parse_constant=_no_constant,
            parse_float=_finite_float,
        )
        if not _valid_unicode(body):
            raise _Malformed("unicode")
    except _Malformed as malformed:
        raise _bad(malformed.code) from None
    except (ValueError, RecursionError):
        # JSONDecodeError, an integer longer than the interpreter converts, ...
        raise _bad("json") from None
    return body


def nesting_depth(text: str) -> int:
    """The deepest nesting of arrays and objects, brackets inside strings ignored (no recursion)."""
    depth = deepest = 0
    for bracket in _BRACKET.finditer(_STRING.sub('""', text)):
        if bracket.group() in "[{":
            depth += 1
            deepest = max(deepest, depth)
        else:
            depth -= 1
    return deepest


def unsafe_text(body: Any, prefix: str = "/body") -> list[FieldError]:
    """A 422 error (code `characters`) for every string holding a control or bidirectional formatting
    character; map keys are checked as well."""
    return [FieldError(pointer, "characters") for pointer in _unsafe_pointers(body, prefix)]


def _unsafe_pointers(value: Any, pointer: str) -> Iterator[str]:
    if isinstance(value, str):
        if _UNSAFE.search(value):
            yield pointer
    elif isinstance(value, dict):
        for key, item in value.items():
            escaped = f"{pointer}/{str(key).replace('~', '~0').replace('/', '~1')}"
            if _UNSAFE.search(str(key)):
                yield pointer
                continue
            yield from _unsafe_pointers(item, escaped)
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _unsafe_pointers(item, f"{pointer}/{index}")


def _bad(code: str) -> Problem:
    return Problem("bad-request", errors=[FieldError("/body", code)])


def _unique_members(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    members = dict(pairs)
    if len(members) != len(pairs):
        raise _Malformed("duplicate-member")
    return members


def _no_constant(_name: str) -> Any:
    raise _Malformed("number")


def _finite_float(text: str) -> float:
    number = float(text)
    if not math.isfinite(number):
        raise _Malformed("number")
    return number


def _valid_unicode(value: Any) -> bool:
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return False
        return True
    if isinstance(value, dict):
        return all(_valid_unicode(key) and _valid_unicode(item) for key, item in value.items())
    if isinstance(value, list):
        return all(_valid_unicode(item) for item in value)
    return True
