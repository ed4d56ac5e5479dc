"""Duplicate scoring: equivalent spellings match, different people do not."""

from __future__ import annotations

from datetime import date

import pytest

from identification.domain.ages import parse_date_of_birth
from identification.domain.categories import Sex
from identification.domain.duplicates import (
    CONFLICT_CAP,
    MATCH_THRESHOLD,
    POSSIBLE_THRESHOLD,
    PersonFacts,
    rank,
    score,
)

TODAY = date(2026, 6, 15)


def person(
    given: str,
    surname: str,
    dob: str | tuple[str, str] | None = None,
    sex: Sex = Sex.UNKNOWN,
    nationality: str | None = None,
    aliases: tuple[tuple[str, str], ...] = (),
) -> PersonFacts:
    return PersonFacts(
        given_names=(given,) if given else (),
        surnames=(surname,) if surname else (),
        birth=parse_date_of_birth(dob, today=TODAY),
        sex=sex,
        nationality=nationality,
        aliases=tuple(((g,), (s,)) for g, s in aliases),
    )


SEARCH = person("Đorđe", "Petrović", "1990-04-02", Sex.MALE, "ME")


@pytest.mark.parametrize(
    ("candidate", "reasons"),
    [
        (
            person("Djordje", "Petrovic", "1990-04-02", Sex.MALE, "ME"),
            {"surname_equivalent", "birth_date_match"},
        ),
        (person("Ђорђе", "Петровић", "1990", Sex.MALE, "ME"), {"given_name_equivalent", "birth_year_match"}),
        (
            person("Djordje", "Petrovic", None, Sex.UNKNOWN, None),
            {"surname_equivalent", "birth_date_unknown"},
        ),
        (person("Djordje", "Petrovich", ("1989", "1991"), Sex.MALE, "XK"), {"nationality_differs"}),
        (person("Djordje", "Petrovic", "1991-03", Sex.MALE, "ME"), {"birth_year_near"}),
    ],
)
def test_same_person_spelled_differently_matches(candidate: PersonFacts, reasons: set[str]) -> None:
    result = score(SEARCH, candidate)
    assert result.score >= MATCH_THRESHOLD, result
    assert result.level == "likely"
    assert reasons <= set(result.reasons)


@pytest.mark.parametrize(
    ("a", "b"),
    [
        (person("Ëngjëll", "Hoxha", "1985"), person("Engjell", "Hoxha", "1985")),
        (person("Ilir", "Hoxha", "2001-05-05", Sex.MALE), person("Ilir", "Hodža", "2001-05-05", Sex.MALE)),
        (person("Ilir", "Hoxha", "2001-05-05", Sex.MALE), person("Илир", "Хоџа", "2001-05-05", Sex.MALE)),
    ],
)
def test_required_equivalences_match(a: PersonFacts, b: PersonFacts) -> None:
    result = score(a, b)
    assert result.score >= MATCH_THRESHOLD
    assert "surname_equivalent" in result.reasons


@pytest.mark.parametrize(
    ("candidate", "reason"),
    [
        (person("Djordje", "Petrovic", "1975-04-02", Sex.MALE, "ME"), "birth_year_conflict"),
        (person("Ђорђе", "Петровић", "2008", Sex.MALE, "ME"), "birth_year_conflict"),
        (person("Djordje", "Petrovic", "1990-04-02", Sex.FEMALE, "ME"), "sex_conflict"),
    ],
)
def test_contradictions_keep_equal_names_below_the_threshold(candidate: PersonFacts, reason: str) -> None:
    result = score(SEARCH, candidate)
    assert result.score <= CONFLICT_CAP < MATCH_THRESHOLD
    assert reason in result.reasons
    assert result.level == "unlikely"


def test_same_name_born_years_apart_are_different_people() -> None:
    father = person("Engjëll", "Hoxha", "1961", Sex.MALE, "AL")
    son = person("Engjell", "Hoxha", "1988-02-11", Sex.MALE, "AL")
    assert score(father, son).score < MATCH_THRESHOLD
    assert score(son, father).score < MATCH_THRESHOLD


@pytest.mark.parametrize(
    "candidate",
    [
        person("Marko", "Jovanović", "1990-04-02", Sex.MALE, "ME"),
        person("Ardit", "Krasniqi", "1990-04-02", Sex.MALE, "XK"),
        person("", "", "1990-04-02", Sex.MALE, "ME"),
    ],
)
def test_different_names_do_not_match(candidate: PersonFacts) -> None:
    assert score(SEARCH, candidate).score < POSSIBLE_THRESHOLD


