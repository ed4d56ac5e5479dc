"""Cases: opened at first contact (or later for a known person), screenings, the category decision, needs, the
recovery and reflection period and closure. Each command is one atomic write of the case document (version
guarded) carrying its timeline entry and its events; a decision then adds a notification (its own document,
written as a follow-up step with an id derived from the decision, so that repeating the step cannot notify
twice and a crash cannot lose it: service_layer/follow_up.py)."""

from __future__ import annotations

import uuid
from datetime import date, datetime, timedelta
from typing import Any

from identification.adapters.documents import CaseDocument, NotificationDocument, PersonDocument
from identification.domain import screening as screening_rules
from identification.domain.categories import (
    AgeGroup,
    Category,
    ClosureReason,
    FormOfExploitation,
    Need,
    VulnerabilityFlag,
)
from identification.domain.errors import DomainError, ErrorDetail, raise_all
from identification.service_layer import follow_up
from identification.service_layer.deps import SOURCE, Deps
from plumbing.auth import Caller
from plumbing.clock import as_utc, rfc3339
from plumbing.documents import new_id
from plumbing.errors import Conflict, NotFound
from plumbing.events import new_event
from plumbing.repository import Page
from plumbing.steps import new_step, perform

MIN_RECOVERY_DAYS = 30
URGENT_NEEDS = frozenset({Need.SAFETY, Need.SHELTER, Need.MEDICAL, Need.GUARDIAN})
FORMAL_DECISION = "formal-victim-identification"
_NOTIFICATION_NAMESPACE = uuid.UUID("6f1c1f0e-5b5e-4a7e-9a43-0d1c8d6a2b11")

# Domain closure reasons -> the codes of identification.case.closed.v1.
CLOSURE_EVENT_REASON = {
    ClosureReason.REINTEGRATION_COMPLETED: "referred",
    ClosureReason.RETURNED_TO_ORIGIN: "returned",
    ClosureReason.DURABLE_SOLUTION_IN_HOST_COUNTRY: "referred",
    ClosureReason.RESETTLED_THIRD_COUNTRY: "other",
    ClosureReason.TRANSFERRED_TO_OTHER_COUNTRY: "transferred_to_partner",
    ClosureReason.NOT_IDENTIFIED: "no_indication",
    ClosureReason.ASSISTANCE_DECLINED: "other",
    ClosureReason.CONSENT_WITHDRAWN: "consent_withdrawn",
    ClosureReason.LOST_CONTACT: "not_reachable",
    ClosureReason.DECEASED: "other",
    ClosureReason.DUPLICATE_RECORD: "duplicate",
    ClosureReason.OTHER: "other",
}


def _entry(deps: Deps, caller: Caller, kind: str, **codes: Any) -> dict[str, Any]:
    return {"at": deps.clock.now(), "by": caller.sub, "agency": caller.agency, "type": kind, **codes}


def open_case(deps: Deps, caller: Caller, person_id: str) -> CaseDocument:
    """A further case for a person the caller can see (the first one is opened by registration)."""
    deps.repository(PersonDocument, caller).get(person_id)  # 404 unless the caller sees the person
    doc = CaseDocument(
        id=new_id(),
        person_id=person_id,
        reference=follow_up.case_reference(deps.next_sequence, caller.country, deps.clock.now().year),
        status="open",
        responsible_officer=caller.sub,
        assigned_to=[caller.sub],
        timeline=[_entry(deps, caller, "opened")],
    )
    return deps.repository(CaseDocument, caller).insert(doc)


def get_case(deps: Deps, caller: Caller, case_id: str) -> CaseDocument:
    return deps.repository(CaseDocument, caller).get(case_id)


def list_cases(
    deps: Deps, caller: Caller, *, limit: int | None, cursor: str | None, updated_since: Any
) -> Page[CaseDocument]:
    return deps.repository(CaseDocument, caller).list_page(
        limit=limit, cursor=cursor, updated_since=updated_since
    )


def _require_open(case: CaseDocument) -> None:
    if case.status != "open":
        raise Conflict("the case is closed")


# ------------------------------------------------------------------------------------------ screening


def _screening_date(body: dict[str, Any], today: date) -> date:
    text = body.get("screening_date")
    if text is None:
        return today
    try:
        value = date.fromisoformat(text)
    except ValueError:
        raise_all([ErrorDetail("date_invalid", "/screening_date")], "bad date")
        raise AssertionError from None  # unreachable
    if value > today:
        raise_all([ErrorDetail("date_in_future", "/screening_date")], "future screening")
    return value


