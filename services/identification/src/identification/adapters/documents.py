"""Mongo documents of the identification service (mongoengine).

Aggregates are `OwnedDocument`s written only through `plumbing.repository`: persons, cases (holding their
screenings, decisions, needs, recovery and reflection period, closure and the append-only timeline),
notifications to the coordinator's office, and duplicate searches. Names, documents and other identifying
details of a person are one AES-GCM ciphertext (`sealed`, AAD = record id + field name) under the owning
country's key; blocking keys are HMAC tokens under the country's blind-index key, so a duplicate search selects
its candidates by equality without decrypting anything.
"""

from __future__ import annotations

from typing import Any, ClassVar

from mongoengine import (
    BooleanField,
    DateTimeField,
    DictField,
    Document,
    IntField,
    ListField,
    StringField,
)

from plumbing.documents import OwnedDocument
from plumbing.restrictions import CASE, PERSON


class PersonDocument(OwnedDocument):
    meta: ClassVar[dict[str, Any]] = {  # type: ignore[misc]
        "collection": "persons",
        "indexes": [
            # The duplicate search asks `{blocking_keys: {$in: tokens}, owner_country}` (the repository adds the
            # country, and `_id: {$nin}` while a restriction hides someone): a flat filter, which the embedded
            # server serves from the index of its first member, this one. No compound index leading with
            # owner_country: that server walks the first such index for any filter falling back to
            # owner_country (the sync page), and a multikey one holds several entries per person.
            {"fields": ["blocking_keys"]},
            # One person per national system's own reference: a concurrent retry cannot register it twice.
            {
                "fields": ["external_client", "external_ref"],
                "unique": True,
                "partialFilterExpression": {"external_ref": {"$type": "string"}},
            },
        ],
    }
    RETENTION_CLASS: ClassVar[str | None] = "person"
    RESTRICTED_BY: ClassVar[dict[str, str]] = {"id": PERSON}

    # AES-GCM ciphertext of a JSON object: given_names, surnames, aliases, date_of_birth(_range), documents.
    sealed = StringField(required=True)
    # HMAC tokens (`<key id>:<b64>`) of the domain's name blocking keys (n:, s:, p:, q:) and birth years (y:).
    blocking_keys = ListField(StringField())
    year_keys = ListField(StringField())
    # The `names.KEY_SCHEME` the keys were made under (unset: before schemes were numbered, i.e. scheme 1).
    keys_scheme = IntField(null=True)
    # Non-identifying codes kept in clear: they feed statistics and cross-border flags.
    sex = StringField(default="unknown")
    nationalities = ListField(StringField())
    residence_country = StringField(null=True)
    languages = ListField(StringField())
    external_client = StringField(null=True)
    external_ref = StringField(null=True)
    first_case_id = StringField(null=True)
    duplicate_check = DictField(null=True)
    # Rectifications, oldest first: id, at, by, agency, reason, fields (member names) and `previous`, the values
    # before, sealed like `sealed` (adapters/sealing.py, one ciphertext per correction).
    corrections = ListField(DictField())
    # Merges by the coordinator's office (service_layer/merges): the record this one was merged into (a duplicate),
    # the records merged into this one, and this record's merges, oldest first (id, into, at, by, agency, reason;
    # undone_at, undone_by, undo_reason once undone).
    merged_into = StringField(null=True)
    merged_from = ListField(StringField())
    merges = ListField(DictField())
    # An adult's withdrawal of consent (service_layer/consent.py): id, at, by, agency, expressed. Once recorded it
    # stands; the services that hold her records end what rested on it.
    consent_withdrawal = DictField(null=True)
    # A restriction of processing (service_layer/restriction.py): purposes still allowed, reason, at, by, agency;
    # None when there is none (plumbing.restrictions enforces it from its own collection).
    restriction = DictField(null=True)


