"""Cursor pagination over (updated_at, id) so a national system can sync without gaps or repeats: the one
pagination of the platform (ScopedRepository.list_page and `find_page` over a plain collection both use it).

The cursor is opaque to clients: URL-safe base64 (unpadded) of a small JSON array [updated_at as integer
milliseconds since the Unix epoch, id]. Integers, not floats or text: .123 s must not come back as .122999 and
skip or repeat a record. Order is always ascending by (updated_at, id) — id breaks ties between records written
in the same millisecond — and the next page starts strictly after the cursor. `updated_since` is inclusive.
Fetch `limit + 1` rows: the extra row tells whether there is a next page without a second query.

A cursor this service did not issue (not base64, not the array, an instant outside years 1..9999) raises
`InvalidCursor`: 400 `bad-request` with the pointer `/query/cursor`; the rejected cursor is never echoed.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Generic, TypeVar
from urllib.parse import urlencode

from pymongo.collection import Collection

from plumbing.clock import as_utc, to_millis
from plumbing.errors import InvalidCursor
from plumbing.problems import FieldError, Problem

DEFAULT_LIMIT = 50
MAX_LIMIT = 200
T = TypeVar("T")
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class Cursor:
    updated_at: datetime
    id: str


def encode_cursor(updated_at: datetime, record_id: str) -> str:
    # Integer arithmetic: float timestamps can turn .123 into .122999 and skip or repeat a record.
    millis = (to_millis(as_utc(updated_at)) - _EPOCH) // timedelta(milliseconds=1)
    raw = json.dumps([millis, str(record_id)], separators=(",", ":")).encode("utf-8")
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def decode_cursor(cursor: str) -> Cursor:
    try:
        raw = base64.urlsafe_b64decode((cursor + "=" * (-len(cursor) % 4)).encode("ascii"))
        millis, record_id = json.loads(raw)
        if isinstance(millis, bool) or not isinstance(millis, int):
            raise ValueError("cursor shape")
        if not isinstance(record_id, str) or not record_id:
            raise ValueError("cursor shape")
        return Cursor(_EPOCH + timedelta(milliseconds=millis), record_id)
    except (ValueError, TypeError, binascii.Error, UnicodeEncodeError, OverflowError):
        # A cursor is opaque: one this service did not issue cannot be read, so the request is malformed.
        raise InvalidCursor() from None


def parse_updated_since(value: datetime | str | None) -> datetime | None:
    """`updated_since` as a UTC instant. Not RFC 3339 with an offset -> 422; an instant that exists only in its
    own offset (0001-01-01T00:00:00+14:00 is before year 1 in UTC, 9999-12-31T23:59:59-14:00 after 9999) -> 400,
    here rather than as an overflow deep inside the database driver."""
    if value is None:
        return None
    pointer = "/query/updated_since"
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            raise Problem("validation-failed", errors=[FieldError(pointer, "format")]) from None
        if value.tzinfo is None:
            raise Problem("validation-failed", errors=[FieldError(pointer, "format")])
    try:
        return as_utc(value)
    except OverflowError:
        raise Problem("bad-request", errors=[FieldError(pointer, "range")]) from None


@dataclass(frozen=True)
class PageRequest:
    limit: int = DEFAULT_LIMIT
    after: Cursor | None = None
    updated_since: datetime | None = None

    @classmethod
    def parse(
        cls, limit: int | None = None, cursor: str | None = None, updated_since: datetime | str | None = None
    ) -> PageRequest:
        chosen = DEFAULT_LIMIT if limit is None else int(limit)
        if not 1 <= chosen <= MAX_LIMIT:
            raise Problem(
                "validation-failed",
                errors=[FieldError("/query/limit", "maximum" if chosen > 1 else "minimum")],
            )
        since = parse_updated_since(updated_since)
        return cls(chosen, decode_cursor(cursor) if cursor else None, since)

    def mongo_filter(self, updated_field: str = "updated_at", id_field: str = "_id") -> dict[str, Any]:
        """The condition to AND with the caller's scope: strictly after the cursor, at/after updated_since.

        Only one of the two bounds is ever sent, because one always implies the other (a cursor before
        `updated_since` is overtaken by it; one at or after it already implies it), and the cursor's `$or` is a
        range on `updated_at` or an equality on it with a range on the id: shapes a compound index with the
        scope's members first serves (plumbing.repository.alternatives splits the `$or`)."""
        after, since = self.after, self.updated_since
        if after is not None and (since is None or since <= after.updated_at):
            return {
                "$or": [
                    {updated_field: {"$gt": after.updated_at}},
                    {updated_field: after.updated_at, id_field: {"$gt": after.id}},
                ]
            }
        if since is not None:
            return {updated_field: {"$gte": since}}
        return {}

    @staticmethod
    def mongo_sort(updated_field: str = "updated_at", id_field: str = "_id") -> list[tuple[str, int]]:
        return [(updated_field, 1), (id_field, 1)]

    @property
    def fetch(self) -> int:
        """How many rows to ask the database for (one more than a page)."""
        return self.limit + 1


@dataclass(frozen=True)
class Page(Generic[T]):
    items: list[T]
    next_cursor: str | None = None
    limit: int = DEFAULT_LIMIT

    def body(
        self, render: Callable[[T], Any] = lambda item: item, items_key: str = "items"
    ) -> dict[str, Any]:
        return {items_key: [render(item) for item in self.items], "next_cursor": self.next_cursor}

    def link_header(self, path: str, query: Mapping[str, Any] | None = None) -> str | None:
        """RFC 8288 `Link: <...>; rel="next"` with the same query (cursor replaced), or None on the last page."""
        if self.next_cursor is None:
            return None
        params = {k: v for k, v in (query or {}).items() if v is not None and k != "cursor"}
        params["cursor"] = self.next_cursor
        return f'<{path}?{urlencode(params)}>; rel="next"'


def build_page(rows: Sequence[T], request: PageRequest, key: Callable[[T], tuple[datetime, str]]) -> Page[T]:
    """Cut `rows` (fetched with `request.fetch`, sorted by (updated_at, id)) to a page and its next cursor."""
    items = list(rows[: request.limit])
    if len(rows) > request.limit and items:
        updated_at, record_id = key(items[-1])
        return Page(items, encode_cursor(updated_at, record_id), request.limit)
    return Page(items, None, request.limit)


def find_page(
    collection: Collection, condition: Mapping[str, Any], request: PageRequest
) -> Page[dict[str, Any]]:
    """One page of the plain documents of `collection` matching `condition` (plain equalities, the caller's
    scope: AND-ed with the page's own bounds), in (updated_at, _id) order. For collections without a document
    class; owned records are paged by ScopedRepository.list_page.

    The cursor's two branches are asked as two flat filters and merged here: a filter with an `$or` is served
    by no index on the embedded Mongo-wire server (docs/engineering.md), and each branch is, by an index on the
    condition's members followed by (updated_at, _id)."""
    bounds = request.mongo_filter()
    rows: dict[Any, dict[str, Any]] = {}
    for branch in bounds.get("$or") or [bounds]:
        where = {**condition, **branch}
        for row in collection.find(where).sort(request.mongo_sort()).limit(request.fetch):
            rows.setdefault(row["_id"], row)
    ordered = sorted(rows.values(), key=lambda row: (row["updated_at"], row["_id"]))[: request.fetch]
    return build_page(ordered, request, key=lambda row: (row["updated_at"], row["_id"]))
