"""Proposals from identification's `needs identified` event: which referrals to propose for the case manager
to confirm. Never a referral sent by itself: a proposal is a referral in status `proposed`, seen by the
referring side only, until a case manager chooses the provider, the field sets and the basis and requests it.

One proposal per identified need that the catalogue maps to service types (`from_needs`); its candidates are
every service type the need maps to, and its service type is set when there is only one. A guardian need is the
child-protection convergence rule: it becomes a proposal of the country's guardianship service type, addressed to
the guardianship authority (refined by the municipality when the case manager confirms it), for a child.

Return's `reception recorded` event (the origin country has recorded a returned person's arrival) proposes one
referral per reception service its case manager asked for (`reception_proposals`): the service type is set, the
age group is the return case's, and the proposal names the return case (`return_case_id`), not an identification
case (the origin country may have none: the person was identified abroad).

Each proposal's id is derived from the event id and the need (or the service), so a redelivered event proposes
nothing twice.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from referral.domain.catalogue import ADULT, CHILD, ReferralCatalogue

_NAMESPACE = uuid.UUID("2a4f7c1e-8d3b-4e6a-9f10-5c7b2d9e3a41")
GUARDIAN_NEED = "guardian"
ORIGIN = "origin"  # the side of a return case in the country the person returns to


@dataclass(frozen=True)
class ProposalSpec:
    id: str
    need: str | None
    candidate_service_types: tuple[str, ...]
    service_type: str | None
    provider_agency: str | None
    age_group: str | None
    languages: tuple[str, ...]
    urgent: bool


def proposal_id(event_id: str, need: str) -> str:
    return str(uuid.uuid5(_NAMESPACE, f"{event_id}:{need}"))


def proposals_for(event_id: str, data: Mapping[str, Any], catalogue: ReferralCatalogue) -> list[ProposalSpec]:
    """The proposals one needs-identified event makes (data: the event's `data`; ids and codes only)."""
    country = catalogue.country(data["owner_country"])
    languages = tuple(data.get("interpreter_languages") or ())
    urgent = bool(data.get("urgent"))
    out: list[ProposalSpec] = []
    for need in dict.fromkeys(data.get("needs") or []):
        if need == GUARDIAN_NEED:
            kind = country.guardianship_service_type
            out.append(
                ProposalSpec(
                    id=proposal_id(event_id, need),
                    need=need,
                    candidate_service_types=(kind,),
                    service_type=kind,
                    provider_agency=catalogue.guardianship_authority(country.code, None),
                    age_group=CHILD,  # a guardian is needed by a child (presumed children included)
                    languages=languages,
                    urgent=urgent,
                )
            )
            continue
        candidates = catalogue.service_types_for_need(need)
        if not candidates:
            continue
        out.append(
            ProposalSpec(
                id=proposal_id(event_id, need),
                need=need,
                candidate_service_types=candidates,
                service_type=candidates[0] if len(candidates) == 1 else None,
                provider_agency=None,
                age_group=None,  # the event does not say; the case manager states it when confirming
                languages=languages,
                urgent=urgent,
            )
        )
    return out


def reception_proposals(
    event_id: str, data: Mapping[str, Any], catalogue: ReferralCatalogue
) -> list[ProposalSpec]:
    """The proposals one reception-recorded event makes (data: the event's `data`, ids and codes only): one per
    reception service on an origin-side case; none on the host side (the person has left that country). A code
    referral does not know is a configuration error (ValueError, for the dead-letter topic): return's plan
    catalogue is checked against referral's service types, so it means the two were deployed out of step."""
    if data.get("side") != ORIGIN:
        return []
    unknown = [code for code in data.get("reception_services") or () if code not in catalogue.service_types]
    if unknown:
        raise ValueError(f"reception services referral does not know: {sorted(unknown)}")
    age_group = CHILD if data.get("treated_as_child") else ADULT
    return [
        ProposalSpec(
            id=proposal_id(event_id, f"reception:{code}"),
            need=None,
            candidate_service_types=(code,),
            service_type=code,
            provider_agency=None,
            age_group=age_group,
            languages=(),
            urgent=False,
        )
        for code in dict.fromkeys(data.get("reception_services") or ())
    ]
