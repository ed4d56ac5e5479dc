"""Screening rules of docs/domain.md, table-driven against a synthetic set with known strengths.

Answer shorthand: "A-LAB DR s" = the next strong indicator of element DR in list A-LAB (m = medium, w = weak).
"""

from __future__ import annotations

import random
from datetime import date

import pytest

from identification.domain.ages import child_status
from identification.domain.categories import Category, Element, Group, Need, VulnerabilityFlag
from identification.domain.errors import DomainError
from identification.domain.indicators import IndicatorCatalogue, IndicatorSet
from identification.domain.screening import (
    Answer,
    ScreeningRequest,
    element_positive,
    evaluate,
    screen,
)

DAY = date(2026, 6, 1)
FIRST = {"s": 1, "m": 3, "w": 6}
LIMIT = {"s": 2, "m": 5, "w": 8}


def answers(spec: str) -> list[Answer]:
    """Expand "A-LAB DR s, A-LAB DR s, ..." into distinct answers of the requested strengths."""
    used: dict[tuple[str, str, str], int] = {}
    out = []
    for item in filter(None, (part.strip() for part in spec.split(","))):
        list_id, code, strength = item.split()
        n = FIRST[strength] + used.get((list_id, code, strength), 0)
        assert n <= LIMIT[strength], "the synthetic set has no more indicators of that strength"
        used[(list_id, code, strength)] = used.get((list_id, code, strength), 0) + 1
        out.append(Answer(list_id, f"{list_id}-{code}-{n:02d}"))
    return out


@pytest.mark.parametrize(
    ("strong", "medium", "weak", "positive"),
    [
        (0, 0, 0, False),
        (1, 0, 0, False),
        (2, 0, 0, True),
        (1, 1, 0, True),
        (1, 0, 1, True),
        (0, 3, 0, True),
        (0, 2, 0, False),
        (0, 2, 1, True),
        (0, 1, 1, False),
        (0, 1, 5, False),
        (0, 0, 1, False),
        (0, 0, 3, False),
        (0, 0, 50, False),
    ],
)
def test_element_rule(strong: int, medium: int, weak: int, positive: bool) -> None:
    assert element_positive(strong, medium, weak) is positive


def test_weak_indicators_alone_never_make_an_element_positive() -> None:
    assert not any(element_positive(0, 0, weak) for weak in range(100))


CASES = [
    # (name, child, spec, flags, category, strong indication, decisive list)
    ("nothing", False, "", (), Category.NO_INDICATION, False, None),
    ("flags only", False, "", ("begging",), Category.PERSON_AT_RISK, False, None),
    (
        "adult all groups positive",
        False,
        "A-LAB DR s, A-LAB DR m, A-LAB EX s, A-LAB EX s, A-LAB CD s, A-LAB VD w, A-LAB CD w",
        (),
        Category.POTENTIAL_VICTIM,
        True,
        "A-LAB",
    ),
    (
        "adult every group present but not positive",
        False,
        "A-LAB CR m, A-LAB EX s, A-LAB VD m",
        (),
        Category.POTENTIAL_VICTIM,
        False,
        "A-LAB",
    ),
    (
        "adult groups present only by weak indicators",
        False,
        "A-LAB DR w, A-LAB DR w, A-LAB DR w, A-LAB EX w, A-LAB EX w, A-LAB EX w, A-LAB CD w, A-LAB CD w, A-LAB CD w",
        (),
        Category.POTENTIAL_VICTIM,
        False,
        "A-LAB",
    ),
    (
        "adult means missing",
        False,
        "A-LAB DR s, A-LAB DR s, A-LAB EX s, A-LAB EX s",
        (),
        Category.PERSON_AT_RISK,
        False,
        "A-LAB",
    ),
    (
        "adult recruitment missing",
        False,
        "A-LAB EX s, A-LAB EX s, A-LAB CD s, A-LAB CD s",
        (),
        Category.PERSON_AT_RISK,
        False,
        "A-LAB",
    ),
    (
        "adult exploitation missing, with flags",
        False,
        "A-LAB DR s, A-LAB CD s",
        ("living_on_street",),
        Category.PERSON_AT_RISK,
        False,
        "A-LAB",
    ),
    (
        "child without means is still a potential victim",
        True,
        "C-LAB CR s, C-LAB CR s, C-LAB EX s, C-LAB EX m",
        (),
        Category.POTENTIAL_VICTIM,
        True,
        "C-LAB",
    ),
    (
        "child with recruitment only",
        True,
        "C-LAB CR s, C-LAB CR s",
        ("unaccompanied",),
        Category.PERSON_AT_RISK,
        False,
        "C-LAB",
    ),
    (
        "indicators spread over two lists never add up",
        False,
        "A-LAB DR s, A-LAB DR s, A-SEX EX s, A-SEX EX s, A-SEX CD s, A-SEX CD s",
        (),
        Category.PERSON_AT_RISK,
        False,
        "A-SEX",
    ),
    (
        "several lists: the strongest result counts",
        False,
        "A-LAB DR m, A-LAB EX m, A-LAB CD m, A-SEX DR s, A-SEX DR s, A-SEX EX s, A-SEX EX m, A-SEX CD s, A-SEX CD s",
        (),
        Category.POTENTIAL_VICTIM,
        True,
        "A-SEX",
    ),
    (
        "several lists: potential victim beats person at risk",
        False,
        "A-SEX DR s, A-SEX DR s, A-SEX EX s, A-LAB DR w, A-LAB EX w, A-LAB VD w",
        (),
        Category.POTENTIAL_VICTIM,
        False,
        "A-LAB",
    ),
]


