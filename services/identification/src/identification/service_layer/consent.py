"""An adult's withdrawal of consent, recorded once in identification and carried to every service by one event.

The officer who hears it records it on the person (`POST /persons/{id}/consent-withdrawal`): who, when, how it
was expressed. The write carries `identification.person.consent_withdrawn.v1` with the person's id and every
case id of hers in the country, so each service ends what rested on her consent without being asked again:
referral ends her active referrals, return stops her running returns, exchange restricts the forms sent on
consent and notifies every country that received her data (docs/data-protection.md, "Consent withdrawal").
Each open case's timeline gets a `consent_withdrawn` entry through a follow-up step in the same write.

Refused (409) for a child: consent is not the basis of a child's protection (docs/domain.md), her views are
recorded on her case instead; and refused when her consent was withdrawn already (the first record stands).
"""

from __future__ import annotations

from typing import Any

from identification.adapters.documents import PersonDocument
from identification.service_layer import follow_up
from identification.service_layer.deps import SOURCE, Deps
from identification.service_layer.persons import case_ids_of, is_child, person_view
from plumbing.auth import Caller
from plumbing.documents import new_id
from plumbing.errors import Conflict
from plumbing.events import new_event
from plumbing.steps import new_step, perform

EVENT = "identification.person.consent_withdrawn.v1"


def withdraw_consent(deps: Deps, caller: Caller, person_id: str, body: dict[str, Any]) -> dict[str, Any]:
    people = deps.repository(PersonDocument, caller)
    person = people.get(person_id)  # 404 unless the caller may read her
    if person.consent_withdrawal:
        raise Conflict("her consent was withdrawn already")
    details = deps.sealer.open(person.owner_country, person.id, person.sealed)
    now = deps.clock.now()
    if is_child(details, now.date()):
        raise Conflict("consent is not the basis for a child: record her views on her case")
    withdrawal_id = new_id()
    person.consent_withdrawal = {
        "id": withdrawal_id,
        "at": now,
        "by": caller.sub,
        "agency": caller.agency,
        "expressed": body["expressed"],
    }
    case_ids = case_ids_of(deps, person)
    data = {
        "person_id": person.id,
        "withdrawal_id": withdrawal_id,
        "owner_country": person.owner_country,
        "owner_agency": caller.agency,
        "case_ids": case_ids,
        "expressed": body["expressed"],
        "effective_on": now.date().isoformat(),
    }
    event = new_event(EVENT, person.id, data, SOURCE, clock=deps.clock.now)
    step = new_step(
        follow_up.RECORD_CONSENT_WITHDRAWAL,
        now,
        by=caller.sub,
        agency=caller.agency,
        withdrawal_id=withdrawal_id,
        case_ids=case_ids,
        expressed=body["expressed"],
    )
    people.update(person, events=[event], steps=[step])  # Conflict (409) if it changed since it was read
    perform(
        PersonDocument, person, step, follow_up.consent_handler(deps.system_repository), deps.complete_step
    )
    return person_view(deps, person, details)
