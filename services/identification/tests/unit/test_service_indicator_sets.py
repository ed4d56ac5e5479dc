"""Indicator sets as a caller reads them: which sets combine, which languages a set carries, and an English
answer marked as such when the language asked for is not carried."""

from __future__ import annotations

import pytest

from identification.service_layer import indicator_sets
from identification.service_layer.deps import Deps


def test_a_national_set_names_the_regional_version_it_extends(deps: Deps) -> None:
    index = {item["ref"]: item for item in indicator_sets.index(deps)["items"]}
    assert index["national-AL@2026.1"]["base"] == {"set_id": "regional", "version": "2026.1"}
    assert index["regional@2026.1"]["base"] is None

    national = indicator_sets.view(deps, "national-AL", "2026.1", "en")
    assert {lst["id"]: lst["extends"] for lst in national["lists"]}["AL-A-LAB"] == "A-LAB"


@pytest.mark.parametrize(
    ("asked", "served", "fallback"),
    [("sq", "sq", False), ("sr-Cyrl", "sr-Cyrl", False), ("cnr-Latn", "cnr-Latn", False), ("mk", "en", True)],
)
def test_a_language_the_set_does_not_carry_is_answered_in_english_and_marked(
    deps: Deps, asked: str, served: str, fallback: bool
) -> None:
    view = indicator_sets.view(deps, "regional", "2026.1", asked)
    assert "mk" not in view["languages"] and {"en", "sq", "sr-Latn", "sr-Cyrl"} <= set(view["languages"])
    assert (view["language"], view["fallback"]) == (served, fallback)
    english = indicator_sets.view(deps, "regional", "2026.1", "en")
    same_text = view["lists"][0]["title"] == english["lists"][0]["title"]
    assert same_text is fallback
