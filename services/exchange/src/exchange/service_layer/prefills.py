"""A draft's content pre-filled from the country's own identification case (domain/prefill.py says what may be
copied). The case and the person are read from the identification API on the user's behalf; what comes back is
personal data, so this answer is access-logged like a form's content. Nothing is stored: the officer completes
the content and drafts the form as usual."""

from __future__ import annotations

from typing import Any

from exchange.domain.errors import DomainError, ErrorDetail, NotPermitted
from exchange.domain.prefill import prefill
from exchange.service_layer.deps import Deps
from plumbing.auth import Caller
from plumbing.errors import DependencyUnavailable

RESOURCE_PREFILL = "identification-case"


def prefill_form(
    deps: Deps, caller: Caller, *, form_type: str, identification_case_id: str
) -> dict[str, Any]:
    kind = deps.catalogue.form_type(form_type)
    if not caller.roles & kind.draft_roles:
        raise NotPermitted("role_may_not_draft")
    if not kind.prefill or kind.current_version is None:
        raise DomainError("nothing to pre-fill", [ErrorDetail("form_type_not_prefilled", "/form_type")])
    if deps.identification is None:
        raise DependencyUnavailable("identification", "pre-filling is offered by the HTTP app only")
    case = deps.identification.case(identification_case_id)
    person_id = case.get("person_id")
    person = deps.identification.person(str(person_id)) if person_id else {}
    filled = prefill(kind, {"case": case, "person": person})
    deps.record_read(caller, RESOURCE_PREFILL, [identification_case_id])
    return {
        "form_type": kind.code,
        "version": kind.current_version,
        "identification_case_id": identification_case_id,
        "content": filled.content,
        "copied": filled.copied,
        "left_out": filled.left_out,
    }
