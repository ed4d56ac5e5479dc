"""Who sees what, as functions and as the scope policies the repositories apply (deny by default).

Referrals:
- the referring side reads them by need-to-know (config/platform.yaml `need_to_know`): country-wide roles
  (coordinator's office, case managers) every referral of their country, agency roles their agency's;
- a provider reads the referrals addressed to its agency, once sent (never a proposal), and of their copied
  case data only the granted fields (domain/minimisation.py);
- the child protection unit informed of a child's referral reads it as codes only (no case data);
- nobody reads another country's referral: it answers 404, like a missing one.

Directory:
- the public part (what, where, for whom, when, free places) is read by referrers and providers of the same
  country; the private part (contacts) only by the coordinator's office and by the provider itself;
- the coordinator's office manages the directory; a provider changes only its own capacity;
- another country sees nothing (404): cross-border use of a directory must be designed, not assumed.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from plumbing.auth import Caller
from plumbing.config import PlatformConfig
from plumbing.errors import NotFound
from plumbing.repository import NeedToKnowPolicy
from referral.domain.directory import PRIVATE_FIELDS, PUBLIC_FIELDS, Provider
from referral.domain.errors import NotPermitted
from referral.domain.lifecycle import Side, Status

COORDINATOR_OFFICE = frozenset({"coordinator", "contact-point"})
# Roles that refer people to services (and so read the directory's public part and create referrals).
REFERRER_ROLES = frozenset(
    {
        "coordinator",
        "contact-point",
        "case-manager",
        "social-worker",
        "child-protection-worker",
        "police-officer",
        "border-police",
        "ngo-outreach",
        "labour-inspector",
    }
)
# Roles of the organisations that receive referrals (a municipal unit or an NGO can be both).
PROVIDER_ROLES = frozenset(
    {"service-provider", "guardian", "social-worker", "child-protection-worker", "ngo-outreach"}
)
DIRECTORY_READERS = REFERRER_ROLES | PROVIDER_ROLES
# Roles of a child protection unit that is informed of a child's referral.
INFORMED_ROLES = frozenset({"child-protection-worker", "social-worker"})


class Part(StrEnum):
    PUBLIC = "public"
    PRIVATE = "private"


# ------------------------------------------------------------------------------------------------ directory


def directory_part(caller: Caller, provider: Provider) -> Part:
    """Which part of a provider's entry the caller reads; `NotFound` when none (other country, other roles)."""
    if caller.country != provider.country or not caller.roles & (DIRECTORY_READERS | COORDINATOR_OFFICE):
        raise NotFound("provider not found")
    if caller.roles & COORDINATOR_OFFICE or caller.agency == provider.agency_id:
        return Part.PRIVATE
    return Part.PUBLIC


def provider_view(provider: Provider, part: Part) -> dict[str, Any]:
    full: dict[str, Any] = {
        "id": provider.id,
        "country": provider.country,
        "agency_id": provider.agency_id,
        "name": provider.name,
        "kind": str(provider.kind),
        "service_types": sorted(provider.service_types),
        "languages": sorted(provider.languages),
        "municipalities": sorted(provider.municipalities),
        "accepts": provider.accepts.as_record(),
        "hours": provider.hours.as_record(),
        # Free places are public (referrers must see them); which referrals hold them is not.
        "capacity": {g: {"total": c.total, "free": c.free} for g, c in sorted(provider.capacity.items())},
        "active": provider.active,
        "contacts": [dict(c) for c in provider.contacts],
    }
    shown = PUBLIC_FIELDS + (PRIVATE_FIELDS if part is Part.PRIVATE else ())
    return {name: full[name] for name in shown}


def require_directory_manager(caller: Caller) -> None:
    if not caller.roles & COORDINATOR_OFFICE:
        raise NotPermitted("directory_managed_by_coordinator_office")


def require_capacity_keeper(caller: Caller, provider: Provider) -> None:
    """The provider keeps its own capacity current; the coordinator's office may correct it."""
    if caller.agency != provider.agency_id and not caller.roles & COORDINATOR_OFFICE:
        raise NotPermitted("capacity_kept_by_provider")


