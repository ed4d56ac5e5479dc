"""The referral catalogue: service types, field sets, coded reasons, deadline profiles, per-country convergence
rules and municipalities, as data (the `referral.catalogue` package), loaded and checked once at start-up.

Loading refuses to start (`CatalogueError`, naming file and pointer) unless:

1. the files together match `catalogue.schema.json`;
2. every label exists in every required language (the default language and every language a partner country
   works in). Serbian and Montenegrin Cyrillic labels, when a file leaves them out, are transliterated from the
   Latin ones (plumbing.i18n), so the two scripts never drift;
3. every reference resolves: field sets name known fields, service types name known field sets (defaults
   among the allowed) and deadline profiles, countries name known legal bases and a guardianship service type
   for children, municipalities belong to a country with rules, and every partner country of the platform
   configuration has rules and municipalities.

Adding a service type, a reason or a municipality is a change of these files only. Reading the files, the
schema check and the wording of a problem are shared with the other catalogues (plumbing.catalogue_files); the
rules are this module's.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import timedelta
from importlib import resources
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import jsonschema

from plumbing.catalogue_files import missing_labels, read_json_schema, read_yaml_files, schema_problems
from plumbing.i18n import with_cyrillic
from referral.domain.errors import CatalogueError, DomainError

DATA_PACKAGE = "referral.catalogue"
SCHEMA = "catalogue.schema.json"
FILES = ("service-types", "field-sets", "reasons", "deadlines", "countries", "municipalities")
CATALOGUE = "referral catalogue"  # how its problems begin
FALLBACK_LANGUAGE = "en"
CHILD, ADULT = "child", "adult"
# Reason lists by the action that needs a reason.
DECLINE, CANCEL, REVOKE, COMPLETE = "decline", "cancel", "revoke", "complete"
# The Cyrillic variant of each Latin-script language, derived when a file does not spell it out.


@dataclass(frozen=True)
class Labelled:
    code: str
    labels: Mapping[str, str]
    reviewed: bool

    def label(self, language: str) -> str:
        return self.labels.get(language) or self.labels[FALLBACK_LANGUAGE]


@dataclass(frozen=True)
class ServiceType(Labelled):
    capacity: bool
    for_groups: frozenset[str]  # child, adult
    from_needs: frozenset[str]
    allowed_sets: tuple[str, ...]
    default_sets: tuple[str, ...]
    deadlines: str


@dataclass(frozen=True)
class FieldSet(Labelled):
    fields: tuple[str, ...]


@dataclass(frozen=True)
class DeadlineProfile:
    code: str
    answer_within: timedelta
    escalate_after: timedelta
    expire_after: timedelta
    follow_up: tuple[timedelta, ...]


@dataclass(frozen=True)
class Municipality(Labelled):
    country: str
    child_protection_unit: str
    guardianship_authority: str


@dataclass(frozen=True)
class CountryRules:
    code: str
    timezone: ZoneInfo
    proposals_agency: str
    inform_child_protection: bool
    child_protection_fallback: str
    guardianship_service_type: str
    guardianship_fallback: str
    child_legal_bases: frozenset[str]


@dataclass(frozen=True)
class ReferralCatalogue:
    service_types: Mapping[str, ServiceType]
    capacity_groups: Mapping[str, Labelled]
    personal_fields: frozenset[str]
    known_fields: frozenset[str]
    # field -> where identification holds it ("person.given_names", "case.needs"): the fields a referral naming an
    # identification case copies from there, on the referrer's behalf (field-sets.yaml `identification`)
    identification_sources: Mapping[str, str]
    field_sets: Mapping[str, FieldSet]
    reasons: Mapping[str, Mapping[str, Labelled]]
    deadline_profiles: Mapping[str, DeadlineProfile]
    countries: Mapping[str, CountryRules]
    municipalities: Mapping[str, Mapping[str, Municipality]]
    child_legal_bases: Mapping[str, Labelled]
    languages: tuple[str, ...]

    # ------------------------------------------------------------------------------------------ loading

    @classmethod
    def packaged(cls, languages: Iterable[str], countries: Iterable[str]) -> ReferralCatalogue:
        return cls.load(resources.files(DATA_PACKAGE), languages=languages, countries=countries)

    @classmethod
    def load(
        cls, folder: Traversable | Path, *, languages: Iterable[str], countries: Iterable[str]
    ) -> ReferralCatalogue:
        return cls.from_documents(read_yaml_files(folder, FILES), languages=languages, countries=countries)

    @classmethod
    def from_documents(
        cls, documents: Mapping[str, Any], *, languages: Iterable[str], countries: Iterable[str]
    ) -> ReferralCatalogue:
        """`documents`: file name (without .yaml) -> parsed content. Raises `CatalogueError` listing every
        problem found."""
        CatalogueError.raise_all(CATALOGUE, schema_problems(_validator(), documents))
        catalogue = _build(documents, tuple(dict.fromkeys(languages)))
        CatalogueError.raise_all(CATALOGUE, _rule_problems(catalogue, documents, frozenset(countries)))
        return catalogue

    # -------------------------------------------------------------------------------------------- reads

    def service_type(self, code: str, pointer: str = "/service_type") -> ServiceType:
        """The service type, or a 422 naming `pointer` (an unknown code is the client's mistake)."""
        found = self.service_types.get(code)
        if found is None:
            raise DomainError("unknown_service_type", "unknown service type", pointer=pointer)
        return found

    def reason(self, kind: str, code: str | None, pointer: str = "/reason") -> Labelled:
        """A reason of the list `kind` (decline, cancel, revoke, complete), or a 422 naming `pointer`."""
        if not code:
            raise DomainError("reason_required", "a coded reason is required", pointer=pointer)
        found = self.reasons[kind].get(code)
        if found is None:
            raise DomainError("unknown_reason", "unknown reason", pointer=pointer)
        return found

    def country(self, code: str) -> CountryRules:
        return self.countries[code]

    def municipality(self, country: str, code: str, pointer: str = "/municipality") -> Municipality:
        found = self.municipalities.get(country, {}).get(code)
        if found is None:
            raise DomainError("unknown_municipality", "unknown municipality", pointer=pointer)
        return found

    def deadline_profile(self, service_type: str) -> DeadlineProfile:
        return self.deadline_profiles[self.service_types[service_type].deadlines]

    def service_types_for_need(self, need: str) -> tuple[str, ...]:
        return tuple(code for code, kind in self.service_types.items() if need in kind.from_needs)

    def fields_of(self, set_codes: Iterable[str]) -> frozenset[str]:
        return frozenset(name for code in set_codes for name in self.field_sets[code].fields)

    def child_protection_unit(self, country: str, municipality: str | None) -> str:
        """The agency informed of a child referral: the municipality's unit, else the country's fallback."""
        found = self.municipalities.get(country, {}).get(municipality or "")
        return found.child_protection_unit if found else self.countries[country].child_protection_fallback

    def guardianship_authority(self, country: str, municipality: str | None) -> str:
        found = self.municipalities.get(country, {}).get(municipality or "")
        return found.guardianship_authority if found else self.countries[country].guardianship_fallback


# ------------------------------------------------------------------------------------------------ building


@functools.cache
def _validator() -> jsonschema.Draft202012Validator:
    return jsonschema.Draft202012Validator(read_json_schema(resources.files(DATA_PACKAGE).joinpath(SCHEMA)))


def _labelled(code: str, raw: Mapping[str, Any]) -> Labelled:
    return Labelled(code, with_cyrillic(raw["labels"]), raw["reviewed"])


def _build(documents: Mapping[str, Any], languages: tuple[str, ...]) -> ReferralCatalogue:
    types_doc, sets_doc = documents["service-types"], documents["field-sets"]
    service_types = {
        code: ServiceType(
            code=code,
            labels=with_cyrillic(raw["labels"]),
            reviewed=raw["reviewed"],
            capacity=raw["capacity"],
            for_groups=frozenset(raw["for"]),
            from_needs=frozenset(raw["from_needs"]),
            allowed_sets=tuple(raw["field_sets"]["allowed"]),
            default_sets=tuple(raw["field_sets"]["default"]),
            deadlines=raw["deadlines"],
        )
        for code, raw in types_doc["service_types"].items()
    }
    field_sets = {
        code: FieldSet(code, with_cyrillic(raw["labels"]), raw["reviewed"], tuple(raw["fields"]))
        for code, raw in sets_doc["sets"].items()
    }
    profiles = {
        code: DeadlineProfile(
            code,
            timedelta(hours=raw["answer_within_hours"]),
            timedelta(hours=raw["escalate_after_hours"]),
            timedelta(hours=raw["expire_after_hours"]),
            tuple(timedelta(days=d) for d in sorted(raw["follow_up_days"])),
        )
        for code, raw in documents["deadlines"]["profiles"].items()
    }
    countries_doc = documents["countries"]
    countries = {}
    for code, raw in countries_doc["countries"].items():
        try:
            zone = ZoneInfo(raw["timezone"])
        except (ZoneInfoNotFoundError, ValueError):
            raise CatalogueError(
                f"{CATALOGUE}: invalid:\n  countries: /countries/{code}/timezone: unknown time zone"
            ) from None
        countries[code] = CountryRules(
            code=code,
            timezone=zone,
            proposals_agency=raw["proposals_agency"],
            inform_child_protection=raw["child_protection"]["inform"],
            child_protection_fallback=raw["child_protection"]["fallback_agency"],
            guardianship_service_type=raw["guardianship"]["service_type"],
            guardianship_fallback=raw["guardianship"]["fallback_agency"],
            child_legal_bases=frozenset(raw["child_legal_bases"]),
        )
    municipalities = {
        country: {
            code: Municipality(
                code=code,
                labels=with_cyrillic(raw["labels"]),
                reviewed=raw["reviewed"],
                country=country,
                child_protection_unit=raw["child_protection_unit"],
                guardianship_authority=raw["guardianship_authority"],
            )
            for code, raw in entries.items()
        }
        for country, entries in documents["municipalities"].items()
    }
    return ReferralCatalogue(
        service_types=service_types,
        capacity_groups={c: _labelled(c, r) for c, r in types_doc["capacity_groups"].items()},
        personal_fields=frozenset(n for n, r in sets_doc["fields"].items() if r["personal"]),
        known_fields=frozenset(sets_doc["fields"]),
        identification_sources={
            n: r["identification"] for n, r in sets_doc["fields"].items() if "identification" in r
        },
        field_sets=field_sets,
        reasons={
            kind: {c: _labelled(c, r) for c, r in codes.items()}
            for kind, codes in documents["reasons"].items()
        },
        deadline_profiles=profiles,
        countries=countries,
        municipalities=municipalities,
        child_legal_bases={c: _labelled(c, r) for c, r in countries_doc["child_legal_bases"].items()},
        languages=languages,
    )


# ------------------------------------------------------------------------------------------------- rules


def _rule_problems(
    catalogue: ReferralCatalogue, documents: Mapping[str, Any], partners: frozenset[str]
) -> Iterator[str]:
    labelled: list[tuple[str, Labelled]] = [
        *((f"service-types: /service_types/{c}", t) for c, t in catalogue.service_types.items()),
        *((f"service-types: /capacity_groups/{c}", g) for c, g in catalogue.capacity_groups.items()),
        *((f"field-sets: /sets/{c}", s) for c, s in catalogue.field_sets.items()),
        *(
            (f"reasons: /{kind}/{c}", r)
            for kind, codes in catalogue.reasons.items()
            for c, r in codes.items()
        ),
        *((f"countries: /child_legal_bases/{c}", b) for c, b in catalogue.child_legal_bases.items()),
        *(
            (f"municipalities: /{country}/{c}", m)
            for country, entries in catalogue.municipalities.items()
            for c, m in entries.items()
        ),
    ]
    for where, item in labelled:
        yield from missing_labels(item.labels, catalogue.languages, f"{where}/labels")
    for code, field_set in catalogue.field_sets.items():
        for name in field_set.fields:
            if name not in catalogue.known_fields:
                yield f"field-sets: /sets/{code}/fields: unknown field {name!r}"
    for code, kind in catalogue.service_types.items():
        where = f"service-types: /service_types/{code}"
        for set_code in kind.allowed_sets:
            if set_code not in catalogue.field_sets:
                yield f"{where}/field_sets/allowed: unknown field set {set_code!r}"
        for set_code in kind.default_sets:
            if set_code not in kind.allowed_sets:
                yield f"{where}/field_sets/default: {set_code!r} is not allowed for this service type"
        if kind.deadlines not in catalogue.deadline_profiles:
            yield f"{where}/deadlines: unknown deadline profile {kind.deadlines!r}"
    for country, rules in catalogue.countries.items():
        where = f"countries: /countries/{country}"
        guardian = catalogue.service_types.get(rules.guardianship_service_type)
        if guardian is None or CHILD not in guardian.for_groups:
            yield f"{where}/guardianship/service_type: not a service type for children"
        for basis in sorted(rules.child_legal_bases - set(catalogue.child_legal_bases)):
            yield f"{where}/child_legal_bases: unknown legal basis {basis!r}"
    for country, entries in catalogue.municipalities.items():
        if country not in catalogue.countries:
            yield f"municipalities: /{country}: no country rules for {country}"
        for code in entries:
            if not code.startswith(f"{country}-"):
                yield f"municipalities: /{country}/{code}: the code must start with {country}-"
    for country in sorted(partners):
        if country not in catalogue.countries:
            yield f"countries: /countries: the partner country {country} has no rules"
        if not catalogue.municipalities.get(country):
            yield f"municipalities: the partner country {country} has no municipalities"
