"""Capacity: free places per group of a provider, never negative, never taken twice for one referral.

Taking and freeing a place are each ONE conditional single-document update of the provider, so that two users
cannot both take the last place (MongoDB applies an update's filter and its change atomically on one document):

    take:  filter {_id, capacity.<g>.free > 0, capacity.<g>.held_by != referral}
           update {$inc capacity.<g>.free -1, $push capacity.<g>.held_by referral}
    free:  filter {_id, capacity.<g>.held_by == referral}
           update {$inc capacity.<g>.free +1, $pull capacity.<g>.held_by referral}

Recording *which* referral holds a place makes both idempotent (a retried accept cannot take a second place, a
retried end cannot free one twice) and lets a check find places held by referrals that no longer hold them.
This module states the filters and updates; the repository runs them (service_layer/capacity.py).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from referral.domain.catalogue import CHILD
from referral.domain.directory import FEMALE, MALE, CapacityGroup
from referral.domain.errors import DomainError

FIELD = "capacity"
GENERAL = "places"


def group_for(age_group: str, sex: str | None, offered: Iterable[str], *, family: bool = False) -> str | None:
    """The capacity group a person takes at a provider offering `offered` groups: the most specific one the
    provider keeps (families; girls/boys; women/men), else its general `places`, else None (no place at all)."""
    groups = set(offered)
    preferred: list[str] = []
    if family:
        preferred.append("families")
    if age_group == CHILD:
        preferred += {FEMALE: ["girls"], MALE: ["boys"]}.get(sex or "", [])
    else:
        preferred += {FEMALE: ["women"], MALE: ["men"]}.get(sex or "", [])
    preferred.append(GENERAL)
    return next((g for g in preferred if g in groups), None)


def initial(places: Mapping[str, int]) -> dict[str, dict[str, Any]]:
    """Stored capacity of a new provider: every place free."""
    return {group: {"total": total, "free": total, "held_by": []} for group, total in places.items()}


def resized(stored: Mapping[str, Any], places: Mapping[str, int]) -> dict[str, dict[str, Any]]:
    """Stored capacity after the provider (or the coordinator's office) states new totals: places already held
    stay held, so a total below the places held is refused rather than leaving `free` negative."""
    out: dict[str, dict[str, Any]] = {}
    for group, total in places.items():
        held = list((stored.get(group) or {}).get("held_by") or [])
        if total < len(held):
            raise DomainError(
                "capacity_below_places_taken", "fewer places than are taken", pointer=f"/capacity/{group}"
            )
        out[group] = {"total": total, "free": total - len(held), "held_by": held}
    for group, state in stored.items():
        if group not in out and state.get("held_by"):
            raise DomainError(
                "capacity_below_places_taken", "a group with taken places", pointer=f"/capacity/{group}"
            )
    return out


def groups_of(stored: Mapping[str, Any]) -> dict[str, CapacityGroup]:
    return {
        group: CapacityGroup(int(state["total"]), int(state["free"]), tuple(state.get("held_by") or ()))
        for group, state in stored.items()
    }


@dataclass(frozen=True)
class ConditionalUpdate:
    """A filter (beyond the record id) and the update operators applied only when it matches."""

    condition: dict[str, Any]
    operators: dict[str, Any]


def take(group: str, referral_id: str) -> ConditionalUpdate:
    path = f"{FIELD}.{group}"
    return ConditionalUpdate(
        {f"{path}.free": {"$gt": 0}, f"{path}.held_by": {"$ne": referral_id}},
        {"$inc": {f"{path}.free": -1}, "$push": {f"{path}.held_by": referral_id}},
    )


def free(group: str, referral_id: str) -> ConditionalUpdate:
    path = f"{FIELD}.{group}"
    return ConditionalUpdate(
        {f"{path}.held_by": referral_id},
        {"$inc": {f"{path}.free": 1}, "$pull": {f"{path}.held_by": referral_id}},
    )
