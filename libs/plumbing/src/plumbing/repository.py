"""The only way to read and write owned records.

`ScopedRepository(DocumentClass, caller)` is what request handlers use: every query is AND-ed with the
caller's scope (need-to-know, docs/conventions.md), a record outside it is indistinguishable from a missing one
(`NotFound` -> 404), and ownership is set from the verified caller on insert, never from input.

`SystemRepository(DocumentClass)` is the explicitly named unscoped access for relays, consumers and jobs; code
review treats any use of it in a request handler as a bug.

Writes are single-document and atomic: the change, `version + 1` and the command's event envelopes (appended to
`pending_events` with `$push`, the outbox) go in one update, guarded by the version the caller read. Where a
version guard would make concurrent writers retry for nothing (taking one of a few free places),
`update_where` applies update operators under a condition instead, still in one single-document update.
"""

from __future__ import annotations

import functools
import random
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Generic, Protocol, TypeVar, cast

from mongoengine.errors import NotUniqueError
from pymongo.collection import Collection

from plumbing.clock import Clock, SystemClock, as_utc, to_millis
from plumbing.config import PlatformConfig, platform_config
from plumbing.documents import PROTECTED_FIELDS, OwnedDocument, new_id
from plumbing.errors import Conflict, NotFound, OutOfScope
from plumbing.matching import UNDECIDED, matches
from plumbing.outbox import notify_relay, push_events
from plumbing.pagination import DEFAULT_LIMIT, MAX_LIMIT, Page, PageRequest, build_page, decode_cursor
from plumbing.retention import first_look
from plumbing.steps import STEPS

if TYPE_CHECKING:
    from plumbing.auth import Caller

T = TypeVar("T", bound=OwnedDocument)

__all__ = [
    "ExistencePolicy",
    "NeedToKnowPolicy",
    "Page",
    "ScopePolicy",
    "ScopedRepository",
    "SystemRepository",
    "check_operators",
    "default_policy",
]


class ConcurrentUpdate(Conflict):
    """The record changed between its read and a version-guarded write (another request, a consumer storing a
    receipt, a scheduler). A 409 for a client like every Conflict; a command that re-reads the record and
    applies its change again may retry instead (`retry_concurrent`)."""


F = TypeVar("F", bound=Callable[..., Any])


def retry_concurrent(attempts: int = 5) -> Callable[[F], F]:
    """Run a read-change-write command again when its write lost a race (`ConcurrentUpdate`): nothing of the
    failed attempt was stored, so the next one starts from the record as it is now. Only for commands whose
    whole effect is that one guarded write (side effects after it, such as a delivery, happen once)."""

    def decorate(command: F) -> F:
        @functools.wraps(command)
        def run(*args: Any, **kwargs: Any) -> Any:
            for attempt in range(attempts):
                try:
                    return command(*args, **kwargs)
                except ConcurrentUpdate:
                    if attempt == attempts - 1:
                        raise
                    time.sleep(random.uniform(0, 0.01 * (attempt + 1)))  # desynchronise racing writers
            raise AssertionError("unreachable")

        return cast(F, run)

    return decorate


class ScopePolicy(Protocol):
    """Decides what a caller may see of one document class. Pluggable per class (`SCOPE_POLICY`)."""

    def read_filter(self, caller: Caller) -> dict[str, Any] | None:
        """A MongoDB filter selecting what the caller may see, or None for nothing at all."""
        ...

    def may_create(self, caller: Caller) -> bool: ...


@dataclass(frozen=True)
class NeedToKnowPolicy:
    """Need-to-know (docs/conventions.md), with the role sets of `need_to_know` in config/platform.yaml: country-wide
    roles read their whole country; agency roles read their own agency's records and records assigned to them;
    assigned-only roles (shelters, guardians, BID panels) read only what is assigned to them; every other role
    (analysts, auditors, administrators) reads no owned record at all through this path."""

    country_wide_roles: frozenset[str]
    agency_roles: frozenset[str]
    assigned_only_roles: frozenset[str]

    @classmethod
    def from_config(cls, config: PlatformConfig) -> NeedToKnowPolicy:
        sets = config.need_to_know
        return cls(sets.country_wide, sets.agency, sets.assigned_only)

    def read_filter(self, caller: Caller) -> dict[str, Any] | None:
        roles = frozenset(caller.roles)
        # Always within the caller's own country: another country's record is never in anyone's scope here
        # (cross-border data arrives as forms and becomes the receiving country's own record).
        if roles & self.country_wide_roles:
            return {"owner_country": caller.country}
        clauses: list[dict[str, Any]] = []
        if roles & self.agency_roles:
            clauses.append({"owner_agency": caller.agency})
        if roles & (self.agency_roles | self.assigned_only_roles):
            clauses.append({"assigned_to": caller.sub})
        if not clauses:
            return None
        return {"owner_country": caller.country, "$or": clauses}

    def may_create(self, caller: Caller) -> bool:
        return bool(frozenset(caller.roles) & (self.country_wide_roles | self.agency_roles))


