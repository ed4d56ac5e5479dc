"""Proposals from identification's `identification.needs.identified.v1` (ids and codes only): what the consumer
calls for each delivery. It proposes referrals for the case manager to confirm (domain/proposals.py) and never
requests one. Applied once per event: each proposal's id derives from the event id and the need, so a redelivery
finds its proposals already stored and adds nothing (and a crash half-way is completed by the redelivery)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from plumbing.errors import Conflict, NotFound
from referral.adapters.documents import ReferralDocument
from referral.domain import events
from referral.domain.lifecycle import Status
from referral.domain.proposals import proposals_for
from referral.service_layer.deps import Deps

NEEDS_IDENTIFIED = "identification.needs.identified.v1"
ACTOR = "system:referral-consumer"


def propose_from_needs(deps: Deps, envelope: Mapping[str, Any]) -> list[str]:
    """The ids of the proposals this delivery created (empty for a redelivery or a need without a service)."""
    if envelope.get("type") != NEEDS_IDENTIFIED:
        raise ValueError("not a needs-identified event")
    data = envelope["data"]
    country = data["owner_country"]
    if country not in deps.catalogue.countries:
        # Not a partner the catalogue has rules for: a configuration error, for the dead-letter topic.
        raise ValueError("the event's country has no referral rules")
    agency = deps.catalogue.country(country).proposals_agency
    referrals = deps.system_repository(ReferralDocument, ACTOR)
    created: list[str] = []
    now = deps.clock.now()
    for spec in proposals_for(str(envelope["id"]), data, deps.catalogue):
        try:
            referrals.get(spec.id)
            continue  # proposed by an earlier delivery
        except NotFound:
            pass
        doc = ReferralDocument(
            id=spec.id,
            status=str(Status.PROPOSED),
            case_id=data["case_id"],
            person_id=data["person_id"],
            source_event_id=str(envelope["id"]),
            need=spec.need,
            candidate_service_types=list(spec.candidate_service_types),
            service_type=spec.service_type,
            provider_agency=spec.provider_agency,
            age_group=spec.age_group,
            languages=list(spec.languages),
            urgent=spec.urgent,
            timeline=[
                {
                    "at": now,
                    "by": ACTOR,
                    "agency": agency,
                    "action": "propose",
                    "to": "proposed",
                    "need": spec.need,
                    "source_event_id": str(envelope["id"]),
                }
            ],
        )
        doc.owner_country, doc.owner_agency = country, agency  # the event payload needs them before insert
        payload = events.referral_data(
            doc,
            need=spec.need,
            candidate_service_types=list(spec.candidate_service_types),
            source_event_id=str(envelope["id"]),
        )
        events.check_payload(events.PROPOSED, payload)
        try:
            referrals.insert(
                doc,
                owner_country=country,
                owner_agency=agency,
                events=[deps.new_event(events.PROPOSED, doc.id, payload)],
            )
        except Conflict:
            continue  # a concurrent delivery of the same event stored it first
        created.append(doc.id)
    return created
