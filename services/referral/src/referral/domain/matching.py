"""Matching: which providers of the directory could take a need, best first, each with its reasons.

Hard requirements (a provider failing one is not suggested): active; offers the service type; admits the
person's age group and sex (and families, for a family need); for a service type with capacity, a free place in
the person's group. Preferences, each adding to the score and named as a reason the referrer can read:

    serves_municipality   +40   the provider serves the municipality where the person is
    speaks_languages      +30   speaks every language the person needs (+15 when only some: speaks_some_languages)
    open_now / open_24_7  +20   open at the time of the search (local time of the country)
    free_places           +2 per free place, up to +10
    specialised_for_children +10  a child-only provider for a child

Gaps are named too, with weight 0 (`does_not_serve_municipality`, `closed_now`, `no_common_language`), so the
referrer sees why a lower suggestion is lower. Ties are broken by name, then id, so the order is stable.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from referral.domain import capacity
from referral.domain.catalogue import CHILD, ServiceType
from referral.domain.directory import Provider

SERVES_MUNICIPALITY = 40
ALL_LANGUAGES, SOME_LANGUAGES = 30, 15
OPEN_NOW = 20
PER_FREE_PLACE, MAX_FREE_PLACES_BONUS = 2, 10
CHILD_SPECIALIST = 10


@dataclass(frozen=True)
class Need:
    service_type: str
    age_group: str  # child | adult (age uncertain: child)
    sex: str | None = None
    languages: tuple[str, ...] = ()  # ISO 639-3 the person speaks or needs
    municipality: str | None = None
    family: bool = False


@dataclass(frozen=True)
class Suggestion:
    provider_id: str
    agency_id: str
    name: str
    score: int
    reasons: tuple[dict[str, Any], ...] = field(default_factory=tuple)
    capacity_group: str | None = None
    free_places: int | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "provider_id": self.provider_id,
            "agency_id": self.agency_id,
            "name": self.name,
            "score": self.score,
            "reasons": [dict(r) for r in self.reasons],
            "capacity_group": self.capacity_group,
            "free_places": self.free_places,
        }


def _reason(code: str, weight: int, **facts: Any) -> dict[str, Any]:
    return {"code": code, "weight": weight, **facts}


def evaluate(
    provider: Provider, need: Need, service_type: ServiceType, now: datetime, zone: ZoneInfo
) -> Suggestion | None:
    """The provider as a suggestion for the need, or None when it fails a hard requirement."""
    if not provider.active or need.service_type not in provider.service_types:
        return None
    if not provider.accepts.admits(need.age_group, need.sex):
        return None
    if need.family and not provider.accepts.families:
        return None
    group: str | None = None
    free: int | None = None
    reasons: list[dict[str, Any]] = []
    score = 0
    if service_type.capacity:
        group = capacity.group_for(need.age_group, need.sex, provider.capacity, family=need.family)
        free = provider.free_places(group) if group else 0
        if not free:
            return None
        bonus = min(free * PER_FREE_PLACE, MAX_FREE_PLACES_BONUS)
        score += bonus
        reasons.append(_reason("free_places", bonus, group=group, free=free))
    if need.municipality:
        if need.municipality in provider.municipalities:
            score += SERVES_MUNICIPALITY
            reasons.append(_reason("serves_municipality", SERVES_MUNICIPALITY))
        else:
            reasons.append(_reason("does_not_serve_municipality", 0))
    if need.languages:
        common = sorted(set(need.languages) & provider.languages)
        if len(common) == len(set(need.languages)):
            score += ALL_LANGUAGES
            reasons.append(_reason("speaks_languages", ALL_LANGUAGES, languages=common))
        elif common:
            score += SOME_LANGUAGES
            reasons.append(_reason("speaks_some_languages", SOME_LANGUAGES, languages=common))
        else:
            reasons.append(_reason("no_common_language", 0))
    if provider.hours.always:
        score += OPEN_NOW
        reasons.append(_reason("open_24_7", OPEN_NOW))
    elif provider.hours.open_at(now, zone):
        score += OPEN_NOW
        reasons.append(_reason("open_now", OPEN_NOW))
    else:
        reasons.append(_reason("closed_now", 0))
    if need.age_group == CHILD and provider.accepts.children and not provider.accepts.adults:
        score += CHILD_SPECIALIST
        reasons.append(_reason("specialised_for_children", CHILD_SPECIALIST))
    return Suggestion(
        provider_id=provider.id,
        agency_id=provider.agency_id,
        name=provider.name,
        score=score,
        reasons=tuple(reasons),
        capacity_group=group,
        free_places=free,
    )


def suggest(
    providers: Iterable[Provider],
    need: Need,
    service_type: ServiceType,
    now: datetime,
    zone: ZoneInfo,
    *,
    limit: int = 10,
) -> list[Suggestion]:
    """The best `limit` providers for the need, highest score first."""
    found = [s for p in providers if (s := evaluate(p, need, service_type, now, zone)) is not None]
    found.sort(key=lambda s: (-s.score, s.name, s.provider_id))
    return found[:limit]
