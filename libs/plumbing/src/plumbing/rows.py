"""Raw rows of the records in a caller's scope, only the members asked for: a selection step that reads many
records to pick a few does not build a document for each.

Why: a duplicate search reads every record of the country that shares a blocking key with it (hundreds to
thousands at 100,000 people) to rank them before it opens the few it examines; building a mongoengine document
costs ~0.1-0.2 ms a record (`PersonDocument`, measured 2026-12-07), reading three members of it a fraction.

`ProjectingRepository.rows` goes through the repository's own `_where`: the caller's filter AND the scope of its
policy AND the restrictions of processing, as `find` applies them, one flat filter per alternative. It is a
subclass of its own, not a change of `ScopedRepository`, so that the repository module keeps one owner."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, TypeVar

from plumbing.documents import OwnedDocument
from plumbing.repository import ScopedRepository

D = TypeVar("D", bound=OwnedDocument)


class ProjectingRepository(ScopedRepository[D]):
    """A `ScopedRepository` that can also answer raw rows (`rows`)."""

    def rows(
        self, where: Mapping[str, Any], members: Sequence[str], *, limit: int | None = None
    ) -> list[dict[str, Any]]:
        """The stored rows (`_id`, `updated_at` and `members`, as stored) of the records `find(__raw__=where)`
        would return, in the same order (updated_at, id).

        `limit`: at most that many, the first the server finds (in its index's order, not the list order): the
        server is not asked to sort, since a sort with a limit reads the whole collection on the embedded server
        (docs/performance.md). A caller learns that more exist from getting `limit` rows."""
        if self.document_class._meta.get("allow_inheritance"):
            # Such a class adds its own class filter to every query (mongoengine): ask `find` instead.
            raise TypeError("rows serves document classes without subclasses only")
        alternatives = self._where(dict(where))
        if alternatives is None:
            return []
        projection = dict.fromkeys(("updated_at", *members), 1)
        found: dict[Any, dict[str, Any]] = {}
        for alternative in alternatives:
            for row in self.collection.find(alternative, projection, limit=limit or 0):
                found.setdefault(row["_id"], row)
        ordered = sorted(found.values(), key=lambda row: (row.get("updated_at"), row["_id"]))
        return ordered[:limit] if limit else ordered
