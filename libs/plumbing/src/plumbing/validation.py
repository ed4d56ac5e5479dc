"""Request validation against the contract, every error as {pointer, code} and never the value sent.

connexion's validators with our error shape: `ProblemJSONBodyValidator` (JSON bodies: parsed by
plumbing.json_input, validated with the contract's schema plus the platform keywords — `x-past-date` — and the
text rules), `ProblemParameterValidator` (path, query, header, cookie parameters). `validator_map()` is what the
app factory gives connexion."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from typing import Any

from connexion.datastructures import MediaTypeDict
from connexion.json_schema import Draft4RequestValidator
from connexion.validators import VALIDATOR_MAP, JSONRequestBodyValidator, ParameterValidator
from connexion.validators.parameter import draft4_format_checker
from jsonschema import Draft4Validator, ValidationError, validators
from starlette.types import Scope

from plumbing import json_input, request_context
from plumbing.problems import FieldError, Problem

# The name of a member or query parameter the contract does not declare was typed by the client. It is named in
# the pointer only when it looks like a field name of the contracts (snake_case ASCII, at most 64 characters), so
# that a misspelt field (`given_name` for `given_names`) is found at once; any other name (capitals, spaces,
# hyphens, non-ASCII, longer) could be data typed in the wrong place and is not echoed: the pointer stops at the
# enclosing object (`/query` for a parameter). Values are never echoed (docs/problems.md).
_ECHOABLE_NAME = re.compile(r"^[a-z][a-z0-9_]{0,63}$")


def _unknown_members(base: str, error: ValidationError) -> list[FieldError]:
    """One error per member `additionalProperties: false` refuses: at its name when it may be echoed."""
    schema = error.schema if isinstance(error.schema, dict) else {}
    declared = set(schema.get("properties") or {})
    patterns = [re.compile(p) for p in (schema.get("patternProperties") or {})]
    extra = [n for n in error.instance if n not in declared and not any(p.search(n) for p in patterns)]
    named = [
        FieldError(f"{base}/{name}", "additionalProperties") for name in extra if _ECHOABLE_NAME.match(name)
    ]
    if len(named) < len(extra):
        named.append(FieldError(base, "additionalProperties"))
    return named


def _declared_pointer(prefix: str, error: ValidationError) -> str:
    """A JSON pointer built only from the contract: array indexes and property names the schema declares.

    A name that is not declared (an extra property, a map key) was typed by the client, so the pointer stops at
    its parent object instead of echoing it.
    """
    schema_path = list(error.absolute_schema_path)
    declared = {str(schema_path[i + 1]) for i, part in enumerate(schema_path[:-1]) if part == "properties"}
    parts = [prefix]
    for element in error.absolute_path:
        if isinstance(element, int):
            parts.append(str(element))
        elif element in declared:
            parts.append(str(element).replace("~", "~0").replace("/", "~1"))
        else:
            break
    return "/".join(parts)


def _schema_errors(prefix: str, validator: Any, instance: Any) -> list[FieldError]:
    errors: list[FieldError] = []
    for error in sorted(validator.iter_errors(instance), key=lambda e: [str(p) for p in e.absolute_path]):
        if error.validator == "required" and isinstance(error.instance, dict):
            base = _declared_pointer(prefix, error)
            for name in error.validator_value:
                if name not in error.instance:
                    errors.append(FieldError(f"{base}/{name}", "required"))
        elif error.validator == "additionalProperties" and error.validator_value is False:
            if isinstance(error.instance, dict):
                errors.extend(_unknown_members(_declared_pointer(prefix, error), error))
        else:
            errors.append(FieldError(_declared_pointer(prefix, error), str(error.validator)))
    return errors


EARLIEST_PLAUSIBLE_YEAR = 1900
CLOCK_SKEW = timedelta(days=1)


def _past_date(validator: Any, enabled: Any, instance: Any, schema: Any) -> Iterator[ValidationError]:
    """`x-past-date: true` on a (partial) date of the contract: something that has happened — a date of birth,
    a screening, a decision. Not before 1900 and not after today (a day of clock skew allowed); a partial date
    (YYYY, YYYY-MM) counts from its first day. Malformed values are left to `pattern`/`format`."""
    if not enabled or not isinstance(instance, str):
        return
    match = re.match(r"^([0-9]{4})(?:-([0-9]{2})(?:-([0-9]{2}))?)?", instance)
    if match is None:
        return
    try:
        earliest = date(int(match[1]), int(match[2] or 1), int(match[3] or 1))
    except ValueError:
        return
    context = request_context.current()
    now = context.received_at if context is not None and context.received_at else datetime.now(UTC)
    if earliest.year < EARLIEST_PLAUSIBLE_YEAR or earliest > (now + CLOCK_SKEW).date():
        yield ValidationError("date outside the plausible range", validator="date-range")


BodySchemaValidator = validators.extend(Draft4RequestValidator, {"x-past-date": _past_date})


class ProblemJSONBodyValidator(JSONRequestBodyValidator):
    """connexion's JSON body validator without its log line (it quotes the value) and with all errors listed."""

    async def _parse(self, stream: Any, scope: Scope) -> Any:
        raw = b"".join([message async for message in stream])
        if not raw:
            return None
        return json_input.parse_body(raw, self._encoding)

    def _validate(self, body: Any) -> dict | None:
        if not self._nullable and body is None:
            raise Problem("validation-failed", errors=[FieldError("/body", "required")])
        validator = BodySchemaValidator(self._schema, format_checker=Draft4Validator.FORMAT_CHECKER)
        errors = _schema_errors("/body", validator, body) or json_input.unsafe_text(body)
        if errors:
            raise Problem("validation-failed", errors=errors)
        return None