def record_screening(deps: Deps, caller: Caller, body: dict[str, Any]) -> tuple[CaseDocument, dict[str, Any]]:
    from identification.service_layer.persons import is_child, load_person_facts

    cases = deps.repository(CaseDocument, caller)
    case = cases.get(body["case_id"])
    _require_open(case)
    today = deps.clock.now().date()
    on_date = _screening_date(body, today)
    person, details = load_person_facts(deps, caller, case.person_id)
    child = is_child(details, on_date)
    answers = tuple(
        screening_rules.Answer(list_id=a["list_id"], indicator_id=a["indicator_id"])
        for a in body.get("answers") or []
    )
    flags = tuple(VulnerabilityFlag(f) for f in body.get("flags") or [])
    result = screening_rules.screen(
        deps.indicator_sets.current(),
        screening_rules.ScreeningRequest(
            version=body["indicator_set_version"],
            screening_date=on_date,
            child=child,
            answers=answers,
            flags=flags,
            country=caller.country,
        ),
    )
    screening_id = new_id()
    record = result.as_record()
    forms = sorted({str(lst.form) for lst in result.lists if lst.category is not Category.NO_INDICATION})
    positive_groups = sorted(
        {
            str(g.group)
            for lst in result.lists
            if lst.list_id == result.decisive_list
            for g in lst.groups
            if g.positive
        }
    )
    stored = {
        "id": screening_id,
        "kind": body.get("kind", "full"),
        "at": deps.clock.now(),
        "by": caller.sub,
        "answers": [{"list_id": a.list_id, "indicator_id": a.indicator_id} for a in answers],
        "result": record,
        "forms_of_exploitation": forms,
    }
    case.screenings = [*case.screenings, stored]
    case.timeline = [
        *case.timeline,
        _entry(
            deps,
            caller,
            "screening_completed",
            screening_id=screening_id,
            suggested_category=record["suggested"],
            strong_indication=record["strong_indication"],
        ),
    ]
    event = new_event(
        "identification.screening.completed.v1",
        screening_id,
        {
            "screening_id": screening_id,
            "case_id": case.id,
            "person_id": case.person_id,
            "owner_country": case.owner_country,
            "indicator_set_version": body[
                "indicator_set_version"
            ],  # the ref (with @ and +) stays on the case
            "age_group": str(AgeGroup.CHILD if child else AgeGroup.ADULT),
            "suggested_category": str(result.suggested),
            "strong_indication": result.strong_indication,
            "positive_groups": positive_groups,
            "forms_of_exploitation": forms,
        },
        SOURCE,
        clock=deps.clock.now,
    )
    cases.update(case, events=[event])
    return case, stored


def find_screening(deps: Deps, caller: Caller, screening_id: str) -> tuple[CaseDocument, dict[str, Any]]:
    found = deps.repository(CaseDocument, caller).find(limit=1, screenings__id=screening_id)
    if not found:
        raise NotFound("screening not found")
    case = found[0]
    for item in case.screenings:
        if item["id"] == screening_id:
            return case, item
    raise NotFound("screening not found")


# ------------------------------------------------------------------------------------------- decision


def _cross_border(
    deps: Deps, country: str, person: PersonDocument, exploited_in: list[str]
) -> list[dict[str, Any]]:
    partners = deps.config.country_codes - {country}
    links: dict[str, list[str]] = {}
    for code in person.nationalities or []:
        if code in partners:
            links.setdefault(code, []).append("national")
    if person.residence_country in partners:
        links.setdefault(person.residence_country, []).append("resident")
    for code in exploited_in:
        if code in partners:
            links.setdefault(code, []).append("exploited_in")
    return [{"country": c, "links": sorted(set(v))} for c, v in sorted(links.items())]


