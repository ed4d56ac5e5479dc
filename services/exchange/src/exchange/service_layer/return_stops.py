"""A return stopped in one country is told to the other: the `return-stopped` form, sent by the exchange itself.

The return service publishes `return.case.stopped.v1` (ids and codes: the return case, the country's record of
the transnational case it names, the coded reason). The return's forms went through this record, so the country
that received its return request (or sent it) must learn that the return stopped - at once, whoever stopped it
and whatever their role: an adult's withdrawal of consent to return stops the return in both countries. The
consumer applies each such event here: for every partner the record exchanged a `return-request` with, a
`return-stopped` form (the coded reason) is drafted and sent under the country's own signature, like an inbox
receipt (`records.inbox_caller`), with the subject and legal basis of that return request (never consent, which
the person may just have withdrawn: the first other basis of the pair instead). The partner's return service sees
the form arrive and stops its own case.

Not sent: when the stop has no record, when the return was stopped because the partner said so
(`stopped_in_partner_country`), when consent to the exchange itself was withdrawn on the record (the partner
was notified by that notice and stopped its return from it), and when the record was closed or anonymised.
Applied once per event: each form is keyed by the event id and the partner (a redelivery finds it sent).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from exchange.domain import legal
from exchange.domain.case import CLOSED, Form, Status
from exchange.service_layer import sending
from exchange.service_layer.deps import Deps
from exchange.service_layer.records import inbox_caller, load
from plumbing.errors import NotFound

log = logging.getLogger(__name__)

RETURN_STOPPED_EVENT = "return.case.stopped.v1"
RETURN_STOPPED, RETURN_REQUEST = "return-stopped", "return-request"
# The return's reason when the partner told it (service_layer/border.py there): never sent back.
STOPPED_IN_PARTNER_COUNTRY = "stopped_in_partner_country"


def tell_partners_the_return_stopped(deps: Deps, envelope: Mapping[str, Any]) -> list[str]:
    """The partners a `return-stopped` form went to for this event (empty when nothing was to be sent)."""
    if envelope.get("type") != RETURN_STOPPED_EVENT:
        raise ValueError("not a return-stopped event")
    data = envelope["data"]
    record_id, reason = data.get("exchange_case_id"), str(data["reason"])
    if not record_id or reason == STOPPED_IN_PARTNER_COUNTRY:
        return []
    caller = inbox_caller(str(data["owner_country"]))
    try:
        doc, case = load(deps, caller, str(record_id))
    except NotFound:
        # The return case names no record of its country (a wrong link): nothing to tell, nobody to tell it to.
        log.warning("return stop names no exchange record", extra={"fields": {"event_id": envelope["id"]}})
        return []
    if case.consent_withdrawn_at is not None or case.status == CLOSED or doc.anonymised_at is not None:
        return []  # told by the consent notice; or the record was closed, or anonymised, and takes no new form
    told: list[str] = []
    for request in _latest_return_requests(case.forms).values():
        key = f"{envelope['id']}:{request.counterpart}"
        body = {
            "form_type": RETURN_STOPPED,
            "case_id": doc.id,
            "recipient": request.counterpart,
            "refers_to": request.id,
            "legal_basis": _basis(deps, caller.country, request),
            "subject": dict(request.subject or {}),
            "content": {"reason": reason.replace("_", "-")},
        }
        sending.draft_and_send(
            deps, caller, {k: v for k, v in body.items() if v is not None}, idempotency_key=key
        )
        told.append(request.counterpart)
    return told


def _latest_return_requests(forms: list[Form]) -> dict[str, Form]:
    """Per partner, the latest return request sent to it or received from it (not a draft, not withdrawn)."""
    latest: dict[str, Form] = {}
    for form in forms:
        if form.form_type == RETURN_REQUEST and form.status not in (Status.DRAFT, Status.WITHDRAWN):
            latest[form.counterpart] = form
    return latest


def _basis(deps: Deps, country: str, request: Form) -> str | None:
    """The return request's basis unless it was consent; then the first other basis of the pair."""
    if request.legal_basis and request.legal_basis != legal.CONSENT_BASIS:
        return request.legal_basis
    pair = deps.config.legal_bases_for(country, request.counterpart)
    return legal.first_basis_other_than_consent(basis.code for basis in pair)
