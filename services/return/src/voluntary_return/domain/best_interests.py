"""Best interests of the child: the three records a child's return rests on.

1. A family assessment by the origin country's social services, recorded as received: the day, the coded
   outcome, the country and agency that sent it.
2. A best-interests assessment: the day and who made it (assessor and agency).
3. A best-interests determination by a multidisciplinary panel: its members and their roles (the catalogue's
   panel rule: enough members, and at least one whose duty is the child), the day, the decision (`return`, or
   `other_durable_solution` naming which), the reasons (free text tagged with its language), the child's views
   and how they were heard (a coded method and the views as free text), and the alternatives considered (coded,
   at least one).

Parsing reports every problem at once (422, JSON pointers). `check_basis` says whether a determination may be
recorded on what the case holds (409): an assessment must precede any determination, and a decision to return a
child needs the family assessment. Only `child_gate` turns a determination into permission to return.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime
from enum import StrEnum
from typing import Any

from voluntary_return.domain.catalogue import ReturnCatalogue
from voluntary_return.domain.errors import DomainError, ErrorDetail, Refused
from voluntary_return.domain.shape import (
    AGENCY,
    COUNTRY,
    LANGUAGE_TAG,
    MAX_ID,
    LanguageText,
    Reader,
    checked,
    latest_today,
)


class Decision(StrEnum):
    RETURN = "return"
    OTHER_DURABLE_SOLUTION = "other_durable_solution"


FAMILY_ASSESSMENT_FIELDS = ("received_on", "outcome", "from_country", "agency")
ASSESSMENT_FIELDS = ("assessed_on", "assessed_by", "agency")
DETERMINATION_FIELDS = (
    "decided_on",
    "members",
    "decision",
    "solution",
    "reasons",
    "child_views",
    "alternatives_considered",
)
MEMBER_FIELDS = ("role", "agency")
CHILD_VIEWS_FIELDS = ("method", "language", "text")


@dataclass(frozen=True)
class FamilyAssessment:
    received_on: date
    outcome: str  # family-assessment outcome code
    from_country: str  # the origin country whose social services made it
    agency: str


@dataclass(frozen=True)
class BestInterestsAssessment:
    assessed_on: date
    assessed_by: str
    agency: str


@dataclass(frozen=True)
class PanelMember:
    role: str  # panel-role code
    agency: str | None = None


@dataclass(frozen=True)
class ChildViews:
    method: str  # hearing-method code: how the child was heard
    language: str  # BCP 47 tag of `text`
    text: str  # the child's views, as recorded


@dataclass(frozen=True)
class Determination:
    decided_on: date
    members: tuple[PanelMember, ...]
    decision: Decision
    solution: str | None  # required for other_durable_solution; for return, optionally which return
    reasons: LanguageText
    child_views: ChildViews
    alternatives_considered: tuple[str, ...]  # durable-solution codes
    recorded_by: str

    @property
    def in_favour_of_return(self) -> bool:
        return self.decision is Decision.RETURN


# -------------------------------------------------------------------------------------------------- parsing


def parse_family_assessment(
    body: Any,
    *,
    now: datetime,
    catalogue: ReturnCatalogue,
    origin_country: str | None = None,
    pointer: str = "",
) -> FamilyAssessment:
    """A family assessment as received from the origin country; with `origin_country`, it must come from
    there (422 `not_the_origin_country`)."""
    errors: list[ErrorDetail] = []
    read = Reader(errors)
    raw = read.obj(body, pointer, FAMILY_ASSESSMENT_FIELDS)
    found: FamilyAssessment | None = None
    if raw is not None:
        received_on = read.day(raw, "received_on", pointer, not_after=latest_today(now))
        outcome = read.code(raw, "outcome", pointer, catalogue.family_assessment_outcomes)
        country = read.pattern(raw, "from_country", pointer, COUNTRY)
        if country is not None and country not in catalogue.partners:
            read.problem("not_a_partner_country", f"{pointer}/from_country")
        elif country is not None and origin_country is not None and country != origin_country:
            read.problem("not_the_origin_country", f"{pointer}/from_country")
        agency = read.pattern(raw, "agency", pointer, AGENCY)
        if received_on and outcome and country and agency:
            found = FamilyAssessment(received_on, outcome, country, agency)
    return checked(found, errors, "invalid family assessment", pointer)


def parse_assessment(body: Any, *, now: datetime, pointer: str = "") -> BestInterestsAssessment:
    """A best-interests assessment: when, by whom, for which agency."""
    errors: list[ErrorDetail] = []
    read = Reader(errors)
    raw = read.obj(body, pointer, ASSESSMENT_FIELDS)
    found: BestInterestsAssessment | None = None
    if raw is not None:
        assessed_on = read.day(raw, "assessed_on", pointer, not_after=latest_today(now))
        assessed_by = read.text(raw, "assessed_by", pointer, max_length=MAX_ID)
        agency = read.pattern(raw, "agency", pointer, AGENCY)
        if assessed_on and assessed_by and agency:
            found = BestInterestsAssessment(assessed_on, assessed_by, agency)
    return checked(found, errors, "invalid best-interests assessment", pointer)


def parse_determination(
    body: Any, *, recorded_by: str, now: datetime, catalogue: ReturnCatalogue, pointer: str = ""
) -> Determination:
    """A panel's best-interests determination, or a 422 naming every problem."""
    errors: list[ErrorDetail] = []
    read = Reader(errors)
    raw = read.obj(body, pointer, DETERMINATION_FIELDS)
    found = _determination(read, raw, recorded_by, now, catalogue, pointer) if raw is not None else None
    return checked(found, errors, "invalid best-interests determination", pointer)


