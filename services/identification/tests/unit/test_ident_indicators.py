"""Indicator sets: packaged data quality, loader validation and lookups."""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import pytest

from identification.domain.categories import ELEMENT_GROUP, AgeGroup, Group
from identification.domain.errors import DomainError
from identification.domain.indicators import IndicatorCatalogue, IndicatorSet, parse_indicator_set

LANGS = {"en", "sq", "sr-Latn", "sr-Cyrl", "cnr-Latn", "cnr-Cyrl"}
Doc = Callable[[], dict[str, Any]]
FORMS = {"sexual", "labour", "forced_begging", "forced_criminality", "forced_marriage", "domestic_servitude"}


@pytest.fixture(scope="module")
def regional(packaged_catalogue: IndicatorCatalogue) -> IndicatorSet:
    return packaged_catalogue.get("regional", "2026.1")


def test_regional_set_has_adult_and_child_list_for_every_form(regional: IndicatorSet) -> None:
    pairs = {(lst.age_group, str(lst.form)) for lst in regional.lists}
    assert pairs == {(age, form) for age in AgeGroup for form in FORMS}


def test_lists_are_of_reasonable_size_and_cover_required_groups(regional: IndicatorSet) -> None:
    for lst in regional.lists:
        assert 6 <= len(lst.indicators) <= 12, lst.id
        groups = {ELEMENT_GROUP[i.element] for i in lst.indicators}
        required = {Group.RECRUITMENT, Group.EXPLOITATION}
        if lst.age_group is AgeGroup.ADULT:
            required.add(Group.MEANS)
        assert required <= groups, lst.id


def test_every_label_is_in_every_language_and_only_english_is_reviewed(regional: IndicatorSet) -> None:
    for lst in regional.lists:
        for indicator in lst.indicators:
            assert set(indicator.labels.languages()) == LANGS
            for tag in LANGS:
                label = indicator.labels.get(tag)
                assert label.text.strip()
                assert label.reviewed is (tag == "en"), (indicator.id, tag)


def test_cyrillic_labels_are_cyrillic(regional: IndicatorSet) -> None:
    text = regional.indicator("A-SEX-CD-01").labels.get("sr-Cyrl").text
    assert any("\u0400" <= ch <= "\u04ff" for ch in text)
    assert not any("a" <= ch <= "z" for ch in text)


def test_label_fallback() -> None:
    indicator = IndicatorCatalogue.packaged().get("regional", "2026.1").indicator("A-LAB-EX-01")
    assert indicator.labels.get("mk").text == indicator.labels.get("en").text
    assert indicator.labels.get("SR-cyrl") == indicator.labels.get("sr-Cyrl")
    assert indicator.labels.get("sr") == indicator.labels.get("sr-Latn")


def test_ids_are_unique_and_start_with_their_list(regional: IndicatorSet) -> None:
    ids = [i.id for lst in regional.lists for i in lst.indicators]
    assert len(ids) == len(set(ids))
    for lst in regional.lists:
        assert all(i.id.startswith(lst.id + "-") for i in lst.indicators)


def test_lookups_raise_stable_codes(regional: IndicatorSet) -> None:
    with pytest.raises(DomainError) as caught:
        regional.indicator("A-SEX-DR-77")
    assert caught.value.code == "unknown_indicator"
    with pytest.raises(DomainError) as caught:
        regional.get_list("A-XXX")
    assert caught.value.code == "unknown_indicator_list"
    assert regional.get_list("C-MAR").age_group is AgeGroup.CHILD


def test_catalogue_versions_and_refs(packaged_catalogue: IndicatorCatalogue) -> None:
    assert packaged_catalogue.versions() == ["2026.1"]
    assert packaged_catalogue.latest().ref == "regional@2026.1"
    merged = packaged_catalogue.resolve("2026.1", "AL")
    assert merged.ref == "regional@2026.1+national-AL@2026.1"
    assert packaged_catalogue.by_ref(merged.ref) == merged
    sources = {i.source for i in merged.get_list("A-LAB").indicators}
    assert sources == {"regional@2026.1", "national-AL@2026.1"}
    with pytest.raises(DomainError) as caught:
        packaged_catalogue.by_ref("regional@1990.1")
    assert caught.value.code == "unknown_indicator_set_version"
    with pytest.raises(DomainError) as caught:
        packaged_catalogue.by_ref("regional")
    assert caught.value.code == "unknown_indicator_set_version"


def test_national_additions_are_a_separate_labelled_set(packaged_catalogue: IndicatorCatalogue) -> None:
    national = packaged_catalogue.get("national-AL", "2026.1")
    assert (national.kind, national.country, national.base) == ("national", "AL", ("regional", "2026.1"))
    assert all(lst.extends for lst in national.lists)
    assert packaged_catalogue.resolve("2026.1", "XK").ref == "regional@2026.1"


