"""Indicator sets: the published versions, one version with its labels, and publishing a new version.

Publishing is the coordinator's (contract `x-roles`). A national set adds to the lists of one regional version
and may be published only by the coordinator's office of its own country; a regional version is shared by all
partners and any partner's coordinator publishes it once it is agreed (the publisher is recorded). A version is
never changed once published: screenings keep the version they used, a change is a new version.
"""

from __future__ import annotations

from typing import Any

from identification.domain.errors import DomainError, ErrorDetail, raise_all
from identification.domain.indicators import IndicatorSet, indicator_set_from_data
from identification.service_layer.deps import Deps
from plumbing.auth import Caller
from plumbing.errors import Conflict, NotFound


def _summary(item: IndicatorSet) -> dict[str, Any]:
    return {
        "set_id": item.set_id,
        "version": item.version,
        "kind": item.kind,
        "country": item.country,
        "published_on": item.published_on.isoformat(),
        "ref": item.ref,
        # National additions name the regional version they extend; a screening combines the two.
        "base": {"set_id": item.base[0], "version": item.base[1]} if item.base else None,
        "languages": list(item.languages),
    }


def index(deps: Deps) -> dict[str, Any]:
    return {"items": [_summary(item) for item in deps.indicator_sets.current().sets()]}


def publish(deps: Deps, caller: Caller, body: dict[str, Any]) -> dict[str, Any]:
    item = indicator_set_from_data(body)  # schema and consistency rules: 422 with pointers
    errors: list[ErrorDetail] = []
    if item.kind == "national":
        if item.country not in deps.config.country_codes:
            errors.append(ErrorDetail("not_a_partner_country", "/country"))
        elif item.country != caller.country:
            errors.append(ErrorDetail("indicator_set_not_own_country", "/country"))
        if item.set_id != f"national-{item.country}":
            errors.append(ErrorDetail("indicator_set_invalid", "/set_id"))
    elif item.set_id.startswith("national-"):
        errors.append(ErrorDetail("indicator_set_invalid", "/set_id"))
    raise_all(errors, "indicator set not publishable by this caller")
    catalogue = deps.indicator_sets.current()
    try:
        catalogue.get(item.set_id, item.version)
        raise Conflict("this indicator set version is published already")
    except DomainError:
        pass  # unknown version: new, as it must be
    try:
        catalogue.with_set(item)  # a national set's base version must exist and its lists must match
    except DomainError as error:
        raise_all([ErrorDetail(error.code, "/base")], "national additions do not fit their base version")
    deps.indicator_sets.publish(item, body, at=deps.clock.now(), by=caller.sub, country=caller.country)
    return _summary(item)


def view(deps: Deps, set_id: str, version: str, language: str) -> dict[str, Any]:
    """One version with its labels in `language`, or in English where the set carries no such language; the
    answer says which (`language`, `fallback`), so that a reader never takes English for a translation."""
    try:
        item = deps.indicator_sets.current().get(set_id, version)
    except DomainError:
        # The set and version are the path of a record: one that does not exist is 404, like any other record.
        raise NotFound("no such indicator set version") from None
    served, _ = item.title.resolve(language)
    return {
        **_summary(item),
        "language": served,
        "fallback": served.lower().split("-")[0] != language.lower().split("-")[0],
        "lists": [
            {
                "id": lst.id,
                "extends": lst.extends,
                "age_group": str(lst.age_group),
                "form": str(lst.form),
                "title": lst.title.get(language).text,
                "indicators": [
                    {
                        "id": ind.id,
                        "element": str(ind.element),
                        "strength": str(ind.strength),
                        "effective_from": ind.effective_from.isoformat(),
                        "effective_to": ind.effective_to.isoformat() if ind.effective_to else None,
                        "label": ind.labels.get(language).text,
                        "reviewed": ind.labels.get(language).reviewed,
                        "source": ind.source,
                    }
                    for ind in lst.indicators
                ],
            }
            for lst in item.lists
        ],
    }
