"""The form catalogue as data: what the packaged catalogue holds, what a form's content may carry, the rules a
form schema must keep, and that a new form type or a new version needs no code change."""

from __future__ import annotations

import copy
import functools
import shutil
from collections.abc import Callable, Iterator, Mapping
from importlib import resources
from pathlib import Path
from typing import Any

import pytest
import yaml

from exchange.domain.catalogue import FormCatalogue
from exchange.domain.errors import CatalogueError, DomainError
from plumbing.fake_store import checkout_config as repo_config
from services.exchange.tests.unit.conftest import notification_content
from services.exchange.tests.unit.fakes import packaged_catalogue

LANGUAGES = repo_config().label_languages
ROLES = repo_config().roles
DOMAIN_CATALOGUE = {
    "notification",
    "identity-verification-request",
    "identity-verification-reply",
    "family-assessment-request",
    "family-assessment-report",
    "risk-assessment-request",
    "risk-assessment-report",
    "return-request",
    "return-plan",
    "handover-confirmation",
    "reintegration-follow-up",
    "return-stopped",
    "case-closure",
}
CONTROL_MESSAGES = {
    "receipt",
    "clarification-request",
    "clarification-answer",
    "reminder",
    "withdrawal",
    "consent-withdrawn",
}


def objects(node: Any, where: str = "") -> Iterator[tuple[str, Mapping[str, Any]]]:
    if isinstance(node, Mapping):
        if node.get("type") == "object":
            yield where, node
        for name, sub in (node.get("properties") or {}).items():
            yield from objects(sub, f"{where}/{name}")
        if "items" in node:
            yield from objects(node["items"], f"{where}/items")


def pointers(error: pytest.ExceptionInfo[DomainError]) -> set[tuple[str, str]]:
    return error.value.codes


# ------------------------------------------------------------------------------------------ the catalogue


def test_the_packaged_catalogue_holds_the_domain_forms_and_control_messages() -> None:
    catalogue = packaged_catalogue()
    assert set(catalogue.types) == DOMAIN_CATALOGUE | CONTROL_MESSAGES
    assert {c for c, t in catalogue.types.items() if t.kind == "control"} == CONTROL_MESSAGES
    assert catalogue.languages == ("en", "sq", "sr-Latn", "sr-Cyrl", "cnr-Latn", "cnr-Cyrl")


def test_every_object_at_every_level_refuses_extra_fields() -> None:
    checked = 0
    for kind in packaged_catalogue().types.values():
        for version in kind.versions.values():
            for where, node in objects(version.schema):
                assert node.get("additionalProperties") is False, (kind.code, where)
                checked += 1
    assert checked > 30  # every content object, person blocks, free texts, list items


def test_every_field_code_and_title_is_labelled_in_every_language_and_not_yet_reviewed() -> None:
    catalogue = packaged_catalogue()
    for kind in catalogue.types.values():
        assert set(kind.title) == set(LANGUAGES)
    for labels in [
        *catalogue.field_labels.values(),
        *(entry for codes in catalogue.code_labels.values() for entry in codes.values()),
    ]:
        assert set(labels) == set(LANGUAGES)
        assert all(not label.reviewed for label in labels.values())
    assert catalogue.label("relative-suspected", "sr-Cyrl", code_list="risk-factor").startswith("Сумња")
    assert catalogue.label("police_case_reference", "sq") == "Numri i çështjes në polici"
    assert catalogue.label("surname", "mk") == "Surname"  # no Macedonian yet: English


def test_roles_deadlines_answers_and_attachments_are_data() -> None:
    catalogue = packaged_catalogue()
    reply = catalogue.form_type("identity-verification-reply")
    assert reply.answers == {"identity-verification-request"}
    assert catalogue.form_type("identity-verification-request").reply_within_days == 10
    assert catalogue.form_type("notification").send_roles == {"contact-point", "coordinator"}
    assert "case-manager" in catalogue.form_type("notification").draft_roles
    assert catalogue.form_type("identity-verification-request").attachments.max_count == 3
    assert not catalogue.form_type("notification").attachments.allowed


