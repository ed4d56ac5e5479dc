"""Return cases: opened by the host country's officer, assessed (an adult's consent; for a child the origin
country's family assessment, a best-interests assessment and a panel's determination), decided, planned and
approved by the coordinator through the child gate, travelled, received, reintegrated, followed up, closed - or
stopped at any point, at once when an adult withdraws consent - on the case (`withdraw_consent`) or in
identification (service_layer/withdrawals.py), both through `apply_consent_withdrawal`; after the latter no consent
of hers is recorded any more (409 `consent_withdrawn`).

Each command reads the case in the caller's scope, rebuilds what the rules need from the sealed records
(domain/case.ReturnCase), lets the domain decide, and writes the case back in one version-guarded write with its
timeline entry; a write that lost a race (the consumer following the exchange, the scheduler, another officer)
runs the command again on the case as it now is (`retry_concurrent`). Bodies are read by the domain's strict
parsers, which report every problem at once (422).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from datetime import datetime
from typing import Any

from plumbing.auth import Caller
from plumbing.clock import as_utc
from plumbing.documents import new_id
from plumbing.errors import NotFound
from plumbing.repository import retry_concurrent
from voluntary_return.adapters.documents import ConsentWithdrawalDocument, ReturnCaseDocument
from voluntary_return.domain import case as case_rules
from voluntary_return.domain import events, lifecycle
from voluntary_return.domain import plan as plan_rules
from voluntary_return.domain.best_interests import (
    BestInterestsAssessment,
    Determination,
    FamilyAssessment,
    check_basis,
    parse_assessment,
    parse_determination,
    parse_family_assessment,
)
from voluntary_return.domain.case import ReturnCase
from voluntary_return.domain.consent import Consent, parse_consent
from voluntary_return.domain.errors import DomainError, ErrorDetail, NotPermitted, Refused, raise_all
from voluntary_return.domain.lifecycle import Action, Side, Status, Transition
from voluntary_return.domain.subject import Subject
from voluntary_return.service_layer import deadlines
from voluntary_return.service_layer.deps import Deps
from voluntary_return.service_layer.events import case_event, transition_events

RESOURCE = "return-case"
CONSENT, FAMILY_ASSESSMENT, ASSESSMENT, DETERMINATION, PLAN = (
    "consent",
    "family_assessment",
    "best_interests_assessment",
    "determination",
    "plan",
)
AGE_GROUPS = ("child", "adult")
IDENTIFICATION = "identification"  # where a withdrawal of consent was recorded, when not on the case itself
DETERMINATION_ACTION = "best-interests-determination"  # config/platform.yaml `authorisations`
# The actions of `POST .../transitions`; the gated ones and plan approval have operations of their own.
TRANSITION_ACTIONS = frozenset(Action) - {Action.APPROVE_PLAN}


# ------------------------------------------------------------------------------------------------ open


def open_case(deps: Deps, caller: Caller, body: Mapping[str, Any]) -> dict[str, Any]:
    """A return case in the caller's country for a person returning to `origin_country`. When it names the
    country's identification case (and the deployment has identification), the person and whether she is treated
    as a child come from there, read on the caller's behalf; otherwise the body states the age group."""
    errors: list[ErrorDetail] = []
    origin = body.get("origin_country")
    if origin not in deps.config.country_codes:
        errors.append(ErrorDetail("not_a_partner_country", "/origin_country"))
    elif origin == caller.country:
        errors.append(ErrorDetail("origin_is_the_host_country", "/origin_country"))
    case_id = body.get("identification_case_id")
    person_id: str | None = None
    age_group = body.get("age_group")
    age_uncertain = bool(body.get("age_uncertain", False))
    if case_id and deps.identification is not None:
        try:
            person = deps.identification.case_and_person(str(case_id))["person"]
        except NotFound:
            raise DomainError(
                "identification_case_not_visible",
                "the identification case is not one the caller may read",
                pointer="/identification_case_id",
            ) from None
        person_id = str(person.get("id") or "") or None
        # Identification's `child` is true for a child and for anyone whose age is not established.
        age_group, age_uncertain = ("child" if person.get("child", True) else "adult"), False
    elif age_group not in AGE_GROUPS:
        errors.append(ErrorDetail("age_group_required", "/age_group"))
    raise_all(errors, "the return case cannot be opened")
    now = deps.clock.now()
    doc = ReturnCaseDocument(
        id=new_id(),
        owner_country=caller.country,
        owner_agency=caller.agency,
        status=str(Status.REQUESTED),
        identification_case_id=case_id,
        person_id=person_id,
        origin_country=origin,
        age_group=age_group,
        age_uncertain=age_uncertain,
        exchange_case_id=body.get("exchange_case_id"),
        timeline=[
            {
                "at": now,
                "by": caller.sub,
                "agency": caller.agency,
                "action": "open",
                "to": str(Status.REQUESTED),
            }
        ],
    )
    stored = deps.repository(ReturnCaseDocument, caller).insert(
        doc, events=[case_event(deps, doc, events.REQUESTED)]
    )
    return _answered(deps, caller, stored)