def _determination(
    read: Reader,
    raw: Mapping[str, Any],
    recorded_by: str,
    now: datetime,
    catalogue: ReturnCatalogue,
    where: str,
) -> Determination | None:
    decided_on = read.day(raw, "decided_on", where, not_after=latest_today(now))
    members = _members(read, raw, catalogue, where)
    decision_code = read.code(raw, "decision", where, tuple(Decision))
    decision = Decision(decision_code) if decision_code else None
    solution = _solution(read, raw, decision, catalogue, where)
    reasons = read.language_text(raw, "reasons", where)
    views = _child_views(read, raw, catalogue, where)
    alternatives = read.codes(raw, "alternatives_considered", where, catalogue.durable_solutions, min_items=1)
    if (
        decided_on is None
        or members is None
        or decision is None
        or (decision is Decision.OTHER_DURABLE_SOLUTION and solution is None)
        or reasons is None
        or views is None
        or not alternatives
    ):
        return None
    return Determination(decided_on, members, decision, solution, reasons, views, alternatives, recorded_by)


def _members(
    read: Reader, raw: Mapping[str, Any], catalogue: ReturnCatalogue, where: str
) -> tuple[PanelMember, ...] | None:
    value = read.member(raw, "members", where)
    if value is None:
        return None
    if not isinstance(value, list):
        read.problem("wrong_type", f"{where}/members")
        return None
    members: list[PanelMember] = []
    complete = True
    for i, item in enumerate(value):
        at = f"{where}/members/{i}"
        member = read.obj(item, at, MEMBER_FIELDS)
        if member is None:
            complete = False
            continue
        role = read.code(member, "role", at, catalogue.panel_roles)
        agency = read.pattern(member, "agency", at, AGENCY, required=False)
        if role is None:
            complete = False
        else:
            members.append(PanelMember(role, agency))
    # The panel rule is data (best-interests.yaml): judged on the members as submitted, so a client learns of a
    # small panel and of a missing guardian in the same answer as of a misspelled role.
    rule = catalogue.panel_rule
    if len(value) < rule.min_members:
        read.problem("panel_too_small", f"{where}/members")
    if not any(m.role in rule.at_least_one_of for m in members):
        read.problem("panel_lacks_required_role", f"{where}/members")
    return tuple(members) if complete else None


def _solution(
    read: Reader,
    raw: Mapping[str, Any],
    decision: Decision | None,
    catalogue: ReturnCatalogue,
    where: str,
) -> str | None:
    required = decision is Decision.OTHER_DURABLE_SOLUTION
    solution = read.code(raw, "solution", where, catalogue.durable_solutions, required=required)
    if solution is None or decision is None:
        return None
    if decision is Decision.OTHER_DURABLE_SOLUTION and solution not in catalogue.other_solutions:
        read.problem("solution_is_a_return", f"{where}/solution")
        return None
    if decision is Decision.RETURN and solution not in catalogue.return_solutions:
        read.problem("solution_is_not_a_return", f"{where}/solution")
        return None
    return solution


def _child_views(
    read: Reader, raw: Mapping[str, Any], catalogue: ReturnCatalogue, where: str
) -> ChildViews | None:
    views = read.obj(
        read.member(raw, "child_views", where), f"{where}/child_views", CHILD_VIEWS_FIELDS, required=False
    )
    if views is None:
        return None
    at = f"{where}/child_views"
    method = read.code(views, "method", at, catalogue.hearing_methods)
    language = read.pattern(views, "language", at, LANGUAGE_TAG)
    text = read.text(views, "text", at)
    if method is None or language is None or text is None:
        return None
    return ChildViews(method, language, text)


# ---------------------------------------------------------------------------------------------------- basis


def check_basis(
    determination: Determination,
    *,
    assessment: BestInterestsAssessment | None,
    family_assessment: FamilyAssessment | None,
    pointer: str = "",
) -> None:
    """Whether the case holds what a determination rests on: a best-interests assessment for any determination
    (409 `best_interests_assessment_required`), made no later than the determination (422
    `determination_before_assessment`), and for a decision to return, the origin country's family assessment
    (409 `family_assessment_required`)."""
    if assessment is None:
        raise Refused("best_interests_assessment_required")
    if determination.decided_on < assessment.assessed_on:
        raise DomainError(
            "determination_before_assessment", "invalid determination", pointer=f"{pointer}/decided_on"
        )
    if determination.in_favour_of_return and family_assessment is None:
        raise Refused("family_assessment_required")