# ------------------------------------------------------------------------------------------ form content


def test_a_valid_notification_passes() -> None:
    packaged_catalogue().validate("notification", 1, notification_content())


def test_an_extra_field_is_refused_with_its_pointer_never_dropped() -> None:
    content = notification_content()
    content["health_narrative"] = "..."
    content["person"]["perpetrator_name"] = "..."
    with pytest.raises(DomainError) as error:
        packaged_catalogue().validate("notification", 1, content)
    assert pointers(error) == {
        ("not_allowed", "/content/health_narrative"),
        ("not_allowed", "/content/person/perpetrator_name"),
    }


def test_missing_fields_unknown_codes_and_untagged_free_text_are_named() -> None:
    content = notification_content()
    del content["identified_on"]
    content["category"] = "suspect"
    content["remarks"] = {"text": "untagged"}
    with pytest.raises(DomainError) as error:
        packaged_catalogue().validate("notification", 1, content)
    assert pointers(error) == {
        ("required", "/content/identified_on"),
        ("unknown_code", "/content/category"),
        ("required", "/content/remarks/lang"),
    }


def test_a_relative_suspected_is_a_risk_factor_code_and_perpetrators_only_a_police_reference() -> None:
    catalogue = packaged_catalogue()
    catalogue.validate(
        "risk-assessment-report",
        1,
        {
            "risk_level": "high",
            "risk_factors": ["relative-suspected"],
            "police_case_reference": "XK-PK-77/2026",
            "recommendation": "return-not-advised",
        },
    )
    with pytest.raises(DomainError) as error:
        catalogue.validate(
            "risk-assessment-report",
            1,
            {"risk_level": "high", "recommendation": "return-not-advised", "suspect": {"name": "x"}},
        )
    assert pointers(error) == {("not_allowed", "/content/suspect")}


def test_health_crosses_only_as_return_logistics() -> None:
    catalogue = packaged_catalogue()
    catalogue.validate(
        "return-plan",
        1,
        {
            "travel_date": "2026-07-01",
            "transport_mode": "road",
            "escort": ["social-worker"],
            "fit_to_travel": True,
            "special_needs": ["dietary"],
        },
    )
    with pytest.raises(DomainError) as error:
        catalogue.validate("notification", 1, {**notification_content(), "fit_to_travel": False})
    assert pointers(error) == {("not_allowed", "/content/fit_to_travel")}


def test_an_unknown_form_type_or_retired_version_is_refused() -> None:
    with pytest.raises(DomainError) as error:
        packaged_catalogue().validate("letter", 1, {})
    assert pointers(error) == {("unknown_form_type", "/form_type")}
    with pytest.raises(DomainError) as error:
        packaged_catalogue().validate("notification", 7, notification_content())
    assert pointers(error) == {("version_not_accepted", "/version")}


# --------------------------------------------------------------------------------- rules on the schemas


def read_yaml(path: Any) -> Any:
    return yaml.load(path.read_text(encoding="utf-8"), Loader=yaml.CSafeLoader)


@functools.cache
def packaged_documents() -> tuple[dict[str, Any], dict[str, Any]]:
    folder = resources.files("exchange.forms")
    documents = {
        f"types/{item.name}": read_yaml(item)
        for item in folder.joinpath("types").iterdir()
        if item.name.endswith(".yaml")
    }
    return documents, read_yaml(folder.joinpath("labels.yaml"))


def load_with(change: Callable[[dict[str, Any], dict[str, Any]], None]) -> FormCatalogue:
    documents, labels = copy.deepcopy(packaged_documents())
    change(documents, labels)
    return FormCatalogue.from_documents(documents, labels, languages=LANGUAGES, roles=ROLES)


def notification_schema(documents: dict[str, Any]) -> dict[str, Any]:
    return documents["types/notification.yaml"]["versions"][0]["schema"]


def labelled(labels: dict[str, Any], name: str) -> None:
    labels["fields"][name] = {language: {"text": name, "reviewed": False} for language in LANGUAGES}


