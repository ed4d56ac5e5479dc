"""Taking and freeing a place: each ONE conditional update of the provider's document (domain/capacity.py),
through the repository's `update_where`, so two users can never both take the last place."""

from __future__ import annotations

from enum import StrEnum
from typing import Any, TypeAlias

from referral.adapters.documents import ProviderDocument
from referral.domain import capacity, events
from referral.service_layer.deps import Deps, Repository, SystemRepository

# A command's scoped repository, or the unscoped one of a worker acting as the system (consent withdrawn)
Providers: TypeAlias = Repository[Any] | SystemRepository[Any]


class Taken(StrEnum):
    TAKEN = "taken"  # this call took the place
    ALREADY_HELD = "already_held"  # the referral held it before (a retried accept)
    NONE_FREE = "none_free"


def _event(deps: Deps, provider: ProviderDocument, group: str, change: int) -> dict[str, Any]:
    return deps.new_event(
        events.CAPACITY_CHANGED,
        provider.id,
        {
            "provider_id": provider.id,
            "owner_country": provider.owner_country,
            "agency_id": provider.agency_id,
            "group": group,
            "change": change,
        },
    )


def take_place(
    deps: Deps, providers: Providers, provider: ProviderDocument, group: str, referral_id: str
) -> Taken:
    update = capacity.take(group, referral_id)
    if providers.update_where(
        provider.id, update.condition, update.operators, events=[_event(deps, provider, group, -1)]
    ):
        return Taken.TAKEN
    # Not taken: tell a retry (the place is this referral's already) from a full group.
    now = providers.get(provider.id)
    held = ((now.capacity or {}).get(group) or {}).get("held_by") or []
    return Taken.ALREADY_HELD if referral_id in held else Taken.NONE_FREE


def free_place(
    deps: Deps, providers: Providers, provider: ProviderDocument, group: str, referral_id: str
) -> bool:
    """Free the place the referral holds; False (and nothing changed) when it holds none."""
    update = capacity.free(group, referral_id)
    return providers.update_where(
        provider.id, update.condition, update.operators, events=[_event(deps, provider, group, +1)]
    )