@dataclass(frozen=True)
class ExistencePolicy:
    """What may be known to *exist*, not read: every record of the caller's own country, for the roles that read
    owned records at all by agency or country (need-to-know's `country_wide` and `agency` sets), so that an
    identifying officer learns that a likely match is already known elsewhere in the country. A service uses it
    only to select candidates and answers their content through `NeedToKnowPolicy`; it never creates records."""

    roles: frozenset[str]

    @classmethod
    def from_config(cls, config: PlatformConfig) -> ExistencePolicy:
        sets = config.need_to_know
        return cls(sets.country_wide | sets.agency)

    def read_filter(self, caller: Caller) -> dict[str, Any] | None:
        if not frozenset(caller.roles) & self.roles:
            return None
        return {"owner_country": caller.country}

    def may_create(self, caller: Caller) -> bool:
        return False


def default_policy() -> NeedToKnowPolicy:
    """The need-to-know policy of the process's platform configuration (plumbing.config.platform_config)."""
    return NeedToKnowPolicy.from_config(platform_config())


# The update operators `update_where` accepts, and the fields it never lets them touch: ownership, creation,
# version, outbox and steps (PROTECTED_FIELDS), and the stamps the repository writes itself.
CONDITIONAL_OPERATORS = frozenset({"$inc", "$set", "$push", "$pull"})
STAMPED_FIELDS = PROTECTED_FIELDS | {"updated_at", "updated_by", "schema_version"}


def check_operators(operators: Mapping[str, Any]) -> None:
    """Refuse (ValueError) update operators `update_where` does not apply, and any path into a field only the
    repository writes (`capacity.places.free` is fine; `version`, `pending_events.0`, `owner_country` are not).
    Shared with plumbing.fake_store, so that the fake refuses exactly what the real repository refuses."""
    for op, fields in operators.items():
        if op not in CONDITIONAL_OPERATORS:
            raise ValueError(
                f"update_where does not apply {op} (only {', '.join(sorted(CONDITIONAL_OPERATORS))})"
            )
        if not isinstance(fields, Mapping):
            raise ValueError(f"{op} takes a mapping of field paths")
        for path in fields:
            if not isinstance(path, str) or not path or path.split(".", 1)[0] in STAMPED_FIELDS:
                raise ValueError(f"update_where cannot write {path!r}: only the repository writes it")


