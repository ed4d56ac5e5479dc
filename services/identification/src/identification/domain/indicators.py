"""Indicator sets as versioned data.

A set is a YAML file in ``identification/indicator_sets`` validated against ``indicator-set.schema.json`` and
then against rules a schema cannot express (unique ids, ids consistent with list and element). A *regional*
set holds the lists every partner uses; a *national* set holds labelled additions, each extending one list of a
given regional version. A screening uses a resolved set (regional plus the additions of one country) and
records its ``ref`` (e.g. ``regional@2026.1+national-AL@2026.1``), so an old screening can always be re-read
with exactly the indicators it used.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import date
from importlib import resources
from typing import Any

import jsonschema
import yaml

from .categories import AgeGroup, Element, FormOfExploitation, Strength
from .errors import DomainError, ErrorDetail, raise_all

FALLBACK_LANGUAGE = "en"
SCHEMA_FILE = "indicator-set.schema.json"
DATA_PACKAGE = "identification.indicator_sets"

ELEMENT_CODES: dict[str, Element] = {
    "DR": Element.DECEPTIVE_RECRUITMENT,
    "CR": Element.COERCIVE_RECRUITMENT,
    "RV": Element.RECRUITMENT_ABUSE_OF_VULNERABILITY,
    "EX": Element.EXPLOITATIVE_CONDITIONS,
    "CD": Element.COERCION_AT_DESTINATION,
    "VD": Element.ABUSE_OF_VULNERABILITY_AT_DESTINATION,
}
FORM_CODES: dict[str, FormOfExploitation] = {
    "SEX": FormOfExploitation.SEXUAL,
    "LAB": FormOfExploitation.LABOUR,
    "BEG": FormOfExploitation.FORCED_BEGGING,
    "CRI": FormOfExploitation.FORCED_CRIMINALITY,
    "MAR": FormOfExploitation.FORCED_MARRIAGE,
    "DOM": FormOfExploitation.DOMESTIC_SERVITUDE,
    "OTH": FormOfExploitation.OTHER,
}
AGE_CODES: dict[str, AgeGroup] = {"A": AgeGroup.ADULT, "C": AgeGroup.CHILD}


@dataclass(frozen=True)
class Label:
    text: str
    reviewed: bool


@dataclass(frozen=True)
class Labels:
    entries: tuple[tuple[str, Label], ...]

    def get(self, language: str) -> Label:
        """Exact BCP 47 tag, else the first tag of the same language, else English."""
        return self.resolve(language)[1]

    def resolve(self, language: str) -> tuple[str, Label]:
        """(the tag served, its label) for a wanted language; see `get`."""
        wanted = language.lower()
        for tag, label in self.entries:
            if tag.lower() == wanted:
                return tag, label
        primary = wanted.split("-")[0]
        for tag, label in self.entries:
            if tag.lower().split("-")[0] == primary:
                return tag, label
        for tag, label in self.entries:
            if tag == FALLBACK_LANGUAGE:
                return tag, label
        raise DomainError("label_missing", "no label in the fallback language")

    def languages(self) -> tuple[str, ...]:
        return tuple(tag for tag, _ in self.entries)


@dataclass(frozen=True)
class Indicator:
    id: str
    element: Element
    strength: Strength
    effective_from: date
    effective_to: date | None
    labels: Labels
    # Which set the indicator came from, so that national additions stay visible after merging.
    source: str

    def effective_on(self, day: date) -> bool:
        return self.effective_from <= day and (self.effective_to is None or day <= self.effective_to)


@dataclass(frozen=True)
class IndicatorList:
    id: str
    age_group: AgeGroup
    form: FormOfExploitation
    title: Labels
    indicators: tuple[Indicator, ...]
    extends: str | None = None


@dataclass(frozen=True)
class IndicatorSet:
    set_id: str
    version: str
    kind: str
    country: str | None
    base: tuple[str, str] | None
    published_on: date
    title: Labels
    lists: tuple[IndicatorList, ...]
    additions: tuple[str, ...] = ()
    # After a merge: each national list's published id -> the regional list it extends (now holding both).
    list_aliases: tuple[tuple[str, str], ...] = ()

    @property
    def ref(self) -> str:
        return "+".join((f"{self.set_id}@{self.version}", *self.additions))

    @property
    def languages(self) -> tuple[str, ...]:
        """The language tags the set carries labels in (its title's; the schema requires the same everywhere)."""
        return self.title.languages()

    def get_list(self, list_id: str) -> IndicatorList:
        """A list by its id, or by the published id of national additions merged into it (`AL-A-LAB`)."""
        wanted = dict(self.list_aliases).get(list_id, list_id)
        for lst in self.lists:
            if lst.id == wanted:
                return lst
        raise DomainError("unknown_indicator_list", "no such indicator list in this set")

    def find(self, indicator_id: str) -> tuple[IndicatorList, Indicator]:
        for lst in self.lists:
            for indicator in lst.indicators:
                if indicator.id == indicator_id:
                    return lst, indicator
        raise DomainError("unknown_indicator", "no such indicator in this set")

    def indicator(self, indicator_id: str) -> Indicator:
        return self.find(indicator_id)[1]

    def lists_for(self, age_group: AgeGroup) -> tuple[IndicatorList, ...]:
        return tuple(lst for lst in self.lists if lst.age_group is age_group)


def version_key(version: str) -> tuple[int, ...]:
    return tuple(int(part) for part in version.split("."))


@functools.cache
def _validator() -> jsonschema.Draft202012Validator:
    text = resources.files(DATA_PACKAGE).joinpath(SCHEMA_FILE).read_text(encoding="utf-8")
    schema: dict[str, Any] = json.loads(text)
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema)


