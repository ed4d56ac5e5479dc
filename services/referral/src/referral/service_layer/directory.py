"""The service directory: the coordinator's office registers and changes providers; a provider keeps its own
capacity current; referrers and providers of the country read the public part, the coordinator's office and the
provider itself the private part (domain/visibility.py). Another country's callers see nothing (404)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from plumbing.auth import Caller
from plumbing.documents import new_id
from referral.adapters.documents import ProviderDocument
from referral.domain import capacity, events
from referral.domain.directory import ProviderSpec, parse_provider
from referral.domain.errors import AlreadyExists, DomainError
from referral.domain.visibility import (
    directory_part,
    provider_view,
    require_capacity_keeper,
    require_directory_manager,
)
from referral.service_layer.deps import Deps
from referral.service_layer.records import to_provider


def _apply(doc: ProviderDocument, spec: ProviderSpec) -> None:
    doc.agency_id = spec.agency_id
    doc.name = spec.name
    doc.kind = str(spec.kind)
    doc.service_types = list(spec.service_types)
    doc.languages = list(spec.languages)
    doc.municipalities = list(spec.municipalities)
    doc.accepts = spec.accepts.as_record()
    doc.hours = spec.hours.as_record()
    doc.contacts = [dict(c) for c in spec.contacts]
    doc.active = spec.active


def _capacity_events(
    doc: ProviderDocument, deps: Deps, groups: Mapping[str, Any], country: str
) -> list[dict[str, Any]]:
    return [
        deps.new_event(
            events.CAPACITY_CHANGED,
            doc.id,
            {
                "provider_id": doc.id,
                "owner_country": country,
                "agency_id": doc.agency_id,
                "group": group,
                "total": state["total"],
            },
        )
        for group, state in sorted(groups.items())
    ]


def register_provider(deps: Deps, caller: Caller, body: Mapping[str, Any]) -> dict[str, Any]:
    """A new entry of the caller's country's directory (coordinator's office)."""
    require_directory_manager(caller)
    spec = parse_provider(body, deps.catalogue, caller.country)
    providers = deps.repository(ProviderDocument, caller)
    if providers.find(limit=1, agency_id=spec.agency_id):
        raise AlreadyExists("agency_already_registered")
    doc = ProviderDocument(id=new_id())  # the id is in the events written with the insert
    _apply(doc, spec)
    doc.capacity = capacity.initial(spec.places)
    stored = providers.insert(doc, events=_capacity_events(doc, deps, doc.capacity, caller.country))
    return provider_view(to_provider(stored), directory_part(caller, to_provider(stored)))


def update_provider(deps: Deps, caller: Caller, provider_id: str, body: Mapping[str, Any]) -> dict[str, Any]:
    """Replace an entry (coordinator's office). Places already held stay held."""
    require_directory_manager(caller)
    providers = deps.repository(ProviderDocument, caller)
    doc = providers.get(provider_id)
    spec = parse_provider(body, deps.catalogue, caller.country)
    if spec.agency_id != doc.agency_id and providers.find(limit=1, agency_id=spec.agency_id):
        raise AlreadyExists("agency_already_registered")
    before = dict(doc.capacity or {})
    _apply(doc, spec)
    doc.capacity = capacity.resized(before, spec.places)
    changed = {g: s for g, s in doc.capacity.items() if (before.get(g) or {}).get("total") != s["total"]}
    providers.update(doc, events=_capacity_events(doc, deps, changed, doc.owner_country))
    return provider_view(to_provider(doc), directory_part(caller, to_provider(doc)))


def set_capacity(deps: Deps, caller: Caller, provider_id: str, places: Mapping[str, Any]) -> dict[str, Any]:
    """The provider (or the coordinator's office) states its places per group; free = total - held. A total
    below the places held is refused (422), so free places are never negative."""
    providers = deps.repository(ProviderDocument, caller)
    doc = providers.get(provider_id)
    require_capacity_keeper(caller, to_provider(doc))
    problems = [
        g
        for g, n in places.items()
        if g not in deps.catalogue.capacity_groups or not isinstance(n, int) or isinstance(n, bool) or n < 0
    ]
    if problems:
        raise DomainError("places_out_of_range", "invalid places", pointer=f"/capacity/{sorted(problems)[0]}")
    before = dict(doc.capacity or {})
    merged = {g: int(s["total"]) for g, s in before.items()} | {g: int(n) for g, n in places.items()}
    doc.capacity = capacity.resized(before, merged)
    changed = {g: s for g, s in doc.capacity.items() if (before.get(g) or {}).get("total") != s["total"]}
    providers.update(doc, events=_capacity_events(doc, deps, changed, doc.owner_country))
    return provider_view(to_provider(doc), directory_part(caller, to_provider(doc)))


def get_provider(deps: Deps, caller: Caller, provider_id: str) -> dict[str, Any]:
    provider = to_provider(deps.repository(ProviderDocument, caller).get(provider_id))
    return provider_view(provider, directory_part(caller, provider))


def list_providers(
    deps: Deps, caller: Caller, *, service_type: str | None = None, municipality: str | None = None
) -> list[dict[str, Any]]:
    """The caller's country's directory, each entry in the part the caller may read."""
    filters: dict[str, Any] = {}
    if service_type:
        filters["service_types"] = service_type
    if municipality:
        filters["municipalities"] = municipality
    docs = deps.repository(ProviderDocument, caller).find(**filters)
    providers = [to_provider(d) for d in docs]
    return [provider_view(p, directory_part(caller, p)) for p in providers]
