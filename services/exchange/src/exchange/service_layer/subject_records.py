"""What exchange holds about one person, for her request of access (plumbing.subject_access): every transnational
case record of the caller's country linked to one of her identification case ids, in the view the API gives its
readers, with the content of each form (opened: it is hers), and the countries forms about her were sent to.

A received case that the country never linked to its own identification case names no id of hers here; the data
protection officer finds it by the case reference the identification case's timeline or the sender gives."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from exchange.adapters.documents import ExchangeCaseDocument
from exchange.domain.case import Direction
from exchange.service_layer.deps import Deps
from exchange.service_layer.records import cases, to_case
from exchange.service_layer.views import case_view
from plumbing.auth import Caller
from plumbing.subject_access import SubjectRecord

RECORD_TYPE = "exchange-case"


def records_about(
    deps: Deps, caller: Caller, case_ids: Sequence[str]
) -> tuple[list[SubjectRecord], set[str]]:
    """The records and the countries sent to."""
    if not case_ids:
        return [], set()
    found: list[ExchangeCaseDocument] = cases(deps, caller).find(identification_case_id__in=list(case_ids))
    sent_to = {
        form.counterpart
        for doc in found
        for form in to_case(doc).forms
        if form.direction == Direction.OUT and form.sent_at is not None
    }
    return [SubjectRecord(RECORD_TYPE, doc.id, _content(deps, caller, doc)) for doc in found], sent_to


def _content(deps: Deps, caller: Caller, doc: ExchangeCaseDocument) -> dict[str, Any]:
    contents = {
        form_id: deps.contents.open(doc.owner_country, doc.id, form_id, sealed)
        for form_id, sealed in (doc.contents or {}).items()
    }
    return {**case_view(deps, caller, doc), "form_contents": contents}
