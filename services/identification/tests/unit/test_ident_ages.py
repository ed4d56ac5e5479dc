"""Partial dates of birth, age determinations and child status (docs/conventions.md "Time, people, languages")."""

from __future__ import annotations

from datetime import date

import pytest

from identification.domain.ages import (
    AgeDetermination,
    AgeDeterminationMethod,
    AgeDeterminationResult,
    BirthRange,
    age_bounds,
    child_status,
    parse_date_of_birth,
    parse_partial_date,
)
from identification.domain.errors import DomainError

TODAY = date(2026, 6, 15)


@pytest.mark.parametrize(
    ("text", "earliest", "latest"),
    [
        ("2010", date(2010, 1, 1), date(2010, 12, 31)),
        ("2012-02", date(2012, 2, 1), date(2012, 2, 29)),
        ("2011-02", date(2011, 2, 1), date(2011, 2, 28)),
        ("2009-07-04", date(2009, 7, 4), date(2009, 7, 4)),
    ],
)
def test_partial_dates(text: str, earliest: date, latest: date) -> None:
    assert parse_partial_date(text) == BirthRange(earliest, latest)


@pytest.mark.parametrize(
    ("value", "code"),
    [
        ("2010-13", "date_invalid"),
        ("2010-00", "date_invalid"),
        ("2011-02-29", "date_invalid"),
        ("2010-04-31", "date_invalid"),
        ("10-04-2010", "date_invalid"),
        ("2010/04", "date_invalid"),
        ("", "date_invalid"),
        ("2027", "date_of_birth_in_future"),
        ("2026-06-16", "date_of_birth_in_future"),
        ("1850", "date_of_birth_implausible"),
        (("2012", "2010"), "date_range_inverted"),
        (("2010-13", "2012"), "date_invalid"),
    ],
)
def test_impossible_dates(value: str | tuple[str, str], code: str) -> None:
    with pytest.raises(DomainError) as caught:
        parse_date_of_birth(value, today=TODAY, pointer="/date_of_birth")
    assert caught.value.code == code
    assert caught.value.pointer.startswith("/date_of_birth")


def test_partial_date_including_today_is_cut_at_today() -> None:
    assert parse_date_of_birth("2026", today=TODAY) == BirthRange(date(2026, 1, 1), TODAY)


def test_range_of_partial_dates() -> None:
    assert parse_date_of_birth(("2008", "2009-03"), today=TODAY) == BirthRange(
        date(2008, 1, 1), date(2009, 3, 31)
    )
    assert parse_date_of_birth(None, today=TODAY) is None


def det(
    decided_on: date,
    result: str,
    assessed: tuple[str, str] | None = None,
    authority: str = "ME social services",
) -> AgeDetermination:
    birth = parse_date_of_birth(assessed, today=decided_on) if assessed else None
    return AgeDetermination(
        decided_on, AgeDeterminationMethod.MULTIDISCIPLINARY, authority, AgeDeterminationResult(result), birth
    )


CHILD_CASES = [
    ("unknown date of birth, no determination", None, [], True),
    ("full date, 17 years old", "2008-06-16", [], True),
    ("full date, 18th birthday today", "2008-06-15", [], False),
    ("year only, may still be 17", "2008", [], True),
    ("year only, certainly adult", "2007", [], False),
    ("range reaching below 18", ("2000", "2009"), [], True),
    ("range entirely above 18", ("1990", "2007"), [], False),
    ("unknown age, determined adult", None, [det(date(2026, 3, 1), "adult")], False),
    ("range below 18, determined adult", ("2000", "2009"), [det(date(2026, 3, 1), "adult")], False),
    ("determination after the date does not count", None, [det(date(2026, 7, 1), "adult")], True),
    (
        "latest determination wins",
        None,
        [det(date(2026, 5, 1), "child"), det(date(2026, 3, 1), "adult")],
        True,
    ),
    ("determined child, unknown birth", None, [det(date(2025, 1, 1), "child")], True),
    (
        "determined child whose assessed range has since passed 18",
        None,
        [det(date(2020, 1, 1), "child", ("2002", "2003"))],
        False,
    ),
    (
        "determined child, assessed range still below 18",
        None,
        [det(date(2025, 1, 1), "child", ("2009", "2010"))],
        True,
    ),
]


@pytest.mark.parametrize(
    ("dob", "determinations", "child"), [c[1:] for c in CHILD_CASES], ids=[c[0] for c in CHILD_CASES]
)
def test_child_status(
    dob: str | tuple[str, str] | None, determinations: list[AgeDetermination], child: bool
) -> None:
    birth = parse_date_of_birth(dob, today=TODAY)
    assert child_status(TODAY, birth, determinations) is child


def test_leap_day_birthday() -> None:
    birth = parse_date_of_birth("2008-02-29", today=TODAY)
    assert child_status(date(2026, 2, 28), birth, []) is True
    assert child_status(date(2026, 3, 1), birth, []) is False


def test_date_before_birth_is_an_error() -> None:
    birth = parse_date_of_birth("2020", today=TODAY)
    with pytest.raises(DomainError) as caught:
        child_status(date(2019, 1, 1), birth, [])
    assert caught.value.code == "date_before_birth"


@pytest.mark.parametrize(
    ("result", "assessed", "authority"),
    [
        ("adult", ("2012", "2013"), "court"),  # an adult decision whose own range is all under 18
        ("child", ("1990", "1995"), "court"),
        ("adult", None, "  "),
    ],
)
def test_contradictory_determinations_are_rejected(
    result: str, assessed: tuple[str, str] | None, authority: str
) -> None:
    with pytest.raises(DomainError) as caught:
        det(date(2026, 1, 1), result, assessed, authority)
    assert caught.value.code == "age_determination_invalid"


def test_age_bounds() -> None:
    birth = parse_date_of_birth(("2008-07", "2010"), today=TODAY)
    assert birth is not None
    assert age_bounds(birth, TODAY) == (15, 17)
