"""The form catalogue: form types as data, loaded and checked once at start-up.

A form type is one YAML file in a catalogue folder (`exchange/forms/types/*.yaml` is the packaged one); the
labels of every field and code are in the folder's `labels.yaml`. Loading checks, and refuses to start on any
failure (`CatalogueError` naming the file and pointer):

1. each file against `form-type.schema.json`, the labels against `labels.schema.json`;
2. each version's schema is a JSON Schema and keeps the minimisation rules (`minimisation.py`);
3. every field and code, and every title, is labelled in every required language;
4. roles are roles of the platform; `answers` and `about` name known form types; exactly one `current` version
   per form type that is not retired.

Adding a form type, retiring one or adding a version beside the old is a change of these files only. Reading
the files, the schema check and the wording of a problem are shared with the other catalogues
(plumbing.catalogue_files); the rules are this module's.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from importlib import resources
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import Any

import jsonschema
from referencing import Registry, Resource

from exchange.domain import minimisation
from exchange.domain.errors import CatalogueError, DomainError, ErrorDetail
from plumbing.catalogue_files import (
    document_schema_problems,
    json_pointer,
    missing_labels,
    read_json_schema,
    read_yaml,
)

DATA_PACKAGE = "exchange.forms"
FORM_TYPE_SCHEMA = "form-type.schema.json"
LABELS_SCHEMA = "labels.schema.json"
FALLBACK_LANGUAGE = "en"
CATALOGUE = "form catalogue"  # how its problems begin

CURRENT, ACCEPTED, RETIRED = "current", "accepted", "retired"
FORM, CONTROL = "form", "control"

# Control messages the service itself acts on; the catalogue must define them (their schemas stay data).
RECEIPT = "receipt"
WITHDRAWAL = "withdrawal"
REMINDER = "reminder"
CONSENT_WITHDRAWN = "consent-withdrawn"
CLARIFICATION_REQUEST = "clarification-request"
PROTOCOL_TYPES = (RECEIPT, WITHDRAWAL, REMINDER, CONSENT_WITHDRAWN, CLARIFICATION_REQUEST)
# A draft travels in one request, and the gateway and the services accept at most 1 MiB (THB_MAX_BODY_BYTES,
# plumbing.app.DEFAULT_MAX_BODY). Attachments travel base64-encoded (4 bytes for 3) inside the JSON body: a form
# type's attachments at their caps must fit what is left after the form's own content (128 KiB kept for it).
REQUEST_BODY_LIMIT = 1024 * 1024
ATTACHMENT_BUDGET = REQUEST_BODY_LIMIT - 128 * 1024

# jsonschema keyword -> the stable `code` a client sees (the submitted value is never echoed).
ERROR_CODES = {
    "additionalProperties": "not_allowed",
    "required": "required",
    "type": "wrong_type",
    "enum": "unknown_code",
    "const": "unknown_code",
    "pattern": "bad_format",
    "minLength": "too_short",
    "maxLength": "too_long",
    "minItems": "too_few",
    "maxItems": "too_many",
    "uniqueItems": "duplicate",
    "minimum": "too_small",
    "maximum": "too_large",
}


@dataclass(frozen=True)
class Label:
    text: str
    reviewed: bool


Labels = Mapping[str, Label]


@dataclass(frozen=True)
class Attachments:
    allowed: bool
    media_types: frozenset[str] = frozenset()
    max_bytes: int = 0
    max_count: int = 0


@dataclass(frozen=True)
class FormVersion:
    version: int
    status: str
    schema: Mapping[str, Any] = field(repr=False)

    @functools.cached_property
    def validator(self) -> jsonschema.Draft202012Validator:
        return jsonschema.Draft202012Validator(self.schema)


@dataclass(frozen=True)
class FormType:
    code: str
    kind: str
    title: Labels
    draft_roles: frozenset[str]
    send_roles: frozenset[str]
    answers: frozenset[str]
    about: frozenset[str] | None  # None: may refer to any form
    reply_within_days: int | None
    # Days after a missed reply deadline before the coordinator's office is told (a second period).
    escalate_after_days: int | None
    attachments: Attachments
    # Content pointer -> the identification field it may be pre-filled from (`person.<field>`, `case.<field>`):
    # only these are ever copied (domain/prefill.py).
    prefill: Mapping[str, str]
    carries: frozenset[str]
    opens_case: bool
    closes_case: bool
    versions: Mapping[int, FormVersion]

    @property
    def current_version(self) -> int | None:
        """The version new drafts use; None for a retired form type."""
        return next((v.version for v in self.versions.values() if v.status == CURRENT), None)

    def accepts_version(self, version: int) -> bool:
        """Whether forms of `version` may still be sent and received (current or accepted beside it)."""
        found = self.versions.get(version)
        return found is not None and found.status in (CURRENT, ACCEPTED)

    def may_refer_to(self, other: str) -> bool:
        return other in self.answers or self.about is None or other in self.about


@dataclass(frozen=True)
class FormCatalogue:
    types: Mapping[str, FormType]
    field_labels: Mapping[str, Labels]
    code_labels: Mapping[str, Mapping[str, Labels]]
    languages: tuple[str, ...]

    # ------------------------------------------------------------------------------------------ loading

    @classmethod
    def packaged(cls, languages: Iterable[str], roles: Iterable[str]) -> FormCatalogue:
        return cls.load(resources.files(DATA_PACKAGE), languages=languages, roles=roles)

    @classmethod
    def load(
        cls, folder: Traversable | Path, *, languages: Iterable[str], roles: Iterable[str]
    ) -> FormCatalogue:
        """Every `types/*.yaml` of `folder` and its `labels.yaml`."""
        documents = {
            f"types/{item.name}": read_yaml(item)
            for item in sorted(folder.joinpath("types").iterdir(), key=lambda t: t.name)
            if item.name.endswith(".yaml")
        }
        labels = read_yaml(folder.joinpath("labels.yaml"))
        return cls.from_documents(documents, labels, languages=languages, roles=roles)

    @classmethod
    def from_documents(
        cls,
        documents: Mapping[str, Any],
        labels: Any,
        *,
        languages: Iterable[str],
        roles: Iterable[str],
    ) -> FormCatalogue:
        """`documents`: file name -> parsed form type. Raises `CatalogueError` listing every problem."""
        required_languages = tuple(dict.fromkeys(languages))
        CatalogueError.raise_all(CATALOGUE, _check_documents(documents, labels))
        field_labels = {name: _labels(raw) for name, raw in labels["fields"].items()}
        code_labels = {
            lst: {code: _labels(raw) for code, raw in codes.items()} for lst, codes in labels["codes"].items()
        }
        types = {doc["type"]: _form_type(doc) for doc in documents.values()}
        catalogue = cls(types, field_labels, code_labels, required_languages)
        CatalogueError.raise_all(CATALOGUE, catalogue._rule_problems(documents, frozenset(roles)))
        return catalogue

    # -------------------------------------------------------------------------------------------- reads

    def form_type(self, code: str, pointer: str = "/form_type") -> FormType:
        """The form type, or a 422 naming `pointer` (an unknown type is the client's mistake)."""
        found = self.types.get(code)
        if found is None:
            raise DomainError("unknown form type", [ErrorDetail("unknown_form_type", pointer)])
        return found

    def answered_by(self, code: str) -> tuple[str, ...]:
        """The form types that answer `code` (none for a notification: its acknowledgement is the response)."""
        return tuple(sorted(other for other, kind in self.types.items() if code in kind.answers))

    def label(self, name: str, language: str, *, code_list: str | None = None) -> str:
        """The label of a field (or, with `code_list`, of a code) in `language`, falling back to English."""
        labels = self.code_labels[code_list][name] if code_list else self.field_labels[name]
        chosen = labels.get(language) or labels[FALLBACK_LANGUAGE]
        return chosen.text

    # ------------------------------------------------------------------------------------- validation

    def validate(self, form_type: str, version: int, content: Any, *, prefix: str = "/content") -> None:
        """Check a form's content against its type and version: a `DomainError` (422) naming every broken rule
        with a JSON pointer under `prefix`. Nothing is stored before this has passed."""
        kind = self.form_type(form_type)
        if not kind.accepts_version(version):
            raise DomainError("version not accepted", [ErrorDetail("version_not_accepted", "/version")])
        errors = sorted(
            {
                detail
                for error in kind.versions[version].validator.iter_errors(content)
                for detail in schema_error_details(error, prefix)
            },
            key=lambda d: (d.pointer, d.code),
        )
        if errors:
            raise DomainError("form content breaks its schema", errors)

    # ------------------------------------------------------------------------------------------- rules

    def _rule_problems(self, documents: Mapping[str, Any], roles: frozenset[str]) -> Iterator[str]:
        names = {doc["type"]: name for name, doc in documents.items()}
        if len(names) != len(documents):
            yield "two files define the same form type"
        for code in PROTOCOL_TYPES:
            if self.types.get(code, None) is None or self.types[code].kind != CONTROL:
                yield f"the control message {code!r} is missing (the service acts on it)"
        for code, kind in self.types.items():
            where = names[code]
            yield from self._labelled(kind.title, f"{where}: /title")
            for role in sorted((kind.draft_roles | kind.send_roles) - roles):
                yield f"{where}: /roles: {role!r} is not a role of the platform"
            for other in sorted((kind.answers | (kind.about or frozenset())) - set(self.types)):
                yield f"{where}: refers to the unknown form type {other!r}"
            numbers = [v["version"] for v in documents[where]["versions"]]
            if len(set(numbers)) != len(numbers):
                yield f"{where}: /versions: a version number appears twice"
            current = [v for v in kind.versions.values() if v.status == CURRENT]
            if len(current) > 1 or (
                not current and any(v.status == ACCEPTED for v in kind.versions.values())
            ):
                yield f"{where}: /versions: exactly one current version unless all are retired"
            for index, version in enumerate(documents[where]["versions"]):
                yield from self._schema_problems(
                    kind, version["schema"], f"{where}: /versions/{index}/schema"
                )
            yield from _prefill_problems(kind, where)
            if kind.attachments.allowed and _encoded(kind.attachments) > ATTACHMENT_BUDGET:
                yield (
                    f"{where}: /attachments: {kind.attachments.max_count} x {kind.attachments.max_bytes} bytes do not"
                    f" fit one request ({ATTACHMENT_BUDGET} bytes once base64-encoded)"
                )

    def _schema_problems(self, kind: FormType, schema: Mapping[str, Any], where: str) -> Iterator[str]:
        try:
            jsonschema.Draft202012Validator.check_schema(schema)
        except jsonschema.SchemaError as exc:
            yield f"{where}{json_pointer(exc.absolute_path)}: not a JSON Schema ({exc.validator})"
            return
        if schema.get("type") != "object":
            yield f"{where}: a form's content is an object"
        for problem in minimisation.schema_problems(schema, kind.carries):
            yield f"{where}{problem}"
        for pointer, name in minimisation.property_names(schema):
            if name not in self.field_labels:
                yield f"{where}{pointer}: field {name!r} has no labels"
            else:
                yield from self._labelled(self.field_labels[name], f"{where}{pointer}")
        for pointer, code_list, values in minimisation.coded_values(schema):
            known = self.code_labels.get(code_list, {})
            for value in values:
                if value not in known:
                    yield f"{where}{pointer}: code {value!r} of {code_list!r} has no labels"
                else:
                    yield from self._labelled(known[value], f"{where}{pointer}")

    def _labelled(self, labels: Labels, where: str) -> Iterator[str]:
        return missing_labels(labels, self.languages, where)


# ------------------------------------------------------------------------------------------------ helpers


@functools.cache
def _meta_validators() -> tuple[jsonschema.Draft202012Validator, jsonschema.Draft202012Validator]:
    package = resources.files(DATA_PACKAGE)
    form_type = read_json_schema(package.joinpath(FORM_TYPE_SCHEMA))
    labels = read_json_schema(package.joinpath(LABELS_SCHEMA))
    registry: Registry[Any] = Registry().with_resource(form_type["$id"], Resource.from_contents(form_type))
    return (
        jsonschema.Draft202012Validator(form_type, registry=registry),
        jsonschema.Draft202012Validator(labels, registry=registry),
    )


def _check_documents(documents: Mapping[str, Any], labels: Any) -> Iterator[str]:
    form_type_validator, labels_validator = _meta_validators()
    if not documents:
        yield "no form types"
    for name, doc in documents.items():
        yield from document_schema_problems(form_type_validator, name, doc)
    yield from document_schema_problems(labels_validator, "labels.yaml", labels)


def _labels(raw: Mapping[str, Any]) -> Labels:
    return {language: Label(entry["text"], entry["reviewed"]) for language, entry in raw.items()}


def _form_type(doc: Mapping[str, Any]) -> FormType:
    attachments = doc["attachments"]
    about = doc["about"]
    return FormType(
        code=doc["type"],
        kind=doc["kind"],
        title=_labels(doc["title"]),
        draft_roles=frozenset(doc["roles"]["draft"]),
        send_roles=frozenset(doc["roles"]["send"]),
        answers=frozenset(doc["answers"]),
        about=None if about == "any" else frozenset(about),
        reply_within_days=doc["reply_within_days"],
        escalate_after_days=doc.get("escalate_after_days", doc["reply_within_days"]),
        prefill=dict(doc.get("prefill", {})),
        attachments=Attachments(
            allowed=attachments["allowed"],
            media_types=frozenset(attachments.get("media_types", ())),
            max_bytes=attachments.get("max_bytes", 0),
            max_count=attachments.get("max_count", 0),
        ),
        carries=frozenset(doc.get("carries", ())),
        opens_case=doc.get("opens_case", False),
        closes_case=doc.get("closes_case", False),
        versions={v["version"]: FormVersion(v["version"], v["status"], v["schema"]) for v in doc["versions"]},
    )


def schema_error_details(error: jsonschema.ValidationError, prefix: str) -> Iterator[ErrorDetail]:
    """One or more {code, pointer} for a schema error; an extra or missing field is named by its own pointer."""
    where = prefix + json_pointer(error.absolute_path)
    code = ERROR_CODES.get(str(error.validator), "invalid")
    instance, schema = error.instance, error.schema
    if error.validator == "additionalProperties" and isinstance(instance, Mapping):
        allowed = set((schema or {}).get("properties", {})) if isinstance(schema, Mapping) else set()
        for name in sorted(set(instance) - allowed):
            yield ErrorDetail(code, where + json_pointer([name]))
    elif error.validator == "required" and isinstance(instance, Mapping):
        for name in error.validator_value:
            if name not in instance:
                yield ErrorDetail(code, where + json_pointer([name]))
    else:
        yield ErrorDetail(code, where)


def _prefill_problems(kind: FormType, where: str) -> Iterator[str]:
    """Every pre-filled pointer names a property of the current version's schema (so a copied value can only land
    where the form has a field)."""
    version = kind.versions.get(kind.current_version) if kind.current_version else None
    for pointer in kind.prefill:
        node: Any = version.schema if version else None
        for name in pointer.strip("/").split("/"):
            node = (node or {}).get("properties", {}).get(name) if isinstance(node, Mapping) else None
        if node is None:
            yield f"{where}: /prefill{pointer}: not a field of the current version"


def _encoded(attachments: Attachments) -> int:
    """The bytes a form type's attachments take at their caps in a JSON body (base64: 4 bytes for every 3)."""
    return attachments.max_count * 4 * -(-attachments.max_bytes // 3)