def _plain(value: Any) -> Any:
    # YAML turns unquoted dates into date objects; the schema speaks JSON, so dates go back to strings.
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, Mapping):
        return {str(key): _plain(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_plain(item) for item in value]
    return value


def _pointer(path: Iterable[Any]) -> str:
    return "".join(f"/{part}" for part in path)


def _labels(raw: Mapping[str, Any]) -> Labels:
    return Labels(tuple((tag, Label(item["text"], bool(item["reviewed"]))) for tag, item in raw.items()))


def _date(text: str, pointer: str, problems: list[ErrorDetail]) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        problems.append(ErrorDetail("indicator_set_invalid", pointer))
        return date.min


def parse_indicator_set(text: str) -> IndicatorSet:
    """Validate and build an indicator set from YAML text; errors carry code ``indicator_set_invalid``."""
    try:
        # The C loader is the same safe loader, only faster; the pure-Python one is the fallback.
        raw = _plain(yaml.load(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader)))  # noqa: S506
    except yaml.YAMLError as exc:
        raise DomainError("indicator_set_invalid", "indicator set is not valid YAML") from exc
    return indicator_set_from_data(raw)


def indicator_set_from_data(raw: Any) -> IndicatorSet:
    """Validate and build an indicator set from its JSON-shaped data (a published or packaged version)."""
    validator = _validator()
    schema_problems = [
        ErrorDetail("indicator_set_invalid", _pointer(error.absolute_path))
        for error in sorted(validator.iter_errors(raw), key=lambda e: list(map(str, e.absolute_path)))
    ]
    raise_all(schema_problems, "indicator set does not match its schema")
    return _build(raw)


def _build(raw: dict[str, Any]) -> IndicatorSet:
    problems: list[ErrorDetail] = []
    source = f"{raw['set_id']}@{raw['version']}"
    national = raw["kind"] == "national"
    seen: set[str] = set()
    lists: list[IndicatorList] = []
    for li, raw_list in enumerate(raw["lists"]):
        at = f"/lists/{li}"
        list_id: str = raw_list["id"]
        age_code, form_code = list_id.split("-")[-2:]
        age_group, form = AgeGroup(raw_list["age_group"]), FormOfExploitation(raw_list["form"])
        if list_id in seen:
            problems.append(ErrorDetail("indicator_set_invalid", f"{at}/id"))
        seen.add(list_id)
        if AGE_CODES.get(age_code) is not age_group or FORM_CODES.get(form_code) is not form:
            problems.append(ErrorDetail("indicator_set_invalid", f"{at}/id"))
        if national != ("extends" in raw_list):
            problems.append(ErrorDetail("indicator_set_invalid", f"{at}/extends"))
        if national and not list_id.startswith(f"{raw['country']}-"):
            problems.append(ErrorDetail("indicator_set_invalid", f"{at}/id"))
        indicators: list[Indicator] = []
        for ii, item in enumerate(raw_list["indicators"]):
            ip = f"{at}/indicators/{ii}"
            indicator_id: str = item["id"]
            element = Element(item["element"])
            if indicator_id in seen:
                problems.append(ErrorDetail("indicator_set_invalid", f"{ip}/id"))
            seen.add(indicator_id)
            if (
                not indicator_id.startswith(f"{list_id}-")
                or ELEMENT_CODES[indicator_id.split("-")[-2]] != element
            ):
                problems.append(ErrorDetail("indicator_set_invalid", f"{ip}/id"))
            start = _date(item["effective_from"], f"{ip}/effective_from", problems)
            end = None
            if item.get("effective_to") is not None:
                end = _date(item["effective_to"], f"{ip}/effective_to", problems)
                if end < start:
                    problems.append(ErrorDetail("indicator_set_invalid", f"{ip}/effective_to"))
            indicators.append(
                Indicator(
                    indicator_id,
                    element,
                    Strength(item["strength"]),
                    start,
                    end,
                    _labels(item["labels"]),
                    source,
                )
            )
        lists.append(
            IndicatorList(
                list_id,
                age_group,
                form,
                _labels(raw_list["title"]),
                tuple(indicators),
                raw_list.get("extends"),
            )
        )
    published = _date(raw["published_on"], "/published_on", problems)
    raise_all(problems, "indicator set breaks a consistency rule")
    base = (raw["base"]["set_id"], raw["base"]["version"]) if national else None
    return IndicatorSet(
        raw["set_id"], raw["version"], raw["kind"], raw.get("country"), base, published, _labels(raw["title"]),
        tuple(lists),
    )  # fmt: skip