@pytest.mark.parametrize(
    ("child", "spec", "flags", "category", "strong", "decisive"),
    [case[1:] for case in CASES],
    ids=[case[0] for case in CASES],
)
def test_screening_table(
    synthetic_set: IndicatorSet,
    child: bool,
    spec: str,
    flags: tuple[str, ...],
    category: Category,
    strong: bool,
    decisive: str | None,
) -> None:
    result = evaluate(
        synthetic_set,
        answers(spec),
        child=child,
        flags=[VulnerabilityFlag(f) for f in flags],
        screening_date=DAY,
    )
    assert (result.suggested, result.strong_indication, result.decisive_list) == (category, strong, decisive)
    assert result.indicator_set == "regional@2099.1"


def test_age_unknown_is_screened_as_a_child(synthetic_set: IndicatorSet) -> None:
    child = child_status(DAY, None, [])
    assert child is True
    spec = "C-LAB CR s, C-LAB EX s"
    result = evaluate(synthetic_set, answers(spec), child=child, screening_date=DAY)
    assert result.child is True
    assert result.suggested is Category.POTENTIAL_VICTIM
    groups = {g.group: g for g in result.lists[0].groups}
    assert groups[Group.MEANS].required is False
    assert groups[Group.RECRUITMENT].required is True
    # The same person treated as an adult would need means and so fall short.
    adult = evaluate(synthetic_set, answers(spec.replace("C-LAB", "A-LAB")), child=False, screening_date=DAY)
    assert adult.suggested is Category.PERSON_AT_RISK


def test_age_unknown_cannot_be_screened_with_adult_lists(synthetic_set: IndicatorSet) -> None:
    with pytest.raises(DomainError) as caught:
        evaluate(synthetic_set, answers("A-LAB DR s"), child=child_status(DAY, None, []), screening_date=DAY)
    assert caught.value.code == "indicator_wrong_list"
    assert caught.value.pointer == "/answers/0/list_id"


def test_weak_only_elements_are_reported_not_positive(synthetic_set: IndicatorSet) -> None:
    spec = "A-LAB DR w, A-LAB DR w, A-LAB DR w, A-LAB EX w, A-LAB CD w"
    result = evaluate(synthetic_set, answers(spec), child=False, screening_date=DAY)
    elements = {e.element: e for e in result.lists[0].elements}
    dr = elements[Element.DECEPTIVE_RECRUITMENT]
    assert (dr.strong, dr.medium, dr.weak, dr.positive) == (0, 0, 3, False)
    assert not any(e.positive for e in result.lists[0].elements)
    assert result.strong_indication is False


def test_result_records_version_and_per_element_results(synthetic_set: IndicatorSet) -> None:
    result = evaluate(
        synthetic_set, answers("A-LAB DR s, A-LAB DR m, A-LAB EX s"), child=False, screening_date=DAY
    )
    record = result.as_record()
    assert record["indicator_set"] == "regional@2099.1"
    assert record["suggested"] == "person_at_risk"
    elements = record["lists"][0]["elements"]
    assert elements["deceptive_recruitment"] == {
        "strong": 1,
        "medium": 1,
        "weak": 0,
        "positive": True,
        "indicators": ["A-LAB-DR-01", "A-LAB-DR-03"],
    }
    assert elements["exploitative_conditions"]["positive"] is False
    assert record["lists"][0]["groups"]["means"] == {"required": True, "present": False, "positive": False}


