"""Fixtures for the identification domain tests."""

from __future__ import annotations

from collections.abc import Callable

import pytest
import yaml

from identification.domain.indicators import IndicatorCatalogue, IndicatorSet, parse_indicator_set
from identification.service_layer.deps import Deps
from plumbing.clock import FixedClock
from services.identification.tests.unit.fakes import NOW, FakeSequences, FakeStore, build_deps

LANGS = ("en", "sq", "sr-Latn", "sr-Cyrl", "cnr-Latn", "cnr-Cyrl")
ELEMENTS = {
    "DR": "deceptive_recruitment",
    "CR": "coercive_recruitment",
    "RV": "recruitment_abuse_of_vulnerability",
    "EX": "exploitative_conditions",
    "CD": "coercion_at_destination",
    "VD": "abuse_of_vulnerability_at_destination",
}
# Per element: 01 and 02 strong, 03..05 medium, 06..08 weak.
STRENGTHS = ["strong", "strong", "medium", "medium", "medium", "weak", "weak", "weak"]
LISTS = {"A-LAB": ("adult", "labour"), "A-SEX": ("adult", "sexual"), "C-LAB": ("child", "labour")}


def labels(text: str) -> dict[str, dict[str, object]]:
    return {tag: {"text": f"{text} [{tag}]", "reviewed": tag == "en"} for tag in LANGS}


def synthetic_document(version: str = "2099.1") -> dict[str, object]:
    lists = []
    for list_id, (age, form) in LISTS.items():
        indicators = []
        for code, element in ELEMENTS.items():
            for n, strength in enumerate(STRENGTHS, start=1):
                indicators.append(
                    {
                        "id": f"{list_id}-{code}-{n:02d}",
                        "element": element,
                        "strength": strength,
                        "effective_from": "2020-01-01",
                        "effective_to": None,
                        "labels": labels(f"{list_id} {code} {n}"),
                    }
                )
        # One retired indicator to test effective dates.
        indicators.append(
            {
                "id": f"{list_id}-EX-09",
                "element": "exploitative_conditions",
                "strength": "strong",
                "effective_from": "2020-01-01",
                "effective_to": "2021-12-31",
                "labels": labels("retired"),
            }
        )
        lists.append(
            {
                "id": list_id,
                "age_group": age,
                "form": form,
                "title": labels(list_id),
                "indicators": indicators,
            }
        )
    return {
        "set_id": "regional",
        "version": version,
        "kind": "regional",
        "published_on": "2020-01-01",
        "title": labels("synthetic"),
        "lists": lists,
    }


@pytest.fixture(scope="session")
def synthetic_set() -> IndicatorSet:
    return parse_indicator_set(yaml.dump(synthetic_document(), Dumper=yaml.CSafeDumper))


@pytest.fixture(scope="session")
def synthetic_catalogue(synthetic_set: IndicatorSet) -> IndicatorCatalogue:
    return IndicatorCatalogue([synthetic_set])


@pytest.fixture(scope="session")
def packaged_catalogue() -> IndicatorCatalogue:
    return IndicatorCatalogue.packaged()


@pytest.fixture
def synthetic_doc() -> Callable[[], dict[str, object]]:
    """A fresh, mutable copy of the synthetic set document, for tests that break it on purpose."""
    return synthetic_document


@pytest.fixture
def to_yaml() -> Callable[[object], str]:
    return lambda doc: yaml.dump(doc, Dumper=yaml.CSafeDumper, allow_unicode=True)


# -------------------------------------------------------------- service-layer tests on fakes (tests/unit/fakes.py)


@pytest.fixture
def clock() -> FixedClock:
    return FixedClock(NOW)


@pytest.fixture
def store() -> FakeStore:
    return FakeStore()


@pytest.fixture
def sequences() -> FakeSequences:
    return FakeSequences()


@pytest.fixture
def deps(store: FakeStore, clock: FixedClock, sequences: FakeSequences) -> Deps:
    return build_deps(store, clock=clock, next_sequence=sequences)
