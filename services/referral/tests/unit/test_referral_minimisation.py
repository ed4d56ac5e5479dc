"""Minimum necessary data as pure functions: which sets may be granted, what is copied, what a provider reads."""

from __future__ import annotations

import pytest

from referral.domain import minimisation
from referral.domain.errors import DomainError
from services.referral.tests.unit.conftest import PERSON
from services.referral.tests.unit.fakes import packaged_catalogue

CATALOGUE = packaged_catalogue()
INTERPRETER = CATALOGUE.service_types["interpreter"]
SHELTER = CATALOGUE.service_types["shelter"]


def test_defaults_when_nothing_is_chosen_and_only_allowed_sets() -> None:
    assert minimisation.granted_sets(None, INTERPRETER) == ("language_and_communication",)
    assert minimisation.granted_sets([], SHELTER) == ()
    with pytest.raises(DomainError) as error:
        minimisation.granted_sets(["language_and_communication", "identity"], INTERPRETER)
    assert error.value.codes == {("field_set_not_allowed", "/field_sets/1")}


def test_an_interpreter_gets_languages_and_nothing_that_identifies() -> None:
    granted = minimisation.granted_fields(minimisation.granted_sets(None, INTERPRETER), CATALOGUE)
    assert minimisation.copy_granted(PERSON, granted) == {"languages": ["sqi"]}
    assert not minimisation.holds_personal_data(granted, CATALOGUE)


def test_the_copy_holds_exactly_the_granted_fields_present() -> None:
    granted = minimisation.granted_fields(["identity", "health_for_placement"], CATALOGUE)
    copy = minimisation.copy_granted(PERSON, granted)
    assert set(copy) == {"given_names", "surnames", "date_of_birth", "sex", "nationalities", "special_needs"}
    assert "aliases" not in copy and "documents" not in copy
    assert minimisation.holds_personal_data(copy, CATALOGUE)


def test_the_copy_is_detached_from_the_case() -> None:
    case = {"given_names": ["Arta"]}
    copy = minimisation.copy_granted(case, frozenset({"given_names"}))
    case["given_names"].append("Changed")
    assert copy == {"given_names": ["Arta"]}


def test_a_provider_reads_granted_fields_and_of_those_the_ones_asked() -> None:
    copy = {"given_names": ["Arta"], "languages": ["sqi"], "documents": ["P1"]}
    granted = frozenset({"given_names", "languages"})
    assert minimisation.provider_view(copy, granted) == {"given_names": ["Arta"], "languages": ["sqi"]}
    assert minimisation.provider_view(copy, granted, ["documents", "languages"]) == {"languages": ["sqi"]}
