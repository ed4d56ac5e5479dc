"""Suggestions of providers for a need, from the caller's country's directory (domain/matching.py)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from plumbing.auth import Caller
from referral.adapters.documents import ProviderDocument
from referral.domain import matching
from referral.domain.catalogue import ADULT, CHILD
from referral.domain.errors import ErrorDetail, raise_all
from referral.service_layer.deps import Deps
from referral.service_layer.records import to_provider


def suggest_providers(deps: Deps, caller: Caller, body: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Ranked suggestions, each with its reasons. Body: service_type, age_group (child | adult; age uncertain:
    child), sex, languages, municipality, family, limit."""
    catalogue = deps.catalogue
    errors: list[ErrorDetail] = []
    code = body.get("service_type")
    kind = catalogue.service_types.get(code or "")
    if kind is None:
        errors.append(ErrorDetail("unknown_service_type", "/service_type"))
    age_group = body.get("age_group")
    if age_group not in (CHILD, ADULT):
        errors.append(ErrorDetail("age_group_required", "/age_group"))
    elif kind is not None and age_group not in kind.for_groups:
        errors.append(ErrorDetail("service_type_not_for_age_group", "/service_type"))
    municipality = body.get("municipality")
    if municipality and municipality not in catalogue.municipalities.get(caller.country, {}):
        errors.append(ErrorDetail("unknown_municipality", "/municipality"))
    raise_all(errors, "invalid need")
    assert kind is not None and isinstance(age_group, str)  # noqa: S101 - checked above
    need = matching.Need(
        service_type=kind.code,
        age_group=age_group,
        sex=body.get("sex"),
        languages=tuple(body.get("languages") or ()),
        municipality=municipality,
        family=bool(body.get("family")),
    )
    docs = deps.repository(ProviderDocument, caller).find(service_types=kind.code, active=True)
    zone = catalogue.country(caller.country).timezone
    limit = min(max(1, int(body.get("limit") or 10)), 50)
    found = matching.suggest([to_provider(d) for d in docs], need, kind, deps.clock.now(), zone, limit=limit)
    return [s.as_dict() for s in found]
