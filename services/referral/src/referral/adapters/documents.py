"""Mongo documents of the referral service (mongoengine), written only through the repositories.

- `ProviderDocument`: one entry of a country's service directory, owned by the coordinator's office that
  manages it; `agency_id` links the provider's own users (their token's `agency`) to it. `capacity` holds, per
  group, `total`, `free` and `held_by` (the referrals holding a place), changed only by the conditional updates
  of `domain/capacity.py`.
- `ReferralDocument`: one referral, owned by the referring agency (or, for a proposal made from an
  identification event, by the country's `proposals_agency`), addressed to `provider_agency`. Its append-only
  `timeline` records every transition; `sealed_fields` is the copy of the granted case fields, one AES-GCM
  ciphertext under the owning country's key (adapters/sealing.py); `stat` holds the codes statistics read.
- `ConsentWithdrawalDocument`: one withdrawal of an adult's consent identification announced, its id the
  event's `withdrawal_id`, owned by the country (and agency) that recorded it: the person and her cases, so
  that nothing new is shared for her there (service_layer/withdrawals.py).

Neither stores a name or other personal data in clear.
"""

from __future__ import annotations

from typing import Any, ClassVar

from mongoengine import BooleanField, DateTimeField, DictField, ListField, StringField

from plumbing.config import PlatformConfig
from plumbing.documents import OwnedDocument
from plumbing.repository import ScopePolicy
from plumbing.restrictions import CASE, PERSON
from referral.domain.visibility import DirectoryScopePolicy, ReferralScopePolicy


class ProviderDocument(OwnedDocument):
    meta: ClassVar[dict[str, Any]] = {  # type: ignore[misc]
        "collection": "providers",
        "indexes": [
            {"fields": ["owner_country", "agency_id"], "unique": True},
            {"fields": ["owner_country", "service_types"]},
        ],
    }
    # The directory holds organisations; its contact persons are the only personal data, kept as long as a
    # referral record (no retention class of its own yet: see the service README).
    RETENTION_CLASS: ClassVar[str | None] = "referral"

    agency_id = StringField(required=True)
    name = StringField(required=True)
    kind = StringField(required=True)
    service_types = ListField(StringField())
    languages = ListField(StringField())
    municipalities = ListField(StringField())
    accepts = DictField()
    hours = DictField()
    capacity = DictField()
    active = BooleanField(default=True)
    contacts = ListField(DictField())


class ReferralDocument(OwnedDocument):
    meta: ClassVar[dict[str, Any]] = {  # type: ignore[misc]
        "collection": "referrals",
        "indexes": [
            {"fields": ["owner_country", "provider_agency", "status"]},
            {"fields": ["owner_country", "informed_agencies"]},
            {"fields": ["case_id"]},
            {"fields": ["person_id"]},
            {"fields": ["return_case_id"]},
            {"fields": ["status", "next_due_at"]},
        ],
    }
    RETENTION_CLASS: ClassVar[str | None] = "referral"
    RESTRICTED_BY: ClassVar[dict[str, str]] = {"person_id": PERSON, "case_id": CASE}

    status = StringField(required=True)
    case_id = StringField(null=True)  # identification's case, when the referral comes from one
    person_id = StringField(null=True)
    return_case_id = StringField(null=True)  # return's case, for a reception proposal (origin side)
    source_event_id = StringField(null=True)  # the needs-identified or reception-recorded event of a proposal
    need = StringField(null=True)  # the identified need a proposal answers
    candidate_service_types = ListField(StringField())
    service_type = StringField(null=True)
    provider_id = StringField(null=True)
    provider_agency = StringField(null=True)
    provider_kind = StringField(null=True)
    municipality = StringField(null=True)
    age_group = StringField(null=True)  # child (presumed children included) | adult
    sex = StringField(null=True)
    family = BooleanField(default=False)
    urgent = BooleanField(default=False)
    languages = ListField(StringField())
    consent = DictField(null=True)  # adults: {given, recorded_at, recorded_by}
    legal_basis = StringField(null=True)  # children: a code of the country's child_legal_bases
    field_sets = ListField(StringField())
    granted_fields = ListField(StringField())
    sealed_fields = StringField(null=True)
    fields_copied_at = DateTimeField(null=True)
    fields_source = StringField(null=True)  # "identification" (read on the referrer's behalf) | "typed"
    # Granted fields a correction in identification changed since the copy (cleared by a refresh), and the
    # corrections that reached the referral (so that a redelivered event changes nothing)
    outdated_fields = ListField(StringField())
    corrections_seen = ListField(StringField())
    capacity_group = StringField(null=True)  # the group of the place held while accepted / in progress
    informed_agencies = ListField(StringField())
    requested_at = DateTimeField(null=True)
    answer_due_at = DateTimeField(null=True)
    answered_at = DateTimeField(null=True)
    started_at = DateTimeField(null=True)
    ended_at = DateTimeField(null=True)
    deadline_actions_done = ListField(StringField())
    reason = StringField(null=True)  # the coded reason of the last decline / cancel / revoke / completion
    overdue = BooleanField(default=False)
    timeline = ListField(DictField())


class ConsentWithdrawalDocument(OwnedDocument):
    meta: ClassVar[dict[str, Any]] = {  # type: ignore[misc]
        "collection": "consent_withdrawals",
        "indexes": [
            {"fields": ["owner_country", "person_id"]},
            {"fields": ["owner_country", "case_ids"]},
        ],
    }
    RETENTION_CLASS: ClassVar[str | None] = "referral"

    person_id = StringField(required=True)  # identification's ids only
    case_ids = ListField(StringField())
    effective_on = StringField(required=True)  # the day it was recorded (ISO date, UTC)


# The documents whose outbox the relay publishes (entrypoints/relay.py).
AGGREGATES: tuple[type[OwnedDocument], ...] = (ProviderDocument, ReferralDocument)


def scope_policies(config: PlatformConfig) -> dict[type, ScopePolicy]:
    """The scope policy of each document class (the wiring hands it to every repository it makes)."""
    return {
        ProviderDocument: DirectoryScopePolicy(),
        ReferralDocument: ReferralScopePolicy.from_config(config),
    }