# ----------------------------------------------------------------------------------------------- reads


def get_case(deps: Deps, caller: Caller, case_id: str) -> dict[str, Any]:
    return _answered(deps, caller, deps.repository(ReturnCaseDocument, caller).get(case_id))


def list_cases(
    deps: Deps,
    caller: Caller,
    *,
    status: str | None = None,
    limit: int | None = None,
    cursor: str | None = None,
) -> dict[str, Any]:
    filters: dict[str, Any] = {"status": status} if status else {}
    page = deps.repository(ReturnCaseDocument, caller).list_page(limit=limit, cursor=cursor, **filters)
    if page.items:
        deps.record_read(caller, RESOURCE, [i for doc in page.items for i in logged_ids(doc)])
    return page.body(lambda doc: case_view(deps, caller, doc))


# ------------------------------------------------------------------------------------------- records


def record_consent(deps: Deps, caller: Caller, case_id: str, body: Mapping[str, Any]) -> dict[str, Any]:
    """An adult's informed consent to return (a child's consent never clears a child's return: the gate asks
    for a determination). Refused once the case's person withdrew her consent in identification (409
    `consent_withdrawn`: `withdrawn_in_identification`)."""
    return _record(deps, caller, case_id, CONSENT, body)


def record_family_assessment(
    deps: Deps, caller: Caller, case_id: str, body: Mapping[str, Any]
) -> dict[str, Any]:
    return _record(deps, caller, case_id, FAMILY_ASSESSMENT, body)


def record_best_interests_assessment(
    deps: Deps, caller: Caller, case_id: str, body: Mapping[str, Any]
) -> dict[str, Any]:
    return _record(deps, caller, case_id, ASSESSMENT, body)


def record_determination(deps: Deps, caller: Caller, case_id: str, body: Mapping[str, Any]) -> dict[str, Any]:
    """A best-interests panel's determination, by a role the country authorises for it (config
    `authorisations`), resting on the assessments the case holds."""
    if not deps.config.is_authorised(caller.country, DETERMINATION_ACTION, caller.roles):
        raise NotPermitted("not_authorised_for_determination")
    return _record(deps, caller, case_id, DETERMINATION, body)


@retry_concurrent()
def _record(deps: Deps, caller: Caller, case_id: str, record: str, body: Mapping[str, Any]) -> dict[str, Any]:
    cases = deps.repository(ReturnCaseDocument, caller)
    doc = cases.get(case_id)
    if doc.status in {str(s) for s in lifecycle.TERMINAL}:
        raise Refused(f"case_{doc.status}")
    if doc.side == Side.ORIGIN:
        # Consent, assessments and the determination are the host country's; the origin country's own (its
        # family assessment) travel to the host as exchange forms.
        raise Refused("recorded_by_the_host_country")
    if record == CONSENT and withdrawn_in_identification(deps, doc):
        # She withdrew her consent (recorded in identification): no return of hers rests on consent any more.
        raise Refused("consent_withdrawn")
    now = deps.clock.now()
    facts = _facts(deps, doc)
    parsed = _parse(deps, record, body, caller, now, doc)
    if record == CONSENT and facts.subject.treated_as_child:
        raise Refused("consent_does_not_clear_a_child")
    if record == DETERMINATION:
        assert isinstance(parsed, Determination)  # noqa: S101 - _parse made it
        check_basis(
            parsed,
            assessment=_stored(deps, doc, ASSESSMENT),  # type: ignore[arg-type]
            family_assessment=_stored(deps, doc, FAMILY_ASSESSMENT),  # type: ignore[arg-type]
        )
        doc.decision = str(parsed.decision)
    if record == CONSENT:
        doc.consent_current = True
    doc.sealed = {
        **(doc.sealed or {}),
        record: deps.sealer.seal(
            doc.owner_country,
            doc.id,
            record,
            {"body": dict(body), "recorded_by": caller.sub, "recorded_at": _iso(now)},
        ),
    }
    doc.timeline = [
        *doc.timeline,
        {"at": now, "by": caller.sub, "agency": caller.agency, "action": f"{record}_recorded"},
    ]
    cases.update(
        doc,
        events=[case_event(deps, doc, events.DETERMINATION_RECORDED, decision=doc.decision)]
        if record == DETERMINATION
        else [],
    )
    return _answered(deps, caller, doc)


