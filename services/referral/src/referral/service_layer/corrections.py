"""A correction of a person in identification reaching the referrals that carry a copy of her data.

Identification's `identification.person.corrected.v1` names the members that changed, never their values. No
service account may read identification (CONVENTIONS: calls on the user's behalf only), so the consumer does not
fetch the corrected data: it marks each open, sent referral of that person whose granted fields include a
changed member (`outdated_fields`, a timeline entry), and the referring side refreshes the copy with its own token
(`POST /referrals/{id}/case-fields/refresh`, service_layer/referrals.refresh_fields), which reads identification
on her behalf and clears the mark. Until then the provider's read of the fields says which are outdated.
Applied once per correction: the correction ids that reached a referral are kept on it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from referral.adapters.documents import ReferralDocument
from referral.domain import lifecycle
from referral.domain.lifecycle import Status
from referral.service_layer.deps import Deps

PERSON_CORRECTED = "identification.person.corrected.v1"
ACTOR = "system:referral-consumer"
# Referrals whose copy is still read: sent and not ended
CARRYING_A_COPY = lifecycle.ACTIVE - {Status.PROPOSED}


def mark_outdated_copies(deps: Deps, envelope: Mapping[str, Any]) -> list[str]:
    """The ids of the referrals this delivery marked (empty for a redelivery or nothing granted changed)."""
    if envelope.get("type") != PERSON_CORRECTED:
        raise ValueError("not a person-corrected event")
    data = envelope["data"]
    changed = frozenset(data["fields"])
    correction = str(data["correction_id"])
    referrals = deps.system_repository(ReferralDocument, ACTOR)
    marked: list[str] = []
    for doc in referrals.find(person_id=data["person_id"], owner_country=data["owner_country"]):
        if doc.status not in CARRYING_A_COPY or correction in (doc.corrections_seen or ()):
            continue
        outdated = changed & frozenset(doc.granted_fields or ())
        doc.corrections_seen = [*(doc.corrections_seen or ()), correction]
        if outdated:
            doc.outdated_fields = sorted(outdated | frozenset(doc.outdated_fields or ()))
            doc.timeline = [
                *doc.timeline,
                {
                    "at": deps.clock.now(),
                    "by": ACTOR,
                    "agency": doc.owner_agency,
                    "action": "case_fields_outdated",
                    "fields": sorted(outdated),
                    "correction_id": correction,
                },
            ]
            marked.append(doc.id)
        referrals.update(doc)
    return marked
