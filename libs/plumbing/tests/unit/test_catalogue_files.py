"""Catalogue files (plumbing.catalogue_files): a broken catalogue names the file and the JSON pointer of every
problem, and a file that cannot be read is named instead of surfacing as a bare OSError."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest

from plumbing.catalogue_files import (
    CatalogueError,
    document_schema_problems,
    json_pointer,
    missing_labels,
    read_json_schema,
    read_yaml,
    read_yaml_files,
    schema_problems,
)
from plumbing.errors import ConfigError

# A catalogue of two files described by one schema, its top-level properties being the file names.
CODES = {"type": "object", "additionalProperties": {"type": "object", "required": ["labels"]}}
TWO_FILES = jsonschema.Draft202012Validator(
    {
        "type": "object",
        "required": ["reasons", "plan"],
        "properties": {
            "reasons": {"type": "object", "additionalProperties": CODES},
            "plan": {
                "type": "object",
                "properties": {"within_days": {"type": "integer"}, "roles": {"type": "array"}},
            },
        },
    }
)


def test_named_files_are_read_by_name(tmp_path: Path) -> None:
    (tmp_path / "reasons.yaml").write_text("stop:\n  other: {labels: {en: Other}}\n", encoding="utf-8")
    (tmp_path / "plan.yaml").write_text("within_days: 30\n", encoding="utf-8")
    assert read_yaml_files(tmp_path, ("reasons", "plan")) == {
        "reasons": {"stop": {"other": {"labels": {"en": "Other"}}}},
        "plan": {"within_days": 30},
    }


def test_a_missing_file_is_a_catalogue_error_naming_it(tmp_path: Path) -> None:
    (tmp_path / "reasons.yaml").write_text("{}\n", encoding="utf-8")
    with pytest.raises(CatalogueError) as error:
        read_yaml_files(tmp_path, ("reasons", "plan"))
    assert (
        str(error.value)
        == f"{tmp_path / 'plan.yaml'}: cannot read the catalogue file: No such file or directory"
    )
    assert isinstance(error.value, ConfigError), "a process with a broken catalogue must not start"


def test_a_file_that_is_not_yaml_is_named(tmp_path: Path) -> None:
    broken = tmp_path / "plan.yaml"
    broken.write_text("within_days: [30\n", encoding="utf-8")
    with pytest.raises(CatalogueError, match=r"plan\.yaml: not valid YAML"):
        read_yaml(broken)


def test_a_wrong_type_names_the_file_and_the_pointer_inside_it() -> None:
    documents = {
        "reasons": {"stop": {"other": {"labels": {}}, "moved": {}}},
        "plan": {"within_days": "thirty"},
    }
    assert sorted(schema_problems(TWO_FILES, documents)) == [
        "plan: /within_days: type failed",
        "reasons: /stop/moved: required failed",
    ]


def test_a_file_left_out_is_a_problem_of_the_whole_catalogue() -> None:
    assert list(schema_problems(TWO_FILES, {"reasons": {}})) == ["catalogue: /: required failed"]


def test_a_whole_file_of_the_wrong_type_is_pointed_at_its_root() -> None:
    assert list(schema_problems(TWO_FILES, {"reasons": {}, "plan": ["within_days"]})) == [
        "plan: /: type failed"
    ]


def test_a_document_checked_alone_is_named_by_the_file_given() -> None:
    validator = jsonschema.Draft202012Validator({"type": "object", "properties": {"roles": CODES}})
    assert list(document_schema_problems(validator, "types/referral.yaml", {"roles": {"a/b": []}})) == [
        "types/referral.yaml: /roles/a~1b: type failed"
    ]
    assert list(document_schema_problems(validator, "labels.yaml", None)) == ["labels.yaml: /: type failed"]
    assert list(document_schema_problems(validator, "labels.yaml", {"roles": {}})) == []


def test_pointers_escape_slash_and_tilde_and_name_list_items_by_index() -> None:
    assert json_pointer(["fields", "a/b", "c~d", 0]) == "/fields/a~1b/c~0d/0"
    assert json_pointer([]) == ""


def test_labels_missing_in_some_languages_name_them_in_the_order_required() -> None:
    labels = {"en": "Shelter", "sr-Latn": "Sklonište"}
    assert list(
        missing_labels(labels, ("en", "sq", "sr-Latn", "sr-Cyrl"), "reasons: /stop/other/labels")
    ) == ["reasons: /stop/other/labels: labels missing in sq, sr-Cyrl"]
    assert list(missing_labels(labels, ("en", "sr-Latn"), "anywhere")) == []


def test_every_problem_is_raised_at_once_as_the_callers_own_error() -> None:
    class ReferralCatalogueError(CatalogueError):
        pass

    ReferralCatalogueError.raise_all("referral catalogue", iter(()))  # nothing to report: no error
    with pytest.raises(ReferralCatalogueError) as error:
        ReferralCatalogueError.raise_all("referral catalogue", (p for p in ["a: /x: one", "b: /: two"]))
    assert str(error.value) == "referral catalogue: invalid:\n  a: /x: one\n  b: /: two"


def test_a_schema_file_is_checked_to_be_a_json_schema(tmp_path: Path) -> None:
    good, broken = tmp_path / "good.schema.json", tmp_path / "broken.schema.json"
    good.write_text(json.dumps({"type": "object"}), encoding="utf-8")
    broken.write_text(json.dumps({"properties": {"code": {"type": 5}}}), encoding="utf-8")
    assert read_json_schema(good) == {"type": "object"}
    with pytest.raises(CatalogueError) as error:
        read_json_schema(broken)
    assert str(error.value).startswith(f"{broken}: /properties/code/type: not a JSON Schema")
    with pytest.raises(CatalogueError, match="cannot read the catalogue schema"):
        read_json_schema(tmp_path / "missing.schema.json")
