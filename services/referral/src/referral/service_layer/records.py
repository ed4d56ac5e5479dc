"""Between stored documents and the domain's values: providers as `domain.directory.Provider`, instants as
RFC 3339 text in views."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from plumbing.clock import rfc3339
from referral.adapters.documents import ProviderDocument
from referral.domain import capacity
from referral.domain.directory import Accepts, OpeningHours, Provider, ProviderKind


def to_provider(doc: ProviderDocument) -> Provider:
    return Provider(
        id=doc.id,
        country=doc.owner_country,
        agency_id=doc.agency_id,
        name=doc.name,
        kind=ProviderKind(doc.kind),
        service_types=frozenset(doc.service_types or ()),
        languages=frozenset(doc.languages or ()),
        municipalities=frozenset(doc.municipalities or ()),
        accepts=Accepts.from_record(doc.accepts or {}),
        hours=OpeningHours.from_record(doc.hours or {}),
        capacity=capacity.groups_of(doc.capacity or {}),
        active=bool(doc.active),
        contacts=tuple(dict(c) for c in doc.contacts or ()),
    )


def instant(value: datetime | None) -> str | None:
    return rfc3339(value) if value is not None else None


def plain(entry: Mapping[str, Any]) -> dict[str, Any]:
    """A stored sub-document (timeline entry) for a view: instants as text, empty members left out."""
    return {k: (rfc3339(v) if isinstance(v, datetime) else v) for k, v in entry.items() if v is not None}
