"""An adult's consent withdrawn in identification (`identification.person.consent_withdrawn.v1`): what referral
keeps of it, and the refusal of anything new for her.

Design: one `ConsentWithdrawalDocument` per withdrawal in referral's own database (adapters/documents.py), its id
the event's `withdrawal_id`, owned by the owner country and the agency that recorded it, holding the person id
and every identification case id of hers the event names (ids only). A separate record, not a mark on the
referrals: it must also refuse referrals and proposals that do not exist yet.

- The consumer records it first (`record`; a second insert of the same id is a conflict, so a redelivery adds
  nothing), then ends her active referrals (service_layer/referrals.end_on_consent_withdrawn, the same
  transition code as the API's `POST /consent-withdrawals`). Ending touches active referrals only and none can
  be created once the record exists, so a redelivery ends nothing more, and a crash in between is completed by
  it.
- `refuse_if_withdrawn` is the gate: proposing (API), requesting (sending a proposal) answer 409 `conflict` with
  the code `consent_withdrawn` for a referral of that country that names her person id or one of her cases;
  `withdrawn` lets the consumer skip proposals from identification's needs for her.

Proposals from a return's reception name a return case only (the event carries no person or identification case
id), so this record cannot refuse them: return stops her running return cases on the same event.
There is no event yet that gives consent again; the record stays until its retention period ends.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from plumbing.errors import Conflict
from referral.adapters.documents import ConsentWithdrawalDocument
from referral.domain.errors import InvalidTransition
from referral.domain.lifecycle import CONSENT_WITHDRAWN
from referral.service_layer.deps import Deps

CONSENT_WITHDRAWN_EVENT = "identification.person.consent_withdrawn.v1"
ACTOR = "system:referral-consumer"


def record(deps: Deps, data: Mapping[str, Any]) -> bool:
    """Keep the withdrawal of an event's `data`; False when an earlier delivery kept it."""
    doc = ConsentWithdrawalDocument(
        id=str(data["withdrawal_id"]),
        person_id=str(data["person_id"]),
        case_ids=[str(case_id) for case_id in data["case_ids"]],
        effective_on=str(data["effective_on"]),
    )
    try:
        deps.system_repository(ConsentWithdrawalDocument, ACTOR).insert(
            doc, owner_country=data["owner_country"], owner_agency=data["owner_agency"]
        )
    except Conflict:
        return False
    return True


def withdrawn(deps: Deps, country: str, person_id: str | None, case_id: str | None) -> str | None:
    """The id of a withdrawal recorded in `country` for the person or the case, or None."""
    withdrawals = deps.system_repository(ConsentWithdrawalDocument, ACTOR)
    found = []
    if person_id:
        found = withdrawals.find(limit=1, owner_country=country, person_id=person_id)
    if not found and case_id:
        found = withdrawals.find(limit=1, owner_country=country, case_ids=case_id)
    return str(found[0].id) if found else None


def refuse_if_withdrawn(deps: Deps, country: str, person_id: str | None, case_id: str | None) -> None:
    """409 `consent_withdrawn` when the person (or the case's person) withdrew her consent in `country`."""
    if withdrawn(deps, country, person_id, case_id):
        raise InvalidTransition(CONSENT_WITHDRAWN)
