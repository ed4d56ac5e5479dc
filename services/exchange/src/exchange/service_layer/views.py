"""What a caller sees of a case and its forms: metadata, statuses as of now, next allowed actions. Content is
read separately (`cases.read_form`), access-logged."""

from __future__ import annotations

from typing import Any

from exchange.adapters.documents import ExchangeCaseDocument
from exchange.domain.case import Form, TransnationalCase, status_now
from exchange.service_layer.deps import Deps
from exchange.service_layer.records import instant, to_case
from plumbing.auth import Caller


def form_view(deps: Deps, caller: Caller, case: TransnationalCase, form: Form) -> dict[str, Any]:
    now = deps.clock.now()
    return {
        "id": form.id,
        "form_type": form.form_type,
        "version": form.version,
        "kind": form.kind,
        "direction": str(form.direction),
        "counterpart": form.counterpart,
        "status": str(status_now(form, deps.catalogue, now)),
        "refers_to": form.refers_to,
        "supersedes": form.supersedes,
        "superseded_by": form.superseded_by,
        "legal_basis": form.legal_basis,
        "sent_at": instant(form.sent_at),
        "received_at": instant(form.received_at),
        "acknowledged_at": instant(form.acknowledged_at),
        "answered_at": instant(form.answered_at),
        "answered_by": form.answered_by,
        "deadline": instant(form.deadline),
        "withdrawn_at": instant(form.withdrawn_at),
        "withdrawal_reason": form.withdrawal_reason,
        "restricted": form.restricted,
        "allowed_actions": [
            {"action": str(a.action), "form_types": list(a.form_types)}
            for a in case.allowed_actions(form, caller.roles, deps.catalogue, now)
        ],
    }


def case_view(deps: Deps, caller: Caller, doc: ExchangeCaseDocument) -> dict[str, Any]:
    case = to_case(doc)
    return {
        "id": doc.id,
        "reference": case.reference,
        "participants": list(case.participants),
        "status": case.status,
        "consent_withdrawn_at": instant(case.consent_withdrawn_at),
        "identification_case_id": doc.identification_case_id,
        "forms": [form_view(deps, caller, case, form) for form in case.forms],
    }