def decide_category(deps: Deps, caller: Caller, case_id: str, body: dict[str, Any]) -> CaseDocument:
    from identification.service_layer.persons import is_child, load_person_facts

    cases = deps.repository(CaseDocument, caller)
    case = cases.get(case_id)
    _require_open(case)
    category = Category(body["category"])
    errors: list[ErrorDetail] = []
    # A formal identification is taken, and revised, only by the competent authority: deciding `victim`, and
    # replacing a `victim` decision by any other category, need an authorised role and a legal reference.
    if category is Category.VICTIM or case.category == str(Category.VICTIM):
        if not deps.config.is_authorised(caller.country, FORMAL_DECISION, caller.roles):
            errors.append(ErrorDetail("formal_identification_not_authorised", "/category"))
        if not body.get("legal_reference"):
            errors.append(ErrorDetail("required", "/legal_reference"))
    screening_id = body.get("screening_id")
    screening = None
    if screening_id is not None:
        screening = next((s for s in case.screenings if s["id"] == screening_id), None)
        if screening is None:
            errors.append(ErrorDetail("unknown_screening", "/screening_id"))
    exploited_in = list(body.get("exploited_in") or [])
    for i, code in enumerate(exploited_in):
        if code not in deps.config.country_codes:
            errors.append(ErrorDetail("not_a_partner_country", f"/exploited_in/{i}"))
    raise_all(errors, "invalid decision")

    person, details = load_person_facts(deps, caller, case.person_id)
    today = deps.clock.now().date()
    child = is_child(details, today)
    forms = sorted(
        set(body.get("forms_of_exploitation") or (screening or {}).get("forms_of_exploitation", []))
    )
    cross_border = _cross_border(deps, caller.country, person, exploited_in)
    previous = case.category
    now = deps.clock.now()
    case.category = str(category)
    case.category_legal_reference = body.get("legal_reference")
    case.decided_at = now
    age_group = str(AgeGroup.CHILD if child else AgeGroup.ADULT)
    case.stat = {
        "category": str(category),
        "sex": person.sex or "unknown",
        "age_group": age_group,
        "forms": forms,
        "nationality": (person.nationalities or ["unknown"])[0],
        "agency": case.owner_agency,
        "country": case.owner_country,
    }
    decision_id = new_id()
    case.timeline = [
        *case.timeline,
        _entry(
            deps,
            caller,
            "category_decided",
            decision_id=decision_id,
            category=str(category),
            previous_category=previous,
            screening_id=screening_id,
            reason_codes=list(body.get("reason_codes") or []),
        ),
    ]
    data: dict[str, Any] = {
        "case_id": case.id,
        "person_id": case.person_id,
        "owner_country": case.owner_country,
        "owner_agency": case.owner_agency,
        "category": str(category),
        "previous_category": previous,
        "screening_id": screening_id,
        "age_group": age_group,
        "forms_of_exploitation": forms,
        "is_cross_border": bool(cross_border),
        "cross_border": cross_border,
    }
    if screening is not None:
        data["follows_suggestion"] = screening["result"]["suggested"] == str(category)
    event = new_event("identification.category.decided.v1", case.id, data, SOURCE, clock=deps.clock.now)
    # The notification is a second document: stored as a follow-up step in the decision's write, so that a
    # crash before it is written cannot lose it (plumbing.steps).
    step = new_step(
        follow_up.NOTIFY_COORDINATOR,
        now,
        by=caller.sub,
        agency=caller.agency,
        notification={
            "id": str(uuid.uuid5(_NOTIFICATION_NAMESPACE, decision_id)),
            "case_id": case.id,
            "case_reference": case.reference,
            "person_id": case.person_id,
            "category": str(category),
            "age_group": age_group,
            "cross_border": cross_border,
        },
    )
    cases.update(case, events=[event], steps=[step])
    perform(CaseDocument, case, step, follow_up.notify_handler(deps.system_repository), deps.complete_step)
    return case


# ---------------------------------------------------------------------------------------------- needs


def record_needs(deps: Deps, caller: Caller, case_id: str, body: dict[str, Any]) -> CaseDocument:
    cases = deps.repository(CaseDocument, caller)
    case = cases.get(case_id)
    _require_open(case)
    needs = [str(Need(n)) for n in dict.fromkeys(body["needs"])]
    languages = list(dict.fromkeys(body.get("interpreter_languages") or []))
    if languages and str(Need.INTERPRETER) not in needs:
        raise_all(
            [ErrorDetail("interpreter_need_missing", "/interpreter_languages")], "languages without need"
        )
    urgent = bool(body.get("urgent", bool(URGENT_NEEDS & {Need(n) for n in needs})))
    assessment_id = new_id()
    case.needs = needs
    case.interpreter_languages = languages
    case.timeline = [
        *case.timeline,
        _entry(
            deps, caller, "needs_identified", needs_assessment_id=assessment_id, needs=needs, urgent=urgent
        ),
    ]
    data: dict[str, Any] = {
        "needs_assessment_id": assessment_id,
        "case_id": case.id,
        "person_id": case.person_id,
        "owner_country": case.owner_country,
        "needs": needs,
        "urgent": urgent,
    }
    if languages:
        data["interpreter_languages"] = languages
    event = new_event("identification.needs.identified.v1", assessment_id, data, SOURCE, clock=deps.clock.now)
    return cases.update(case, events=[event])


