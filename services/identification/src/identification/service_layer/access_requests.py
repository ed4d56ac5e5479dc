"""Access requests: an officer whose duplicate search found a restricted match (a person registered by another
agency of her country) asks to read that case; the responsible side grants or refuses it.

Who sees a request: the case's agency owns it (need-to-know: its members and the country-wide roles), and it is
assigned to the requester and to the case's responsible officer. Who decides: the case's responsible officer or
a country-wide role (case manager, coordinator's office), never the requester. Both steps are on the case's
timeline. A grant assigns the case and its person to the requester (need-to-know reads assigned records) as a
follow-up step written with the decision, so a crash between the writes cannot lose it (service_layer/follow_up).
"""

from __future__ import annotations

from typing import Any

from identification.adapters.documents import (
    AccessRequestDocument,
    CaseDocument,
    DuplicateSearchDocument,
    PersonDocument,
)
from identification.domain.errors import ErrorDetail, raise_all
from identification.service_layer import follow_up
from identification.service_layer.deps import Deps
from plumbing.auth import Caller
from plumbing.clock import rfc3339
from plumbing.errors import Conflict, NotFound
from plumbing.repository import Page
from plumbing.steps import new_step, perform

DECIDE_ACCESS = "access_decision_not_authorised"


def _timeline_entry(deps: Deps, caller: Caller, kind: str, **codes: Any) -> dict[str, Any]:
    return {"at": deps.clock.now(), "by": caller.sub, "agency": caller.agency, "type": kind, **codes}


def _restricted_match(deps: Deps, caller: Caller, search_id: str, case_id: str) -> PersonDocument:
    """The person behind `case_id`, provided the caller's own search answered it as a restricted match."""
    # 404 unless it is a search the caller can see (as a person named in the body of POST /cases).
    search = deps.repository(DuplicateSearchDocument, caller).get(search_id)
    people = deps.existence_repository(PersonDocument, caller)
    for result in search.results:
        if not result.get("restricted"):
            continue
        try:
            person = people.get(str(result["person_id"]))
        except NotFound:
            continue
        if person.first_case_id == case_id:
            return person
    raise_all([ErrorDetail("not_a_restricted_match", "/case_id")], "case not answered by this search")
    raise AssertionError  # unreachable


def request_access(deps: Deps, caller: Caller, body: dict[str, Any]) -> tuple[AccessRequestDocument, bool]:
    """Returns (request, created). The same requester asking again for the same case while a request is pending
    gets that request back."""
    person = _restricted_match(deps, caller, body["search_id"], body["case_id"])
    requests = deps.repository(AccessRequestDocument, caller)
    pending = requests.find(limit=1, case_id=body["case_id"], requested_by=caller.sub, status="pending")
    if pending:
        return pending[0], False
    case = deps.existence_repository(CaseDocument, caller).get(body["case_id"])
    doc = AccessRequestDocument(
        case_id=case.id,
        person_id=person.id,
        search_id=body["search_id"],
        requested_by=caller.sub,
        requester_agency=caller.agency,
        reason=body["reason"],
        status="pending",
        assigned_to=sorted({caller.sub, case.responsible_officer}),
    )
    stored = deps.system_repository(AccessRequestDocument, caller.sub).insert(
        doc, owner_country=case.owner_country, owner_agency=case.owner_agency
    )
    case.timeline = [
        *case.timeline,
        _timeline_entry(deps, caller, "access_requested", request_id=stored.id, reason=body["reason"]),
    ]
    deps.existence_repository(CaseDocument, caller).update(case)
    return stored, True


def list_access_requests(
    deps: Deps, caller: Caller, *, status: str | None, limit: int | None, cursor: str | None
) -> Page[AccessRequestDocument]:
    filters: dict[str, Any] = {"status": status} if status else {}
    return deps.repository(AccessRequestDocument, caller).list_page(limit=limit, cursor=cursor, **filters)


def decide_access(deps: Deps, caller: Caller, request_id: str, body: dict[str, Any]) -> AccessRequestDocument:
    requests = deps.repository(AccessRequestDocument, caller)
    request = requests.get(request_id)
    if request.status != "pending":
        raise Conflict("this access request was decided already")
    try:
        case = deps.repository(CaseDocument, caller).get(request.case_id)
    except NotFound:
        case = None
    country_wide = bool(frozenset(caller.roles) & deps.config.need_to_know.country_wide)
    responsible = case is not None and case.responsible_officer == caller.sub
    if caller.sub == request.requested_by or case is None or not (responsible or country_wide):
        raise_all([ErrorDetail(DECIDE_ACCESS, "")], "not the responsible side")
        raise AssertionError  # unreachable
    granted = bool(body["granted"])
    request.status = "granted" if granted else "refused"
    request.decided_by, request.decided_at = caller.sub, deps.clock.now()
    request.decision_reason = body["reason"]
    step = new_step(
        follow_up.RECORD_ACCESS_DECISION,
        deps.clock.now(),
        by=caller.sub,
        agency=caller.agency,
        request_id=request.id,
        granted=granted,
        reason=body["reason"],
    )
    requests.update(request, steps=[step])
    perform(
        AccessRequestDocument,
        request,
        step,
        follow_up.access_decision_handler(deps.system_repository),
        deps.complete_step,
    )
    return request


def access_request_view(doc: AccessRequestDocument) -> dict[str, Any]:
    return {
        "id": doc.id,
        "case_id": doc.case_id,
        "owner_country": doc.owner_country,
        "owner_agency": doc.owner_agency,
        "requested_by": doc.requested_by,
        "requester_agency": doc.requester_agency,
        "requested_at": rfc3339(doc.created_at),
        "reason": doc.reason,
        "status": doc.status,
        "decided_by": doc.decided_by,
        "decided_at": rfc3339(doc.decided_at) if doc.decided_at else None,
        "decision_reason": doc.decision_reason,
    }
