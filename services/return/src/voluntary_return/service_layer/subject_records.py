"""What return holds about one person, for her request of access (plumbing.subject_access): every return case of
the caller's country that names her identification person id or one of her case ids, in the view the API gives
its readers (consent, assessments, determination, plan, reception and follow-up)."""

from __future__ import annotations

from collections.abc import Sequence

from plumbing.auth import Caller
from plumbing.subject_access import SubjectRecord, naming
from voluntary_return.adapters.documents import ReturnCaseDocument
from voluntary_return.service_layer.cases import case_view
from voluntary_return.service_layer.deps import Deps

RECORD_TYPE = "return-case"


def records_about(deps: Deps, caller: Caller, person_id: str, case_ids: Sequence[str]) -> list[SubjectRecord]:
    cases = deps.repository(ReturnCaseDocument, caller)
    found = naming(cases, person_id, case_ids, case_field="identification_case_id")
    return [SubjectRecord(RECORD_TYPE, doc.id, case_view(deps, caller, doc)) for doc in found]
