"""Restriction of processing (GDPR Art. 18 and the national laws modelled on it), enforced where every read passes.

While the accuracy of a person's data is contested, or she objected, her country's data protection officer marks
her as restricted in identification: from then on only the purposes listed may read or change her records, in
every service. Identification announces each change (`identification.person.restriction_changed.v1`: her id,
every case id of hers, the purposes still allowed; ids and codes only) and every service keeps the current state
in its own `restrictions` collection (`follow`, registered in each service's consumer; identification holds its
own through a follow-up step of the command).

Enforcement is part of the scope (plumbing.repository.ScopedRepository): a document class names the members that
hold a person or an identification case id (`RESTRICTED_BY = {"person_id": PERSON, "case_id": CASE}`), and a
request whose purpose a restriction does not list sees none of the records naming a restricted person or case
(lists leave them out); asking for one by id answers 403 `processing_restricted` (`ProcessingRestricted`), so the
officer, who could read it before, learns why. Only requests of operations that answer personal data (they carry
an X-Purpose) are restricted: an operation that answers none (`x-personal-data: false`: ids, codes, states) tells
nothing of hers. Relays, consumers and jobs (SystemRepository, or no request at all) are not restricted: storing,
and ending what a withdrawal of consent ends, go on.

Decisions:
- `data-subject-access` and `audit` are always allowed: a restriction cannot keep her own request of access or
  the supervision of who read her data from being answered (ALWAYS_ALLOWED).
- One restriction state per person, replaced whole by the next change (lifting keeps the record, `restricted`
  false). A change is held only if it is newer than the one held (`changed_at`), so a redelivered old event
  cannot undo a newer one.
- A request looks the restrictions of its country up once (kept on the request context) and adds nothing to its
  queries when none concerns its purpose. The lookup is served from a copy each process keeps for FRESH_S (one
  second) after reading it (a query per personal-data request was 12% of a person's read, docs/performance.md):
  a restriction held by another process takes effect here within that second, on top of the seconds its event
  takes to arrive; one held by this process (`hold`) at once.
- Data already sent to a partner country is the partner's processing; it is not told of a restriction yet.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, ClassVar

from mongoengine import BooleanField, DateTimeField, ListField, StringField

from plumbing import request_context
from plumbing.clock import as_utc
from plumbing.documents import OwnedDocument
from plumbing.errors import CodedForbidden, Conflict, NotFound
from plumbing.ports import SystemRecords

EVENT = "identification.person.restriction_changed.v1"
PERSON, CASE = "person", "case"
ALWAYS_ALLOWED = frozenset({"data-subject-access", "audit"})
_CONTEXT_KEY = "plumbing.restrictions"
ACTOR = "system:restrictions"
_EXEMPT = "plumbing.restrictions.exempt"


class ProcessingRestricted(CodedForbidden):
    """The record names a person whose processing is restricted to purposes other than the request's (-> 403
    `forbidden`, code `processing_restricted`)."""

    def __init__(self) -> None:
        super().__init__("processing_restricted", "the person's processing is restricted to other purposes")


class RestrictionDocument(OwnedDocument):
    """The restriction state of one person (id = her identification person id), owned by her country: ids and
    codes only. Kept when lifted (`restricted` false), so that an older change arriving late is recognised."""

    meta: ClassVar[dict[str, Any]] = {  # type: ignore[misc]
        "collection": "restrictions",
        "indexes": [{"fields": ["owner_country", "restricted"]}],
    }
    RETENTION_CLASS: ClassVar[str | None] = "person"

    restricted = BooleanField(default=True)
    case_ids = ListField(StringField())
    purposes = ListField(StringField())  # the purposes that may still read
    changed_at = DateTimeField(required=True)


@dataclass(frozen=True)
class Hidden:
    """The person and case ids a request may not see, for its country and purpose."""

    persons: tuple[str, ...] = ()
    cases: tuple[str, ...] = ()

    def ids(self, kind: str) -> tuple[str, ...]:
        return self.persons if kind == PERSON else self.cases


NOTHING_HIDDEN = Hidden()


FRESH_S = 1.0
# (collection's full name, country) -> (monotonic time read, the country's restrictions in force)
_held: dict[tuple[str, str], tuple[float, tuple[dict[str, Any], ...]]] = {}
_held_lock = threading.Lock()
_monotonic = time.monotonic  # (a test moves it on)


def hidden_for(country: str, purpose: str | None) -> Hidden:
    """What restrictions hide from a request of `country` with `purpose`; looked up once per request."""
    context = request_context.current()
    if purpose in ALWAYS_ALLOWED or (context is not None and context.extra.get(_EXEMPT)):
        return NOTHING_HIDDEN
    cache = context.extra.setdefault(_CONTEXT_KEY, {}) if context is not None else {}
    key = (country, purpose)
    if key not in cache:
        persons: list[str] = []
        cases: list[str] = []
        for held in in_force(country):
            if purpose not in held["purposes"]:
                persons.append(held["_id"])
                cases.extend(held["case_ids"])
        cache[key] = Hidden(tuple(persons), tuple(cases)) if persons else NOTHING_HIDDEN
    hidden: Hidden = cache[key]
    return hidden


def in_force(country: str) -> tuple[dict[str, Any], ...]:
    """The restrictions in force for `country` (id, case ids, purposes still allowed), as read at most FRESH_S ago
    by this process."""
    collection = RestrictionDocument._get_collection()
    key = (collection.full_name, country)
    now = _monotonic()
    with _held_lock:
        held = _held.get(key)
    if held is not None and now - held[0] < FRESH_S:
        return held[1]
    found = tuple(
        {
            "_id": str(doc["_id"]),
            "case_ids": list(doc.get("case_ids") or ()),
            "purposes": doc.get("purposes") or (),
        }
        for doc in collection.find(
            {"owner_country": country, "restricted": True}, projection={"case_ids": 1, "purposes": 1}
        )
    )
    with _held_lock:
        _held[key] = (now, found)
    return found


def forget_held() -> None:
    """Read the restrictions again at the next request (a change was held by this process)."""
    with _held_lock:
        _held.clear()


@contextlib.contextmanager
def managing() -> Iterator[None]:
    """The current request sets or lifts a restriction: its officer sees the person whatever the purpose."""
    context = request_context.current()
    if context is None:
        yield
        return
    context.extra[_EXEMPT] = True
    try:
        yield
    finally:
        context.extra.pop(_EXEMPT, None)


def exclusion(restricted_by: Mapping[str, str], hidden: Hidden) -> dict[str, Any]:
    """The filter leaving out the records that name a hidden person or case (`{}` when nothing is hidden)."""
    if hidden is NOTHING_HIDDEN:
        return {}
    out: dict[str, Any] = {}
    for member, kind in restricted_by.items():
        ids = hidden.ids(kind)
        if ids:
            out["_id" if member == "id" else member] = {"$nin": list(ids)}
    return out


def hold(
    records: SystemRecords[RestrictionDocument],
    *,
    person_id: str,
    owner_country: str,
    owner_agency: str,
    restricted: bool,
    case_ids: Sequence[str],
    purposes: Sequence[str],
    changed_at: datetime,
) -> bool:
    """Hold this state of her restriction unless a newer change is held already; False when it was not newer."""
    state = {
        "restricted": restricted,
        "case_ids": sorted(set(case_ids)),
        "purposes": sorted(set(purposes)) if restricted else [],
        "changed_at": changed_at,
    }
    try:
        current = records.get(person_id)
    except NotFound:
        try:
            records.insert(
                RestrictionDocument(id=person_id, **state),
                owner_country=owner_country,
                owner_agency=owner_agency,
            )
            forget_held()
            return True
        except Conflict:  # a concurrent delivery inserted it: compare with what it holds
            current = records.get(person_id)
    if as_utc(current.changed_at) >= changed_at:
        return False
    for name, value in state.items():
        setattr(current, name, value)
    records.update(current)
    forget_held()
    return True


def follow(records: SystemRecords[RestrictionDocument], envelope: Mapping[str, Any]) -> bool:
    """A consumer's handler of `identification.person.restriction_changed.v1`: hold the state it announces."""
    if envelope.get("type") != EVENT:
        raise ValueError("not a restriction event")
    data = envelope["data"]
    return hold(
        records,
        person_id=str(data["person_id"]),
        owner_country=str(data["owner_country"]),
        owner_agency=str(data["owner_agency"]),
        restricted=bool(data["restricted"]),
        case_ids=[str(c) for c in data["case_ids"]],
        purposes=[str(p) for p in data["purposes"]],
        changed_at=as_utc(datetime.fromisoformat(str(data["changed_at"]))),
    )


def follow_with(_deps: Any, envelope: Mapping[str, Any]) -> bool:
    """`follow` as a consumer command (plumbing.inbox.applying), on the service's own database."""
    from plumbing.repository import SystemRepository

    return follow(SystemRepository(RestrictionDocument, actor=ACTOR), envelope)
