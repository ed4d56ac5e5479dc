"""Reading and checking a service's catalogue files: YAML data packaged with the service, validated by a JSON
Schema at start-up, with labels in every configured language.

Referral, return and exchange each load such a catalogue and refuse to start when it is broken, naming the file
and the JSON pointer of every problem, so that whoever edits the files can fix them all in one round. The reading,
the schema check and the wording of a problem are the same for all of them and live here; what a catalogue holds
(its files, its codes, its dataclasses and its rules) stays in the service. Every problem is one line
`<file>: <json pointer>: <what is wrong>`.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Mapping
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import Any

import jsonschema
import yaml

from plumbing.errors import ConfigError

__all__ = [
    "CatalogueError",
    "document_schema_problems",
    "json_pointer",
    "missing_labels",
    "read_json_schema",
    "read_yaml",
    "read_yaml_files",
    "schema_problems",
]


class CatalogueError(ConfigError):
    """A catalogue cannot be read, breaks its schema or breaks a rule: the process refuses to start. A service
    subclasses it for its own catalogue; the message names the file and the JSON pointer of every problem."""

    @classmethod
    def raise_all(cls, catalogue: str, problems: Iterable[str]) -> None:
        """Raise one error listing every problem (`<catalogue>: invalid:` and one problem a line), or do nothing
        when there is none."""
        listed = list(problems)
        if listed:
            raise cls(f"{catalogue}: invalid:\n  " + "\n  ".join(listed))


# ------------------------------------------------------------------------------------------------ reading


def read_yaml(file: Traversable | Path) -> Any:
    """The parsed content of one YAML file. A file that is missing or is not YAML is a `CatalogueError` naming
    it (rather than a bare `FileNotFoundError` far from the catalogue that wanted it)."""
    try:
        text = file.read_text(encoding="utf-8")
    except OSError as exc:
        raise CatalogueError(f"{file}: cannot read the catalogue file: {exc.strerror or exc}") from None
    try:
        # The C loader is the safe loader, only faster.
        return yaml.load(text, Loader=yaml.CSafeLoader)
    except yaml.YAMLError as exc:
        raise CatalogueError(f"{file}: not valid YAML: {exc}") from None


def read_yaml_files(folder: Traversable | Path, names: Iterable[str]) -> dict[str, Any]:
    """`<name>.yaml` of `folder` for each name, by name (without `.yaml`): the documents a catalogue's schema
    and problems refer to by that name."""
    return {name: read_yaml(folder.joinpath(f"{name}.yaml")) for name in names}


def read_json_schema(file: Traversable | Path) -> dict[str, Any]:
    """A JSON Schema (draft 2020-12) file, checked to be one: a broken schema would otherwise pass or fail every
    catalogue for the wrong reason."""
    try:
        schema: dict[str, Any] = json.loads(file.read_text(encoding="utf-8"))
        jsonschema.Draft202012Validator.check_schema(schema)
    except (OSError, ValueError) as exc:
        raise CatalogueError(f"{file}: cannot read the catalogue schema: {exc}") from None
    except jsonschema.SchemaError as exc:
        raise CatalogueError(
            f"{file}: {json_pointer(exc.absolute_path) or '/'}: not a JSON Schema ({exc.validator})"
        ) from None
    return schema


# ----------------------------------------------------------------------------------------------- checking


def schema_problems(
    validator: jsonschema.Draft202012Validator, documents: Mapping[str, Any]
) -> Iterator[str]:
    """Every way `documents` (file name -> content) break a schema that describes them together, its top-level
    properties being the file names: the first step of an error's path names the file, the rest is the pointer
    inside it. A problem with the whole set (a file left out) is named `catalogue: /`."""
    for error in validator.iter_errors(dict(documents)):
        path = list(error.absolute_path)
        file, inside = (str(path[0]), path[1:]) if path else ("catalogue", [])
        yield _problem(file, inside, error)


def document_schema_problems(
    validator: jsonschema.Draft202012Validator, file: str, document: Any
) -> Iterator[str]:
    """Every way one document, the file `file`, breaks its own schema."""
    for error in validator.iter_errors(document):
        yield _problem(file, error.absolute_path, error)


def missing_labels(labels: Mapping[str, Any], languages: Iterable[str], where: str) -> Iterator[str]:
    """The problem of a label that is not written in every required language (`where`: file and pointer of the
    labels), naming the missing languages in the order they are required."""
    missing = [language for language in languages if language not in labels]
    if missing:
        yield f"{where}: labels missing in {', '.join(missing)}"


def json_pointer(path: Iterable[Any]) -> str:
    """The RFC 6901 pointer of a path of keys and indexes; "" for the whole document."""
    return "".join("/" + str(part).replace("~", "~0").replace("/", "~1") for part in path)


def _problem(file: str, path: Iterable[Any], error: jsonschema.ValidationError) -> str:
    # The schema keyword, not jsonschema's message: the message quotes the offending value, often a whole
    # document, where the file and the pointer already say where to look.
    return f"{file}: {json_pointer(path) or '/'}: {error.validator} failed"