def test_synthetic_document_loads(to_yaml: Callable[[object], str], synthetic_doc: Doc) -> None:
    loaded = parse_indicator_set(to_yaml(synthetic_doc()))
    assert loaded.ref == "regional@2099.1"


def _broken(doc: dict[str, Any], mutate: Callable[[dict[str, Any]], None]) -> dict[str, Any]:
    doc = copy.deepcopy(doc)
    mutate(doc)
    return doc


def _first(doc: dict[str, Any]) -> dict[str, Any]:
    indicator: dict[str, Any] = doc["lists"][0]["indicators"][0]
    return indicator


BROKEN: list[tuple[str, Callable[[dict[str, Any]], None], str]] = [
    ("unknown strength", lambda d: _first(d).update(strength="huge"), "/lists/0/indicators/0/strength"),
    ("missing language", lambda d: _first(d)["labels"].pop("sq"), "/lists/0/indicators/0/labels"),
    ("extra field", lambda d: _first(d).update(note="x"), "/lists/0/indicators/0"),
    ("bad id", lambda d: _first(d).update(id="lab-1"), "/lists/0/indicators/0/id"),
    (
        "id does not match element",
        lambda d: _first(d).update(element="exploitative_conditions"),
        "/lists/0/indicators/0/id",
    ),
    ("id outside its list", lambda d: _first(d).update(id="A-SEX-DR-42"), "/lists/0/indicators/0/id"),
    (
        "duplicate id",
        lambda d: d["lists"][0]["indicators"][1].update(id=_first(d)["id"]),
        "/lists/0/indicators/1/id",
    ),
    ("list id does not match form", lambda d: d["lists"][0].update(form="sexual"), "/lists/0/id"),
    (
        "ends before it starts",
        lambda d: _first(d).update(effective_to="2019-01-01"),
        "/lists/0/indicators/0/effective_to",
    ),
    (
        "impossible date",
        lambda d: _first(d).update(effective_from="2020-02-30"),
        "/lists/0/indicators/0/effective_from",
    ),
    ("regional list extends", lambda d: d["lists"][0].update(extends="A-LAB"), "/lists/0/extends"),
    ("national without country", lambda d: d.update(kind="national"), ""),
]


@pytest.mark.parametrize(("mutate", "pointer"), [b[1:] for b in BROKEN], ids=[b[0] for b in BROKEN])
def test_invalid_sets_are_rejected(
    to_yaml: Callable[[object], str],
    synthetic_doc: Doc,
    mutate: Callable[[dict[str, Any]], None],
    pointer: str,
) -> None:
    with pytest.raises(DomainError) as caught:
        parse_indicator_set(to_yaml(_broken(synthetic_doc(), mutate)))
    assert caught.value.code == "indicator_set_invalid"
    assert pointer in [d.pointer for d in caught.value.details]


def test_not_yaml_is_rejected() -> None:
    with pytest.raises(DomainError) as caught:
        parse_indicator_set("lists: [unclosed")
    assert caught.value.code == "indicator_set_invalid"


def test_national_set_must_extend_a_matching_list(
    to_yaml: Callable[[object], str], synthetic_doc: Doc
) -> None:
    base = synthetic_doc()
    regional = parse_indicator_set(to_yaml(base))
    national_doc = {
        "set_id": "national-ME",
        "version": "2099.1",
        "kind": "national",
        "country": "ME",
        "base": {"set_id": "regional", "version": "2099.1"},
        "published_on": "2099-01-01",
        "title": base["title"],
        "lists": [
            {
                "id": "ME-A-LAB",
                "extends": "A-SEX",
                "age_group": "adult",
                "form": "labour",
                "title": base["title"],
                "indicators": [dict(_first(base), id="ME-A-LAB-DR-01")],
            }
        ],
    }
    national = parse_indicator_set(to_yaml(national_doc))
    with pytest.raises(DomainError) as caught:
        IndicatorCatalogue([regional, national])
    assert caught.value.code == "indicator_set_invalid"
    national_doc["lists"][0]["extends"] = "A-LAB"
    catalogue = IndicatorCatalogue([regional, parse_indicator_set(to_yaml(national_doc))])
    assert "ME-A-LAB-DR-01" in [i.id for i in catalogue.resolve("2099.1", "ME").get_list("A-LAB").indicators]


def test_same_version_twice_is_rejected(synthetic_set: IndicatorSet) -> None:
    with pytest.raises(DomainError) as caught:
        IndicatorCatalogue([synthetic_set, synthetic_set])
    assert caught.value.code == "indicator_set_invalid"
