"""Reading a country's records of transnational cases: the case with its forms in order (its timeline:
metadata, statuses, next actions), one form's content (access-logged, never for a restricted form; none left once
the record was anonymised), and the local link to the country's own identification case (which applies a consent
withdrawal identification announced for it before: service_layer/consent.py)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from exchange.adapters.documents import ExchangeCaseDocument
from exchange.domain.errors import InvalidTransition
from exchange.service_layer import consent
from exchange.service_layer.deps import Deps
from exchange.service_layer.records import RESOURCE_FORM, cases, instant, load, require_not_anonymised
from exchange.service_layer.views import case_view, form_view
from plumbing.auth import Caller
from plumbing.repository import retry_concurrent


def get_case(deps: Deps, caller: Caller, case_id: str) -> dict[str, Any]:
    """Metadata only (no form content): not a read of personal data."""
    return case_view(deps, caller, cases(deps, caller).get(case_id))


def list_cases(deps: Deps, caller: Caller, *, limit: int | None = None) -> list[dict[str, Any]]:
    docs: list[ExchangeCaseDocument] = cases(deps, caller).find(limit=limit)
    return [case_view(deps, caller, doc) for doc in docs]


def page_cases(
    deps: Deps,
    caller: Caller,
    *,
    limit: int | None = None,
    cursor: str | None = None,
    updated_since: datetime | None = None,
) -> dict[str, Any]:
    """One page of the caller's country's records in (updated_at, id) order, so that a national system syncs
    with `updated_since` and the cursor without gaps. Metadata only, like `get_case`."""
    page = cases(deps, caller).list_page(limit=limit, cursor=cursor, updated_since=updated_since)
    return page.body(lambda doc: case_view(deps, caller, doc))


def read_form(deps: Deps, caller: Caller, case_id: str, form_id: str) -> dict[str, Any]:
    """One form with its content. The read is written to the access log before anything is returned.

    A form of an anonymised record (service_layer/retention.py) has no content left: its metadata, `anonymised_at`,
    `subject` and `content` None and no attachments; nothing of the person's is read, so nothing is logged."""
    doc, case = load(deps, caller, case_id)
    form = case.form(form_id)
    if doc.anonymised_at is not None:
        return {
            **form_view(deps, caller, case, form, anonymised=True),
            "anonymised_at": instant(doc.anonymised_at),
            "subject": None,
            "content": None,
            "attachments": [],
        }
    if form.restricted:
        raise InvalidTransition("consent_withdrawn")
    body = deps.contents.open(caller.country, doc.id, form.id, doc.contents[form.id])
    # The entry names the form and, where this country linked it, its own identification case: the country's
    # auditors find the read by either (GET /v1/exchange/access-log?record_id=, docs/data-protection.md).
    deps.record_read(caller, RESOURCE_FORM, [form.id, *filter(None, [doc.identification_case_id])])
    return {
        **form_view(deps, caller, case, form),
        "subject": form.subject,  # adult or child, consent or the child's views: how the content may be used
        "content": body["content"],
        "attachments": body["attachments"],
    }


@retry_concurrent()
def link_identification_case(deps: Deps, caller: Caller, case_id: str, identification_case_id: str) -> None:
    """Our own identification case for this person: kept in our record only, never sent. When identification
    announced that she withdrew her consent (before this link), the withdrawal applies to the record now, as the
    system actor does it for records linked at the time (service_layer/consent.py); the link is written first,
    so that a withdrawal arriving meanwhile finds the record linked if this look does not find it."""
    doc = cases(deps, caller).get(case_id)
    require_not_anonymised(doc)  # 409 `record_anonymised`: it takes no change
    doc.identification_case_id = identification_case_id
    cases(deps, caller).update(doc)
    consent.apply_on_link(deps, caller, case_id, identification_case_id)