_IDEMPOTENCY_KEY_POINTER = "/header/Idempotency-Key"


class ProblemParameterValidator(ParameterValidator):
    """Parameters checked against the contract, every error reported as {pointer, code}, values never echoed."""

    def validate_request(self, request: Any) -> None:
        errors: list[FieldError] = []
        if self.strict_validation:
            unknown = self.validate_query_parameter_list(request, self.security_query_params)
            named = sorted(name for name in unknown if _ECHOABLE_NAME.match(name))
            errors.extend(FieldError(f"/query/{name}", "unknown-parameter") for name in named)
            if len(named) < len(unknown):
                errors.append(FieldError("/query", "unknown-parameter"))
        sources = {
            "query": lambda p: request.query_params.get(p["name"]),
            "path": lambda p: request.path_params.get(p["name"].replace("-", "_")),
            "header": lambda p: request.headers.get(p["name"]),
            "cookie": lambda p: request.cookies.get(p["name"]),
        }
        for location, read in sources.items():
            for param in self.parameters.get(location, []):
                pointer = f"/{location}/{param['name']}"
                value = read(param)
                if value is None:
                    if param.get("required") and pointer == _IDEMPOTENCY_KEY_POINTER:
                        # Malformed rather than invalid: without it a retry could register a person twice.
                        raise Problem("idempotency-key-required", errors=[FieldError(pointer, "required")])
                    if param.get("required"):
                        errors.append(FieldError(pointer, "required"))
                    continue
                schema = param.get("schema", param)
                if schema.get("nullable") and value in ("null", "None"):
                    continue
                for error in Draft4Validator(schema, format_checker=draft4_format_checker).iter_errors(value):
                    errors.append(FieldError(pointer, str(error.validator)))
        if errors:
            raise Problem("validation-failed", errors=errors)


def validator_map() -> dict[str, Any]:
    # MediaTypeDict matches wildcards such as */*json; a plain dict copy would silently match nothing.
    body = MediaTypeDict({**VALIDATOR_MAP["body"], "*/*json": ProblemJSONBodyValidator})
    return {"parameter": ProblemParameterValidator, "body": body}
