"""An in-memory stand-in for the owned-record store, for the service-layer tests of every service.

`FakeStore` keeps what MongoDB would keep (each document's `to_mongo()` as a plain dict) and hands out fresh
document objects on every read, so a command that changes a document without writing it changes nothing, as
with the real database. `FakeRepository` applies the caller's scope the way `plumbing.repository.ScopedRepository`
does: it asks the same `ScopePolicy` (`NeedToKnowPolicy` from the platform configuration unless the class names
another) for its filter and evaluates it, AND-ed with the command's own filters, with a small MongoDB matcher
(`matches`). Mongoengine-style filters are translated by mongoengine itself (`mongoengine.queryset.transform.query`,
which needs no connection) and pages are cut by `plumbing.pagination`, both as in `ScopedRepository`.
`FakeSystemRepository` is the unscoped `SystemRepository` of follow-up steps, consumers and jobs.

Every write holds the store's one lock (`FakeStore.lock`) from its check to its change, and replaces the stored
dict rather than changing it in place, so that threads behave as against the server: a version-guarded `update`
has exactly one winner and `update_where` (the conditional single-document update of `_Repository.update_where`,
its operators applied by `apply_operators`) never lets 50 callers take more than the 3 places there are.

The documents are the services' real mongoengine classes: instantiating, validating and `to_mongo()`/`_from_son`
need no connection; only `save`, `objects` and `_get_collection` do, and the fakes never call them. Fakes prove
the service layer's logic fast; integration tests on the real servers prove the storage.
"""

from __future__ import annotations

import copy
import functools
import threading
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Generic, TypeVar

from mongoengine.queryset.transform import query as mongoengine_query

from plumbing.auth import Caller
from plumbing.clock import Clock, FixedClock, as_utc, to_millis
from plumbing.config import PlatformConfig, load_platform_config
from plumbing.documents import PROTECTED_FIELDS, OwnedDocument, new_id
from plumbing.errors import Conflict, NotFound, OutOfScope
from plumbing.pagination import DEFAULT_LIMIT, MAX_LIMIT, Page, PageRequest, build_page, decode_cursor
from plumbing.repository import (
    STAMPED_FIELDS,
    ConcurrentUpdate,
    NeedToKnowPolicy,
    ScopePolicy,
    check_operators,
)
from plumbing.retention import first_look
from plumbing.steps import STEPS, StepHandler

T = TypeVar("T", bound=OwnedDocument)

# The instant a FakeSystemRepository stamps when it is given no clock.
EPOCH = datetime(2026, 1, 1, tzinfo=UTC)


