"""Mongo documents of the exchange service (mongoengine).

`ExchangeCaseDocument`: one country's record of one transnational case (the aggregate), written only through
`plumbing.repository`. It holds the forms' metadata in order (`forms`, the domain's `Form` records), each form's
content sealed apart under the owning country's data key (`contents`), the envelope ids already received (replay
detection), the envelopes still to be delivered (`outgoing`) and the link to the country's own identification
case, which never leaves the country, and the corrections of the person that marked its forms
(`rectifications`, service_layer/rectification.py).

The deadline scheduler claims records whose `next_due_at` (OwnedDocument, indexed here) has come and records
what it did in `deadline_actions_done` (service_layer/deadlines.py).

The relay finds records with envelopes waiting by `outgoing.recipient` (indexed; an equality per partner country,
so its query reads only those records: adapters/undelivered.py) and claims one at a time with
`delivery_lease_until` (written only by the relay's find-and-modify, never by a command).

The retention job (service_layer/retention.py on plumbing.retention) claims records whose `retention_due_at`
(OwnedDocument, indexed there) has come; once a record's period has passed it removes the forms' sealed content,
the drafts and the waiting envelopes in one write and sets `anonymised_at`, after which the record takes no change.

`ConsentWithdrawalDocument`: the withdrawals of consent identification announced, by the identification case ids
they cover (service_layer/consent.py). Ids and a day only: no retention job acts on it (service_layer/retention.py
says why).
"""

from __future__ import annotations

from typing import Any, ClassVar

from mongoengine import DateTimeField, DictField, Document, IntField, ListField, StringField

from plumbing.documents import OwnedDocument
from plumbing.restrictions import CASE


class ExchangeCaseDocument(OwnedDocument):
    meta: ClassVar[dict[str, Any]] = {  # type: ignore[misc]
        "collection": "exchange_cases",
        "indexes": [
            {"fields": ["owner_country", "reference"], "unique": True},
            {"fields": ["received_envelopes"]},
            {"fields": ["forms.draft_key"]},
            {"fields": ["outgoing.recipient"]},
            {"fields": ["next_due_at"]},  # the deadline scheduler's claim (plumbing.scheduler)
            # A consent withdrawal finds the records linked to the person's identification cases.
            {"fields": ["owner_country", "identification_case_id"]},
        ],
    }
    RETENTION_CLASS: ClassVar[str | None] = "exchange-message"
    RESTRICTED_BY: ClassVar[dict[str, str]] = {"identification_case_id": CASE}

    reference = StringField(required=True)  # shared by every participant country
    participants = ListField(StringField(regex=r"^[A-Z]{2}$"))
    status = StringField(required=True, choices=("open", "closed"))
    consent_withdrawn_at = DateTimeField(null=True)
    forms = ListField(DictField())
    # form id -> AES-GCM ciphertext of the form's content (plumbing.crypto, AAD = record id + field name)
    contents = DictField()
    received_envelopes = ListField(StringField())
    # envelopes written with the send and not yet handed to the transport: {envelope_id, recipient, token}
    outgoing = ListField(DictField())
    # The relay's claim on this record while it delivers `outgoing` (adapters/undelivered.py); None when free.
    delivery_lease_until = DateTimeField(null=True)
    identification_case_id = StringField(null=True)
    # The scheduler's actions done (domain/deadlines.py keys: `overdue:<form id>`, `escalated:<form id>`).
    deadline_actions_done = ListField(StringField())
    # Corrections of the person identification announced that marked forms here (service_layer/rectification.py):
    # {action, correction_id, at, by, forms, fields}; ids, codes and an instant only. Also what makes a second
    # delivery of a correction change nothing.
    rectifications = ListField(DictField())


class ConsentWithdrawalDocument(OwnedDocument):
    """An adult's withdrawal of consent as identification announced it (`identification.person.consent_withdrawn.v1`,
    service_layer/consent.py), kept so that a record linked later to one of her identification cases is withdrawn
    too. Ids and a date only (never the person's id or anything about her). Its id derives from the withdrawal's,
    so a redelivered event stores nothing new."""

    meta: ClassVar[dict[str, Any]] = {  # type: ignore[misc]
        "collection": "exchange_consent_withdrawals",
        "indexes": [{"fields": ["owner_country", "identification_case_ids"]}],
    }
    RETENTION_CLASS: ClassVar[str | None] = "exchange-message"

    withdrawal_id = StringField(required=True)
    identification_case_ids = ListField(StringField())  # every identification case of hers in the country
    effective_on = StringField(required=True, regex=r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$")


class ExchangeCounter(Document):
    """Atomic per-country, per-year counter of case references."""

    meta: ClassVar[dict[str, Any]] = {"collection": "exchange_counters"}
    id = StringField(primary_key=True)
    value = IntField(required=True)