def test_only_answered_lists_are_reported(synthetic_set: IndicatorSet) -> None:
    result = evaluate(synthetic_set, answers("A-SEX EX s"), child=False, screening_date=DAY)
    assert [lst.list_id for lst in result.lists] == ["A-SEX"]


def test_duplicate_answers_count_once(synthetic_set: IndicatorSet) -> None:
    twice = [Answer("A-LAB", "A-LAB-DR-01"), Answer("A-LAB", "A-LAB-DR-01")]
    result = evaluate(synthetic_set, twice, child=False, screening_date=DAY)
    dr = result.lists[0].elements[0]
    assert (dr.strong, dr.positive) == (1, False)


@pytest.mark.parametrize(
    ("answer", "child", "code", "pointer"),
    [
        (Answer("A-LAB", "A-LAB-DR-99"), False, "unknown_indicator", "/answers/0/indicator_id"),
        (Answer("X-LAB", "A-LAB-DR-01"), False, "unknown_indicator_list", "/answers/0/list_id"),
        (Answer("A-SEX", "A-LAB-DR-01"), False, "indicator_not_in_list", "/answers/0/indicator_id"),
        (Answer("C-LAB", "C-LAB-DR-01"), False, "indicator_wrong_list", "/answers/0/list_id"),
        (Answer("A-LAB", "A-LAB-DR-01"), True, "indicator_wrong_list", "/answers/0/list_id"),
        (Answer("A-LAB", "A-LAB-EX-09"), False, "indicator_not_effective", "/answers/0/indicator_id"),
    ],
)
def test_bad_answers(
    synthetic_set: IndicatorSet, answer: Answer, child: bool, code: str, pointer: str
) -> None:
    with pytest.raises(DomainError) as caught:
        evaluate(synthetic_set, [answer], child=child, screening_date=DAY)
    assert (caught.value.code, caught.value.pointer) == (code, pointer)


def test_retired_indicator_is_valid_while_it_was_effective(synthetic_set: IndicatorSet) -> None:
    result = evaluate(
        synthetic_set, [Answer("A-LAB", "A-LAB-EX-09")], child=False, screening_date=date(2021, 6, 1)
    )
    assert result.lists[0].elements[3].indicator_ids == ("A-LAB-EX-09",)


def test_every_bad_answer_is_reported_at_once(synthetic_set: IndicatorSet) -> None:
    bad = [Answer("A-LAB", "A-LAB-DR-01"), Answer("A-LAB", "nope"), Answer("C-LAB", "C-LAB-DR-01")]
    with pytest.raises(DomainError) as caught:
        evaluate(synthetic_set, bad, child=False, screening_date=DAY)
    assert [(d.code, d.pointer) for d in caught.value.details] == [
        ("unknown_indicator", "/answers/1/indicator_id"),
        ("indicator_wrong_list", "/answers/2/list_id"),
    ]


def test_unknown_version(synthetic_catalogue: IndicatorCatalogue) -> None:
    with pytest.raises(DomainError) as caught:
        screen(synthetic_catalogue, ScreeningRequest(version="1999.1", screening_date=DAY, child=False))
    assert (caught.value.code, caught.value.pointer) == (
        "unknown_indicator_set_version",
        "/indicator_set_version",
    )


def test_screen_resolves_version(synthetic_catalogue: IndicatorCatalogue) -> None:
    request = ScreeningRequest(
        version="2099.1",
        screening_date=DAY,
        child=True,
        answers=tuple(answers("C-LAB CR s, C-LAB EX s")),
        flags=(VulnerabilityFlag.UNACCOMPANIED,),
    )
    result = screen(synthetic_catalogue, request)
    assert result.suggested is Category.POTENTIAL_VICTIM
    assert Need.GUARDIAN in result.immediate_needs
    assert Need.SHELTER in result.immediate_needs