def add_field(name: str, schema: dict[str, Any]) -> Callable[[dict[str, Any], dict[str, Any]], None]:
    def change(documents: dict[str, Any], labels: dict[str, Any]) -> None:
        notification_schema(documents)["properties"][name] = schema
        labelled(labels, name)

    return change


FREE_TEXT = {
    "type": "object",
    "x-free-text": True,
    "additionalProperties": False,
    "required": ["text", "lang"],
    "properties": {
        "text": {"type": "string", "maxLength": 500},
        "lang": {"type": "string", "maxLength": 16, "pattern": "^[a-z]{2}$"},
    },
}
BROKEN_CATALOGUES = {
    "a perpetrator's name": (
        add_field("perpetrator_name", {"type": "string", "maxLength": 100}),
        "perpetrator",
    ),
    "a sexual exploitation narrative": (
        add_field("sexual_exploitation_narrative", FREE_TEXT),
        "narrative, sexual",
    ),
    "a health narrative": (add_field("health_notes", FREE_TEXT), "health"),
    "health data outside return logistics": (
        add_field("fit", {"type": "boolean", "x-data-class": "health"}),
        "return-logistics-health",
    ),
    "an object open to extra fields": (
        add_field("extra", {"type": "object", "properties": {"code": {"type": "string", "maxLength": 5}}}),
        "additionalProperties: false",
    ),
    "a reference to another schema": (
        add_field("other", {"$ref": "#/properties/person"}),
        "keywords not allowed",
    ),
    "an unbounded string": (add_field("note", {"type": "string"}), "maxLength"),
    "free text without its language": (
        add_field(
            "note",
            {**FREE_TEXT, "required": ["text"], "properties": {"text": FREE_TEXT["properties"]["text"]}},
        ),
        "free text is exactly",
    ),
    "codes without a code list": (add_field("colour", {"type": "string", "enum": ["red"]}), "x-codes"),
    "a field without labels": (
        lambda documents, labels: notification_schema(documents)["properties"].update(
            fit2={"type": "boolean"}
        ),
        "has no labels",
    ),
    "a label missing in one language": (
        lambda documents, labels: labels["fields"]["surnames"].pop("sq"),
        "labels missing in sq",
    ),
    "an unknown role": (
        lambda documents, labels: documents["types/notification.yaml"]["roles"]["send"].append("wizard"),
        "'wizard' is not a role",
    ),
    "two current versions": (
        lambda documents, labels: documents["types/notification.yaml"]["versions"].append(
            copy.deepcopy(documents["types/notification.yaml"]["versions"][0]) | {"version": 2}
        ),
        "exactly one current version",
    ),
    "a control message the service acts on removed": (
        lambda documents, labels: documents.pop("types/withdrawal.yaml"),
        "'withdrawal' is missing",
    ),
    "a key outside the form-type schema": (
        lambda documents, labels: documents["types/notification.yaml"].update(colour="red"),
        "additionalProperties failed",
    ),
}


@pytest.mark.parametrize("case", BROKEN_CATALOGUES, ids=list(BROKEN_CATALOGUES))
def test_a_catalogue_breaking_a_rule_does_not_load(case: str) -> None:
    change, expected = BROKEN_CATALOGUES[case]
    with pytest.raises(CatalogueError) as error:
        load_with(change)
    assert expected in str(error.value)


def test_the_unchanged_documents_load() -> None:
    assert set(load_with(lambda documents, labels: None).types) == DOMAIN_CATALOGUE | CONTROL_MESSAGES


# -------------------------------------------------------------------- no code change for new form types


SHELTER_QUERY = {
    "type": "shelter-capacity-query",
    "kind": "form",
    "title": {language: {"text": "Shelter capacity query", "reviewed": False} for language in LANGUAGES},
    "roles": {"draft": ["contact-point"], "send": ["contact-point"]},
    "answers": [],
    "about": ["notification"],
    "reply_within_days": 3,
    "attachments": {"allowed": False},
    "versions": [
        {
            "version": 1,
            "status": "current",
            "schema": {
                "type": "object",
                "additionalProperties": False,
                "required": ["places_needed"],
                "properties": {"places_needed": {"type": "integer", "minimum": 1, "maximum": 20}},
            },
        }
    ],
}