@retry_concurrent()
def assign_panel_member(deps: Deps, caller: Caller, case_id: str, member: str) -> dict[str, Any]:
    """A best-interests panel member (a user id) is given the case to read and determine; she reads only the
    cases assigned to her (need-to-know `assigned_only`)."""
    cases = deps.repository(ReturnCaseDocument, caller)
    doc = cases.get(case_id)
    if member not in (doc.assigned_to or []):
        doc.assigned_to = [*(doc.assigned_to or []), member]
        doc.timeline = [
            *doc.timeline,
            {
                "at": deps.clock.now(),
                "by": caller.sub,
                "agency": caller.agency,
                "action": "panel_member_assigned",
            },
        ]
        cases.update(doc)
    return _answered(deps, caller, doc)


# ------------------------------------------------------------------------------------------- transitions


@retry_concurrent()
def withdraw_consent(deps: Deps, caller: Caller, case_id: str) -> dict[str, Any]:
    """The adult withdraws her consent: recorded at once and, while the case runs, it stops
    (`consent_withdrawn`)."""
    cases = deps.repository(ReturnCaseDocument, caller)
    doc = cases.get(case_id)
    cases.update(doc, events=apply_consent_withdrawal(deps, doc, by=caller.sub, agency=caller.agency))
    return _answered(deps, caller, doc)


def apply_consent_withdrawal(
    deps: Deps, doc: ReturnCaseDocument, *, by: str, agency: str, withdrawal_id: str | None = None
) -> list[dict[str, Any]]:
    """The one transition an adult's withdrawal of consent makes on a case, whichever path brought it: applied to
    `doc` (not written), and the events to write with it. The consent the case holds is sealed as withdrawn and no
    longer current, a timeline entry `consent_withdrawn` is added and, while the case runs, it stops with the
    reason `consent_withdrawn` (timeline entry, deadlines cleared, `return.case.stopped.v1`).

    Two paths: an officer's withdrawal on this case (`withdraw_consent`, no `withdrawal_id`), refused without a
    current consent to withdraw (409 `no_consent_recorded` / `consent_already_withdrawn`); and the person's
    withdrawal recorded in identification (service_layer/withdrawals.py, with its `withdrawal_id`), never refused,
    whose timeline entry names it (`withdrawal_id`, `recorded_in: identification`)."""
    now = deps.clock.now()
    facts = _facts(deps, doc)
    codes: dict[str, Any] = {}
    if withdrawal_id is None:
        withdrawal = case_rules.withdraw_consent(facts, at=now, by=by)
    else:
        withdrawal = case_rules.withdrawn_in_identification(facts, at=now, by=by)
        codes = {"withdrawal_id": withdrawal_id, "recorded_in": IDENTIFICATION}
    if withdrawal.consent is not None:
        stored = _open(deps, doc, CONSENT) or {}
        doc.sealed = {
            **doc.sealed,
            CONSENT: deps.sealer.seal(
                doc.owner_country,
                doc.id,
                CONSENT,
                {**stored, "withdrawn_at": _iso(now), "withdrawn_by": by},
            ),
        }
    doc.consent_current = False
    entries: list[dict[str, Any]] = [
        {"at": now, "by": by, "agency": agency, "action": "consent_withdrawn", **codes}
    ]
    if withdrawal.transition is not None:
        _apply(doc, withdrawal.transition, now)
        entries.append(lifecycle.timeline_entry(withdrawal.transition, at=now, by=by, agency=agency))
    doc.timeline = [*doc.timeline, *entries]
    deadlines.schedule(deps, doc)
    return transition_events(deps, doc, withdrawal.transition)


def withdrawn_in_identification(deps: Deps, doc: ReturnCaseDocument) -> bool:
    """Whether the case's person withdrew her consent in identification: a withdrawal of the case's country names
    her person id or the identification case the return case names (service_layer/withdrawals.py keeps them).
    The rule reads the withdrawals unscoped (only whether one exists; nothing of it is returned)."""
    withdrawals = deps.system_repository(ConsentWithdrawalDocument, "system:return-api")
    country = doc.owner_country
    return bool(
        (doc.person_id and withdrawals.find(limit=1, owner_country=country, person_id=doc.person_id))
        or (
            doc.identification_case_id
            and withdrawals.find(limit=1, owner_country=country, case_ids=doc.identification_case_id)
        )
    )


