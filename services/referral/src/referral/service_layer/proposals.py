"""Proposals from identification's `identification.needs.identified.v1` and from return's
`return.reception.recorded.v1` (ids and codes only): what the consumer calls for each delivery. It proposes
referrals for the case manager to confirm (domain/proposals.py) and never requests one. Applied once per event:
each proposal's id derives from the event id and the need or service, so a redelivery finds its proposals already
stored and adds nothing (and a crash half-way is completed by the redelivery). Needs of a person whose consent
was withdrawn in that country propose nothing (service_layer/withdrawals.py)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from plumbing.errors import Conflict, NotFound
from referral.adapters.documents import ReferralDocument
from referral.domain import events
from referral.domain.lifecycle import Status
from referral.domain.proposals import ProposalSpec, proposals_for, reception_proposals
from referral.service_layer import withdrawals
from referral.service_layer.deps import Deps

NEEDS_IDENTIFIED = "identification.needs.identified.v1"
RECEPTION_RECORDED = "return.reception.recorded.v1"
ACTOR = "system:referral-consumer"


def propose_from_needs(deps: Deps, envelope: Mapping[str, Any]) -> list[str]:
    """The ids of the proposals this delivery created (empty for a redelivery, a need without a service, or a
    person whose consent was withdrawn)."""
    if envelope.get("type") != NEEDS_IDENTIFIED:
        raise ValueError("not a needs-identified event")
    data = envelope["data"]
    _check_country(deps, data["owner_country"])
    if withdrawals.withdrawn(deps, data["owner_country"], data["person_id"], data["case_id"]):
        return []
    specs = proposals_for(str(envelope["id"]), data, deps.catalogue)
    return _store(deps, envelope, specs, case_id=data["case_id"], person_id=data["person_id"])


def propose_for_reception(deps: Deps, envelope: Mapping[str, Any]) -> list[str]:
    """The ids of the reception proposals this delivery created: one per service the origin country asked for
    as it recorded a returned person's arrival, linked to its return case (empty on the host side, or for a
    redelivery)."""
    if envelope.get("type") != RECEPTION_RECORDED:
        raise ValueError("not a reception-recorded event")
    data = envelope["data"]
    specs = reception_proposals(str(envelope["id"]), data, deps.catalogue)
    if not specs:
        return []
    _check_country(deps, data["owner_country"])
    return _store(deps, envelope, specs, return_case_id=data["return_case_id"])


def _check_country(deps: Deps, country: str) -> None:
    if country not in deps.catalogue.countries:
        # Not a partner the catalogue has rules for: a configuration error, for the dead-letter topic.
        raise ValueError("the event's country has no referral rules")


def _store(
    deps: Deps,
    envelope: Mapping[str, Any],
    specs: Sequence[ProposalSpec],
    *,
    case_id: str | None = None,
    person_id: str | None = None,
    return_case_id: str | None = None,
) -> list[str]:
    """Store each proposal not stored yet, owned by the event's country and its proposals agency, with its
    `referral.referral.proposed.v1` event; the ids of those this call stored."""
    country = envelope["data"]["owner_country"]
    agency = deps.catalogue.country(country).proposals_agency
    referrals = deps.system_repository(ReferralDocument, ACTOR)
    created: list[str] = []
    now = deps.clock.now()
    source = str(envelope["id"])
    for spec in specs:
        try:
            referrals.get(spec.id)
            continue  # proposed by an earlier delivery
        except NotFound:
            pass
        origin = {"need": spec.need} if spec.need else {"return_case_id": return_case_id}
        doc = ReferralDocument(
            id=spec.id,
            status=str(Status.PROPOSED),
            case_id=case_id,
            person_id=person_id,
            return_case_id=return_case_id,
            source_event_id=source,
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
                    **origin,
                    "source_event_id": source,
                }
            ],
        )
        doc.owner_country, doc.owner_agency = country, agency  # the event payload needs them before insert
        payload = events.referral_data(
            doc,
            need=spec.need,
            candidate_service_types=list(spec.candidate_service_types),
            source_event_id=source,
            return_case_id=return_case_id,
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
