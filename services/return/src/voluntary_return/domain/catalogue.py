"""The return catalogue: coded reasons, consent topics, best-interests codes and panel rule, plan codes, country
codes and reintegration deadlines, as data (the `voluntary_return.catalogue` package), loaded and checked once at
start-up.

Loading refuses to start (`CatalogueError`, naming file and pointer) unless:

1. the files together match `catalogue.schema.json`;
2. every label exists in every required language (the default language and every language a partner country
   works in). Serbian and Montenegrin Cyrillic labels, when a file leaves them out, are transliterated from the
   Latin ones (plumbing.i18n), so the two scripts never drift;
3. every reference resolves: the panel rule names known panel roles, the stop reasons the code relies on
   (`consent_withdrawn`, `other_durable_solution`) exist, there is at least one durable solution that is a
   return and one that is not, and every partner country of the platform configuration is a known country code.

Adding a reason, a panel role or a special need, or changing a deadline, is a change of these files only.
Reading the files, the schema check and the wording of a problem are shared with the other catalogues
(plumbing.catalogue_files); the rules are this module's.
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

import jsonschema

from plumbing.catalogue_files import missing_labels, read_json_schema, read_yaml_files, schema_problems
from plumbing.i18n import with_cyrillic
from voluntary_return.domain.errors import CatalogueError, DomainError

DATA_PACKAGE = "voluntary_return.catalogue"
SCHEMA = "catalogue.schema.json"
FILES = ("reasons", "consent", "best-interests", "plan", "countries", "deadlines")
CATALOGUE = "return catalogue"  # how its problems begin
FALLBACK_LANGUAGE = "en"
# Reason lists by the action that needs a reason.
STOP, CLOSE = "stop", "close"
# Stop reasons the rules themselves use: the catalogue may relabel them, never remove them.
CONSENT_WITHDRAWN = "consent_withdrawn"
OTHER_DURABLE_SOLUTION = "other_durable_solution"
STOPPED_IN_PARTNER_COUNTRY = "stopped_in_partner_country"
REQUIRED_STOP_REASONS = (CONSENT_WITHDRAWN, OTHER_DURABLE_SOLUTION, STOPPED_IN_PARTNER_COUNTRY)
# deadlines.yaml `remind_before_days` when the file leaves it out.
DEFAULT_REMIND_BEFORE_DAYS = 7
# The Cyrillic variant of each Latin-script language, derived when a file does not spell it out.


@dataclass(frozen=True)
class Labelled:
    code: str
    labels: Mapping[str, str]
    reviewed: bool

    def label(self, language: str) -> str:
        return self.labels.get(language) or self.labels[FALLBACK_LANGUAGE]


@dataclass(frozen=True)
class ConsentTopic(Labelled):
    required: bool  # a consent that was not explained this topic is not informed


@dataclass(frozen=True)
class DurableSolution(Labelled):
    is_return: bool  # return_to_family is a return; local_integration is another durable solution


@dataclass(frozen=True)
class PanelRule:
    """Who must sit on a best-interests determination panel: at least `min_members`, at least one of whom has a
    role in `at_least_one_of` (a guardian or child protection: someone whose duty is the child)."""

    min_members: int
    at_least_one_of: frozenset[str]


@dataclass(frozen=True)
class ReintegrationPeriods:
    """Counted from the recorded reception: the reintegration plan, then each follow-up report, in order."""

    plan_within: timedelta
    follow_ups: tuple[timedelta, ...]
    # How long before each deadline its owner is reminded that it is coming due (0: at the deadline itself).
    remind_before: timedelta = timedelta(days=DEFAULT_REMIND_BEFORE_DAYS)


@dataclass(frozen=True)
class ReturnCatalogue:
    reasons: Mapping[str, Mapping[str, Labelled]]  # stop, close -> code -> reason
    consent_topics: Mapping[str, ConsentTopic]
    panel_rule: PanelRule
    panel_roles: Mapping[str, Labelled]
    family_assessment_outcomes: Mapping[str, Labelled]
    durable_solutions: Mapping[str, DurableSolution]
    hearing_methods: Mapping[str, Labelled]
    document_types: Mapping[str, Labelled]
    escort_roles: Mapping[str, Labelled]
    special_needs: Mapping[str, Labelled]
    reception_services: frozenset[str]  # referral service-type codes (labels live in referral's catalogue)
    countries: frozenset[str]  # ISO 3166-1 alpha-2 plus XK: what a route may name
    partners: frozenset[str]  # the platform's partner countries: origin and destination of a return
    reintegration: ReintegrationPeriods
    languages: tuple[str, ...]

    # ------------------------------------------------------------------------------------------ loading

    @classmethod
    def packaged(cls, languages: Iterable[str], countries: Iterable[str]) -> ReturnCatalogue:
        return cls.load(resources.files(DATA_PACKAGE), languages=languages, countries=countries)

    @classmethod
    def load(
        cls, folder: Traversable | Path, *, languages: Iterable[str], countries: Iterable[str]
    ) -> ReturnCatalogue:
        return cls.from_documents(read_yaml_files(folder, FILES), languages=languages, countries=countries)

    @classmethod
    def from_documents(
        cls, documents: Mapping[str, Any], *, languages: Iterable[str], countries: Iterable[str]
    ) -> ReturnCatalogue:
        """`documents`: file name (without .yaml) -> parsed content; `countries`: the platform's partner
        countries. Raises `CatalogueError` listing every problem found."""
        CatalogueError.raise_all(CATALOGUE, schema_problems(_validator(), documents))
        catalogue = _build(documents, tuple(dict.fromkeys(languages)), frozenset(countries))
        CatalogueError.raise_all(CATALOGUE, _rule_problems(catalogue))
        return catalogue

    # -------------------------------------------------------------------------------------------- reads

    def reason(self, kind: str, code: str | None, pointer: str = "/reason") -> Labelled:
        """A reason of the list `kind` (stop, close), or a 422 naming `pointer`."""
        if not code:
            raise DomainError("reason_required", "a coded reason is required", pointer=pointer)
        found = self.reasons[kind].get(code)
        if found is None:
            raise DomainError("unknown_reason", "unknown reason", pointer=pointer)
        return found

    @property
    def required_topics(self) -> frozenset[str]:
        return frozenset(code for code, topic in self.consent_topics.items() if topic.required)

    @property
    def other_solutions(self) -> frozenset[str]:
        """The durable solutions that are not a return (what `other_durable_solution` may name)."""
        return frozenset(code for code, s in self.durable_solutions.items() if not s.is_return)

    @property
    def return_solutions(self) -> frozenset[str]:
        return frozenset(code for code, s in self.durable_solutions.items() if s.is_return)


# ------------------------------------------------------------------------------------------------ building


@functools.cache
def _validator() -> jsonschema.Draft202012Validator:
    return jsonschema.Draft202012Validator(read_json_schema(resources.files(DATA_PACKAGE).joinpath(SCHEMA)))


def _labelled(code: str, raw: Mapping[str, Any]) -> Labelled:
    return Labelled(code, with_cyrillic(raw["labels"]), raw["reviewed"])


def _code_list(raw: Mapping[str, Any]) -> dict[str, Labelled]:
    return {code: _labelled(code, entry) for code, entry in raw.items()}


def _build(
    documents: Mapping[str, Any], languages: tuple[str, ...], partners: frozenset[str]
) -> ReturnCatalogue:
    best, plan = documents["best-interests"], documents["plan"]
    periods = documents["deadlines"]["reintegration"]
    return ReturnCatalogue(
        reasons={kind: _code_list(codes) for kind, codes in documents["reasons"].items()},
        consent_topics={
            code: ConsentTopic(code, with_cyrillic(raw["labels"]), raw["reviewed"], raw["required"])
            for code, raw in documents["consent"]["topics"].items()
        },
        panel_rule=PanelRule(
            best["panel_rule"]["min_members"], frozenset(best["panel_rule"]["at_least_one_of"])
        ),
        panel_roles=_code_list(best["panel_roles"]),
        family_assessment_outcomes=_code_list(best["family_assessment_outcomes"]),
        durable_solutions={
            code: DurableSolution(code, with_cyrillic(raw["labels"]), raw["reviewed"], raw["return"])
            for code, raw in best["durable_solutions"].items()
        },
        hearing_methods=_code_list(best["hearing_methods"]),
        document_types=_code_list(plan["document_types"]),
        escort_roles=_code_list(plan["escort_roles"]),
        special_needs=_code_list(plan["special_needs"]),
        reception_services=frozenset(plan["reception_services"]),
        countries=frozenset(documents["countries"]["countries"]),
        partners=partners,
        reintegration=ReintegrationPeriods(
            timedelta(days=periods["plan_within_days"]),
            tuple(timedelta(days=d) for d in sorted(periods["follow_up_days"])),
            timedelta(days=periods.get("remind_before_days", DEFAULT_REMIND_BEFORE_DAYS)),
        ),
        languages=languages,
    )


# ------------------------------------------------------------------------------------------------- rules


def _rule_problems(catalogue: ReturnCatalogue) -> Iterator[str]:
    labelled: list[tuple[str, Labelled]] = [
        *(
            (f"reasons: /{kind}/{c}", r)
            for kind, codes in catalogue.reasons.items()
            for c, r in codes.items()
        ),
        *((f"consent: /topics/{c}", t) for c, t in catalogue.consent_topics.items()),
        *((f"best-interests: /panel_roles/{c}", r) for c, r in catalogue.panel_roles.items()),
        *(
            (f"best-interests: /family_assessment_outcomes/{c}", o)
            for c, o in catalogue.family_assessment_outcomes.items()
        ),
        *((f"best-interests: /durable_solutions/{c}", s) for c, s in catalogue.durable_solutions.items()),
        *((f"best-interests: /hearing_methods/{c}", m) for c, m in catalogue.hearing_methods.items()),
        *((f"plan: /document_types/{c}", d) for c, d in catalogue.document_types.items()),
        *((f"plan: /escort_roles/{c}", r) for c, r in catalogue.escort_roles.items()),
        *((f"plan: /special_needs/{c}", n) for c, n in catalogue.special_needs.items()),
    ]
    for where, item in labelled:
        yield from missing_labels(item.labels, catalogue.languages, f"{where}/labels")
    for role in sorted(catalogue.panel_rule.at_least_one_of - set(catalogue.panel_roles)):
        yield f"best-interests: /panel_rule/at_least_one_of: unknown panel role {role!r}"
    for code in REQUIRED_STOP_REASONS:
        if code not in catalogue.reasons[STOP]:
            yield f"reasons: /stop: the stop reason {code!r} is required"
    if not catalogue.return_solutions:
        yield "best-interests: /durable_solutions: no solution is a return"
    if not catalogue.other_solutions:
        yield "best-interests: /durable_solutions: no solution other than return"
    for country in sorted(catalogue.partners - catalogue.countries):
        yield f"countries: /countries: the partner country {country} is not a known country code"