@retry_concurrent()
def transition(deps: Deps, caller: Caller, case_id: str, body: Mapping[str, Any]) -> dict[str, Any]:
    action = Action(body["action"])
    if action not in TRANSITION_ACTIONS:
        raise DomainError("unknown_action", "use the plan operation to approve a plan", pointer="/action")
    cases = deps.repository(ReturnCaseDocument, caller)
    doc = cases.get(case_id)
    facts = _facts(deps, doc)
    found = case_rules.step(facts, action, catalogue=deps.catalogue, reason=body.get("reason"))
    services = case_rules.reception_services(
        facts, action, body.get("reception_services"), catalogue=deps.catalogue
    )
    if action is Action.RECORD_DEPARTURE:
        plan = _open(deps, doc, PLAN)
        assert plan is not None  # noqa: S101 - a planned case holds its approved plan
        plan_rules.require_documents_ready(
            plan_rules.parse_plan(
                plan["body"],
                child=facts.subject.treated_as_child,
                now=_instant(plan["recorded_at"]),
                catalogue=deps.catalogue,
            )
        )
    now = deps.clock.now()
    _apply(doc, found, now)
    doc.timeline = [
        *doc.timeline,
        lifecycle.timeline_entry(found, at=now, by=caller.sub, agency=caller.agency),
    ]
    deadlines.schedule(deps, doc)
    if services:
        doc.reception_services = list(services)
    cases.update(doc, events=transition_events(deps, doc, found, services))
    return _answered(deps, caller, doc)


@retry_concurrent()
def approve_plan(deps: Deps, caller: Caller, case_id: str, body: Mapping[str, Any]) -> dict[str, Any]:
    """The coordinator approves the return plan: through the child gate, whatever the path or role."""
    cases = deps.repository(ReturnCaseDocument, caller)
    doc = cases.get(case_id)
    facts = _facts(deps, doc)
    now = deps.clock.now()
    if "coordinator" not in caller.roles:  # before the body is read: a refusal says nothing about the plan
        raise NotPermitted("coordinator_approval_required")
    plan = plan_rules.parse_plan(
        body, child=facts.subject.treated_as_child, now=now, catalogue=deps.catalogue
    )
    approved = plan_rules.approve_plan(
        facts, plan, roles=frozenset(caller.roles), now=now, by=caller.sub, agency=caller.agency
    )
    doc.sealed = {
        **doc.sealed,
        PLAN: deps.sealer.seal(
            doc.owner_country,
            doc.id,
            PLAN,
            {"body": dict(body), "recorded_by": caller.sub, "recorded_at": _iso(now)},
        ),
    }
    _apply(doc, approved.transition, now)
    doc.timeline = [
        *doc.timeline,
        lifecycle.timeline_entry(
            approved.transition,
            at=now,
            by=caller.sub,
            agency=caller.agency,
            basis=approved.clearance.basis,
        ),
    ]
    cases.update(doc, events=[case_event(deps, doc, events.APPROVED)])
    return _answered(deps, caller, doc)


def _apply(doc: ReturnCaseDocument, found: Transition, now: datetime) -> None:
    doc.status = str(found.target)
    if found.reason is not None:
        doc.reason = found.reason
    if found.action is Action.RECORD_RECEPTION:
        doc.received_at = now
    elif found.action is Action.RECORD_REINTEGRATION_PLAN:
        doc.reintegration_plan_at = now
    elif found.action is Action.RECORD_FOLLOW_UP:
        doc.follow_ups_at = [*(doc.follow_ups_at or []), now]


# ------------------------------------------------------------------------------------------- the facts


def _facts(deps: Deps, doc: ReturnCaseDocument) -> ReturnCase:
    """What the rules need, rebuilt from the document and its sealed records."""
    consent = _stored(deps, doc, CONSENT)
    determination = _stored(deps, doc, DETERMINATION)
    return ReturnCase(
        Status(doc.status),
        Subject(doc.age_group, bool(doc.age_uncertain)),
        consent if isinstance(consent, Consent) else None,
        determination if isinstance(determination, Determination) else None,
        Side(doc.side or Side.HOST),
    )


def _open(deps: Deps, doc: ReturnCaseDocument, record: str) -> dict[str, Any] | None:
    token = (doc.sealed or {}).get(record)
    return deps.sealer.open(doc.owner_country, doc.id, record, token) if token else None


