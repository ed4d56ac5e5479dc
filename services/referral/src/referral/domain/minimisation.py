"""Minimum necessary data: a referral carries exactly the fields of the field sets the referrer granted,
copied when it is sent, and a provider sees only those.

The referrer chooses field sets among those the service type allows (service-types.yaml; none chosen = the
type's defaults). The copy is taken from identification's case and person, read on the referrer's behalf, for the
fields identification holds (field-sets.yaml `identification`) when the referral names a case and the deployment
has identification; the other fields (and every field of a referral an outreach worker types in) come from the
request. Members outside the granted fields are dropped, never stored. A provider's view is the copy restricted
again to the granted fields and, when it asks for some, to those: asking for a field outside the grant returns
nothing for it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from referral.domain.catalogue import ReferralCatalogue, ServiceType
from referral.domain.errors import ErrorDetail, raise_all


def granted_sets(requested: Iterable[str] | None, service_type: ServiceType) -> tuple[str, ...]:
    """The field sets granted: the request's (each allowed for the service type) or the type's defaults."""
    if requested is None:
        return service_type.default_sets
    chosen = list(dict.fromkeys(requested))
    errors = [
        ErrorDetail("field_set_not_allowed", f"/field_sets/{i}")
        for i, code in enumerate(chosen)
        if code not in service_type.allowed_sets
    ]
    raise_all(errors, "field set not allowed for the service type")
    return tuple(chosen)


def granted_fields(sets: Iterable[str], catalogue: ReferralCatalogue) -> frozenset[str]:
    return catalogue.fields_of(sets)


def copy_granted(case_fields: Mapping[str, Any], granted: frozenset[str]) -> dict[str, Any]:
    """Exactly the granted members of the case, nothing else (values copied, not shared)."""
    return {name: _detached(case_fields[name]) for name in sorted(granted) if name in case_fields}


def from_identification(
    sources: Mapping[str, str], records: Mapping[str, Mapping[str, Any]], wanted: frozenset[str]
) -> dict[str, Any]:
    """The wanted fields identification holds, taken from its records {"person": ..., "case": ...} as the
    catalogue says (`sources`: field -> "person.<member>" or "case.<member>"). Nothing else is read; an empty
    value is left out."""
    copied: dict[str, Any] = {}
    for name in sorted(wanted & frozenset(sources)):
        record, _, member = sources[name].partition(".")
        value = records.get(record, {}).get(member)
        if value not in (None, "", [], {}):
            copied[name] = _detached(value)
    return copied


def typed_over_identification(typed: Mapping[str, Any], sources: Mapping[str, str]) -> list[ErrorDetail]:
    """When the case fields come from identification, the ones it holds may not be typed in as well: the provider
    reads the case of record, and a correction is made in identification (and reaches the referral from there)."""
    return [
        ErrorDetail("field_comes_from_identification", f"/case_fields/{name}")
        for name in sorted(typed)
        if name in sources
    ]


def provider_view(
    copy: Mapping[str, Any], granted: frozenset[str], asked: Iterable[str] | None = None
) -> dict[str, Any]:
    """What a provider reads of the copy: granted fields only, and of those only the ones it asked for."""
    wanted = granted if asked is None else granted & frozenset(asked)
    return {name: _detached(value) for name, value in copy.items() if name in wanted}


def holds_personal_data(fields: Iterable[str], catalogue: ReferralCatalogue) -> bool:
    """Whether a view with these fields discloses personal data (and so must be access-logged first)."""
    return bool(frozenset(fields) & catalogue.personal_fields)


def _detached(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {k: _detached(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_detached(v) for v in value]
    return value