# ----------------------------------------------------------------------------- recovery and reflection


def _first_contact(case: CaseDocument, today: date) -> date:
    dates = [as_utc(case.created_at).date() if case.created_at else today]
    dates += [date.fromisoformat(s["result"]["screening_date"]) for s in case.screenings]
    return min(dates)


def start_recovery_period(deps: Deps, caller: Caller, case_id: str, body: dict[str, Any]) -> CaseDocument:
    cases = deps.repository(CaseDocument, caller)
    case = cases.get(case_id)
    _require_open(case)
    errors: list[ErrorDetail] = []
    if case.category not in (str(Category.VICTIM), str(Category.POTENTIAL_VICTIM)):
        raise Conflict("a recovery and reflection period needs a (potential) victim decision")
    if case.recovery_period:
        raise Conflict("the recovery and reflection period was already started")
    today = deps.clock.now().date()
    try:
        start = date.fromisoformat(body.get("start") or today.isoformat())
    except ValueError:
        errors.append(ErrorDetail("date_invalid", "/start"))
        start = today
    days = int(body.get("days", MIN_RECOVERY_DAYS))
    if days < MIN_RECOVERY_DAYS:
        errors.append(ErrorDetail("recovery_period_too_short", "/days"))
    if start > today + timedelta(days=30):
        errors.append(ErrorDetail("date_too_far_ahead", "/start"))
    # The period protects a person the case knows: it cannot begin before the first contact the case records
    # (its opening, or an earlier screening entered afterwards).
    if start < _first_contact(case, today):
        errors.append(ErrorDetail("date_before_first_contact", "/start"))
    raise_all(errors, "invalid recovery period")
    end = start + timedelta(days=days)
    case.recovery_period = {"start": start.isoformat(), "end": end.isoformat(), "days": days}
    case.timeline = [
        *case.timeline,
        _entry(deps, caller, "recovery_period_started", start=start.isoformat(), end=end.isoformat()),
    ]
    return cases.update(case)


# ---------------------------------------------------------------------------------------------- closure


def close_case(deps: Deps, caller: Caller, case_id: str, body: dict[str, Any]) -> CaseDocument:
    cases = deps.repository(CaseDocument, caller)
    case = cases.get(case_id)
    _require_open(case)
    reason = ClosureReason(body["reason"])
    duplicate_of = body.get("duplicate_of_person_id")
    errors: list[ErrorDetail] = []
    if reason is ClosureReason.DUPLICATE_RECORD and not duplicate_of:
        errors.append(ErrorDetail("required", "/duplicate_of_person_id"))
    if duplicate_of and reason is not ClosureReason.DUPLICATE_RECORD:
        errors.append(ErrorDetail("only_for_duplicate_record", "/duplicate_of_person_id"))
    elif duplicate_of == case.person_id:
        errors.append(ErrorDetail("duplicate_of_itself", "/duplicate_of_person_id"))
    elif duplicate_of:
        try:
            deps.repository(PersonDocument, caller).get(duplicate_of)
        except NotFound:
            errors.append(ErrorDetail("unknown_person", "/duplicate_of_person_id"))
    raise_all(errors, "invalid closure")
    now = deps.clock.now()
    case.status = "closed"
    case.closure = {
        "reason": str(reason),
        "at": now,
        "by": caller.sub,
        "duplicate_of_person_id": duplicate_of,
    }
    case.timeline = [*case.timeline, _entry(deps, caller, "closed", reason=str(reason))]
    data = {
        "case_id": case.id,
        "person_id": case.person_id,
        "owner_country": case.owner_country,
        "reason": CLOSURE_EVENT_REASON[reason],
        "final_category": case.category or str(Category.NO_INDICATION),
        "duplicate_of_person_id": duplicate_of,
    }
    event = new_event("identification.case.closed.v1", case.id, data, SOURCE, clock=deps.clock.now)
    return cases.update(case, events=[event])


