"""The catalogue as a caller reads it (`GET /v1/referral/service-types`): codes with their labels, for the
caller's country where the data is per country (legal bases of a child's referral, municipalities)."""

from __future__ import annotations

from typing import Any

from referral.domain.catalogue import Labelled, ReferralCatalogue


def _labelled(item: Labelled) -> dict[str, Any]:
    return {"code": item.code, "labels": dict(item.labels), "reviewed": item.reviewed}


def catalogue_view(catalogue: ReferralCatalogue, country: str) -> dict[str, Any]:
    rules = catalogue.country(country)
    return {
        "service_types": [
            {
                **_labelled(kind),
                "capacity": kind.capacity,
                "for_groups": sorted(kind.for_groups),
                "allowed_field_sets": list(kind.allowed_sets),
                "default_field_sets": list(kind.default_sets),
            }
            for kind in catalogue.service_types.values()
        ],
        "capacity_groups": [_labelled(group) for group in catalogue.capacity_groups.values()],
        "field_sets": [
            {**_labelled(field_set), "fields": list(field_set.fields)}
            for field_set in catalogue.field_sets.values()
        ],
        "reasons": {
            kind: [_labelled(reason) for reason in reasons.values()]
            for kind, reasons in catalogue.reasons.items()
        },
        "legal_bases": [
            _labelled(basis)
            for code, basis in catalogue.child_legal_bases.items()
            if code in rules.child_legal_bases
        ],
        "municipalities": [
            _labelled(municipality) for municipality in catalogue.municipalities.get(country, {}).values()
        ],
    }