class CaseDocument(OwnedDocument):
    meta: ClassVar[dict[str, Any]] = {  # type: ignore[misc]
        "collection": "cases",
        "indexes": [
            {"fields": ["person_id"]},
            {"fields": ["screenings.id"]},
            {"fields": ["reference"]},
            {"fields": ["decided_at"]},
        ],
    }
    RETENTION_CLASS: ClassVar[str | None] = "case"
    RESTRICTED_BY: ClassVar[dict[str, str]] = {"person_id": PERSON, "id": CASE}

    person_id = StringField(required=True)
    reference = StringField(required=True)
    status = StringField(required=True, choices=("open", "closed"), default="open")
    responsible_officer = StringField(required=True)
    category = StringField(null=True)
    category_legal_reference = StringField(null=True)
    decided_at = DateTimeField(null=True)
    # Codes only, copied at the decision: the statistics read these and nothing else.
    stat = DictField(null=True)
    screenings = ListField(DictField())
    needs = ListField(StringField())
    interpreter_languages = ListField(StringField())
    recovery_period = DictField(null=True)
    closure = DictField(null=True)
    timeline = ListField(DictField())


class NotificationDocument(OwnedDocument):
    meta: ClassVar[dict[str, Any]] = {  # type: ignore[misc]
        "collection": "notifications",
        "indexes": [{"fields": ["owner_country", "acknowledged", "updated_at", "id"]}],
    }
    RETENTION_CLASS: ClassVar[str | None] = "identification-decision"
    RESTRICTED_BY: ClassVar[dict[str, str]] = {"person_id": PERSON, "case_id": CASE}

    case_id = StringField(required=True)
    case_reference = StringField(required=True)
    person_id = StringField(required=True)
    kind = StringField(required=True, default="category_decided")
    category = StringField(required=True)
    age_group = StringField(required=True)
    cross_border = ListField(DictField())
    acknowledged = BooleanField(default=False)
    acknowledged_at = DateTimeField(null=True)
    acknowledged_by = StringField(null=True)


class DuplicateSearchDocument(OwnedDocument):
    """A search and its ranked result (ids, scores and reason codes; the criteria are not kept)."""

    meta: ClassVar[dict[str, Any]] = {"collection": "duplicate_searches"}  # type: ignore[misc]
    RETENTION_CLASS: ClassVar[str | None] = "person"

    candidates_examined = IntField(required=True, min_value=0)
    results = ListField(DictField())


class AccessRequestDocument(OwnedDocument):
    """An officer's request to read a case her duplicate search found in another agency (a restricted match).
    Owned by the case's country and agency, so that the responsible side reads and decides it; assigned to the
    requester and to the case's responsible officer, so that both see it. Codes only: no personal data."""

    meta: ClassVar[dict[str, Any]] = {  # type: ignore[misc]
        "collection": "access_requests",
        "indexes": [{"fields": ["case_id"]}, {"fields": ["status"]}],
    }
    RETENTION_CLASS: ClassVar[str | None] = "case"
    RESTRICTED_BY: ClassVar[dict[str, str]] = {"person_id": PERSON, "case_id": CASE}

    case_id = StringField(required=True)
    person_id = StringField(required=True)
    search_id = StringField(required=True)
    requested_by = StringField(required=True)
    requester_agency = StringField(required=True)
    reason = StringField(required=True)
    status = StringField(required=True, choices=("pending", "granted", "refused"), default="pending")
    decided_by = StringField(null=True)
    decided_at = DateTimeField(null=True)
    decision_reason = StringField(null=True)


class CaseCounter(Document):
    """Per country and year: the last case sequence number handed out (atomic $inc)."""

    meta: ClassVar[dict[str, Any]] = {"collection": "case_counters"}
    id = StringField(primary_key=True)
    value = IntField(default=0)


AGGREGATES: tuple[type[OwnedDocument], ...] = (
    PersonDocument,
    CaseDocument,
    NotificationDocument,
    DuplicateSearchDocument,
    AccessRequestDocument,
)
