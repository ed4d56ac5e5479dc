"""What may cross a border, checked on the form schemas themselves when the catalogue loads.

The schemas decide what a form can carry; these rules decide what a schema may say, so that a coordinator who
adds or edits a form type cannot open a channel for data that must never cross (docs/exchange.md, "What a form
may carry"). A schema breaking a rule stops the catalogue from loading (the process does not start):

- every object lists its `properties` and sets `additionalProperties: false`, at every level; no combinators,
  references, pattern properties or conditionals, which could let other shapes through;
- every array bounds its items (`items`, `maxItems`); every plain string bounds its length (short identifiers
  and names, at most `MAX_SHORT_TEXT`);
- every enumeration names its code list (`x-codes`), so the receiving officer reads it in her own language;
- free text is an object `{text, lang}` marked `x-free-text` (its language tagged, at most `MAX_FREE_TEXT`);
- no field name speaks of perpetrators, narratives, sexual exploitation or health (a police case reference is the
  only pointer to a criminal case; a coded risk factor may say that a relative is suspected);
- health data (`x-data-class: health`) only in form types that carry return logistics, and only coded (a
  boolean or codes), never free text.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

MAX_SHORT_TEXT = 200
MAX_FREE_TEXT = 1000
HEALTH = "health"
RETURN_LOGISTICS_HEALTH = "return-logistics-health"

# Words that never name a field of a cross-border form. Matched against the parts of a field name split on "_".
FORBIDDEN_NAME_PARTS = frozenset(
    {
        "perpetrator",
        "perpetrators",
        "suspect",
        "suspects",
        "trafficker",
        "traffickers",
        "offender",
        "offenders",
        "exploiter",
        "exploiters",
        "abuser",
        "abusers",
        "narrative",
        "story",
        "testimony",
        "statement",
        "account",
        "sexual",
        "health",
        "medical",
        "diagnosis",
        "illness",
        "treatment",
        "psychiatric",
        "hiv",
        "pregnancy",
    }
)
# Keywords a form schema may use; anything else (allOf, $ref, patternProperties, if, ...) is refused.
ALLOWED_KEYWORDS = frozenset(
    {
        "type",
        "properties",
        "additionalProperties",
        "required",
        "items",
        "minItems",
        "maxItems",
        "uniqueItems",
        "enum",
        "const",
        "minLength",
        "maxLength",
        "pattern",
        "minimum",
        "maximum",
        "description",
        "x-codes",
        "x-free-text",
        "x-data-class",
    }
)


def schema_problems(schema: Mapping[str, Any], carries: frozenset[str]) -> Iterator[str]:
    """Every broken rule of one form schema, as `<JSON pointer into the schema>: <what>`."""
    yield from _node(schema, "", carries, in_health=False, in_free_text=False)


def _node(
    node: Any, where: str, carries: frozenset[str], *, in_health: bool, in_free_text: bool
) -> Iterator[str]:
    if not isinstance(node, Mapping):
        yield f"{where or '/'}: a schema must be an object"
        return
    unknown = sorted(set(node) - ALLOWED_KEYWORDS)
    if unknown:
        yield f"{where or '/'}: keywords not allowed in a form schema: {', '.join(unknown)}"
    in_health = in_health or node.get("x-data-class") == HEALTH
    if node.get("x-data-class") == HEALTH and RETURN_LOGISTICS_HEALTH not in carries:
        yield f"{where or '/'}: health data only in form types that carry {RETURN_LOGISTICS_HEALTH}"
    kind = node.get("type")
    if kind == "object":
        yield from _object(node, where, carries, in_health=in_health, in_free_text=in_free_text)
    elif kind == "array":
        if "items" not in node or "maxItems" not in node:
            yield f"{where}: an array needs `items` and `maxItems`"
        if "items" in node:
            yield from _node(
                node["items"], f"{where}/items", carries, in_health=in_health, in_free_text=False
            )
    elif kind == "string":
        yield from _string(node, where, in_health=in_health, in_free_text=in_free_text)
    elif kind not in ("boolean", "integer"):
        yield f"{where or '/'}: `type` must be one of object, array, string, boolean, integer"


def _object(
    node: Mapping[str, Any], where: str, carries: frozenset[str], *, in_health: bool, in_free_text: bool
) -> Iterator[str]:
    if node.get("additionalProperties") is not False:
        yield f"{where or '/'}: an object must set additionalProperties: false"
    properties = node.get("properties")
    if not isinstance(properties, Mapping) or not properties:
        yield f"{where or '/'}: an object must list its properties"
        return
    free_text = node.get("x-free-text") is True
    if free_text:
        if in_health:
            yield f"{where}: health data is coded, never free text"
        if set(properties) != {"text", "lang"} or set(node.get("required") or ()) != {"text", "lang"}:
            yield f"{where}: free text is exactly {{text, lang}}, both required"
        elif "pattern" not in properties["lang"]:
            yield f"{where}/properties/lang: the language tag needs a pattern"
    for name, sub in properties.items():
        parts = set(str(name).lower().split("_"))
        banned = sorted(parts & FORBIDDEN_NAME_PARTS)
        if banned:
            yield f"{where}/properties/{name}: a field named after {', '.join(banned)} may not cross a border"
        yield from _node(
            sub, f"{where}/properties/{name}", carries, in_health=in_health, in_free_text=free_text
        )


def _string(node: Mapping[str, Any], where: str, *, in_health: bool, in_free_text: bool) -> Iterator[str]:
    if "enum" in node:
        if not isinstance(node.get("x-codes"), str):
            yield f"{where}: an enumeration names its code list in `x-codes`"
        return
    if in_health:
        yield f"{where}: health data is coded (boolean or codes), never text"
    limit = MAX_FREE_TEXT if in_free_text else MAX_SHORT_TEXT
    if not isinstance(node.get("maxLength"), int) or node["maxLength"] > limit:
        yield f"{where}: a string needs maxLength of at most {limit}"


def property_names(schema: Mapping[str, Any]) -> Iterator[tuple[str, str]]:
    """(pointer into the schema, field name) of every property at every level."""
    stack: list[tuple[str, Any]] = [("", schema)]
    while stack:
        where, node = stack.pop()
        if not isinstance(node, Mapping):
            continue
        for name, sub in (node.get("properties") or {}).items():
            yield f"{where}/properties/{name}", str(name)
            stack.append((f"{where}/properties/{name}", sub))
        if "items" in node:
            stack.append((f"{where}/items", node["items"]))


def coded_values(schema: Mapping[str, Any]) -> Iterator[tuple[str, str, list[Any]]]:
    """(pointer into the schema, code list, values) of every enumeration at every level."""
    stack: list[tuple[str, Any]] = [("", schema)]
    while stack:
        where, node = stack.pop()
        if not isinstance(node, Mapping):
            continue
        if "enum" in node:
            yield where, str(node.get("x-codes")), list(node["enum"])
        for name, sub in (node.get("properties") or {}).items():
            stack.append((f"{where}/properties/{name}", sub))
        if "items" in node:
            stack.append((f"{where}/items", node["items"]))
