"""The catalogue, docs/problems.md and the translations agree."""

from __future__ import annotations

import re
from importlib import resources
from pathlib import Path

import pytest
import yaml

from plumbing import i18n
from plumbing.problems import Catalogue, FieldError, Problem, catalogue

DOC = Path(__file__).parents[4] / "docs" / "problems.md"


def _documented() -> dict[str, int]:
    rows = re.findall(r"^\| `([a-z-]+)` \| (\d{3}) \|", DOC.read_text(encoding="utf-8"), flags=re.M)
    return {slug: int(status) for slug, status in rows}


def _documented_when() -> dict[str, str]:
    rows = re.findall(r"^\| `([a-z-]+)` \| \d{3} \| (.*) \|$", DOC.read_text(encoding="utf-8"), flags=re.M)
    return dict(rows)


def _catalogue_data() -> dict:
    text = resources.files("plumbing").joinpath("problem_catalogue.yaml").read_text(encoding="utf-8")
    return dict(yaml.safe_load(text))


def test_doc_and_catalogue_list_the_same_types_and_statuses():
    in_catalogue = {slug: kind.status for slug, kind in catalogue().types.items()}
    assert _documented() == in_catalogue


def test_doc_and_catalogue_say_the_same_about_when_each_type_is_answered():
    """The gateway's problem pages show the catalogue's `when`; docs/problems.md the same text."""
    assert _documented_when() == {slug: kind.when for slug, kind in catalogue().types.items()}


def test_types_live_at_the_gateway_by_default_and_the_base_is_configurable():
    assert catalogue().base == "/problems/"  # relative to the gateway's public URL: the pages are there
    configured = Catalogue(_catalogue_data(), "https://api.example/problems/")
    assert configured.get("not-found").uri == "https://api.example/problems/not-found"
    with pytest.raises(ValueError, match="/problems/"):
        Catalogue(_catalogue_data(), "https://api.example/errors/")


def test_every_type_is_translated_into_every_language():
    for kind in catalogue().types.values():
        assert set(kind.titles) == set(i18n.SUPPORTED), kind.slug
        assert set(kind.details) == set(i18n.SUPPORTED), kind.slug
        assert kind.uri == catalogue().base + kind.slug


def test_type_is_the_same_in_every_language_and_title_differs():
    problem = Problem("validation-failed", errors=[FieldError("/body/name", "maxLength")])
    bodies = {language: problem.body(language, "req-1") for language in i18n.SUPPORTED}
    assert {body["type"] for body in bodies.values()} == {problem.problem_type.uri}
    assert {body["errors"][0]["code"] for body in bodies.values()} == {"maxLength"}
    assert len({body["title"] for body in bodies.values()}) == len(i18n.SUPPORTED)


def test_cyrillic_keeps_header_names_in_latin():
    detail = catalogue().get("idempotency-key-reused").details["cnr-Cyrl"]
    assert "Idempotency-Key" in detail
    assert "захтјев" in detail


def test_retry_after_on_429_and_503_and_www_authenticate_on_401():
    assert Problem("rate-limited").response_headers("en")["Retry-After"]
    assert Problem("service-unavailable", retry_after=30).response_headers("en")["Retry-After"] == "30"
    assert Problem("unauthorized").response_headers("en")["WWW-Authenticate"] == "Bearer"


def test_unknown_slug_is_a_programming_error():
    with pytest.raises(ValueError):
        Problem("teapot")


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("sq-AL,en;q=0.5", "sq"),
        ("sr-Cyrl-RS", "sr-Cyrl"),
        ("SR-latn", "sr-Latn"),
        ("sr", "sr-Latn"),
        ("cnr-Cyrl", "cnr-Cyrl"),
        ("de, mk;q=0.3", "mk"),
        ("en;q=0.1, sq;q=0.9", "sq"),
        ("fr", "en"),
        ("", "en"),
        (None, "en"),
        ("sq;q=0", "en"),
    ],
)
def test_language_negotiation(header, expected):
    assert i18n.negotiate(header) == expected
