"""Whether a stored record matches a filter of the scope's vocabulary, decided in the process.

Why: `get` asked the database once per alternative of the caller's scope (plumbing.repository.alternatives: an
agency's scope is two), each a lookup by `_id` with the scope's members beside it. The embedded server answers
`_id` alone in ~0.35 ms and `_id` with those members in ~0.8 ms (5,000 records, docs/performance.md). So `get`
reads the record by `_id` once and checks each alternative here.

Only what scopes and restrictions are made of is decided here: equality on a top-level member (a list member
matches when one of its items does), `$ne`, `$in`, `$nin`, `$and`, `$or`, with string, integer, boolean or null
values. Anything else is UNDECIDED and the repository asks the server with that alternative, so a filter this
module does not understand can never let a record through that the server would have kept back.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

UNDECIDED = None
_MISSING = object()


def matches(record: Mapping[str, Any], where: Mapping[str, Any]) -> bool | None:
    """True or False as MongoDB would answer for `where` on `record` (raw, as stored); UNDECIDED otherwise."""
    decided: list[bool | None] = []
    for name, condition in where.items():
        if name == "$and":
            decided.append(_all(record, condition))
        elif name == "$or":
            decided.append(_any(record, condition))
        elif name.startswith("$") or "." in name:
            return UNDECIDED
        else:
            decided.append(_member(record.get(name, _MISSING), condition))
    return _conjunction(decided)


def _conjunction(decided: list[bool | None]) -> bool | None:
    if False in decided:
        return False
    return UNDECIDED if UNDECIDED in decided else True


def _all(record: Mapping[str, Any], clauses: Any) -> bool | None:
    if not isinstance(clauses, list) or not clauses:
        return UNDECIDED
    return _conjunction(
        [matches(record, clause) if isinstance(clause, Mapping) else UNDECIDED for clause in clauses]
    )


def _any(record: Mapping[str, Any], clauses: Any) -> bool | None:
    if not isinstance(clauses, list) or not clauses:
        return UNDECIDED
    decided = [matches(record, clause) if isinstance(clause, Mapping) else UNDECIDED for clause in clauses]
    if True in decided:
        return True
    return UNDECIDED if UNDECIDED in decided else False


def _member(value: Any, condition: Any) -> bool | None:
    if isinstance(condition, Mapping):
        if not condition or not all(operator in _OPERATORS for operator in condition):
            return UNDECIDED
        return _conjunction([_OPERATORS[operator](value, operand) for operator, operand in condition.items()])
    return _equals(value, condition)


def _equals(value: Any, expected: Any) -> bool | None:
    """MongoDB's equality of a stored member with a scalar: a missing member equals null only; a list member
    equals when one of its items does (a list equal as a whole to a scalar cannot be)."""
    if not _scalar(expected):
        return UNDECIDED
    if value is _MISSING:
        return expected is None
    if isinstance(value, list):
        return any(_same(item, expected) for item in value)
    return _same(value, expected)


def _same(value: Any, expected: Any) -> bool:
    if isinstance(value, bool) or isinstance(expected, bool) or value is None or expected is None:
        return type(value) is type(expected) and value == expected
    if isinstance(value, int | float) and isinstance(expected, int):
        return bool(value == expected)
    return type(value) is type(expected) and bool(value == expected)


def _scalar(value: Any) -> bool:
    return value is None or isinstance(value, str | bool | int)


def _ne(value: Any, operand: Any) -> bool | None:
    equal = _equals(value, operand)
    return None if equal is None else not equal


def _in(value: Any, operand: Any) -> bool | None:
    if not isinstance(operand, list | tuple) or not all(_scalar(item) for item in operand):
        return UNDECIDED
    return any(_equals(value, item) for item in operand)


def _nin(value: Any, operand: Any) -> bool | None:
    found = _in(value, operand)
    return None if found is None else not found


_OPERATORS = {"$eq": _equals, "$ne": _ne, "$in": _in, "$nin": _nin}
