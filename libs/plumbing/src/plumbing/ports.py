"""What a service's command handlers use of the repositories, as structural types (one definition for every
service): `ScopedRecords` is `plumbing.repository.ScopedRepository` and `plumbing.fake_store`'s scoped fake,
`SystemRecords` is `plumbing.repository.SystemRepository` and its fake. A service's `service_layer/deps.py`
names them in its `Deps`, so handlers are written against these and tested on the fakes.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any, Protocol, TypeVar

from plumbing.documents import OwnedDocument
from plumbing.repository import Page

D = TypeVar("D", bound=OwnedDocument)


class ScopedRecords(Protocol[D]):
    """Owned records of one document class as one caller may see them.

    Every read is limited to the caller's scope (the class's policy); a record outside it is `NotFound`, like a
    missing one. `insert` sets ownership from the caller (never from `doc`) and raises `OutOfScope` when the
    caller's roles cannot create such a record. `update` writes `doc`, `version + 1`, `events` (outbox) and
    follow-up `steps` at once, guarded by the version `doc` was read with (`Conflict` when it changed).

    `update_where` is the one conditional update: MongoDB update `operators` (`$inc`/`$set`/`$push`/`$pull`)
    applied when the record is in scope AND matches `condition`, bumping `version`, stamping updated_at/by and
    appending `events`, in ONE single-document update (atomic in MongoDB); True when it matched. False says only
    that nothing was written (missing, out of scope or condition not met, deliberately alike)."""

    def get(self, record_id: str) -> D: ...

    def find(self, *, limit: int | None = None, **filters: Any) -> list[D]:
        """Mongoengine-style filters (`status="open"`, `screenings__id=...`, `__raw__={...}`)."""
        ...

    def list_page(
        self,
        *,
        limit: int | None = None,
        cursor: str | None = None,
        updated_since: datetime | None = None,
        **filters: Any,
    ) -> Page[D]: ...

    def insert(
        self,
        doc: D,
        *,
        events: Iterable[Mapping[str, Any]] = (),
        steps: Iterable[Mapping[str, Any]] = (),
    ) -> D: ...

    def update(
        self,
        doc: D,
        *,
        expected_version: int | None = None,
        events: Iterable[Mapping[str, Any]] = (),
        steps: Iterable[Mapping[str, Any]] = (),
    ) -> D: ...

    def update_where(
        self,
        record_id: str,
        condition: Mapping[str, Any],
        operators: Mapping[str, Any],
        *,
        events: Iterable[Mapping[str, Any]] = (),
    ) -> bool: ...


class ProjectedRecords(ScopedRecords[D], Protocol[D]):
    """`ScopedRecords` that also answer raw rows: `plumbing.rows.ProjectingRepository` and the scoped fake."""

    def rows(
        self, where: Mapping[str, Any], members: Sequence[str], *, limit: int | None = None
    ) -> list[dict[str, Any]]:
        """The stored rows (`_id`, `updated_at` and `members`) of the records `find(__raw__=where)` returns, in
        its order: the same scope and restrictions, without building documents; with `limit`, at most that many
        (whichever the store finds first)."""
        ...


class SystemRecords(Protocol[D]):
    """Unscoped records of one document class, for the workers (follow-up steps, consumers, schedulers) and for
    records whose owner the rules decide; `update_where` as above, without a scope."""

    def get(self, record_id: str) -> D: ...

    def find(self, *, limit: int | None = None, **filters: Any) -> list[D]: ...

    def insert(
        self,
        doc: D,
        *,
        owner_country: str,
        owner_agency: str,
        events: Iterable[Mapping[str, Any]] = (),
    ) -> D: ...

    def update(
        self,
        doc: D,
        *,
        expected_version: int | None = None,
        events: Iterable[Mapping[str, Any]] = (),
        steps: Iterable[Mapping[str, Any]] = (),
    ) -> D: ...

    def reschedule(
        self, record_id: str, expected_version: int, field_name: str, instant: datetime | None
    ) -> bool: ...

    def update_where(
        self,
        record_id: str,
        condition: Mapping[str, Any],
        operators: Mapping[str, Any],
        *,
        events: Iterable[Mapping[str, Any]] = (),
    ) -> bool: ...
