"""Partial dates of birth, age determinations and child status.

Child status is computed for a date and never stored (docs/conventions.md "Time, people, languages"): the presumption
of childhood holds whenever the possible birth dates reach below 18 years, and only a recorded age determination
overrides it in favour of adulthood.
"""

from __future__ import annotations

import calendar
import re
from dataclasses import dataclass
from datetime import date
from enum import StrEnum

from .errors import DomainError

ADULT_AGE = 18
# Older than any living person: a birth year before this is a typing error, not an old person.
MAX_PLAUSIBLE_AGE = 125

_PARTIAL = re.compile(r"^(\d{4})(?:-(\d{2})(?:-(\d{2}))?)?$")


class AgeDeterminationResult(StrEnum):
    ADULT = "adult"
    CHILD = "child"


class AgeDeterminationMethod(StrEnum):
    DOCUMENTS = "documents"
    INTERVIEW = "interview"
    PSYCHOSOCIAL_ASSESSMENT = "psychosocial_assessment"
    MEDICAL_EXAMINATION = "medical_examination"
    MULTIDISCIPLINARY = "multidisciplinary"
    OTHER = "other"


@dataclass(frozen=True)
class BirthRange:
    """Every date the person may have been born on, inclusive at both ends."""

    earliest: date
    latest: date

    def __post_init__(self) -> None:
        if self.earliest > self.latest:
            raise DomainError("date_range_inverted", "earliest birth date is after latest")

    def years(self) -> range:
        return range(self.earliest.year, self.latest.year + 1)

    def overlaps(self, other: BirthRange) -> bool:
        return self.earliest <= other.latest and other.earliest <= self.latest

    def gap_days(self, other: BirthRange) -> int:
        """Days between the two ranges; 0 when they overlap."""
        if self.overlaps(other):
            return 0
        if self.latest < other.earliest:
            return (other.earliest - self.latest).days
        return (self.earliest - other.latest).days


def parse_partial_date(text: str, *, pointer: str = "") -> BirthRange:
    """``YYYY``, ``YYYY-MM`` or ``YYYY-MM-DD`` as the range of days it may denote."""
    match = _PARTIAL.match(text.strip())
    if match is None:
        raise DomainError("date_invalid", "expected YYYY, YYYY-MM or YYYY-MM-DD", pointer=pointer)
    year = int(match.group(1))
    month_text, day_text = match.group(2), match.group(3)
    if year < 1:
        raise DomainError("date_invalid", "year out of range", pointer=pointer)
    if month_text is None:
        return BirthRange(date(year, 1, 1), date(year, 12, 31))
    month = int(month_text)
    if not 1 <= month <= 12:
        raise DomainError("date_invalid", "month out of range", pointer=pointer)
    last_day = calendar.monthrange(year, month)[1]
    if day_text is None:
        return BirthRange(date(year, month, 1), date(year, month, last_day))
    day = int(day_text)
    if not 1 <= day <= last_day:
        raise DomainError("date_invalid", "day out of range for the month", pointer=pointer)
    return BirthRange(date(year, month, day), date(year, month, day))


def parse_date_of_birth(
    value: str | tuple[str, str] | None, *, today: date, pointer: str = ""
) -> BirthRange | None:
    """A single partial date or an (earliest, latest) pair of partial dates; ``None`` when unknown.

    ``today`` comes from the injectable clock. A partial date that includes today is cut at today, because
    nobody is born in the future; a date wholly after today is an error.
    """
    if value is None:
        return None
    if isinstance(value, str):
        span = parse_partial_date(value, pointer=pointer)
    else:
        # Pointers name the members of the contract's date range object, not positions in a pair.
        first = parse_partial_date(value[0], pointer=f"{pointer}/earliest")
        last = parse_partial_date(value[1], pointer=f"{pointer}/latest")
        if first.earliest > last.latest:
            raise DomainError("date_range_inverted", "earliest birth date is after latest", pointer=pointer)
        span = BirthRange(first.earliest, last.latest)
    if span.earliest > today:
        raise DomainError("date_of_birth_in_future", "date of birth is after today", pointer=pointer)
    if span.latest.year < today.year - MAX_PLAUSIBLE_AGE:
        raise DomainError("date_of_birth_implausible", "date of birth is implausibly early", pointer=pointer)
    return BirthRange(span.earliest, min(span.latest, today))