def test_same_surname_other_given_name_is_at_most_possible() -> None:
    brother = score(SEARCH, person("Marko", "Petrović", "1990", Sex.MALE, "ME"))
    assert POSSIBLE_THRESHOLD <= brother.score < MATCH_THRESHOLD
    assert {"surname_equivalent", "given_name_different"} <= set(brother.reasons)


def test_swapped_name_order_and_aliases() -> None:
    swapped = score(SEARCH, person("Petrović", "Đorđe", "1990-04-02", Sex.MALE, "ME"))
    assert swapped.score >= MATCH_THRESHOLD
    assert "name_order_swapped" in swapped.reasons
    alias = score(
        SEARCH, person("Gjoni", "Marku", "1990-04-02", Sex.MALE, "ME", aliases=(("Djordje", "Petrovic"),))
    )
    assert alias.score >= MATCH_THRESHOLD


def test_scores_are_bounded_and_symmetric_enough() -> None:
    a = person("Ëngjëll", "Hoxha", "1985", Sex.MALE, "AL")
    b = person("Engjell", "Hodža", "1985-03", Sex.MALE, "AL")
    assert 0 <= score(a, b).score <= 100
    assert score(a, b).score == score(b, a).score


def test_rank_orders_and_filters() -> None:
    ranked = rank(
        SEARCH,
        {
            "p-brother": person("Marko", "Petrović", "1990", Sex.MALE, "ME"),
            "p-same": person("Djordje", "Petrovic", "1990-04-02", Sex.MALE, "ME"),
            "p-other": person("Ardit", "Krasniqi", "1970", Sex.MALE, "XK"),
        },
    )
    assert [key for key, _ in ranked] == ["p-same", "p-brother"]


# -------------------------------------------------------------------- what an officer at a border often has


@pytest.mark.parametrize(
    "search",
    [
        person("", "Hoxha"),
        person("", "Hodža", ("2008", "2012"), Sex.MALE),
        person("", "Хоџа", None, Sex.MALE, "AL"),
    ],
)
def test_a_surname_alone_finds_a_possible_match_never_a_likely_one(search: PersonFacts) -> None:
    candidate = person("Ëngjëll", "Hoxha", "2010-05", Sex.MALE, "AL")
    result = score(search, candidate)
    assert result.level == "possible", result
    assert "given_name_not_searched" in result.reasons and "surname_equivalent" in result.reasons


def test_a_surname_alone_still_respects_a_contradiction() -> None:
    candidate = person("Ëngjëll", "Hoxha", "2010-05", Sex.MALE)
    assert score(person("", "Hoxha", ("1970", "1975")), candidate).score <= CONFLICT_CAP
    assert score(person("", "Hoxha", None, Sex.FEMALE), candidate).score <= CONFLICT_CAP
    assert score(person("", "Krasniqi"), candidate).score < POSSIBLE_THRESHOLD


def test_a_one_word_alias_is_matched_against_either_part_of_a_name() -> None:
    search = PersonFacts(aliases=((("Beni",), ()),))
    assert score(search, person("Beni", "Gashi", "2011")).level == "possible"
    assert score(search, person("Arben", "Beni", "2011")).level == "possible"  # recorded as a surname


def test_a_search_without_a_name_ranks_what_nothing_contradicts_as_possible() -> None:
    search = PersonFacts(
        birth=parse_date_of_birth(("2010", "2012"), today=TODAY), sex=Sex.MALE, nationality="ME"
    )
    close = person("Marko", "Marković", "2011-03-04", Sex.MALE, "ME")
    vague = person("", "", None, Sex.UNKNOWN)
    scored = {name: score(search, facts) for name, facts in {"close": close, "vague": vague}.items()}
    assert all(s.level == "possible" and "name_not_searched" in s.reasons for s in scored.values())
    assert scored["close"].score > scored["vague"].score
    assert score(search, person("Ana", "Marković", "2011", Sex.FEMALE, "ME")).score < POSSIBLE_THRESHOLD
    assert score(search, person("Marko", "Marković", "1990", Sex.MALE, "ME")).score < POSSIBLE_THRESHOLD