@dataclass(frozen=True)
class DirectoryScopePolicy:
    """`plumbing.repository.ScopePolicy` of the directory: the caller's country, for the roles that read it."""

    def read_filter(self, caller: Caller) -> dict[str, Any] | None:
        if not caller.roles & (DIRECTORY_READERS | COORDINATOR_OFFICE):
            return None
        return {"owner_country": caller.country}

    def may_create(self, caller: Caller) -> bool:
        return bool(caller.roles & COORDINATOR_OFFICE)


# ------------------------------------------------------------------------------------------------ referrals


@dataclass(frozen=True)
class ReferralFacts:
    """What the visibility rules need of a referral."""

    owner_country: str
    owner_agency: str
    provider_agency: str | None
    status: str
    informed_agencies: frozenset[str] = frozenset()


def sides(caller: Caller, referral: ReferralFacts, need_to_know: NeedToKnowPolicy) -> frozenset[Side]:
    """The parts the caller plays in the referral (none: it may not see it)."""
    if caller.country != referral.owner_country:
        return frozenset()
    out: set[Side] = set()
    roles = caller.roles
    if roles & REFERRER_ROLES and (
        roles & need_to_know.country_wide_roles
        or (roles & need_to_know.agency_roles and caller.agency == referral.owner_agency)
    ):
        out.add(Side.REFERRER)
    if (
        roles & PROVIDER_ROLES
        and caller.agency == referral.provider_agency
        and referral.status != Status.PROPOSED
    ):
        out.add(Side.PROVIDER)
    return frozenset(out)


def is_informed_only(caller: Caller, referral: ReferralFacts, need_to_know: NeedToKnowPolicy) -> bool:
    """The caller reads the referral only as the child protection unit informed of it: codes only."""
    return (
        not sides(caller, referral, need_to_know)
        and caller.country == referral.owner_country
        and bool(caller.roles & INFORMED_ROLES)
        and caller.agency in referral.informed_agencies
    )


def require_side(caller: Caller, referral: ReferralFacts, side: Side, need_to_know: NeedToKnowPolicy) -> None:
    if side not in sides(caller, referral, need_to_know):
        raise NotPermitted(f"not_the_{side}")


@dataclass(frozen=True)
class ReferralScopePolicy:
    """`plumbing.repository.ScopePolicy` of referrals: need-to-know for the referring side, OR addressed to the
    caller's agency (once sent), OR the caller's unit was informed of it; always within the caller's country."""

    need_to_know: NeedToKnowPolicy

    @classmethod
    def from_config(cls, config: PlatformConfig) -> ReferralScopePolicy:
        return cls(NeedToKnowPolicy.from_config(config))

    def read_filter(self, caller: Caller) -> dict[str, Any] | None:
        # The referring side, and the configuration's other country-wide roles (the data protection officer, in
        # the one operation that names her: the right of access), read through need-to-know.
        readers = REFERRER_ROLES | self.need_to_know.country_wide_roles
        base = self.need_to_know.read_filter(caller) if caller.roles & readers else None
        if base is not None and "$or" not in base:
            return base  # country-wide: every referral of the country
        clauses: list[Mapping[str, Any]] = list(base["$or"]) if base else []
        if caller.roles & PROVIDER_ROLES:
            clauses.append({"provider_agency": caller.agency, "status": {"$ne": str(Status.PROPOSED)}})
        if caller.roles & INFORMED_ROLES:
            clauses.append({"informed_agencies": caller.agency})
        if not clauses:
            return None
        return {"owner_country": caller.country, "$or": [dict(c) for c in clauses]}

    def may_create(self, caller: Caller) -> bool:
        return bool(caller.roles & REFERRER_ROLES)


def facts_of(record: Any) -> ReferralFacts:
    """ReferralFacts of a stored referral (adapters/documents.ReferralDocument or any object with its fields)."""
    return ReferralFacts(
        owner_country=record.owner_country,
        owner_agency=record.owner_agency,
        provider_agency=record.provider_agency,
        status=record.status,
        informed_agencies=frozenset(record.informed_agencies or ()),
    )