# ------------------------------------------------------------------------------------------------ views


def _iso(value: Any) -> Any:
    if isinstance(value, datetime):
        return rfc3339(value)
    return value


def _plain(entry: dict[str, Any]) -> dict[str, Any]:
    return {k: _iso(v) for k, v in entry.items() if v is not None}


def screening_view(case: CaseDocument, item: dict[str, Any]) -> dict[str, Any]:
    result = item["result"]
    return {
        "id": item["id"],
        "case_id": case.id,
        "person_id": case.person_id,
        "kind": item.get("kind", "full"),
        "screened_at": _iso(item["at"]),
        "screened_by": item["by"],
        "indicator_set": result["indicator_set"],
        "screening_date": result["screening_date"],
        "child": result["child"],
        "flags": result["flags"],
        "answers": item["answers"],
        "suggested_category": result["suggested"],
        "strong_indication": result["strong_indication"],
        "decisive_list": result["decisive_list"],
        "immediate_needs": result["immediate_needs"],
        "lists": result["lists"],
        "forms_of_exploitation": item.get("forms_of_exploitation", []),
    }


def case_view(case: CaseDocument) -> dict[str, Any]:
    view: dict[str, Any] = {
        "id": case.id,
        "reference": case.reference,
        "person_id": case.person_id,
        "status": case.status,
        "owner_country": case.owner_country,
        "owner_agency": case.owner_agency,
        "responsible_officer": case.responsible_officer,
        "created_at": _iso(case.created_at),
        "updated_at": _iso(case.updated_at),
        "category": case.category,
        "needs": list(case.needs or []),
        "interpreter_languages": list(case.interpreter_languages or []),
        "screenings": [
            {
                "id": s["id"],
                "suggested_category": s["result"]["suggested"],
                "strong_indication": s["result"]["strong_indication"],
                "screened_at": _iso(s["at"]),
            }
            for s in case.screenings or []
        ],
        "timeline": [_plain(e) for e in case.timeline or []],
    }
    if case.decided_at:
        view["decided_at"] = _iso(case.decided_at)
    if case.category_legal_reference:
        view["legal_reference"] = case.category_legal_reference
    if case.recovery_period:
        view["recovery_period"] = dict(case.recovery_period)
    if case.anonymised_at:
        view["anonymised_at"] = _iso(case.anonymised_at)
    if case.closure:
        view["closure"] = _plain(dict(case.closure))
    return view


def notification_view(doc: NotificationDocument) -> dict[str, Any]:
    view: dict[str, Any] = {
        "id": doc.id,
        "kind": doc.kind,
        "case_id": doc.case_id,
        "case_reference": doc.case_reference,
        "person_id": doc.person_id,
        "category": doc.category,
        "age_group": doc.age_group,
        "cross_border": [dict(c) for c in doc.cross_border or []],
        "owner_country": doc.owner_country,
        "owner_agency": doc.owner_agency,
        "created_at": _iso(doc.created_at),
        "updated_at": _iso(doc.updated_at),
        "acknowledged": bool(doc.acknowledged),
    }
    if doc.acknowledged_at:
        view["acknowledged_at"] = _iso(doc.acknowledged_at)
        view["acknowledged_by"] = doc.acknowledged_by
    return view


def list_notifications(
    deps: Deps, caller: Caller, *, acknowledged: bool | None, limit: int | None, cursor: str | None
) -> Page[NotificationDocument]:
    filters: dict[str, Any] = {}
    if acknowledged is not None:
        filters["acknowledged"] = acknowledged
    return deps.repository(NotificationDocument, caller).list_page(limit=limit, cursor=cursor, **filters)


def acknowledge_notification(deps: Deps, caller: Caller, notification_id: str) -> NotificationDocument:
    repo = deps.repository(NotificationDocument, caller)
    doc = repo.get(notification_id)
    if doc.acknowledged:
        return doc
    doc.acknowledged = True
    doc.acknowledged_at = deps.clock.now()
    doc.acknowledged_by = caller.sub
    return repo.update(doc)


__all__ = ["DomainError", "FormOfExploitation"]
