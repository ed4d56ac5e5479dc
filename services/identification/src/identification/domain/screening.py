"""Screening: answers to indicators -> per-element and per-list results -> suggested category.

Implements "Indicators and screening rules" of docs/domain.md. The suggestion is advice for the officer; it never
reaches *victim*, which only a formal identification decision sets.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date
from typing import Any

from .categories import ELEMENT_GROUP, AgeGroup, Category, Element, Group, Need, Strength, VulnerabilityFlag
from .errors import DomainError, ErrorDetail, raise_all
from .indicators import IndicatorCatalogue, IndicatorList, IndicatorSet

ADULT_GROUPS = (Group.RECRUITMENT, Group.EXPLOITATION, Group.MEANS)
# For a child the means are not required (docs/domain.md; a child cannot consent to exploitation).
CHILD_GROUPS = (Group.RECRUITMENT, Group.EXPLOITATION)


@dataclass(frozen=True)
class Answer:
    """One indicator the officer marked present, in the list it was asked under."""

    list_id: str
    indicator_id: str


@dataclass(frozen=True)
class ElementResult:
    element: Element
    strong: int
    medium: int
    weak: int
    positive: bool
    indicator_ids: tuple[str, ...]


@dataclass(frozen=True)
class GroupResult:
    group: Group
    required: bool
    present: bool
    positive: bool


@dataclass(frozen=True)
class ListResult:
    list_id: str
    age_group: AgeGroup
    form: str
    category: Category
    strong_indication: bool
    elements: tuple[ElementResult, ...]
    groups: tuple[GroupResult, ...]

    def rank(self) -> tuple[int, int, int, int]:
        positives = sum(1 for e in self.elements if e.positive)
        present = sum(len(e.indicator_ids) for e in self.elements)
        return (_CATEGORY_RANK[self.category], int(self.strong_indication), positives, present)


@dataclass(frozen=True)
class ScreeningResult:
    indicator_set: str
    screening_date: date
    child: bool
    flags: tuple[VulnerabilityFlag, ...]
    suggested: Category
    strong_indication: bool
    # The list whose result was taken; None when no list had answers.
    decisive_list: str | None
    lists: tuple[ListResult, ...]
    immediate_needs: tuple[Need, ...]

    def as_record(self) -> dict[str, Any]:
        """Plain, codes-only structure for storage and events (no personal data)."""
        return {
            "indicator_set": self.indicator_set,
            "screening_date": self.screening_date.isoformat(),
            "child": self.child,
            "flags": [str(f) for f in self.flags],
            "suggested": str(self.suggested),
            "strong_indication": self.strong_indication,
            "decisive_list": self.decisive_list,
            "immediate_needs": [str(n) for n in self.immediate_needs],
            "lists": [
                {
                    "list_id": lst.list_id,
                    "category": str(lst.category),
                    "strong_indication": lst.strong_indication,
                    "groups": {
                        str(g.group): {"required": g.required, "present": g.present, "positive": g.positive}
                        for g in lst.groups
                    },
                    "elements": {
                        str(e.element): {
                            "strong": e.strong,
                            "medium": e.medium,
                            "weak": e.weak,
                            "positive": e.positive,
                            "indicators": list(e.indicator_ids),
                        }
                        for e in lst.elements
                    },
                }
                for lst in self.lists
            ],
        }


_CATEGORY_RANK = {
    Category.NO_INDICATION: 0,
    Category.PERSON_AT_RISK: 1,
    Category.POTENTIAL_VICTIM: 2,
}


def element_positive(strong: int, medium: int, weak: int) -> bool:
    """Two strong; or one strong and one medium or weak; or three medium; or two medium and one weak."""
    return strong >= 2 or (strong >= 1 and medium + weak >= 1) or medium >= 3 or (medium >= 2 and weak >= 1)


def evaluate_list(lst: IndicatorList, present_ids: Iterable[str], *, child: bool) -> ListResult:
    present = set(present_ids)
    elements: list[ElementResult] = []
    for element in Element:
        hits = [i for i in lst.indicators if i.element is element and i.id in present]
        counts = {s: sum(1 for i in hits if i.strength is s) for s in Strength}
        strong, medium, weak = counts[Strength.STRONG], counts[Strength.MEDIUM], counts[Strength.WEAK]
        elements.append(
            ElementResult(
                element,
                strong,
                medium,
                weak,
                element_positive(strong, medium, weak),
                tuple(i.id for i in hits),
            )
        )
    required = CHILD_GROUPS if child else ADULT_GROUPS
    groups = tuple(
        GroupResult(
            group,
            group in required,
            any(e.indicator_ids for e in elements if ELEMENT_GROUP[e.element] is group),
            any(e.positive for e in elements if ELEMENT_GROUP[e.element] is group),
        )
        for group in Group
    )
    required_groups = [g for g in groups if g.required]
    any_present = any(e.indicator_ids for e in elements)
    if all(g.present for g in required_groups):
        category = Category.POTENTIAL_VICTIM
        strong_indication = all(g.positive for g in required_groups)
    else:
        category = Category.PERSON_AT_RISK if any_present else Category.NO_INDICATION
        strong_indication = False
    return ListResult(
        lst.id, lst.age_group, str(lst.form), category, strong_indication, tuple(elements), groups
    )


def _check_answers(
    indicator_set: IndicatorSet, answers: tuple[Answer, ...], *, child: bool, on_date: date
) -> dict[str, set[str]]:
    problems: list[ErrorDetail] = []
    by_list: dict[str, set[str]] = {}
    wanted = AgeGroup.CHILD if child else AgeGroup.ADULT
    for index, answer in enumerate(answers):
        at = f"/answers/{index}"
        try:
            lst = indicator_set.get_list(answer.list_id)
        except DomainError as error:
            problems.append(ErrorDetail(error.code, f"{at}/list_id"))
            continue
        try:
            owner, indicator = indicator_set.find(answer.indicator_id)
        except DomainError as error:
            problems.append(ErrorDetail(error.code, f"{at}/indicator_id"))
            continue
        if owner.id != lst.id:
            problems.append(ErrorDetail("indicator_not_in_list", f"{at}/indicator_id"))
        elif lst.age_group is not wanted:
            # A child is screened with child lists only, an adult with adult lists only; an age-uncertain
            # person is a child, so answering adult lists for them would treat them as an adult.
            problems.append(ErrorDetail("indicator_wrong_list", f"{at}/list_id"))
        elif not indicator.effective_on(on_date):
            problems.append(ErrorDetail("indicator_not_effective", f"{at}/indicator_id"))
        else:
            by_list.setdefault(lst.id, set()).add(indicator.id)
    raise_all(problems, "screening answers are not valid for this indicator set and person")
    return by_list


def immediate_needs(child: bool, flags: Iterable[VulnerabilityFlag], category: Category) -> tuple[Need, ...]:
    """Needs to raise at first contact; the officer adds or removes needs, this is only the default."""
    flag_set = set(flags)
    needs: set[Need] = set()
    if child and flag_set & {VulnerabilityFlag.UNACCOMPANIED, VulnerabilityFlag.SEPARATED}:
        needs.update({Need.GUARDIAN, Need.SHELTER, Need.FAMILY_TRACING})
    if child and VulnerabilityFlag.LIVING_ON_STREET in flag_set:
        needs.update({Need.SHELTER, Need.GUARDIAN})
    if category is Category.POTENTIAL_VICTIM:
        needs.update({Need.SAFETY, Need.SHELTER, Need.MEDICAL})
    return tuple(n for n in Need if n in needs)


def evaluate(
    indicator_set: IndicatorSet,
    answers: Iterable[Answer],
    *,
    child: bool,
    flags: Iterable[VulnerabilityFlag] = (),
    screening_date: date,
) -> ScreeningResult:
    """Screen against an already resolved indicator set; raises DomainError listing every bad answer."""
    answer_tuple = tuple(answers)
    flag_tuple = tuple(f for f in VulnerabilityFlag if f in set(flags))
    by_list = _check_answers(indicator_set, answer_tuple, child=child, on_date=screening_date)
    results = tuple(
        evaluate_list(lst, by_list[lst.id], child=child) for lst in indicator_set.lists if lst.id in by_list
    )
    decisive: ListResult | None = None
    for result in results:
        # Strict comparison keeps the first list in set order on ties, which makes the choice reproducible.
        if decisive is None or result.rank() > decisive.rank():
            decisive = result
    suggested: Category
    if decisive is not None and decisive.category is not Category.NO_INDICATION:
        suggested, strong = decisive.category, decisive.strong_indication
    elif flag_tuple:
        suggested, strong = Category.PERSON_AT_RISK, False
    else:
        suggested, strong = Category.NO_INDICATION, False
    return ScreeningResult(
        indicator_set=indicator_set.ref,
        screening_date=screening_date,
        child=child,
        flags=flag_tuple,
        suggested=suggested,
        strong_indication=strong,
        decisive_list=decisive.list_id if decisive is not None else None,
        lists=results,
        immediate_needs=immediate_needs(child, flag_tuple, suggested),
    )


@dataclass(frozen=True)
class ScreeningRequest:
    version: str
    screening_date: date
    child: bool
    answers: tuple[Answer, ...] = ()
    flags: tuple[VulnerabilityFlag, ...] = ()
    # Country whose national additions apply (the screening country); None for the regional set alone.
    country: str | None = None


def screen(catalogue: IndicatorCatalogue, request: ScreeningRequest) -> ScreeningResult:
    """Resolve the requested version (``unknown_indicator_set_version`` if absent) and evaluate."""
    try:
        indicator_set = catalogue.resolve(request.version, request.country)
    except DomainError as error:
        raise DomainError(error.code, error.message, pointer="/indicator_set_version") from None
    return evaluate(
        indicator_set,
        request.answers,
        child=request.child,
        flags=request.flags,
        screening_date=request.screening_date,
    )