def _merge(update: dict[str, Any], fragment: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
    """Merge an update fragment (`{"$push": {...}}`) into an update, operator by operator."""
    for op, fields in fragment.items():
        update.setdefault(op, {}).update(fields)
    return update


def _with_events(update: dict[str, Any], envelopes: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """The update with `envelopes` appended to the outbox (plumbing.outbox.push_events), if there are any."""
    return _merge(update, push_events(envelopes)) if envelopes else update


@dataclass
class _Write:
    filter: dict[str, Any]
    update: dict[str, Any] = field(default_factory=dict)


def _merged_condition(first: Any, second: Any) -> Any | None:
    """One condition on a field for two (`{"$gte": 1}` and `{"$gt": 0}` -> `{"$gte": 1, "$gt": 0}`), or None when
    they cannot share one document (an embedded document's equality, the same operator twice)."""

    def operators(value: Any) -> dict[str, Any] | None:
        if isinstance(value, Mapping):
            return dict(value) if value and all(str(k).startswith("$") for k in value) else None
        # Only plain values: `{"f": <regex>}` matches the pattern, `{"f": {"$eq": <regex>}}` the regex itself.
        return {"$eq": value} if value is None or isinstance(value, str | int | float | datetime) else None

    a, b = operators(first), operators(second)
    if a is None or b is None or a.keys() & b.keys():
        return None
    return {**a, **b}


def conjunction(clauses: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """One filter matching what every clause matches, its members in the clauses' order. Clauses whose top-level
    members differ are merged into one document (MongoDB ANDs the members of a filter), two conditions on one
    field into one set of operators; only what cannot be merged (two `$or`, say) goes under `$and`. Why not
    always `$and`: the embedded Mongo-wire server uses no index under `$and`, so a scoped lookup by an indexed
    field (a reference, a draft key, an external id) scanned the whole collection - measured at 3,000 records:
    51-89 ms under `$and`, 0.5-0.8 ms as one document."""
    merged: dict[str, Any] = {}
    rest: list[dict[str, Any]] = []
    for clause in clauses:
        leftover: dict[str, Any] = {}
        for name, condition in clause.items():
            if name not in merged:
                merged[name] = condition
                continue
            both = None if name.startswith("$") else _merged_condition(merged[name], condition)
            if both is None:
                leftover[name] = condition
            else:
                merged[name] = both
        if leftover:
            rest.append(leftover)
    if rest:
        merged["$and"] = [*merged.get("$and", []), *rest]
    return merged


# More alternatives than this and one filter with `$or` is sent instead (correct, only slower).
MAX_ALTERNATIVES = 8
# A page's first window of updated_at after its start, and how much wider each next one is (`_windowed`).
FIRST_WINDOW = timedelta(seconds=1)
WIDENING = 4


def _without_exclusions(where: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """`where` split into what the server is asked and the top-level `$nin` of scalars checked in the process
    (plumbing.matching decides those exactly); everything else stays with the server."""
    served: dict[str, Any] = {}
    checked: dict[str, Any] = {}
    for name, condition in where.items():
        excluded = (
            condition.get("$nin") if isinstance(condition, Mapping) and not name.startswith("$") else None
        )
        if not isinstance(excluded, list) or not all(isinstance(v, str | int) for v in excluded):
            served[name] = condition
            continue
        checked[name] = {"$nin": excluded}
        rest = {op: operand for op, operand in condition.items() if op != "$nin"}
        if rest:
            served[name] = rest
    return served, checked


def alternatives(clauses: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """The conjunction of `clauses` as filters whose union matches exactly the same records, none with a
    top-level `$or` or `$and` where they can be distributed: A and (B or C) = (A and B) or (A and C).

    Why: the embedded Mongo-wire server plans a filter by its first member that an index serves, and only when
    no member starts with `$`. An agency's scope (`owner_country` and `$or` of its agency or an assignment) or
    a keyset page's `$or` made every such query scan the collection, even a lookup by `_id`: measured at
    5,000 records, 65-82 ms with the `$or` and 0.7-1 ms per alternative without it. So the caller's own
    conditions come first (an `_id` before everything) and the scope last, and each `$or` becomes one
    alternative per branch; the repository runs each and merges (a write stops at the first that matched)."""
    options: list[list[dict[str, Any]]] = [[]]
    for clause in _flattened(clauses):
        plain = {name: value for name, value in clause.items() if name != "$or"}
        branches = clause.get("$or") or [{}]
        options = [[*option, plain, dict(branch)] for option in options for branch in branches]
        if len(options) > MAX_ALTERNATIVES:
            return [conjunction(clauses)]
    return [conjunction([part for part in option if part]) for option in options]


def _flattened(clauses: Sequence[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    out: list[Mapping[str, Any]] = []
    for clause in clauses:
        out.append({name: value for name, value in clause.items() if name != "$and"})
        out.extend(_flattened(clause.get("$and", [])))
    return out


class _Repository(ABC, Generic[T]):
    def __init__(self, document_class: type[T], clock: Clock | None) -> None:
        if not (isinstance(document_class, type) and issubclass(document_class, OwnedDocument)):
            raise TypeError("repositories serve OwnedDocument subclasses only")
        self.document_class = document_class
        self.clock: Clock = clock or SystemClock()

    @abstractmethod
    def _scope(self) -> dict[str, Any] | None:
        """The filter every query is combined with (None: this caller sees nothing)."""

    @abstractmethod
    def _actor(self) -> str:
        """The name written to created_by / updated_by."""

    @property
    def collection(self) -> Collection:
        return self.document_class._get_collection()

    def _where(self, *parts: Mapping[str, Any]) -> list[dict[str, Any]] | None:
        """The alternatives (see `alternatives`) selecting what matches every part AND the caller's scope, the
        caller's parts first; None when the caller sees nothing."""
        scope = self._scope()
        if scope is None:
            return None
        return alternatives([dict(p) for p in (*parts, scope) if p])

    def _each(self, where: list[dict[str, Any]], limit: int | None, *, windowed: bool = False) -> list[T]:
        """The records matching any alternative, once each, in the stable order (updated_at, id); `windowed`: a
        page's alternatives, asked window by window (`_windowed`)."""
        found: dict[str, T] = {}
        for alternative in where:
            docs = (
                self._windowed(alternative, limit)
                if windowed and limit
                else self._matching(alternative, limit)
            )
            for doc in docs:
                found.setdefault(doc.id, doc)
        ordered = sorted(found.values(), key=lambda doc: (doc.updated_at, doc.id))
        return ordered[:limit] if limit else ordered

    def _windowed(self, alternative: dict[str, Any], limit: int) -> list[T]:
        """The first `limit` records matching a page's alternative whose `updated_at` starts somewhere (the page's
        `updated_since` or cursor), asked one window of `updated_at` after the other from there: FIRST_WINDOW,
        then each WIDENING times wider, until the page is full; once a window reaches a day past the present,
        that one is open to the future. Any other alternative is asked in one query.

        Why: the embedded Mongo-wire server reads every index entry a filter selects before it sorts and cuts to
        the limit (docs/engineering.md), so one query for everything after a page's start cost all the caller's
        records changed since (figure 3 of docs/performance.md: a sync page behind thousands of new records).
        A window costs what changed in it, so a page reads about its own size and the empty windows before it,
        however many records exist. On MongoDB each window is a bounded range of the same index."""
        lower = alternative.get("updated_at")
        if not (isinstance(lower, Mapping) and len(lower) == 1 and next(iter(lower)) in ("$gt", "$gte")):
            return self._matching(alternative, limit)
        op, start = next(iter(lower.items()))
        if not isinstance(start, datetime):
            return self._matching(alternative, limit)
        start = as_utc(start)  # a naive instant is UTC to the server too
        horizon = to_millis(self.clock.now()) + timedelta(days=1)
        width = FIRST_WINDOW
        found: list[T] = []
        while True:
            end = start + width
            window = {op: start} if end > horizon else {op: start, "$lt": end}
            found += self._matching({**alternative, "updated_at": window}, limit - len(found))
            if len(found) >= limit or end > horizon:
                return found
            start, op, width = end, "$gte", width * WIDENING

    def _matching(self, alternative: dict[str, Any], limit: int | None) -> list[T]:
        """The first `limit` records (all without one) matching one alternative, in (updated_at, id) order.

        A `$nin` (what a restriction of processing hides) is checked here, not by the server: beside the range
        of a page it is a second operator member, and the embedded server then serves the query by no index at
        all (a scan of the collection for every page of a country in which one person's processing is
        restricted). The server is asked for the rest with room for what the `$nin` may leave out, and again
        with more room in the rare case it left out more than that."""
        served, checked = _without_exclusions(alternative)
        query = self.document_class.objects(__raw__=served).order_by("updated_at", "id")
        if not checked:
            return list(query.limit(limit) if limit else query)
        fetch = None if limit is None else limit + sum(len(c["$nin"]) for c in checked.values())
        while True:
            rows = list((query.limit(fetch) if fetch else query).as_pymongo())
            kept = [row for row in rows if matches(row, checked)]
            if fetch is None or len(rows) < fetch or len(kept) >= cast(int, limit):
                return [self.document_class._from_son(row) for row in kept[:limit]]
            fetch *= 2

    def _update_first(self, where: list[dict[str, Any]], update: Mapping[str, Any]) -> bool:
        """Apply `update` through the first alternative that matches (each one write, atomic on the record)."""
        return any(
            self.collection.update_one(alternative, update).matched_count == 1 for alternative in where
        )

    def _user_query(self, filters: Mapping[str, Any]) -> dict[str, Any]:
        # Let mongoengine translate `field__op=value` into a MongoDB filter; it is then AND-ed with the scope,
        # so no filter (not even one naming owner_country) can widen what the caller sees.
        return dict(self.document_class.objects(**filters)._query) if filters else {}

    # ------------------------------------------------------------------------------------------- reads

    def get(self, record_id: str) -> T:
        """The record if it matches the caller's scope. Read once by `_id`, the scope checked in the process
        (plumbing.matching); an alternative it cannot decide is asked of the server, as every one was before."""
        where = self._where({"_id": record_id}) or []
        # A class with subclasses adds its own class filter to every query: the server decides those.
        by_server = bool(self.document_class._meta.get("allow_inheritance"))
        stored = self.collection.find_one({"_id": record_id}) if where else None
        if stored is not None:
            for alternative in where:
                decided = UNDECIDED if by_server else matches(stored, alternative)
                if decided:
                    return self.document_class._from_son(stored)
                if decided is UNDECIDED and (doc := self.document_class.objects(__raw__=alternative).first()):
                    return doc
        raise NotFound(f"{self.document_class.__name__} not found")

    def find(self, *, limit: int | None = None, **filters: Any) -> list[T]:
        """Records matching mongoengine-style filters (`status="open"`, `updated_at__gte=...`), in the stable
        order (updated_at, id)."""
        where = self._where(self._user_query(filters))
        return [] if where is None else self._each(where, limit)

    def count(self, **filters: Any) -> int:
        where = self._where(self._user_query(filters))
        if where is None:
            return 0
        if len(where) == 1:
            return self.collection.count_documents(where[0])
        return len(
            {row["_id"] for alternative in where for row in self.collection.find(alternative, {"_id": 1})}
        )

    def list_page(
        self,
        *,
        limit: int | None = None,
        cursor: str | None = None,
        updated_since: datetime | None = None,
        **filters: Any,
    ) -> Page[T]:
        """One page in (updated_at, id) order (plumbing.pagination): a national system syncing with
        `updated_since` and the cursor sees every change without gaps. `limit` defaults to 50 and is capped at
        200; a cursor this service did not issue raises InvalidCursor (400)."""
        size = min(max(1, limit or DEFAULT_LIMIT), MAX_LIMIT)
        since = to_millis(updated_since) if updated_since is not None else None
        request = PageRequest(size, decode_cursor(cursor) if cursor else None, since)
        where = self._where(self._user_query(filters), request.mongo_filter())
        if where is None:
            return Page(items=[], limit=size)
        rows = self._each(where, request.fetch, windowed=True)
        return build_page(rows, request, key=lambda doc: (doc.updated_at, doc.id))

    # ------------------------------------------------------------------------------------------ writes

    def _stamp_new(
        self,
        doc: T,
        owner_country: str,
        owner_agency: str,
        events: Sequence[Mapping[str, Any]],
        steps: Sequence[Mapping[str, Any]] = (),
    ) -> T:
        now = to_millis(self.clock.now())
        actor = self._actor()
        doc.id = doc.id or new_id()
        doc.owner_country, doc.owner_agency = owner_country, owner_agency
        doc.created_at = doc.updated_at = now
        doc.created_by = doc.updated_by = actor
        doc.schema_version = self.document_class.SCHEMA_VERSION
        doc.retention_class = doc.retention_class or self.document_class.RETENTION_CLASS
        doc.retention_due_at = first_look(self.document_class, now, platform_config())
        doc.version = 1
        doc.pending_events = [dict(e) for e in events]
        doc.outbox_lease_until = doc.outbox_lease_owner = None
        doc.outbox_pending = True if events else None  # the relay finds the document by it (plumbing.outbox)
        doc.pending_steps = [dict(step) for step in steps]
        doc.steps_lease_until = None
        try:
            doc.save(force_insert=True, validate=True)
        except NotUniqueError:
            raise Conflict(f"{self.document_class.__name__} with this id already exists") from None
        if events:
            notify_relay()
        return doc

    def update(
        self,
        doc: T,
        *,
        expected_version: int | None = None,
        events: Iterable[Mapping[str, Any]] = (),
        steps: Iterable[Mapping[str, Any]] = (),
    ) -> T:
        """Write the document's fields, `version + 1`, `events` and follow-up `steps` (plumbing.steps) in one
        atomic update, provided the stored version is still `expected_version` (default: the version `doc` was
        read with). Ownership, creation stamps, the outbox and the steps fields are never written from `doc`."""
        expected = doc.version if expected_version is None else expected_version
        envelopes = [dict(e) for e in events]
        where = self._where({"_id": doc.id, "version": expected})
        if where is None:
            raise NotFound(f"{self.document_class.__name__} not found")
        now = to_millis(self.clock.now())
        doc.updated_at, doc.updated_by = now, self._actor()
        doc.schema_version = self.document_class.SCHEMA_VERSION
        doc.validate()
        stored = doc.to_mongo().to_dict()
        fields = {f.db_field for f in self.document_class._fields.values()}
        update: dict[str, Any] = {
            "$set": {k: v for k, v in stored.items() if k not in PROTECTED_FIELDS},
            "$inc": {"version": 1},
        }
        unset = {name: "" for name in fields - set(stored) - PROTECTED_FIELDS}
        if unset:
            update["$unset"] = unset
        _with_events(update, envelopes)
        new_steps = [dict(step) for step in steps]
        if new_steps:
            _merge(update, {"$push": {STEPS: {"$each": new_steps}}})
        if not self._update_first(where, update):
            self._raise_missing_or_conflict(doc.id)
        doc.version = expected + 1
        doc._clear_changed_fields()
        if envelopes:
            notify_relay()
        return doc

    def update_where(
        self,
        record_id: str,
        condition: Mapping[str, Any],
        operators: Mapping[str, Any],
        *,
        events: Iterable[Mapping[str, Any]] = (),
    ) -> bool:
        """Apply MongoDB update `operators` (`$inc`, `$set`, `$push`, `$pull`, on raw field paths) to the record
        if it is in the caller's scope AND matches `condition`, with `version + 1`, the updated_at/updated_by
        stamps and `events` appended to the outbox, in ONE `update_one` (filter and change are atomic on one
        document, so 50 callers racing for 3 free places leave exactly 3 takers). True when it matched.

        No version guard: the condition is the guard. False means nothing was written, whether the record is
        missing, outside the caller's scope (or the caller sees nothing at all) or fails the condition; these
        are deliberately not told apart (no second read), so a False reveals no more than a NotFound would. A
        caller that must distinguish them reads the record with `get`, which raises NotFound outside the scope.
        Operators touching ownership, creation, version, outbox, steps or the stamps are refused (ValueError,
        `check_operators`); the document's own validation is not run, the operators are the caller's."""
        check_operators(operators)
        envelopes = [dict(e) for e in events]
        where = self._where({"_id": record_id}, condition)
        if where is None:
            return False
        update = _merge({}, operators)
        _merge(update, {"$inc": {"version": 1}})
        _merge(update, {"$set": {"updated_at": to_millis(self.clock.now()), "updated_by": self._actor()}})
        _with_events(update, envelopes)
        matched = self._update_first(where, update)
        if matched and envelopes:
            notify_relay()
        return matched

    def reschedule(
        self, record_id: str, expected_version: int, field_name: str, instant: datetime | None
    ) -> bool:
        """Set a scheduling field (when a job should look at the record next, e.g. `retention_due_at`) without a
        new version or update stamp, as a lease is set: it is not content, and a national system syncing with
        `updated_since` must not see a change. Guarded by the version read; False when the record changed."""
        if field_name not in OwnedDocument._fields or field_name in STAMPED_FIELDS:
            raise ValueError(f"{field_name!r} is not a scheduling field")
        where = self._where({"_id": record_id, "version": expected_version}) or []
        return self._update_first(where, {"$set": {field_name: instant}})

    def delete(self, doc_or_id: T | str, *, expected_version: int | None = None) -> None:
        """Delete one record. Refused (`Conflict`) while it still has unpublished events, which would
        otherwise be lost: announce a deletion with an update's event, let the relay publish, then delete."""
        record_id = doc_or_id if isinstance(doc_or_id, str) else doc_or_id.id
        guard: dict[str, Any] = {"_id": record_id, "pending_events.0": {"$exists": False}}
        if expected_version is not None:
            guard["version"] = expected_version
        where = self._where(guard)
        if where is None:
            raise NotFound(f"{self.document_class.__name__} not found")
        if not any(self.collection.delete_one(alternative).deleted_count for alternative in where):
            self._raise_missing_or_conflict(record_id)

    def _raise_missing_or_conflict(self, record_id: str) -> None:
        # Only after a failed guarded write: distinguish "not visible to you" (404, reveals nothing) from
        # "visible but changed meanwhile" (409).
        where = self._where({"_id": record_id})
        if any(self.collection.count_documents(alternative, limit=1) for alternative in where or []):
            raise ConcurrentUpdate(
                f"{self.document_class.__name__} was changed by someone else; read it again"
            )
        raise NotFound(f"{self.document_class.__name__} not found")


class ScopedRepository(_Repository[T]):
    """Owned records as the caller may see them. The policy comes from `policy`, else the document class's
    `SCOPE_POLICY` attribute, else the need-to-know sets of the platform configuration (`default_policy`)."""

    def __init__(
        self,
        document_class: type[T],
        caller: Caller,
        clock: Clock | None = None,
        policy: ScopePolicy | None = None,
    ) -> None:
        super().__init__(document_class, clock)
        self.caller = caller
        self.policy: ScopePolicy = policy or getattr(document_class, "SCOPE_POLICY", None) or default_policy()

    def _scope(self) -> dict[str, Any] | None:
        scope = self.policy.read_filter(self.caller)
        hidden = self._restricted() if scope is not None else {}
        return {"$and": [scope, hidden]} if hidden else scope

    def _restricted(self) -> dict[str, Any]:
        """The records a restriction of processing hides from this request (plumbing.restrictions)."""
        if not self.document_class.RESTRICTED_BY:
            return {}
        from plumbing import request_context, restrictions

        context = request_context.current()
        # A worker acting as the system (the exchange's consumer): storing goes on. An operation that answers no
        # personal data (x-personal-data: false, so no X-Purpose) is not restricted either: it answers nothing of hers.
        if context is None or context.purpose is None:
            return {}
        hidden = restrictions.hidden_for(self.caller.country, context.purpose)
        return restrictions.exclusion(self.document_class.RESTRICTED_BY, hidden)

    def get(self, record_id: str) -> T:
        """The record, if the caller's scope holds it; 403 `processing_restricted` when only a restriction of
        the person's processing hides it (she could read it before: she learns why, nobody else learns more)."""
        try:
            return super().get(record_id)
        except NotFound:
            if self._restricted() and self._in_scope_unrestricted(record_id):
                from plumbing.restrictions import ProcessingRestricted

                raise ProcessingRestricted() from None
            raise

    def _in_scope_unrestricted(self, record_id: str) -> bool:
        scope = self.policy.read_filter(self.caller)
        where = alternatives([{"_id": record_id}, scope]) if scope is not None else []
        return any(self.collection.count_documents(alternative, limit=1) for alternative in where)

    def _actor(self) -> str:
        return self.caller.sub

    def insert(
        self,
        doc: T,
        *,
        events: Iterable[Mapping[str, Any]] = (),
        steps: Iterable[Mapping[str, Any]] = (),
    ) -> T:
        """Store a new record owned by the caller's country and agency (whatever `doc` said), created by the
        caller, with `events` in its outbox and follow-up `steps` (plumbing.steps), in one write."""
        if not self.policy.may_create(self.caller):
            raise OutOfScope("the caller's roles cannot create this kind of record")
        return self._stamp_new(doc, self.caller.country, self.caller.agency, list(events), list(steps))


class SystemRepository(_Repository[T]):
    """Unscoped access for relays, consumers and jobs (never request handlers). `actor` names the process in
    `created_by` / `updated_by`, e.g. "system:retention-job"."""

    def __init__(self, document_class: type[T], clock: Clock | None = None, actor: str = "system") -> None:
        super().__init__(document_class, clock)
        self.actor = actor

    def _scope(self) -> dict[str, Any] | None:
        return {}

    def _actor(self) -> str:
        return self.actor

    def insert(
        self,
        doc: T,
        *,
        owner_country: str,
        owner_agency: str,
        events: Iterable[Mapping[str, Any]] = (),
    ) -> T:
        """Store a record whose owner the system decides (e.g. a consumer building a record from a form)."""
        return self._stamp_new(doc, owner_country, owner_agency, list(events))


def system_repositories(clock: Clock) -> Callable[[type, str], SystemRepository[Any]]:
    """The `system_repository` of a service's Deps: (document class, actor) -> its unscoped repository on the
    process's clock. For relays, consumers and jobs; a request handler reads through a ScopedRepository."""

    def repository(document_class: type, actor: str) -> SystemRepository[Any]:
        return SystemRepository(document_class, clock, actor=actor)

    return repository
