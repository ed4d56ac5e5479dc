"""Mongo documents of the return service (mongoengine), written only through the repositories.

`ReturnCaseDocument`: one assisted voluntary return, owned by the agency of the country where the person is (the
host country) that opened it, under the platform's need-to-know policy (a best-interests panel member reads the
cases assigned to her). What the people involved recorded - the adult's consent, the origin country's family
assessment, the best-interests assessment and determination, the approved plan - is kept sealed, one AES-GCM
token per record (`sealed`, adapters/sealing.py); in clear only the codes and instants the rules, the lists and
the deadlines need (status, who is treated as a child, the decision's code, reception and follow-up instants).

`ConsentWithdrawalDocument`: an adult's withdrawal of consent recorded in identification, as the return service
keeps it (service_layer/withdrawals.py): ids only, owned like the withdrawal (its country, the agency that recorded
it).
"""

from __future__ import annotations

from typing import Any, ClassVar

from mongoengine import BooleanField, DateTimeField, DictField, ListField, StringField

from plumbing.documents import OwnedDocument
from plumbing.restrictions import CASE, PERSON


class ReturnCaseDocument(OwnedDocument):
    meta: ClassVar[dict[str, Any]] = {  # type: ignore[misc]
        "collection": "return_cases",
        "indexes": [
            {"fields": ["owner_country", "status"]},
            {"fields": ["identification_case_id"]},
            # Her cases, when she withdraws consent in identification (service_layer/withdrawals.py).
            {"fields": ["owner_country", "person_id"]},
            {"fields": ["owner_country", "exchange_case_id"]},
            {"fields": ["status", "next_due_at"]},
        ],
    }
    RETENTION_CLASS: ClassVar[str | None] = "return-case"
    RESTRICTED_BY: ClassVar[dict[str, str]] = {"person_id": PERSON, "identification_case_id": CASE}

    status = StringField(required=True)
    # host: the country where the person is, which runs the return; origin: the country she returns to, whose
    # case opens when the host's return request arrives through the exchange (service_layer/border.py).
    side = StringField(default="host", choices=("host", "origin"))
    host_country = StringField(null=True)  # the other end of an origin-side case
    exchange_case_id = StringField(null=True)  # this country's record of the transnational case (exchange)
    exchange_events = ListField(StringField())  # ids of the exchange events applied (service_layer/border.py)
    identification_case_id = StringField(null=True)  # the host country's identification case
    person_id = StringField(null=True)
    origin_country = StringField(required=True)  # where the person returns to
    age_group = StringField(
        null=True
    )  # child | adult, as recorded (identification's when the case names one)
    age_uncertain = BooleanField(default=False)
    sealed = (
        DictField()
    )  # record name -> sealed {body, recorded_by, recorded_at[, withdrawn_at, withdrawn_by]}
    decision = StringField(null=True)  # the current determination's decision code
    consent_current = BooleanField(default=False)
    received_at = DateTimeField(null=True)
    # Referral service types the origin country asked for on arrival (its referral service proposes them)
    reception_services = ListField(StringField())
    reintegration_plan_at = DateTimeField(null=True)
    follow_ups_at = ListField(DateTimeField())
    reason = StringField(null=True)  # the coded reason of a stop or closure
    # Reintegration reminders already sent (`due:<what>`, `overdue:<what>`: domain/deadlines.py), written with
    # their events; with `next_due_at` (OwnedDocument, indexed with status) what the scheduler works from.
    deadline_actions_done = ListField(StringField())
    timeline = ListField(DictField())


class ConsentWithdrawalDocument(OwnedDocument):
    """One withdrawal of consent recorded in identification (`identification.person.consent_withdrawn.v1`), its
    id the event's `withdrawal_id`: so it is applied once, and the person named (her person id, every
    identification case of hers in the country) can no longer consent to a return there (cases.record_consent:
    409 `consent_withdrawn`). Ids only: the return service keeps no more of it than that rule needs."""

    meta: ClassVar[dict[str, Any]] = {  # type: ignore[misc]
        "collection": "consent_withdrawals",
        "indexes": [
            {"fields": ["owner_country", "person_id"]},
            {"fields": ["owner_country", "case_ids"]},
        ],
    }
    RETENTION_CLASS: ClassVar[str | None] = "return-case"

    person_id = StringField(required=True)  # identification's person id
    case_ids = ListField(StringField())  # her identification cases in the owner country, open or closed
    # When her running return cases were stopped; None while that is still to be done (a redelivery finishes it).
    applied_at = DateTimeField(null=True)


# The documents whose outbox the relay publishes (entrypoints/relay.py).
AGGREGATES: tuple[type[OwnedDocument], ...] = (ReturnCaseDocument,)
