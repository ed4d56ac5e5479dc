"""Pre-filling a draft from the identification case: only the fields the form type lists are copied,
identification's codes become the catalogue's, and a value the form does not accept is left out, never copied
wrong; the catalogue refuses a pre-fill pointer that is not a field of the form."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from exchange.adapters.documents import ExchangeCaseDocument
from exchange.domain.catalogue import FormCatalogue
from exchange.domain.errors import CatalogueError, DomainError, NotPermitted
from exchange.domain.prefill import prefill
from exchange.service_layer.prefills import prefill_form
from plumbing.errors import NotFound
from services.exchange.tests.unit.fakes import World, build_world, packaged_catalogue, user
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


class FakeIdentification:
    """`Deps.identification`: what the identification API answers this caller (NotFound outside her scope)."""

    def __init__(self, cases: dict, persons: dict) -> None:
        self.cases, self.persons, self.reads = cases, persons, []

    def case(self, case_id: str, *, purpose: str | None = None) -> dict:
        self.reads.append(("case", case_id))
        if case_id not in self.cases:
            raise NotFound("case not found")
        return self.cases[case_id]

    def person(self, person_id: str, *, purpose: str | None = None) -> dict:
        self.reads.append(("person", person_id))
        return self.persons[person_id]


def world_with_identification() -> tuple[World, FakeIdentification]:
    world = build_world()
    identification = FakeIdentification(
        {CASE["id"]: {**CASE, "person_id": PERSON["id"]}}, {PERSON["id"]: PERSON}
    )
    world.deps.identification = identification
    return world, identification


def test_the_service_reads_the_case_and_person_for_the_user_and_logs_the_answer() -> None:
    world, identification = world_with_identification()
    answer = prefill_form(
        world.deps, user("xk-contact-point"), form_type="notification", identification_case_id=CASE["id"]
    )
    assert answer["content"]["person"]["surnames"] == ["Krasniqi"] and answer["version"] == 1
    assert identification.reads == [("case", CASE["id"]), ("person", PERSON["id"])]
    assert world.reads.entries == [("XK", "sub-xk-contact-point", "identification-case", (CASE["id"],))]
    assert world.store.rows(ExchangeCaseDocument) == {}  # nothing stored


def test_a_case_outside_the_users_scope_is_404_and_nothing_is_logged() -> None:
    world, _ = world_with_identification()
    with pytest.raises(NotFound):
        prefill_form(
            world.deps, user("xk-contact-point"), form_type="notification", identification_case_id="other"
        )
    assert world.reads.entries == []


def test_roles_and_form_types_without_prefill_are_refused_before_identification_is_asked() -> None:
    world, identification = world_with_identification()
    with pytest.raises(NotPermitted):
        prefill_form(
            world.deps, user("xk-analyst"), form_type="notification", identification_case_id=CASE["id"]
        )
    with pytest.raises(DomainError) as error:
        prefill_form(
            world.deps, user("xk-contact-point"), form_type="receipt", identification_case_id=CASE["id"]
        )
    assert error.value.codes == {("form_type_not_prefilled", "/form_type")}
    assert identification.reads == []
