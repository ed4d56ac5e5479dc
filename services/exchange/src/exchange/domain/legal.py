"""The legal basis of a cross-border message, and consent or a child's views.

Every message records a legal basis from the catalogue of its country pair (`legal_bases` in
config/platform.yaml: no legal instrument is named in code). A form about a person also says whether that person
is an adult or a child: for an adult, consent is recorded (and must have been given when consent is the basis);
for a child (or a person whose age is uncertain, presumed a child) consent is not the basis, and the child's
views are recorded instead.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import jsonschema

from exchange.domain.catalogue import schema_error_details
from exchange.domain.errors import ErrorDetail

# The basis code that rests on the person's own consent: the one code whose meaning the rules depend on.
CONSENT_BASIS = "consent-of-data-subject"
ADULT = "adult"
CHILD_GROUPS = frozenset({"child", "age-uncertain"})
DATE = "^[0-9]{4}-[0-9]{2}-[0-9]{2}$"

SUBJECT_SCHEMA: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "required": ["age_group"],
    "properties": {
        "age_group": {"enum": ["adult", "child", "age-uncertain"]},
        "consent": {
            "type": "object",
            "additionalProperties": False,
            "required": ["given", "recorded_on"],
            "properties": {"given": {"type": "boolean"}, "recorded_on": {"type": "string", "pattern": DATE}},
        },
        "child_views": {
            "type": "object",
            "additionalProperties": False,
            "required": ["heard", "position", "recorded_on"],
            "properties": {
                "heard": {"type": "boolean"},
                "position": {"enum": ["agrees", "disagrees", "undecided", "not-able-to-express"]},
                "recorded_on": {"type": "string", "pattern": DATE},
            },
        },
    },
}
_SUBJECT = jsonschema.Draft202012Validator(SUBJECT_SCHEMA)


def basis_problems(bases: Iterable[str], legal_basis: Any) -> list[ErrorDetail]:
    """`bases`: the codes of the pair's catalogue. An empty catalogue means nothing may go that way."""
    codes = frozenset(bases)
    if not codes:
        return [ErrorDetail("no_legal_basis_for_pair", "/legal_basis")]
    if legal_basis is None:
        return [ErrorDetail("required", "/legal_basis")]
    if legal_basis not in codes:
        return [ErrorDetail("unknown_legal_basis", "/legal_basis")]
    return []


def notice_basis(bases: Sequence[str]) -> str | None:
    """The basis of a consent-withdrawn notice the service sends by itself, from the pair's catalogue `bases` (in
    configured order): the first that does not rest on consent (the person just withdrew it); consent itself only
    when the pair has no other (the notice stops what consent allowed, and an officer may choose it too); None for
    a pair without any basis (nothing may go that way)."""
    other = first_basis_other_than_consent(bases)
    if other is not None:
        return other
    return CONSENT_BASIS if CONSENT_BASIS in bases else None


def first_basis_other_than_consent(bases: Iterable[str]) -> str | None:
    return next((code for code in bases if code != CONSENT_BASIS), None)


def subject_problems(legal_basis: Any, subject: Any) -> list[ErrorDetail]:
    """Consent for adults, a child's recorded views for children; `subject` is the form's `/subject`."""
    if subject is None:
        return [ErrorDetail("required", "/subject")]
    shape = sorted(set(_details_all(subject)), key=lambda d: d.pointer)
    if shape:
        return shape
    if subject["age_group"] == ADULT:
        if "consent" not in subject:
            return [ErrorDetail("required", "/subject/consent")]
        if legal_basis == CONSENT_BASIS and not subject["consent"]["given"]:
            return [ErrorDetail("consent_not_given", "/subject/consent/given")]
        return []
    problems = []
    if legal_basis == CONSENT_BASIS:
        problems.append(ErrorDetail("consent_not_a_basis_for_child", "/legal_basis"))
    if "consent" in subject:
        problems.append(ErrorDetail("consent_not_applicable_for_child", "/subject/consent"))
    if "child_views" not in subject:
        problems.append(ErrorDetail("required", "/subject/child_views"))
    return problems


def _details_all(subject: Any) -> list[ErrorDetail]:
    return [
        detail
        for error in _SUBJECT.iter_errors(subject)
        for detail in schema_error_details(error, "/subject")
    ]