def catalogue_folder(tmp_path: Path) -> Path:
    folder = tmp_path / "forms"
    shutil.copytree(str(resources.files("exchange.forms")), folder)
    return folder


def with_test_form_type(tmp_path: Path) -> Path:
    """A copy of the packaged catalogue plus a form type that exists only in this test's data."""
    folder = catalogue_folder(tmp_path)
    (folder / "types" / "shelter-capacity-query.yaml").write_text(
        yaml.safe_dump(SHELTER_QUERY), encoding="utf-8"
    )
    labels = read_yaml(folder / "labels.yaml")
    labelled(labels, "places_needed")
    (folder / "labels.yaml").write_text(
        yaml.dump(labels, Dumper=yaml.CSafeDumper, allow_unicode=True), encoding="utf-8"
    )
    return folder


def test_a_new_form_type_is_data_only(tmp_path: Path) -> None:
    catalogue = FormCatalogue.load(with_test_form_type(tmp_path), languages=LANGUAGES, roles=ROLES)
    kind = catalogue.form_type("shelter-capacity-query")
    assert kind.reply_within_days == 3 and kind.may_refer_to("notification")
    catalogue.validate("shelter-capacity-query", 1, {"places_needed": 2})
    with pytest.raises(DomainError) as error:
        catalogue.validate("shelter-capacity-query", 1, {"places_needed": 2, "names": ["x"]})
    assert pointers(error) == {("not_allowed", "/content/names")}


def with_notification_v2(tmp_path: Path) -> Path:
    """Version 2 of the notification beside version 1 (which stays accepted)."""
    folder = catalogue_folder(tmp_path)
    path = folder / "types" / "notification.yaml"
    document = read_yaml(path)
    v1 = document["versions"][0]
    v2 = copy.deepcopy(v1) | {"version": 2}
    v2["schema"]["properties"]["interpreter_language"] = {
        "type": "string",
        "maxLength": 3,
        "pattern": "^[a-z]{3}$",
    }
    v1["status"] = "accepted"
    document["versions"].append(v2)
    path.write_text(yaml.dump(document, Dumper=yaml.CSafeDumper, allow_unicode=True), encoding="utf-8")
    labels = read_yaml(folder / "labels.yaml")
    labelled(labels, "interpreter_language")
    (folder / "labels.yaml").write_text(
        yaml.dump(labels, Dumper=yaml.CSafeDumper, allow_unicode=True), encoding="utf-8"
    )
    return folder


def test_a_new_version_beside_the_old_is_data_only(tmp_path: Path) -> None:
    catalogue = FormCatalogue.load(with_notification_v2(tmp_path), languages=LANGUAGES, roles=ROLES)
    kind = catalogue.form_type("notification")
    assert kind.current_version == 2 and kind.accepts_version(1)
    catalogue.validate("notification", 2, {**notification_content(), "interpreter_language": "rom"})
    catalogue.validate("notification", 1, notification_content())
    with pytest.raises(DomainError) as error:
        catalogue.validate("notification", 1, {**notification_content(), "interpreter_language": "rom"})
    assert pointers(error) == {("not_allowed", "/content/interpreter_language")}


def test_a_form_types_attachments_must_fit_one_request() -> None:
    def too_large(documents: dict[str, Any], labels: dict[str, Any]) -> None:
        documents["types/identity-verification-request.yaml"]["attachments"]["max_bytes"] = 2_000_000

    with pytest.raises(CatalogueError) as refused:
        load_with(too_large)
    assert "identity-verification-request" in str(refused.value) and "/attachments" in str(refused.value)

    def just_fits(documents: dict[str, Any], labels: dict[str, Any]) -> None:
        documents["types/identity-verification-request.yaml"]["attachments"]["max_bytes"] = 229_000

    assert load_with(just_fits).types["identity-verification-request"].attachments.max_count == 3