@functools.cache
def checkout_config(start: Path | None = None) -> PlatformConfig:
    """config/platform.yaml of the checkout the tests run in (looked for from `start`, default the current
    directory, upwards): the configuration a service loads by default."""
    here = (start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        candidate = folder / "config" / "platform.yaml"
        if candidate.is_file():
            return load_platform_config(candidate)
    raise FileNotFoundError("no config/platform.yaml above the current directory")


# ---------------------------------------------------------------------------------------------- matching


class FilterNotSupported(ValueError):
    """A query operator outside the subset the service layer uses: the fake refuses it instead of ignoring it."""


def _values(node: Any, path: list[str]) -> list[Any]:
    """Every value at a dotted path; arrays of sub-documents are traversed as MongoDB does (`screenings.id`)."""
    if not path:
        return [node]
    if isinstance(node, Mapping):
        return _values(node[path[0]], path[1:]) if path[0] in node else []
    if isinstance(node, list):
        return [value for item in node if isinstance(item, Mapping) for value in _values(item, path)]
    return []


def _candidates(values: list[Any]) -> list[Any]:
    """A value, and each element of an array value: `{"tags": "x"}` matches `tags: ["x", "y"]`."""
    out: list[Any] = []
    for value in values:
        out.append(value)
        if isinstance(value, list):
            out.extend(value)
    return out


def _comparable(value: Any) -> Any:
    return as_utc(value) if isinstance(value, datetime) else value


def _equal(stored: Any, wanted: Any) -> bool:
    return bool(_comparable(stored) == _comparable(wanted))


def _order(stored: Any, op: str, wanted: Any) -> bool:
    a, b = _comparable(stored), _comparable(wanted)
    same_kind = (isinstance(a, datetime) and isinstance(b, datetime)) or (
        isinstance(a, str) and isinstance(b, str)
    )
    numbers = isinstance(a, int | float) and isinstance(b, int | float)
    if not (same_kind or numbers) or isinstance(a, bool) or isinstance(b, bool):
        return False  # MongoDB compares within a type bracket only
    return {"$gt": a > b, "$gte": a >= b, "$lt": a < b, "$lte": a <= b}[op]


def _operator(values: list[Any], op: str, arg: Any) -> bool:
    candidates = _candidates(values)
    if op == "$in":
        return any(_equal(c, a) for c in candidates for a in arg) or (None in arg and not values)
    if op == "$nin":
        return not _operator(values, "$in", arg)
    if op == "$ne":
        return not (any(_equal(c, arg) for c in candidates) or (arg is None and not values))
    if op in ("$gt", "$gte", "$lt", "$lte"):
        return any(_order(c, op, arg) for c in candidates)
    if op == "$exists":
        return bool(values) == bool(arg)
    if op == "$size":
        return any(isinstance(v, list) and len(v) == arg for v in values)
    # Loud rather than silently wrong: a fake that ignored a filter would let scope bugs through.
    raise FilterNotSupported(f"the fake store does not evaluate {op}")


def matches(row: Mapping[str, Any], query: Mapping[str, Any]) -> bool:
    """Whether a stored document matches a MongoDB filter (the subset the repository and services use)."""
    for key, condition in query.items():
        if key == "$and":
            ok = all(matches(row, part) for part in condition)
        elif key == "$or":
            ok = any(matches(row, part) for part in condition)
        elif key == "$nor":
            ok = not any(matches(row, part) for part in condition)
        elif key.startswith("$"):
            raise FilterNotSupported(f"the fake store does not evaluate {key}")
        else:
            values = _values(row, key.split("."))
            if isinstance(condition, Mapping) and condition and all(k.startswith("$") for k in condition):
                ok = all(_operator(values, op, arg) for op, arg in condition.items())
            else:
                ok = any(_equal(c, condition) for c in _candidates(values)) or (
                    condition is None and not values
                )
        if not ok:
            return False
    return True


def _sort_key(row: Mapping[str, Any]) -> tuple[datetime, str]:
    return as_utc(row["updated_at"]), str(row["_id"])


# ---------------------------------------------------------------------------------------------- updating


class UpdateNotSupported(ValueError):
    """An update the fake cannot apply as MongoDB would: refused instead of approximated."""


def _parent(row: dict[str, Any], path: str, *, create: bool) -> tuple[dict[str, Any], str] | None:
    """The sub-document holding a dotted path's last field (created on the way when `create`), or None."""
    parts = path.split(".")
    node: Any = row
    for part in parts[:-1]:
        if not isinstance(node, dict):
            raise UpdateNotSupported(f"the fake store does not update inside arrays or values ({path})")
        if part not in node:
            if not create:
                return None
            node[part] = {}
        node = node[part]
    if not isinstance(node, dict):
        raise UpdateNotSupported(f"the fake store does not update inside arrays or values ({path})")
    return node, parts[-1]


def _pulled(item: Any, condition: Any) -> bool:
    """Whether `$pull` removes an array element: equal to a value, matching a document's fields, or meeting
    operator conditions (`{"$in": [...]}`), as MongoDB does."""
    if isinstance(condition, Mapping) and condition and all(k.startswith("$") for k in condition):
        return all(_operator([item], op, arg) for op, arg in condition.items())
    if isinstance(condition, Mapping):
        return isinstance(item, Mapping) and matches(item, condition)
    return _equal(item, condition)


def apply_operators(row: dict[str, Any], operators: Mapping[str, Any]) -> None:
    """Apply `$inc` / `$set` / `$push` (with `$each`) / `$pull` on dotted paths to a stored dict, in place, as
    MongoDB does (missing fields and sub-documents are created, except by `$pull`). Anything else is refused."""
    for op, fields in operators.items():
        for path, value in fields.items():
            found = _parent(row, path, create=op != "$pull")
            if found is None:
                continue  # $pull of a missing field changes nothing
            node, name = found
            if op == "$inc":
                node[name] = node.get(name, 0) + value
            elif op == "$set":
                node[name] = copy.deepcopy(value)
            elif op == "$push":
                current = node.get(name, [])
                if not isinstance(current, list):
                    raise UpdateNotSupported(f"$push to {path}, which is not an array")
                each = value["$each"] if isinstance(value, Mapping) and "$each" in value else [value]
                node[name] = [*current, *copy.deepcopy(list(each))]
            elif op == "$pull":
                if isinstance(node.get(name), list):
                    node[name] = [item for item in node[name] if not _pulled(item, value)]
            else:
                raise UpdateNotSupported(f"the fake store does not apply {op}")


# ------------------------------------------------------------------------------------------------ store


class FakeStore:
    """The in-memory database: per document class, the stored documents by id, as plain dicts."""

    def __init__(self, config: PlatformConfig | None = None) -> None:
        self.collections: dict[type[OwnedDocument], dict[str, dict[str, Any]]] = defaultdict(dict)
        # Held by every write from its check to its change (each MongoDB single-document write is atomic), and
        # while a read copies the rows out.
        self.lock = threading.RLock()
        # Whose need-to-know rules the repositories apply (config/platform.yaml `need_to_know`).
        self.config = config or checkout_config()

    # -- wiring

    def repositories(
        self, clock: Clock, policy: ScopePolicy | None = None
    ) -> Callable[[type, Caller], FakeRepository[Any]]:
        """A service's `Deps.repository` factory: `(document class, caller) -> FakeRepository` (need-to-know
        unless another `policy` is given, e.g. `ExistencePolicy`)."""

        def factory(document_class: type, caller: Caller) -> FakeRepository[Any]:
            return FakeRepository(self, document_class, caller, clock, policy)

        return factory

    def system_repositories(self, clock: Clock) -> Callable[[type, str], FakeSystemRepository[Any]]:
        """A service's unscoped repository factory: `(document class, actor) -> FakeSystemRepository`."""

        def factory(document_class: type, actor: str) -> FakeSystemRepository[Any]:
            return FakeSystemRepository(self, document_class, clock, actor)

        return factory

    # -- raw access, for the repositories and for assertions (unscoped: the test's view of the database)

    def rows(self, document_class: type[OwnedDocument]) -> dict[str, dict[str, Any]]:
        return self.collections[document_class]

    def snapshot(self, document_class: type[OwnedDocument]) -> list[dict[str, Any]]:
        """The stored rows of a class at one instant (safe while other threads write: rows are replaced, never
        changed in place)."""
        with self.lock:
            return list(self.rows(document_class).values())

    def load(self, document_class: type[T], row: Mapping[str, Any]) -> T:
        return document_class._from_son(copy.deepcopy(dict(row)))

    def all(self, document_class: type[T]) -> list[T]:
        rows = sorted(self.snapshot(document_class), key=_sort_key)
        return [self.load(document_class, row) for row in rows]

    def raw(self, document_class: type[OwnedDocument], record_id: str) -> dict[str, Any]:
        return copy.deepcopy(self.rows(document_class)[record_id])

    def events(self, type_: str | None = None) -> list[dict[str, Any]]:
        """Pending (unpublished) event envelopes of every stored document, optionally of one type."""
        with self.lock:
            rows = [row for document_class in list(self.collections) for row in self.snapshot(document_class)]
        return [
            copy.deepcopy(event)
            for row in rows
            for event in row.get("pending_events") or []
            if type_ is None or event["type"] == type_
        ]

    def complete_step(self, document_class: type[Any], doc_id: Any, step_id: str) -> None:
        """`plumbing.steps.complete`: remove one step (no version bump)."""
        with self.lock:
            rows = self.rows(document_class)
            row = rows.get(str(doc_id))
            if row is not None:
                rows[str(doc_id)] = {**row, STEPS: [s for s in row.get(STEPS) or [] if s["id"] != step_id]}

    def run_due_steps(self, handlers: Mapping[type[Any], Mapping[str, StepHandler]], now: datetime) -> int:
        """What the relay's `StepRunner` does after a crash: perform every stored step that is due."""
        done = 0
        for document_class, by_name in handlers.items():
            for row in self.snapshot(document_class):
                for step in list(row.get(STEPS) or []):
                    if as_utc(step["due"]) <= now:
                        by_name[step["name"]](self.load(document_class, row), step)
                        self.complete_step(document_class, row["_id"], step["id"])
                        done += 1
        return done

    # -- writes shared by both repositories

    def stamp_and_insert(
        self,
        doc: T,
        *,
        owner_country: str,
        owner_agency: str,
        actor: str,
        clock: Clock,
        events: Iterable[Mapping[str, Any]] = (),
        steps: Iterable[Mapping[str, Any]] = (),
    ) -> T:
        document_class = type(doc)
        now = to_millis(clock.now())
        doc.id = doc.id or new_id()
        doc.owner_country, doc.owner_agency = owner_country, owner_agency
        doc.created_at = doc.updated_at = now
        doc.created_by = doc.updated_by = actor
        doc.schema_version = document_class.SCHEMA_VERSION
        doc.retention_class = doc.retention_class or document_class.RETENTION_CLASS
        doc.retention_due_at = first_look(document_class, now, self.config)
        doc.version = 1
        doc.pending_events = [dict(e) for e in events]
        doc.outbox_lease_until = doc.outbox_lease_owner = None
        doc.pending_steps = [dict(s) for s in steps]
        doc.steps_lease_until = None
        doc.validate()
        with self.lock:
            rows = self.rows(document_class)
            if doc.id in rows:
                raise Conflict(f"{document_class.__name__} with this id already exists")
            rows[doc.id] = copy.deepcopy(doc.to_mongo().to_dict())
        return doc

    def write_update(
        self,
        doc: T,
        *,
        expected_version: int | None,
        actor: str,
        clock: Clock,
        events: Iterable[Mapping[str, Any]] = (),
        steps: Iterable[Mapping[str, Any]] = (),
        scope: Mapping[str, Any] | None = None,
    ) -> T:
        """The repositories' `update`: guarded by the version read (and the caller's scope, when given)."""
        document_class = type(doc)
        expected = doc.version if expected_version is None else expected_version
        doc.updated_at, doc.updated_by = to_millis(clock.now()), actor
        doc.schema_version = document_class.SCHEMA_VERSION
        doc.validate()
        written = copy.deepcopy(doc.to_mongo().to_dict())
        with self.lock:
            rows = self.rows(document_class)
            old = rows.get(str(doc.id))
            if old is None or (scope is not None and not matches(old, scope)):
                raise NotFound(f"{document_class.__name__} not found")
            if old["version"] != expected:
                raise ConcurrentUpdate(
                    f"{document_class.__name__} was changed by someone else; read it again"
                )
            row = {k: v for k, v in old.items() if k in PROTECTED_FIELDS}
            row.update({k: v for k, v in written.items() if k not in PROTECTED_FIELDS})
            row["version"] = old["version"] + 1
            _append_events(row, old, events)
            row[STEPS] = [*(old.get(STEPS) or []), *(dict(s) for s in steps)]
            rows[str(doc.id)] = copy.deepcopy(row)
        doc.version = expected + 1
        doc._clear_changed_fields()
        return doc

    def conditional_update(
        self,
        document_class: type[OwnedDocument],
        record_id: str,
        where: Iterable[Mapping[str, Any]],
        operators: Mapping[str, Any],
        *,
        actor: str,
        clock: Clock,
        events: Iterable[Mapping[str, Any]] = (),
    ) -> bool:
        """The repositories' `update_where`: when the stored record matches every filter of `where` (the scope,
        the condition), apply `operators`, `version + 1`, the stamps and `events`, atomically; whether it did."""
        check_operators(operators)
        envelopes = [dict(e) for e in events]
        now = to_millis(clock.now())
        with self.lock:
            rows = self.rows(document_class)
            old = rows.get(str(record_id))
            if old is None or not all(matches(old, part) for part in where):
                return False
            row = copy.deepcopy(old)
            apply_operators(row, operators)
            row["version"] = old["version"] + 1
            row["updated_at"], row["updated_by"] = now, actor
            _append_events(row, old, envelopes)
            rows[str(record_id)] = row
        return True


def _append_events(row: dict[str, Any], old: Mapping[str, Any], events: Iterable[Mapping[str, Any]]) -> None:
    """The outbox append of every write (plumbing.outbox.push_events): the stored pending events, then these."""
    row["pending_events"] = [*(old.get("pending_events") or []), *(dict(e) for e in events)]


# ---------------------------------------------------------------------------------------- repositories


class FakeRepository(Generic[T]):
    """`ScopedRepository` over a `FakeStore`: the caller's scope on every read and write, `NotFound` outside it,
    ownership from the caller on insert, version-guarded updates carrying events and steps."""

    def __init__(
        self,
        store: FakeStore,
        document_class: type[T],
        caller: Caller,
        clock: Clock,
        policy: ScopePolicy | None = None,
    ) -> None:
        if not (isinstance(document_class, type) and issubclass(document_class, OwnedDocument)):
            raise TypeError("repositories serve OwnedDocument subclasses only")
        self.store = store
        self.document_class = document_class
        self.caller = caller
        self.clock = clock
        self.policy: ScopePolicy = (
            policy
            or getattr(document_class, "SCOPE_POLICY", None)
            or NeedToKnowPolicy.from_config(store.config)
        )

    def _visible(self, *parts: Mapping[str, Any]) -> list[dict[str, Any]]:
        """Stored rows in the caller's scope matching every part, in (updated_at, id) order."""
        scope = self.policy.read_filter(self.caller)
        if scope is None:
            return []
        rows = self.store.snapshot(self.document_class)
        found = [row for row in rows if matches(row, scope) and all(matches(row, p) for p in parts)]
        return sorted(found, key=_sort_key)

    def _user_query(self, filters: Mapping[str, Any]) -> dict[str, Any]:
        return dict(mongoengine_query(self.document_class, **filters)) if filters else {}

    # -- reads

    def get(self, record_id: str) -> T:
        found = self._visible({"_id": record_id})
        if not found:
            raise NotFound(f"{self.document_class.__name__} not found")
        return self.store.load(self.document_class, found[0])

    def find(self, *, limit: int | None = None, **filters: Any) -> list[T]:
        rows = self._visible(self._user_query(filters))
        return [self.store.load(self.document_class, row) for row in (rows[:limit] if limit else rows)]

    def rows(
        self, where: Mapping[str, Any], members: Sequence[str], *, limit: int | None = None
    ) -> list[dict[str, Any]]:
        """`ProjectingRepository.rows`: the visible rows, only `_id`, `updated_at` and `members`."""
        wanted = {"_id", "updated_at", *members}
        visible = self._visible(dict(where))
        return [
            {name: copy.deepcopy(value) for name, value in row.items() if name in wanted}
            for row in (visible[:limit] if limit else visible)
        ]

    def list_page(
        self,
        *,
        limit: int | None = None,
        cursor: str | None = None,
        updated_since: datetime | None = None,
        **filters: Any,
    ) -> Page[T]:
        # The same page request (bounds, cursor, cut) as ScopedRepository.list_page, on the fake's rows.
        size = min(max(1, limit or DEFAULT_LIMIT), MAX_LIMIT)
        since = to_millis(updated_since) if updated_since is not None else None
        request = PageRequest(size, decode_cursor(cursor) if cursor else None, since)
        rows = self._visible(self._user_query(filters), request.mongo_filter())[: request.fetch]
        docs = [self.store.load(self.document_class, row) for row in rows]
        return build_page(docs, request, key=lambda doc: (doc.updated_at, doc.id))

    # -- writes

    def insert(
        self,
        doc: T,
        *,
        events: Iterable[Mapping[str, Any]] = (),
        steps: Iterable[Mapping[str, Any]] = (),
    ) -> T:
        if not self.policy.may_create(self.caller):
            raise OutOfScope("the caller's roles cannot create this kind of record")
        return self.store.stamp_and_insert(
            doc,
            owner_country=self.caller.country,
            owner_agency=self.caller.agency,
            actor=self.caller.sub,
            clock=self.clock,
            events=events,
            steps=steps,
        )

    def update(
        self,
        doc: T,
        *,
        expected_version: int | None = None,
        events: Iterable[Mapping[str, Any]] = (),
        steps: Iterable[Mapping[str, Any]] = (),
    ) -> T:
        scope = self.policy.read_filter(self.caller)
        if scope is None:
            raise NotFound(f"{self.document_class.__name__} not found")
        return self.store.write_update(
            doc,
            expected_version=expected_version,
            actor=self.caller.sub,
            clock=self.clock,
            events=events,
            steps=steps,
            scope=scope,
        )

    def update_where(
        self,
        record_id: str,
        condition: Mapping[str, Any],
        operators: Mapping[str, Any],
        *,
        events: Iterable[Mapping[str, Any]] = (),
    ) -> bool:
        """`ScopedRepository.update_where`: False when nothing matched, whether missing, out of scope (or the
        caller sees nothing at all) or failing the condition."""
        check_operators(operators)
        scope = self.policy.read_filter(self.caller)
        if scope is None:
            return False
        return self.store.conditional_update(
            self.document_class,
            record_id,
            [scope, {"_id": record_id}, condition],
            operators,
            actor=self.caller.sub,
            clock=self.clock,
            events=events,
        )


class FakeSystemRepository(Generic[T]):
    """`SystemRepository` over a `FakeStore` (unscoped; what the follow-up step handlers use)."""

    def __init__(
        self, store: FakeStore, document_class: type[T], clock: Clock | None = None, actor: str = "system"
    ) -> None:
        self.store = store
        self.document_class = document_class
        self.clock: Clock = clock or FixedClock(EPOCH)
        self.actor = actor

    def get(self, record_id: str) -> T:
        row = self.store.rows(self.document_class).get(record_id)
        if row is None:
            raise NotFound(f"{self.document_class.__name__} not found")
        return self.store.load(self.document_class, row)

    def find(self, *, limit: int | None = None, **filters: Any) -> list[T]:
        """`SystemRepository.find`: every record matching mongoengine-style filters, in (updated_at, id) order."""
        where = dict(mongoengine_query(self.document_class, **filters)) if filters else {}
        rows = sorted(
            (r for r in self.store.snapshot(self.document_class) if matches(r, where)), key=_sort_key
        )
        return [self.store.load(self.document_class, row) for row in (rows[:limit] if limit else rows)]

    def insert(
        self,
        doc: T,
        *,
        owner_country: str,
        owner_agency: str,
        events: Iterable[Mapping[str, Any]] = (),
    ) -> T:
        return self.store.stamp_and_insert(
            doc,
            owner_country=owner_country,
            owner_agency=owner_agency,
            actor=self.actor,
            clock=self.clock,
            events=events,
        )

    def update(
        self,
        doc: T,
        *,
        expected_version: int | None = None,
        events: Iterable[Mapping[str, Any]] = (),
        steps: Iterable[Mapping[str, Any]] = (),
    ) -> T:
        """`SystemRepository.update`: version-guarded like the scoped one, without a scope."""
        return self.store.write_update(
            doc,
            expected_version=expected_version,
            actor=self.actor,
            clock=self.clock,
            events=events,
            steps=steps,
        )

    def reschedule(
        self, record_id: str, expected_version: int, field_name: str, instant: datetime | None
    ) -> bool:
        """`SystemRepository.reschedule`: a scheduling field set without a new version."""
        if field_name not in OwnedDocument._fields or field_name in STAMPED_FIELDS:
            raise ValueError(f"{field_name!r} is not a scheduling field")
        with self.store.lock:
            row = self.store.rows(self.document_class).get(record_id)
            if row is None or row.get("version") != expected_version:
                return False
            row[field_name] = instant
            return True

    def update_where(
        self,
        record_id: str,
        condition: Mapping[str, Any],
        operators: Mapping[str, Any],
        *,
        events: Iterable[Mapping[str, Any]] = (),
    ) -> bool:
        """`SystemRepository.update_where`: the conditional update without a scope."""
        return self.store.conditional_update(
            self.document_class,
            record_id,
            [{"_id": record_id}, condition],
            operators,
            actor=self.actor,
            clock=self.clock,
            events=events,
        )


# ------------------------------------------------------------------------------------ other collaborators


@dataclass
class FakeSequences:
    """`SequenceAllocator`: one counter per (country, year), and the calls it answered."""

    last: dict[tuple[str, int], int] = field(default_factory=dict)
    calls: list[tuple[str, int]] = field(default_factory=list)
    failing: bool = False  # simulate the database failing between the two writes of a registration

    def __call__(self, country: str, year: int) -> int:
        if self.failing:
            raise ConnectionError("counter unavailable")
        self.calls.append((country, year))
        self.last[(country, year)] = self.last.get((country, year), 0) + 1
        return self.last[(country, year)]