def add_years(day: date, years: int) -> date:
    try:
        return day.replace(year=day.year + years)
    except ValueError:
        # 29 February: the birthday is celebrated legally on 1 March in non-leap years.
        return date(day.year + years, 3, 1)


def may_be_under(birth: BirthRange, on_date: date, age: int = ADULT_AGE) -> bool:
    """True when at least one possible birth date makes the person younger than ``age`` on ``on_date``."""
    return add_years(birth.latest, age) > on_date


def age_bounds(birth: BirthRange, on_date: date) -> tuple[int, int]:
    """(youngest, oldest) possible age in whole years on ``on_date``."""
    return _age(birth.latest, on_date), _age(birth.earliest, on_date)


def _age(born: date, on_date: date) -> int:
    years = on_date.year - born.year
    if add_years(born, years) > on_date:
        years -= 1
    return years


@dataclass(frozen=True)
class AgeDetermination:
    """A recorded decision on a person's age; the only thing that turns a presumed child into an adult."""

    decided_on: date
    method: AgeDeterminationMethod
    authority: str
    result: AgeDeterminationResult
    assessed_birth: BirthRange | None = None

    def __post_init__(self) -> None:
        if not self.authority.strip():
            raise DomainError("age_determination_invalid", "authority is required", pointer="/authority")
        if self.assessed_birth is not None:
            if self.assessed_birth.earliest > self.decided_on:
                raise DomainError(
                    "age_determination_invalid",
                    "assessed birth range lies after the decision",
                    pointer="/assessed_birth_range",
                )
            child_by_range = may_be_under(self.assessed_birth, self.decided_on)
            adult_by_range = add_years(self.assessed_birth.earliest, ADULT_AGE) <= self.decided_on
            # A decision of "adult" whose own assessed range is entirely under 18 contradicts itself.
            if self.result is AgeDeterminationResult.ADULT and not adult_by_range:
                raise DomainError(
                    "age_determination_invalid",
                    "result adult contradicts the assessed birth range",
                    pointer="/result",
                )
            if self.result is AgeDeterminationResult.CHILD and not child_by_range:
                raise DomainError(
                    "age_determination_invalid",
                    "result child contradicts the assessed birth range",
                    pointer="/result",
                )


def child_status(
    on_date: date,
    birth: BirthRange | None,
    determinations: tuple[AgeDetermination, ...] | list[AgeDetermination],
) -> bool:
    """Whether the person counts as a child on ``on_date``.

    - Only determinations decided on or before ``on_date`` count: a screening done before a decision was made
      stays a child's screening.
    - The latest such determination wins. "adult" makes the person an adult (ages only grow). "child" keeps
      them a child as long as the assessed range (or else the date of birth) may still be under 18; without
      either, they stay a child until a new determination.
    - Without a determination: unknown date of birth means child; otherwise child when any possible birth date
      is less than 18 years before ``on_date``.
    """
    if birth is not None and birth.earliest > on_date:
        raise DomainError("date_before_birth", "the date lies before any possible date of birth")
    effective = [d for d in determinations if d.decided_on <= on_date]
    if effective:
        latest = max(enumerate(effective), key=lambda pair: (pair[1].decided_on, pair[0]))[1]
        if latest.result is AgeDeterminationResult.ADULT:
            return False
        basis = latest.assessed_birth or birth
        return True if basis is None else may_be_under(basis, on_date)
    if birth is None:
        return True
    return may_be_under(birth, on_date)
