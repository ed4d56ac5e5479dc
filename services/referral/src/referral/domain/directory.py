"""The service directory: providers of the National Referral Mechanism, per country.

A provider is an organisation (state, municipal, NGO or international organisation) whose users carry its
`agency_id` in their token. Its entry has a public part (what, where, for whom, when, free places), readable by
referrers of the same country, and a private part (contact persons, direct phone numbers), readable only by the
coordinator's office and by the provider itself (domain/visibility.py). Parsing a body checks every field against
the catalogue and reports every problem at once.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, time
from enum import StrEnum
from typing import Any
from zoneinfo import ZoneInfo

from referral.domain.catalogue import ADULT, CHILD, ReferralCatalogue
from referral.domain.errors import ErrorDetail, raise_all


class ProviderKind(StrEnum):
    STATE = "state"
    MUNICIPAL = "municipal"
    NGO = "ngo"
    INTERNATIONAL_ORGANISATION = "international_organisation"


FEMALE, MALE = "female", "male"
SEXES = frozenset({FEMALE, MALE})
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_LANGUAGE = re.compile(r"^[a-z]{3}$")  # ISO 639-3: Romani (rom/rmy), Arabic (ara), Farsi (fas), Pashto (pus)
_AGENCY = re.compile(r"^[a-z0-9][a-z0-9-]{1,62}$")
_TIME = re.compile(r"^([01][0-9]|2[0-3]):[0-5][0-9]$")
MAX_PLACES = 10_000
PUBLIC_FIELDS = (
    "id",
    "country",
    "agency_id",
    "name",
    "kind",
    "service_types",
    "languages",
    "municipalities",
    "accepts",
    "hours",
    "capacity",
    "active",
)
PRIVATE_FIELDS = ("contacts",)


@dataclass(frozen=True)
class Accepts:
    """Whom the provider takes: children and/or adults, families, and which sexes (boys = children + male)."""

    children: bool
    adults: bool
    families: bool
    sexes: frozenset[str] = SEXES

    def admits(self, age_group: str, sex: str | None) -> bool:
        if age_group == CHILD and not self.children:
            return False
        if age_group == ADULT and not self.adults:
            return False
        if sex in SEXES:
            return sex in self.sexes
        # Sex unknown or neither: only a provider that takes every sex can be sure to admit the person.
        return self.sexes >= SEXES

    def as_record(self) -> dict[str, Any]:
        return {
            "children": self.children,
            "adults": self.adults,
            "families": self.families,
            "sexes": sorted(self.sexes),
        }

    @classmethod
    def from_record(cls, raw: Mapping[str, Any]) -> Accepts:
        return cls(
            bool(raw.get("children")),
            bool(raw.get("adults")),
            bool(raw.get("families")),
            frozenset(raw.get("sexes") or SEXES),
        )


@dataclass(frozen=True)
class Opening:
    day: str  # mon..sun
    start: time
    end: time


@dataclass(frozen=True)
class OpeningHours:
    """24/7, or weekly local opening times in the country's time zone (the catalogue's `timezone`)."""

    always: bool
    weekly: tuple[Opening, ...] = ()

    def open_at(self, instant: datetime, zone: ZoneInfo) -> bool:
        if self.always:
            return True
        local = instant.astimezone(zone)
        day = WEEKDAYS[local.weekday()]
        now = local.time().replace(tzinfo=None)
        return any(o.day == day and o.start <= now < o.end for o in self.weekly)

    def as_record(self) -> dict[str, Any]:
        return {
            "always": self.always,
            "weekly": [
                {"day": o.day, "from": o.start.strftime("%H:%M"), "to": o.end.strftime("%H:%M")}
                for o in self.weekly
            ],
        }

    @classmethod
    def from_record(cls, raw: Mapping[str, Any]) -> OpeningHours:
        return cls(
            bool(raw.get("always")),
            tuple(
                Opening(o["day"], time.fromisoformat(o["from"]), time.fromisoformat(o["to"]))
                for o in raw.get("weekly") or []
            ),
        )


@dataclass(frozen=True)
class CapacityGroup:
    """Places of one group: `free` is always `total - len(held_by)`, never negative (domain/capacity.py)."""

    total: int
    free: int
    held_by: tuple[str, ...] = ()


@dataclass(frozen=True)
class Provider:
    id: str
    country: str
    agency_id: str
    name: str
    kind: ProviderKind
    service_types: frozenset[str]
    languages: frozenset[str]
    municipalities: frozenset[str]
    accepts: Accepts
    hours: OpeningHours
    capacity: Mapping[str, CapacityGroup] = field(default_factory=dict)
    active: bool = True
    contacts: tuple[Mapping[str, str], ...] = ()

    def free_places(self, group: str) -> int:
        found = self.capacity.get(group)
        return found.free if found else 0


@dataclass(frozen=True)
class ProviderSpec:
    """A checked body for registering or changing a provider (everything but its id, country and capacity
    state)."""

    agency_id: str
    name: str
    kind: ProviderKind
    service_types: tuple[str, ...]
    languages: tuple[str, ...]
    municipalities: tuple[str, ...]
    accepts: Accepts
    hours: OpeningHours
    places: Mapping[str, int]  # group -> total places
    contacts: tuple[Mapping[str, str], ...]
    active: bool


def parse_provider(body: Mapping[str, Any], catalogue: ReferralCatalogue, country: str) -> ProviderSpec:
    """Check a provider body against the catalogue for `country`; a 422 naming every broken rule."""
    errors: list[ErrorDetail] = []
    agency_id = str(body.get("agency_id") or "")
    if not _AGENCY.match(agency_id):
        errors.append(ErrorDetail("bad_format", "/agency_id"))
    name = str(body.get("name") or "").strip()
    if not name:
        errors.append(ErrorDetail("required", "/name"))
    try:
        kind = ProviderKind(str(body.get("kind")))
    except ValueError:
        errors.append(ErrorDetail("unknown_code", "/kind"))
        kind = ProviderKind.NGO
    service_types = list(dict.fromkeys(body.get("service_types") or []))
    if not service_types:
        errors.append(ErrorDetail("required", "/service_types"))
    for i, code in enumerate(service_types):
        if code not in catalogue.service_types:
            errors.append(ErrorDetail("unknown_service_type", f"/service_types/{i}"))
    languages = list(dict.fromkeys(body.get("languages") or []))
    for i, code in enumerate(languages):
        if not isinstance(code, str) or not _LANGUAGE.match(code):
            errors.append(ErrorDetail("bad_format", f"/languages/{i}"))
    municipalities = list(dict.fromkeys(body.get("municipalities") or []))
    if not municipalities:
        errors.append(ErrorDetail("required", "/municipalities"))
    for i, code in enumerate(municipalities):
        if code not in catalogue.municipalities.get(country, {}):
            errors.append(ErrorDetail("unknown_municipality", f"/municipalities/{i}"))
    accepts = _accepts(body.get("accepts"), errors)
    hours = _hours(body.get("hours"), errors)
    places = _places(body.get("capacity") or {}, catalogue, service_types, errors)
    contacts = _contacts(body.get("contacts") or [], errors)
    raise_all(errors, "invalid provider")
    return ProviderSpec(
        agency_id=agency_id,
        name=name,
        kind=kind,
        service_types=tuple(service_types),
        languages=tuple(languages),
        municipalities=tuple(municipalities),
        accepts=accepts,
        hours=hours,
        places=places,
        contacts=contacts,
        active=bool(body.get("active", True)),
    )


def _accepts(raw: Any, errors: list[ErrorDetail]) -> Accepts:
    if not isinstance(raw, Mapping):
        errors.append(ErrorDetail("required", "/accepts"))
        return Accepts(False, False, False)
    sexes = frozenset(raw.get("sexes") or SEXES)
    if not sexes <= SEXES:
        errors.append(ErrorDetail("unknown_code", "/accepts/sexes"))
    accepts = Accepts(bool(raw.get("children")), bool(raw.get("adults")), bool(raw.get("families")), sexes)
    if not (accepts.children or accepts.adults):
        errors.append(ErrorDetail("accepts_nobody", "/accepts"))
    return accepts


def _hours(raw: Any, errors: list[ErrorDetail]) -> OpeningHours:
    if not isinstance(raw, Mapping):
        errors.append(ErrorDetail("required", "/hours"))
        return OpeningHours(False)
    if raw.get("always"):
        return OpeningHours(True)
    weekly: list[Opening] = []
    for i, item in enumerate(raw.get("weekly") or []):
        where = f"/hours/weekly/{i}"
        day, start, end = item.get("day"), str(item.get("from", "")), str(item.get("to", ""))
        if day not in WEEKDAYS:
            errors.append(ErrorDetail("unknown_code", f"{where}/day"))
            continue
        if not (_TIME.match(start) and _TIME.match(end)):
            errors.append(ErrorDetail("bad_format", where))
            continue
        opening = Opening(day, time.fromisoformat(start), time.fromisoformat(end))
        if opening.end <= opening.start:
            errors.append(ErrorDetail("closes_before_opening", where))
            continue
        weekly.append(opening)
    if not weekly and not errors:
        errors.append(ErrorDetail("no_opening_hours", "/hours"))
    return OpeningHours(False, tuple(weekly))


def _places(
    raw: Any, catalogue: ReferralCatalogue, service_types: Sequence[str], errors: list[ErrorDetail]
) -> dict[str, int]:
    if not isinstance(raw, Mapping):
        errors.append(ErrorDetail("wrong_type", "/capacity"))
        return {}
    places: dict[str, int] = {}
    for group, total in raw.items():
        where = f"/capacity/{group}"
        if group not in catalogue.capacity_groups:
            errors.append(ErrorDetail("unknown_capacity_group", where))
        elif not isinstance(total, int) or isinstance(total, bool) or not 0 <= total <= MAX_PLACES:
            # Never negative: a count of places below zero means nothing and would break every check.
            errors.append(ErrorDetail("places_out_of_range", where))
        else:
            places[group] = total
    takes_places = any(
        catalogue.service_types[c].capacity for c in service_types if c in catalogue.service_types
    )
    if places and not takes_places:
        errors.append(ErrorDetail("capacity_without_service", "/capacity"))
    return places


def _contacts(raw: Any, errors: list[ErrorDetail]) -> tuple[Mapping[str, str], ...]:
    if not isinstance(raw, list):
        errors.append(ErrorDetail("wrong_type", "/contacts"))
        return ()
    allowed = {"name", "role", "phone", "email"}
    out: list[dict[str, str]] = []
    for i, item in enumerate(raw):
        if not isinstance(item, Mapping) or set(item) - allowed:
            errors.append(ErrorDetail("not_allowed", f"/contacts/{i}"))
            continue
        out.append({k: str(v) for k, v in item.items()})
    return tuple(out)
