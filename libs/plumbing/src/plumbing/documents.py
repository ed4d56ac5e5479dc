"""`OwnedDocument`: the base of every aggregate that holds (personal) data owned by one country's agency.

It carries the ownership and audit fields the scoped repository relies on, an optimistic-concurrency
`version`, and (through `OutboxFields`) the pending events of the transactional outbox. Subclasses add their
domain fields and set `RETENTION_CLASS` (a record type of config/platform.yaml `retention`), `RESTRICTED_BY` (the
members holding the id of the identification person or case a record is about, so that a restriction of her
processing hides it: plumbing.restrictions) and, when their shape changes, `SCHEMA_VERSION`.

Handlers never call `save()`/`delete()` on these documents: `plumbing.repository` writes them, adding the
caller's scope, setting ownership from the token and bumping `version` atomically.
"""

from __future__ import annotations

import uuid
from typing import Any, ClassVar

from mongoengine import DateTimeField, DictField, IntField, ListField, StringField

from plumbing.outbox import OutboxFields


def new_id() -> str:
    """Random UUID string: ids never reveal creation order, database, or how many records a country has."""
    return str(uuid.uuid4())


class OwnedDocument(OutboxFields):
    meta: dict[str, Any] = {  # mongoengine reads it at class creation
        "abstract": True,
        "indexes": [
            # Scope + stable list order (updated_at, id), one index per branch of a scope (plumbing.security's
            # need-to-know: the country; an agency of it; what is assigned to a user): the scope's equalities
            # first, then the page's range on updated_at or its equality with a range on the id. So a page reads
            # the caller's own records from where it starts, never the whole country or collection (docs/performance.md).
            {"fields": ["owner_country", "updated_at", "id"]},
            {"fields": ["owner_country", "owner_agency", "updated_at", "id"]},
            {"fields": ["assigned_to", "owner_country", "updated_at", "id"]},
            # The follow-up steps' claim (plumbing.steps): only records with steps have an entry.
            {"fields": ["pending_steps.due"], "sparse": True},
            # The retention job's claim (plumbing.retention): when the record should next be looked at.
            {"fields": ["retention_due_at"], "sparse": True},
        ],
    }

    RETENTION_CLASS: ClassVar[str | None] = None
    # member -> "person" or "case" (plumbing.restrictions.PERSON / CASE); empty: no restriction applies
    RESTRICTED_BY: ClassVar[dict[str, str]] = {}
    SCHEMA_VERSION: ClassVar[int] = 1

    id = StringField(primary_key=True, default=new_id)
    owner_country = StringField(required=True, regex=r"^[A-Z]{2}$")
    owner_agency = StringField(required=True)
    # Subs of users the record is assigned to: identifying officers of other agencies see it through this.
    assigned_to = ListField(StringField())
    created_at = DateTimeField(required=True)
    created_by = StringField(required=True)
    updated_at = DateTimeField(required=True)
    updated_by = StringField(required=True)
    schema_version = IntField(required=True, min_value=1)
    retention_class = StringField(required=True)
    # Incremented by every repository write; an update names the version it read (optimistic concurrency).
    version = IntField(required=True, min_value=0, default=0)
    # Follow-up steps (plumbing.steps): the second write of a command that touches two aggregates.
    pending_steps = ListField(DictField())
    steps_lease_until = DateTimeField(null=True)
    # Deadlines (plumbing.scheduler): when the scheduler should next look at the record (None: nothing due),
    # and its claim while it performs what is due. Classes with deadlines index `next_due_at`.
    next_due_at = DateTimeField(null=True)
    deadline_lease_until = DateTimeField(null=True)
    # Retention (plumbing.retention): the earliest instant the record can have passed its retention period (set on
    # insert, moved on by the retention job while the record is open; None once anonymised), and when it was.
    retention_due_at = DateTimeField(null=True)
    anonymised_at = DateTimeField(null=True)


# Fields only the repository writes: never taken from the document a handler hands in for an update.
PROTECTED_FIELDS = frozenset(
    {
        "_id",
        "_cls",
        "owner_country",
        "owner_agency",
        "created_at",
        "created_by",
        "version",
        "pending_events",
        "outbox_lease_until",
        "outbox_lease_owner",
        "outbox_pending",
        "pending_steps",
        "steps_lease_until",
        "deadline_lease_until",
    }
)