@pytest.mark.parametrize(
    ("child", "flags", "needs"),
    [
        (True, ("unaccompanied",), {Need.GUARDIAN, Need.SHELTER, Need.FAMILY_TRACING}),
        (True, ("separated",), {Need.GUARDIAN, Need.SHELTER, Need.FAMILY_TRACING}),
        (False, ("unaccompanied",), set()),
        (True, ("begging",), set()),
    ],
)
def test_first_contact_needs_from_flags(
    synthetic_set: IndicatorSet, child: bool, flags: tuple[str, ...], needs: set[Need]
) -> None:
    result = evaluate(
        synthetic_set, [], child=child, flags=[VulnerabilityFlag(f) for f in flags], screening_date=DAY
    )
    assert result.suggested is Category.PERSON_AT_RISK
    assert set(result.immediate_needs) == needs


def test_never_suggests_victim(synthetic_set: IndicatorSet) -> None:
    rng = random.Random(7)
    adult_ids = [i.id for i in synthetic_set.get_list("A-LAB").indicators if i.id != "A-LAB-EX-09"]
    seen = set()
    for _ in range(300):
        chosen = rng.sample(adult_ids, rng.randint(0, 20))
        flags = rng.sample(list(VulnerabilityFlag), rng.randint(0, 2))
        result = evaluate(
            synthetic_set, [Answer("A-LAB", i) for i in chosen], child=False, flags=flags, screening_date=DAY
        )
        assert result.suggested is not Category.VICTIM
        # A strong indication is only ever a refinement of potential victim.
        assert not result.strong_indication or result.suggested is Category.POTENTIAL_VICTIM
        seen.add(result.suggested)
    assert seen == {Category.NO_INDICATION, Category.PERSON_AT_RISK, Category.POTENTIAL_VICTIM}


# --- the packaged regional set ---------------------------------------------------------------------------


def test_regional_child_begging_scenario(packaged_catalogue: IndicatorCatalogue) -> None:
    regional = packaged_catalogue.resolve("2026.1")
    c_beg = regional.get_list("C-BEG")
    by_element = {e: [i for i in c_beg.indicators if i.element is e] for e in Element}
    chosen = [
        by_element[Element.COERCIVE_RECRUITMENT][0],
        *by_element[Element.EXPLOITATIVE_CONDITIONS][:2],
    ]
    result = screen(
        packaged_catalogue,
        ScreeningRequest(
            version="2026.1",
            screening_date=DAY,
            child=True,
            answers=tuple(Answer("C-BEG", i.id) for i in chosen),
            flags=(VulnerabilityFlag.BEGGING, VulnerabilityFlag.CHILD_ON_THE_MOVE),
        ),
    )
    assert result.suggested is Category.POTENTIAL_VICTIM
    assert result.indicator_set == "regional@2026.1"


def test_national_additions_are_answered_under_the_list_they_extend(
    packaged_catalogue: IndicatorCatalogue,
) -> None:
    request = ScreeningRequest(
        version="2026.1",
        screening_date=DAY,
        child=False,
        answers=(Answer("A-LAB", "AL-A-LAB-EX-01"),),
        country="AL",
    )
    result = screen(packaged_catalogue, request)
    assert result.indicator_set == "regional@2026.1+national-AL@2026.1"
    assert result.lists[0].list_id == "A-LAB"
    # Without Albania's additions the same answer is unknown.
    with pytest.raises(DomainError) as caught:
        screen(packaged_catalogue, ScreeningRequest("2026.1", DAY, False, request.answers, country="ME"))
    assert caught.value.code == "unknown_indicator"


def test_national_additions_are_answered_under_their_published_list_id_too(
    packaged_catalogue: IndicatorCatalogue,
) -> None:
    answers = (Answer("AL-A-LAB", "AL-A-LAB-EX-01"), Answer("AL-A-LAB", "A-LAB-DR-01"))
    result = screen(packaged_catalogue, ScreeningRequest("2026.1", DAY, False, answers, country="AL"))
    assert result.indicator_set == "regional@2026.1+national-AL@2026.1"
    [evaluated] = result.lists
    assert evaluated.list_id == "A-LAB"  # one list: the regional one with Albania's additions
    # Another country's published list id is unknown where its additions are not combined.
    with pytest.raises(DomainError) as caught:
        screen(packaged_catalogue, ScreeningRequest("2026.1", DAY, False, answers, country="ME"))
    assert caught.value.code == "unknown_indicator_list"
