"""Pre-filling a draft from the identification case: only the fields the form type lists are copied,
identification's codes become the catalogue's, and a value the form does not accept is left out, never copied
wrong; the catalogue refuses a pre-fill pointer that is not a field of the form."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from exchange.domain.catalogue import FormCatalogue
from exchange.domain.errors import CatalogueError
from exchange.domain.prefill import prefill
from services.exchange.tests.unit.fakes import packaged_catalogue
from services.exchange.tests.unit.test_exchange_catalogue import LANGUAGES, ROLES, catalogue_folder, read_yaml

PERSON = {
    "id": "5c1b1d55-2a7e-4b55-9a51-0c6f0e9b8f10",
    "given_names": ["Arta"],
    "surnames": ["Krasniqi"],
    "date_of_birth": "2013-04",
    "sex": "female",
    "nationalities": ["ME"],
    "documents": [{"kind": "passport", "number": "P123"}],  # never listed: never copied
    "languages": ["sqi"],
}
CASE = {"id": "9a7e2c1d-5b3f-4e8a-9c6d-1f2e3a4b5c6d", "category": "potential_victim", "needs": ["shelter"]}


def test_a_notification_takes_only_its_listed_fields_with_the_catalogues_codes() -> None:
    kind = packaged_catalogue().types["notification"]
    filled = prefill(kind, {"person": PERSON, "case": CASE})
    assert filled.content == {
        "person": {
            "given_names": ["Arta"],
            "surnames": ["Krasniqi"],
            "date_of_birth": "2013-04",
            "sex": "female",
            "nationalities": ["ME"],
        },
        "category": "potential-victim",
        "immediate_needs": ["shelter"],
    }
    assert "/person/documents" not in filled.copied and filled.left_out == []


def test_a_value_the_form_does_not_accept_is_left_out_not_copied_wrong() -> None:
    kind = packaged_catalogue().types["notification"]
    filled = prefill(kind, {"person": {**PERSON, "sex": "x"}, "case": {**CASE, "category": "no_indication"}})
    assert "sex" not in filled.content["person"] and "category" not in filled.content
    assert sorted(filled.left_out) == ["/category", "/person/sex"]
    assert prefill(kind, {}).content == {}  # nothing read, nothing filled


def test_the_catalogue_refuses_a_prefill_pointer_outside_the_form(tmp_path: Path) -> None:
    folder = catalogue_folder(tmp_path)
    path = folder / "types" / "notification.yaml"
    notification = read_yaml(path)
    notification["prefill"]["/person/passport"] = "person.documents"
    path.write_text(yaml.safe_dump(notification, allow_unicode=True), encoding="utf-8")
    with pytest.raises(CatalogueError) as error:
        FormCatalogue.load(folder, languages=LANGUAGES, roles=ROLES)
    assert "/prefill/person/passport: not a field of the current version" in str(error.value)
