"""What a caller sees of a case and its forms: metadata, statuses as of now, next allowed actions (none once the
record was anonymised, which `anonymised_at` then says), a correction due after identification rectified the
person (`correction_due`, the record's `rectifications`). Content is read separately (`cases.read_form`),
access-logged. Also the form catalogue as a client reads it (form types,
their roles and schemas, every label) and the legal bases the caller's country may send under."""

from __future__ import annotations

from typing import Any

from exchange.adapters.documents import ExchangeCaseDocument
from exchange.domain.case import Form, TransnationalCase, status_now
from exchange.domain.catalogue import FormType, Labels
from exchange.service_layer.deps import Deps
from exchange.service_layer.records import instant, to_case
from plumbing.auth import Caller


def form_view(
    deps: Deps, caller: Caller, case: TransnationalCase, form: Form, *, anonymised: bool = False
) -> dict[str, Any]:
    """One form's metadata; `anonymised`: of a record the retention job anonymised, which allows no action."""
    now = deps.clock.now()
    view: dict[str, Any] = {
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
        "allowed_actions": []
        if anonymised
        else [
            {"action": str(a.action), "form_types": list(a.form_types)}
            for a in case.allowed_actions(form, caller.roles, deps.catalogue, now)
        ],
    }
    # Present only when set (service_layer/rectification.py): pointers, ids and instants, never values.
    if form.correction_due:
        view["correction_due"] = _correction_due(form.correction_due)
    if form.refreshed_from_identification:
        view["refreshed_from_identification"] = dict(form.refreshed_from_identification)
    return view


def _correction_due(due: dict[str, Any]) -> dict[str, Any]:
    return {
        "correction_id": due["correction_id"],
        "correction_ids": list(due["correction_ids"]),
        "fields": list(due["fields"]),
        "since": due["since"],
        "updated_at": due.get("updated_at") or due["since"],
    }


def case_view(deps: Deps, caller: Caller, doc: ExchangeCaseDocument) -> dict[str, Any]:
    """The record's metadata; `anonymised_at` only once the retention job anonymised it (its forms then allow no
    action: service_layer/retention.py)."""
    case = to_case(doc)
    anonymised = doc.anonymised_at is not None
    view = {
        "id": doc.id,
        "reference": case.reference,
        "participants": list(case.participants),
        "status": case.status,
        "consent_withdrawn_at": instant(case.consent_withdrawn_at),
        "identification_case_id": doc.identification_case_id,
        # Corrections of the person identification announced that marked forms here (ids and codes only).
        "rectifications": [dict(entry) for entry in case.rectifications],
        "updated_at": instant(doc.updated_at),  # with `id`, what a syncing client de-duplicates pages by
        "forms": [form_view(deps, caller, case, form, anonymised=anonymised) for form in case.forms],
    }
    if anonymised:
        view["anonymised_at"] = instant(doc.anonymised_at)
    return view


# ---------------------------------------------------------------------------------------------- the catalogue


def catalogue_view(deps: Deps, caller: Caller) -> dict[str, Any]:
    """The catalogue as data: what a client needs to offer, fill in and label a form, and the legal bases of
    each pair from the caller's country. Not personal data."""
    catalogue = deps.catalogue
    return {
        "form_types": [_form_type_view(catalogue.types[code]) for code in sorted(catalogue.types)],
        "fields": {name: _labelled(labels) for name, labels in sorted(catalogue.field_labels.items())},
        "codes": {
            code_list: {code: _labelled(labels) for code, labels in sorted(codes.items())}
            for code_list, codes in sorted(catalogue.code_labels.items())
        },
        "legal_bases": [
            {
                "recipient": partner,
                "bases": [
                    {"code": basis.code, "labels": dict(basis.labels), "reviewed": basis.reviewed}
                    for basis in deps.config.legal_bases_for(caller.country, partner)
                ],
            }
            for partner in sorted(deps.config.country_codes - {caller.country})
        ],
    }


def _labelled(labels: Labels) -> dict[str, Any]:
    # Reviewed only when every language is: one unreviewed translation is enough to flag the label.
    return {
        "labels": {language: label.text for language, label in labels.items()},
        "reviewed": all(label.reviewed for label in labels.values()),
    }


def _form_type_view(kind: FormType) -> dict[str, Any]:
    rules = kind.attachments
    return {
        "code": kind.code,
        **_labelled(kind.title),
        "kind": kind.kind,
        "roles": {"draft": sorted(kind.draft_roles), "send": sorted(kind.send_roles)},
        "answers": sorted(kind.answers),
        "about": None if kind.about is None else sorted(kind.about),  # None: any form
        "reply_within_days": kind.reply_within_days,
        "attachments": {
            "allowed": rules.allowed,
            "media_types": sorted(rules.media_types),
            "max_bytes": rules.max_bytes,
            "max_count": rules.max_count,
        },
        "carries": sorted(kind.carries),
        "opens_case": kind.opens_case,
        "closes_case": kind.closes_case,
        "current_version": kind.current_version,
        "versions": [
            {"version": number, "status": version.status, "schema": version.schema}
            for number, version in sorted(kind.versions.items())
        ],
    }