def _stored(
    deps: Deps, doc: ReturnCaseDocument, record: str
) -> Consent | Determination | FamilyAssessment | BestInterestsAssessment | None:
    """A sealed record as the domain value it was parsed into when recorded (read again as of that time)."""
    stored = _open(deps, doc, record)
    if stored is None:
        return None
    at = _instant(stored["recorded_at"])
    value = _parse(deps, record, stored["body"], None, at, doc, recorded_by=stored["recorded_by"])
    if isinstance(value, Consent) and stored.get("withdrawn_at"):
        value = replace(
            value, withdrawn_at=_instant(stored["withdrawn_at"]), withdrawn_by=stored["withdrawn_by"]
        )
    return value


def _parse(
    deps: Deps,
    record: str,
    body: Mapping[str, Any],
    caller: Caller | None,
    now: datetime,
    doc: ReturnCaseDocument,
    *,
    recorded_by: str | None = None,
) -> Any:
    by = recorded_by or (caller.sub if caller else "")
    catalogue = deps.catalogue
    if record == CONSENT:
        return parse_consent(body, recorded_by=by, now=now, catalogue=catalogue)
    if record == FAMILY_ASSESSMENT:
        return parse_family_assessment(body, now=now, catalogue=catalogue, origin_country=doc.origin_country)
    if record == ASSESSMENT:
        return parse_assessment(body, now=now)
    if record == DETERMINATION:
        return parse_determination(body, recorded_by=by, now=now, catalogue=catalogue)
    raise ValueError(record)


def _iso(instant: datetime) -> str:
    return as_utc(instant).isoformat()


def _instant(text: str) -> datetime:
    return as_utc(datetime.fromisoformat(text))


# ------------------------------------------------------------------------------------------------- view


def _answered(deps: Deps, caller: Caller, doc: ReturnCaseDocument) -> dict[str, Any]:
    """The case as the answer to one request: every answer carries its records (personal data), so each is
    access-logged before it is built, whichever command made it."""
    deps.record_read(caller, RESOURCE, logged_ids(doc))
    return case_view(deps, caller, doc)


def case_view(deps: Deps, caller: Caller, doc: ReturnCaseDocument) -> dict[str, Any]:
    """The case as its readers see it: codes, instants, the timeline, the records as recorded (personal data:
    the reads are access-logged by the operations that return it), and what may be done next. Once its retention
    period has passed the records are gone (null, as before they were recorded: service_layer/retention.py) and
    `anonymised_at` says when they were removed."""
    records = {
        record: _open(deps, doc, record)
        for record in (CONSENT, FAMILY_ASSESSMENT, ASSESSMENT, DETERMINATION, PLAN)
    }
    subject = Subject(doc.age_group, bool(doc.age_uncertain))
    consent = records[CONSENT]
    view: dict[str, Any] = {
        "id": doc.id,
        "status": doc.status,
        "owner_country": doc.owner_country,
        "owner_agency": doc.owner_agency,
        "origin_country": doc.origin_country,
        "side": doc.side or str(Side.HOST),
        "host_country": doc.host_country or (doc.owner_country if doc.side != Side.ORIGIN else None),
        "exchange_case_id": doc.exchange_case_id,
        "identification_case_id": doc.identification_case_id,
        "person_id": doc.person_id,
        "treated_as_child": subject.treated_as_child,
        "consent": None
        if consent is None
        else {
            **consent["body"],
            "recorded_at": consent["recorded_at"],
            "withdrawn_at": consent.get("withdrawn_at"),
        },
        "family_assessment": _body(records[FAMILY_ASSESSMENT]),
        "best_interests_assessment": _body(records[ASSESSMENT]),
        "determination": _body(records[DETERMINATION]),
        "plan": _body(records[PLAN]),
        "reason": doc.reason,
        "received_at": _iso(doc.received_at) if doc.received_at else None,
        "reception_services": list(doc.reception_services or ()),
        "timeline": [{**entry, "at": _iso(entry["at"])} for entry in doc.timeline or ()],
        "allowed_actions": [str(a) for a in lifecycle.allowed_actions(doc.status, doc.side or Side.HOST)],
    }
    if doc.anonymised_at is not None:
        view["anonymised_at"] = _iso(doc.anonymised_at)
    return view


def _body(stored: Mapping[str, Any] | None) -> dict[str, Any] | None:
    return None if stored is None else {**stored["body"], "recorded_at": stored["recorded_at"]}


def logged_ids(doc: ReturnCaseDocument) -> list[str]:
    """What a read's access-log entry names: the return case, and the identification case and person it is
    about when the host side linked them, so that a country's auditors find every read of a child's data by the
    child's id (GET /v1/return/access-log?record_id=, docs/data-protection.md)."""
    return [doc.id, *(link for link in (doc.identification_case_id, doc.person_id) if link)]