def merge(regional: IndicatorSet, additions: Iterable[IndicatorSet]) -> IndicatorSet:
    """The regional set with national indicators appended to the lists they extend."""
    lists = {lst.id: lst for lst in regional.lists}
    refs: list[str] = []
    aliases: list[tuple[str, str]] = []
    for national in additions:
        if national.base != (regional.set_id, regional.version):
            raise DomainError(
                "indicator_set_invalid", "national additions belong to another regional version"
            )
        for extra in national.lists:
            target = lists.get(extra.extends or "")
            if target is None or (target.age_group, target.form) != (extra.age_group, extra.form):
                raise DomainError("indicator_set_invalid", "national list extends no matching regional list")
            lists[target.id] = replace(target, indicators=target.indicators + extra.indicators)
            aliases.append((extra.id, target.id))
        refs.append(national.ref)
    return replace(regional, lists=tuple(lists.values()), additions=tuple(refs), list_aliases=tuple(aliases))


def packaged_sets() -> list[IndicatorSet]:
    """The versions shipped with the service (identification/indicator_sets/*.yaml)."""
    folder = resources.files(DATA_PACKAGE)
    texts = [entry.read_text(encoding="utf-8") for entry in folder.iterdir() if entry.name.endswith(".yaml")]
    return [parse_indicator_set(text) for text in sorted(texts)]


class IndicatorCatalogue:
    """All published versions, looked up by version (and country for national additions)."""

    def __init__(self, sets: Iterable[IndicatorSet]) -> None:
        self._sets: dict[tuple[str, str], IndicatorSet] = {}
        for item in sets:
            key = (item.set_id, item.version)
            if key in self._sets:
                raise DomainError("indicator_set_invalid", "the same set version is loaded twice")
            self._sets[key] = item
        for item in self._sets.values():
            if item.base is not None:
                # Fails early at start-up rather than at the first screening.
                merge(self.get(*item.base), [item])

    @classmethod
    def packaged(cls) -> IndicatorCatalogue:
        return cls(packaged_sets())

    def sets(self) -> list[IndicatorSet]:
        """Every loaded version, ordered by set id and version."""
        return sorted(self._sets.values(), key=lambda s: (s.set_id, version_key(s.version)))

    def with_set(self, item: IndicatorSet) -> IndicatorCatalogue:
        """This catalogue plus one more version (checked like the others: a national set's base must exist)."""
        return IndicatorCatalogue([*self._sets.values(), item])

    def get(self, set_id: str, version: str) -> IndicatorSet:
        try:
            return self._sets[(set_id, version)]
        except KeyError:
            raise DomainError("unknown_indicator_set_version", "no such indicator set version") from None

    def versions(self, set_id: str = "regional") -> list[str]:
        return sorted((v for s, v in self._sets if s == set_id), key=version_key)

    def latest(self, set_id: str = "regional") -> IndicatorSet:
        versions = self.versions(set_id)
        if not versions:
            raise DomainError("unknown_indicator_set_version", "no version of this set is loaded")
        return self.get(set_id, versions[-1])

    def resolve(self, version: str, country: str | None = None, set_id: str = "regional") -> IndicatorSet:
        """The regional version merged with the latest national additions of ``country`` made for it."""
        regional = self.get(set_id, version)
        candidates = [
            item
            for item in self._sets.values()
            if item.country == country and country is not None and item.base == (set_id, version)
        ]
        latest: dict[str, IndicatorSet] = {}
        for item in sorted(candidates, key=lambda s: version_key(s.version)):
            latest[item.set_id] = item
        return merge(regional, latest.values())

    def by_ref(self, ref: str) -> IndicatorSet:
        """Rebuild exactly the set a screening recorded."""
        parts = []
        for token in ref.split("+"):
            set_id, sep, version = token.partition("@")
            if not sep:
                raise DomainError("unknown_indicator_set_version", "malformed indicator set reference")
            parts.append(self.get(set_id, version))
        return merge(parts[0], parts[1:])
