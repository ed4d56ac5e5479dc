"""Referrals: created as proposals (by a referrer, or from identification's needs: service_layer/proposals.py),
requested (sent) by the referrer with the granted case fields copied and sealed, answered by the provider, started,
completed, or cancelled / revoked by the referrer; consent withdrawal ends every active referral of a person,
whether the referring side records it (`withdraw_consent`) or identification announces it
(`end_on_consent_withdrawn`, with service_layer/withdrawals.py refusing anything new for her afterwards).

Each command is one version-guarded write of the referral carrying its timeline entry and its events. Accepting
a referral of a service type with capacity first takes a place with one conditional update of the provider
(service_layer/capacity.py); should the referral's write then fail, the place is given back unless the
referral holds it after all (a concurrent retry of the same accept won). Ending a referral that holds a place
frees the place after the referral's write, so a place is never free while a referral still holds it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, TypeAlias

from plumbing.auth import Caller
from plumbing.documents import new_id
from plumbing.errors import Conflict, NotFound
from referral.adapters.documents import ProviderDocument, ReferralDocument
from referral.domain import capacity as capacity_rules
from referral.domain import deadlines, events, lifecycle, minimisation
from referral.domain.catalogue import CHILD
from referral.domain.directory import FEMALE, MALE
from referral.domain.errors import DomainError, ErrorDetail, InvalidTransition, NotPermitted, raise_all
from referral.domain.lifecycle import Action, Side, Status
from referral.domain.visibility import facts_of, is_informed_only, require_side, sides
from referral.service_layer import capacity, withdrawals
from referral.service_layer.deps import Deps, Repository, SystemRepository
from referral.service_layer.records import instant, plain, to_provider

RESOURCE = "referral-fields"
SEX_CODES = frozenset({FEMALE, MALE, "other", "unknown"})
# The caller's repositories (a command of the API) or the unscoped ones (a worker acting as the system)
Records: TypeAlias = Repository[Any] | SystemRepository[Any]


def _need_to_know(deps: Deps) -> Any:
    from plumbing.repository import NeedToKnowPolicy

    return NeedToKnowPolicy.from_config(deps.config)


def referral_event(deps: Deps, doc: ReferralDocument, event_type: str, **extra: Any) -> dict[str, Any]:
    data = events.referral_data(doc, **extra)
    events.check_payload(event_type, data)
    return deps.new_event(event_type, doc.id, data)


# ------------------------------------------------------------------------------------------------ create


def create_referral(deps: Deps, caller: Caller, body: Mapping[str, Any]) -> dict[str, Any]:
    """A proposal the referrer will complete and request (an outreach worker typing a referral in, or a case
    manager referring beyond the proposals made from identification)."""
    errors: list[ErrorDetail] = []
    service_type = body.get("service_type")
    if service_type is not None and service_type not in deps.catalogue.service_types:
        errors.append(ErrorDetail("unknown_service_type", "/service_type"))
    raise_all(errors, "invalid referral")
    person_id = body.get("person_id")
    withdrawals.refuse_if_withdrawn(deps, caller.country, person_id, body.get("case_id"))
    if body.get("case_id") and deps.identification is not None:
        # A referral never names a case its referrer cannot read: identification answers with her scope.
        person_id = _person_of_case(deps, str(body["case_id"]), person_id)
        withdrawals.refuse_if_withdrawn(deps, caller.country, person_id, None)
    doc = ReferralDocument(
        id=new_id(),
        # Ownership is the caller's (insert sets it again); the event written with the insert names it.
        owner_country=caller.country,
        owner_agency=caller.agency,
        status=str(Status.PROPOSED),
        case_id=body.get("case_id"),
        person_id=person_id,
        service_type=service_type,
        candidate_service_types=[service_type] if service_type else [],
        urgent=bool(body.get("urgent", False)),
        timeline=[
            {
                "at": deps.clock.now(),
                "by": caller.sub,
                "agency": caller.agency,
                "action": "propose",
                "to": "proposed",
            }
        ],
    )
    stored = deps.repository(ReferralDocument, caller).insert(
        doc, events=[referral_event(deps, doc, events.PROPOSED)]
    )
    return referral_view(deps, caller, stored)


def _person_of_case(deps: Deps, case_id: str, named: str | None) -> str | None:
    """The person of an identification case the caller may read (on her behalf), checked against the person the
    proposal names; 422 at `/case_id` when identification does not let her read the case."""
    assert deps.identification is not None  # noqa: S101 - the caller checked
    try:
        case = deps.identification.case_and_person(case_id)["case"]
    except NotFound:
        raise DomainError(
            "identification_case_not_visible",
            "the identification case is not one the caller may read",
            pointer="/case_id",
        ) from None
    person_id = case.get("person_id")
    if named and person_id and named != person_id:
        raise DomainError("person_not_of_case", "the person is not the case's", pointer="/person_id")
    return str(person_id) if person_id else named


# ----------------------------------------------------------------------------------------------- request


def _resolve_provider(
    deps: Deps, caller: Caller, doc: ReferralDocument, body: Mapping[str, Any], municipality: str | None
) -> ProviderDocument | None:
    providers = deps.repository(ProviderDocument, caller)
    provider_id = body.get("provider_id")
    if provider_id:
        try:
            return providers.get(provider_id)
        except NotFound:
            return None
    if doc.provider_agency:
        # A guardianship proposal: the municipality's authority when known, else the country's fallback.
        agency = deps.catalogue.guardianship_authority(caller.country, municipality)
        found = providers.find(limit=1, agency_id=agency) or providers.find(
            limit=1, agency_id=doc.provider_agency
        )
        return found[0] if found else None
    return None


def request_referral(deps: Deps, caller: Caller, referral_id: str, body: Mapping[str, Any]) -> dict[str, Any]:
    """Send the referral: provider, service type, the person's group, the basis (an adult's consent or a child's
    legal basis), the field sets granted and the case fields to copy (`case_fields`: fetched from identification
    on the referrer's behalf, or typed in). Every problem is reported at once (422); nothing is stored before."""
    referrals = deps.repository(ReferralDocument, caller)
    doc = referrals.get(referral_id)
    require_side(caller, facts_of(doc), Side.REFERRER, _need_to_know(deps))
    kind_code = body.get("service_type") or doc.service_type
    transition = lifecycle.plan(doc.status, Action.REQUEST, capacity=False)
    withdrawals.refuse_if_withdrawn(deps, doc.owner_country, doc.person_id, doc.case_id)
    catalogue = deps.catalogue
    rules = catalogue.country(caller.country)
    errors: list[ErrorDetail] = []
    if not kind_code:
        errors.append(ErrorDetail("service_type_required", "/service_type"))
    elif kind_code not in catalogue.service_types:
        errors.append(ErrorDetail("unknown_service_type", "/service_type"))
    age_group = body.get("age_group") or doc.age_group
    sex = body.get("sex") or doc.sex
    if sex is not None and sex not in SEX_CODES:
        errors.append(ErrorDetail("unknown_code", "/sex"))
    municipality = body.get("municipality") or doc.municipality
    if municipality and municipality not in catalogue.municipalities.get(caller.country, {}):
        errors.append(ErrorDetail("unknown_municipality", "/municipality"))
        municipality = None
    errors += lifecycle.basis_problems(age_group, body.get("consent"), body.get("legal_basis"), rules)
    service_type = catalogue.service_types.get(kind_code or "")
    if (
        service_type is not None
        and age_group in ("child", "adult")
        and age_group not in service_type.for_groups
    ):
        errors.append(ErrorDetail("service_type_not_for_age_group", "/service_type"))
    provider_doc = _resolve_provider(deps, caller, doc, body, municipality)
    family = bool(body.get("family", doc.family))
    group: str | None = None
    if provider_doc is None:
        errors.append(ErrorDetail("unknown_provider", "/provider_id"))
    elif service_type is not None:
        provider = to_provider(provider_doc)
        if not provider.active:
            errors.append(ErrorDetail("provider_inactive", "/provider_id"))
        if service_type.code not in provider.service_types:
            errors.append(ErrorDetail("provider_does_not_offer_service", "/provider_id"))
        if age_group in ("child", "adult") and not provider.accepts.admits(age_group, sex):
            errors.append(ErrorDetail("provider_does_not_admit", "/provider_id"))
        if service_type.capacity:
            group = capacity_rules.group_for(age_group or "", sex, provider.capacity, family=family)
            if group is None:
                errors.append(ErrorDetail("provider_has_no_place_for_group", "/provider_id"))
    sets: tuple[str, ...] = ()
    if service_type is not None:
        try:
            sets = minimisation.granted_sets(body.get("field_sets"), service_type)
        except DomainError as exc:
            errors += exc.details
    case_fields = body.get("case_fields") or {}
    if not isinstance(case_fields, Mapping):
        errors.append(ErrorDetail("wrong_type", "/case_fields"))
        case_fields = {}
    from_identification = _reads_identification(deps, doc)
    if from_identification:
        errors += minimisation.typed_over_identification(case_fields, catalogue.identification_sources)
    raise_all(errors, "referral cannot be requested")
    assert provider_doc is not None and service_type is not None and kind_code  # noqa: S101 - checked above

    granted = minimisation.granted_fields(sets, catalogue)
    if from_identification:
        case_fields = {**case_fields, **_copied_from_identification(deps, doc, granted)}
        # The case's person, now known: her consent may have been withdrawn under another case of hers.
        withdrawals.refuse_if_withdrawn(deps, doc.owner_country, doc.person_id, None)
    now = deps.clock.now()
    copy = minimisation.copy_granted(case_fields, granted)
    profile = catalogue.deadline_profile(kind_code)
    doc.service_type = kind_code
    doc.provider_id = provider_doc.id
    doc.provider_agency = provider_doc.agency_id
    doc.provider_kind = provider_doc.kind
    doc.municipality = municipality
    doc.age_group = age_group
    doc.sex = sex
    doc.family = family
    doc.languages = list(dict.fromkeys(body.get("languages") or doc.languages or []))
    doc.urgent = bool(body.get("urgent", doc.urgent))
    doc.capacity_group = group
    if age_group == CHILD:
        doc.legal_basis, doc.consent = body["legal_basis"], None
    else:
        doc.consent, doc.legal_basis = {"given": True, "recorded_at": now, "recorded_by": caller.sub}, None
    doc.field_sets = list(sets)
    doc.granted_fields = sorted(granted)
    doc.sealed_fields = deps.sealer.seal(doc.owner_country, doc.id, copy)
    doc.fields_copied_at = now
    doc.fields_source = "identification" if from_identification else "typed"
    doc.outdated_fields = []
    doc.requested_at = now
    doc.answer_due_at = deadlines.answer_due(now, profile)
    doc.status = str(transition.target)
    informed: list[str] = []
    if age_group == CHILD and rules.inform_child_protection:
        unit = catalogue.child_protection_unit(caller.country, municipality)
        if unit not in (provider_doc.agency_id, doc.owner_agency):
            informed.append(unit)
    doc.informed_agencies = informed
    doc.next_due_at = deadlines.next_due(deadline_state(doc), profile)
    entries = [
        lifecycle.timeline_entry(
            transition,
            at=now,
            by=caller.sub,
            agency=caller.agency,
            provider_agency=provider_doc.agency_id,
            service_type=kind_code,
            field_sets=list(sets),
        )
    ]
    if informed:
        entries.append(
            {
                "at": now,
                "by": caller.sub,
                "agency": caller.agency,
                "action": "child_protection_informed",
                "informed_agencies": informed,
            }
        )
    doc.timeline = [*doc.timeline, *entries]
    event = referral_event(
        deps,
        doc,
        events.REQUESTED,
        urgent=doc.urgent,
        answer_due_at=instant(doc.answer_due_at),
        informed_agencies=informed,
        field_sets=list(sets),
    )
    referrals.update(doc, events=[event])
    return referral_view(deps, caller, doc)


def _reads_identification(deps: Deps, doc: ReferralDocument) -> bool:
    """Whether the case fields come from identification: the referral names a case and the deployment has
    identification (an agency that deploys referral alone types them in)."""
    return bool(doc.case_id) and deps.identification is not None


def _copied_from_identification(deps: Deps, doc: ReferralDocument, granted: frozenset[str]) -> dict[str, Any]:
    """The granted fields identification holds, read from the case the referral names on the caller's behalf
    (her scope; identification's access log names her and referral-api). A case she may not read is a 422 on
    this referral, not a 404 of it. Remembers the case's person, so that a correction of it reaches the copy."""
    assert deps.identification is not None and doc.case_id  # noqa: S101 - _reads_identification said so
    try:
        records = deps.identification.case_and_person(doc.case_id)
    except NotFound:
        raise DomainError(
            "identification_case_not_visible",
            "the referral's identification case is not one the caller may read",
            pointer="/case_fields",
        ) from None
    person_id = records.get("person", {}).get("id")
    if person_id:
        doc.person_id = str(person_id)
    return minimisation.from_identification(deps.catalogue.identification_sources, records, granted)


# ------------------------------------------------------------------------------------------- transitions


def deadline_state(doc: ReferralDocument) -> deadlines.DeadlineState:
    return deadlines.DeadlineState(
        status=doc.status,
        requested_at=doc.requested_at,
        started_at=doc.started_at,
        done=frozenset(doc.deadline_actions_done or ()),
    )


def _reason(deps: Deps, action: Action, body: Mapping[str, Any] | None) -> str | None:
    kind = lifecycle.REASON_LIST.get(action)
    if kind is None:
        return None
    return deps.catalogue.reason(kind, (body or {}).get("reason")).code


def apply_transition(
    deps: Deps,
    doc: ReferralDocument,
    transition: lifecycle.Transition,
    *,
    by: str,
    agency: str,
    reason: str | None,
    extra_events: Iterable[dict[str, Any]] = (),
    **codes: Any,
) -> None:
    """Change the document for a transition (status, instants, timeline with `codes` added, next deadline); not
    written here."""
    now = deps.clock.now()
    doc.status = str(transition.target)
    if transition.target in (Status.ACCEPTED, Status.DECLINED):
        doc.answered_at = now
    if transition.target is Status.IN_PROGRESS:
        doc.started_at = now
    if transition.target in lifecycle.ENDED:
        doc.ended_at = now
    if reason is not None:
        doc.reason = reason
    doc.timeline = [
        *doc.timeline,
        lifecycle.timeline_entry(transition, at=now, by=by, agency=agency, reason=reason, **codes),
    ]
    if doc.service_type:
        doc.next_due_at = deadlines.next_due(
            deadline_state(doc), deps.catalogue.deadline_profile(doc.service_type)
        )


def transition_event(deps: Deps, doc: ReferralDocument, reason: str | None) -> dict[str, Any]:
    event_type = events.BY_STATUS[doc.status]
    extra: dict[str, Any] = {}
    if event_type == events.ACCEPTED:
        extra["capacity_group"] = doc.capacity_group
    if "reason" in events.PAYLOAD_FIELDS[event_type]:
        extra["reason"] = reason
    return referral_event(deps, doc, event_type, **extra)


def _uses_capacity(deps: Deps, doc: ReferralDocument) -> bool:
    return bool(
        doc.service_type and deps.catalogue.service_types[doc.service_type].capacity and doc.capacity_group
    )


def act(
    deps: Deps, caller: Caller, referral_id: str, action: Action, body: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """One lifecycle action by the caller (accept, decline, start, complete, cancel, revoke)."""
    if action in (Action.REQUEST, Action.EXPIRE):
        raise ValueError("request_referral and the deadline job perform these")
    referrals = deps.repository(ReferralDocument, caller)
    doc = referrals.get(referral_id)
    require_side(caller, facts_of(doc), lifecycle.SIDE_OF[action], _need_to_know(deps))
    transition = lifecycle.plan(doc.status, action, capacity=_uses_capacity(deps, doc))
    reason = _reason(deps, action, body)
    providers = deps.repository(ProviderDocument, caller)
    perform(deps, referrals, providers, doc, transition, by=caller.sub, agency=caller.agency, reason=reason)
    return referral_view(deps, caller, doc)


def perform(
    deps: Deps,
    referrals: Records,
    providers: Records,
    doc: ReferralDocument,
    transition: lifecycle.Transition,
    *,
    by: str,
    agency: str,
    reason: str | None,
    **codes: Any,
) -> None:
    """Carry out a planned transition of `doc`: take a place (409 `no_free_place` when none is free), change the
    document (apply_transition, `codes` added to its timeline entry), write it with its event (version-guarded;
    a place taken is given back when the write loses a race), then free the place it held. The one way a
    referral changes state on a user's command and on consent withdrawn in identification alike."""
    provider = providers.get(doc.provider_id) if transition.takes_place or transition.frees_place else None
    taken = None
    if transition.takes_place:
        assert provider is not None and doc.capacity_group  # noqa: S101 - takes_place implies both
        taken = capacity.take_place(deps, providers, provider, doc.capacity_group, doc.id)
        if taken is capacity.Taken.NONE_FREE:
            raise InvalidTransition("no_free_place")
    apply_transition(deps, doc, transition, by=by, agency=agency, reason=reason, **codes)
    try:
        referrals.update(doc, events=[transition_event(deps, doc, reason)])
    except Conflict:
        if taken is capacity.Taken.TAKEN:
            _give_back_unless_held(deps, referrals, providers, provider, doc)
        raise
    if transition.frees_place and provider is not None and doc.capacity_group:
        capacity.free_place(deps, providers, provider, doc.capacity_group, doc.id)


def _give_back_unless_held(
    deps: Deps, referrals: Records, providers: Records, provider: Any, doc: ReferralDocument
) -> None:
    """The accept's write lost a race after its place was taken: give the place back, unless the referral as
    stored now holds it (a concurrent retry of the same accept won)."""
    current = referrals.get(doc.id)
    if current.status not in lifecycle.HOLDING:
        capacity.free_place(deps, providers, provider, doc.capacity_group or "", doc.id)


def accept(deps: Deps, caller: Caller, referral_id: str) -> dict[str, Any]:
    return act(deps, caller, referral_id, Action.ACCEPT)


def decline(deps: Deps, caller: Caller, referral_id: str, body: Mapping[str, Any]) -> dict[str, Any]:
    return act(deps, caller, referral_id, Action.DECLINE, body)


def start(deps: Deps, caller: Caller, referral_id: str) -> dict[str, Any]:
    return act(deps, caller, referral_id, Action.START)


def complete(deps: Deps, caller: Caller, referral_id: str, body: Mapping[str, Any]) -> dict[str, Any]:
    return act(deps, caller, referral_id, Action.COMPLETE, body)


def cancel(deps: Deps, caller: Caller, referral_id: str, body: Mapping[str, Any]) -> dict[str, Any]:
    return act(deps, caller, referral_id, Action.CANCEL, body)


def revoke(deps: Deps, caller: Caller, referral_id: str, body: Mapping[str, Any]) -> dict[str, Any]:
    return act(deps, caller, referral_id, Action.REVOKE, body)


# ------------------------------------------------------------------------------------- consent withdrawn


def withdraw_consent(deps: Deps, caller: Caller, body: Mapping[str, Any]) -> list[str]:
    """The person withdrew consent: every active referral of the person (or case) that the caller refers ends,
    cancelled before acceptance and revoked after it, with the reason `consent_withdrawn`; places are freed.
    Returns the ids of the referrals ended."""
    filters: dict[str, Any] = {"status__in": [str(s) for s in lifecycle.ACTIVE]}
    if body.get("person_id"):
        filters["person_id"] = body["person_id"]
    elif body.get("case_id"):
        filters["case_id"] = body["case_id"]
    else:
        raise DomainError("person_or_case_required", "name the person or the case", pointer="/person_id")
    referrals = deps.repository(ReferralDocument, caller)
    providers = deps.repository(ProviderDocument, caller)
    ended: list[str] = []
    for doc in referrals.find(**filters):
        if Side.REFERRER not in sides(caller, facts_of(doc), _need_to_know(deps)):
            continue
        if _end_for_withdrawal(deps, referrals, providers, doc, by=caller.sub, agency=caller.agency):
            ended.append(doc.id)
    return ended


def end_on_consent_withdrawn(deps: Deps, envelope: Mapping[str, Any]) -> list[str]:
    """The consumer's command for identification's `identification.person.consent_withdrawn.v1`: keep the
    withdrawal (service_layer/withdrawals.py: nothing new is shared for her in that country from now on), then end
    every active referral of that country naming her person id or one of her cases, as the system and with the
    same transitions as `withdraw_consent`; each timeline entry names the withdrawal. The ids of the referrals
    this delivery ended (empty for a redelivery: none is active any more, and none can be created)."""
    if envelope.get("type") != withdrawals.CONSENT_WITHDRAWN_EVENT:
        raise ValueError("not a consent-withdrawn event")
    data = envelope["data"]
    withdrawals.record(deps, data)
    referrals = deps.system_repository(ReferralDocument, withdrawals.ACTOR)
    providers = deps.system_repository(ProviderDocument, withdrawals.ACTOR)
    active = {"owner_country": data["owner_country"], "status__in": [str(s) for s in lifecycle.ACTIVE]}
    found = {doc.id: doc for doc in referrals.find(person_id=data["person_id"], **active)}
    if data["case_ids"]:
        found.update({doc.id: doc for doc in referrals.find(case_id__in=list(data["case_ids"]), **active)})
    ended: list[str] = []
    for doc in found.values():
        if _end_for_withdrawal(
            deps,
            referrals,
            providers,
            doc,
            by=withdrawals.ACTOR,
            agency=data["owner_agency"],
            withdrawal_id=str(data["withdrawal_id"]),
        ):
            ended.append(doc.id)
    return ended


def _end_for_withdrawal(
    deps: Deps,
    referrals: Records,
    providers: Records,
    doc: ReferralDocument,
    *,
    by: str,
    agency: str,
    **codes: Any,
) -> bool:
    """End an active referral on consent withdrawn: cancelled before acceptance, revoked after it, reason
    `consent_withdrawn`, its place freed. False when it has already ended."""
    action = lifecycle.withdrawal_action(doc.status)
    if action is None:
        return False
    transition = lifecycle.plan(doc.status, action, capacity=_uses_capacity(deps, doc))
    reason = _reason(deps, action, {"reason": lifecycle.CONSENT_WITHDRAWN})
    perform(deps, referrals, providers, doc, transition, by=by, agency=agency, reason=reason, **codes)
    return True


# --------------------------------------------------------------------------------------- correction


def refresh_fields(deps: Deps, caller: Caller, referral_id: str) -> dict[str, Any]:
    """The referring side copies the case fields again from identification, on her behalf, after a correction
    of the person (service_layer/corrections.py marked the copy): the granted fields identification holds are
    replaced, the typed-in ones kept, and the mark cleared. Only a sent, open referral that names a case, in a
    deployment with identification, has a copy to refresh (409 otherwise)."""
    referrals = deps.repository(ReferralDocument, caller)
    doc = referrals.get(referral_id)
    require_side(caller, facts_of(doc), Side.REFERRER, _need_to_know(deps))
    if doc.status not in lifecycle.ACTIVE or doc.status == Status.PROPOSED:
        raise InvalidTransition(f"refresh_not_allowed_when_{doc.status}")
    if not _reads_identification(deps, doc):
        raise InvalidTransition("refresh_needs_identification_case")
    granted = frozenset(doc.granted_fields or ())
    sources = deps.catalogue.identification_sources
    old = deps.sealer.open(doc.owner_country, doc.id, doc.sealed_fields) if doc.sealed_fields else {}
    typed = {name: value for name, value in old.items() if name not in sources}
    fetched = _copied_from_identification(deps, doc, granted)
    copy = minimisation.copy_granted({**typed, **fetched}, granted)
    now = deps.clock.now()
    doc.sealed_fields = deps.sealer.seal(doc.owner_country, doc.id, copy)
    doc.fields_copied_at = now
    doc.fields_source = "identification"
    doc.timeline = [
        *doc.timeline,
        {
            "at": now,
            "by": caller.sub,
            "agency": caller.agency,
            "action": "case_fields_refreshed",
            "fields": sorted(doc.outdated_fields or ()),
        },
    ]
    doc.outdated_fields = []
    referrals.update(doc)
    return referral_view(deps, caller, doc)


# ----------------------------------------------------------------------------------------------- reads


def get_referral(deps: Deps, caller: Caller, referral_id: str) -> dict[str, Any]:
    doc = deps.repository(ReferralDocument, caller).get(referral_id)
    return referral_view(deps, caller, doc)


def list_referrals(
    deps: Deps,
    caller: Caller,
    *,
    status: str | None = None,
    return_case_id: str | None = None,
    limit: int | None = None,
    cursor: str | None = None,
) -> dict[str, Any]:
    filters: dict[str, Any] = {"status": status} if status else {}
    if return_case_id:
        filters["return_case_id"] = return_case_id
    page = deps.repository(ReferralDocument, caller).list_page(limit=limit, cursor=cursor, **filters)
    return page.body(lambda doc: referral_view(deps, caller, doc))


def read_fields(
    deps: Deps, caller: Caller, referral_id: str, asked: Iterable[str] | None = None
) -> dict[str, Any]:
    """The copied case fields, as the caller may read them: the provider (once sent) and the referring side,
    granted fields only (and of those the ones asked for). The read is access-logged before anything is
    returned; a child protection unit that was only informed reads no case data (403)."""
    doc = deps.repository(ReferralDocument, caller).get(referral_id)
    if not sides(caller, facts_of(doc), _need_to_know(deps)):
        raise NotPermitted("case_fields_not_granted")
    if not doc.sealed_fields:
        return {"referral_id": doc.id, "fields": {}}
    granted = frozenset(doc.granted_fields or ())
    wanted = granted if asked is None else granted & frozenset(asked)
    deps.record_read(caller, RESOURCE, logged_ids(doc))
    copy = deps.sealer.open(doc.owner_country, doc.id, doc.sealed_fields)
    return {
        "referral_id": doc.id,
        "fields_copied_at": instant(doc.fields_copied_at),
        "fields_source": doc.fields_source or "typed",
        "outdated_fields": sorted(frozenset(doc.outdated_fields or ()) & wanted),
        "fields": minimisation.provider_view(copy, granted, wanted),
    }


def referral_view(deps: Deps, caller: Caller, doc: ReferralDocument) -> dict[str, Any]:
    """Codes, instants and the timeline; never the copied case fields (`read_fields`). A unit that was only
    informed sees the codes and no timeline. An anonymised referral says when (`anonymised_at`)."""
    facts = facts_of(doc)
    view: dict[str, Any] = {
        "id": doc.id,
        "status": doc.status,
        "service_type": doc.service_type,
        "candidate_service_types": list(doc.candidate_service_types or ()),
        "need": doc.need,
        "provider_id": doc.provider_id,
        "provider_agency": doc.provider_agency,
        "owner_country": doc.owner_country,
        "owner_agency": doc.owner_agency,
        "municipality": doc.municipality,
        "age_group": doc.age_group,
        "urgent": bool(doc.urgent),
        "requested_at": instant(doc.requested_at),
        "answer_due_at": instant(doc.answer_due_at),
        "overdue": bool(doc.overdue),
        "reason": doc.reason,
    }
    if doc.anonymised_at is not None:
        # Its retention period ended (service_layer/retention.py): the copied case fields are gone, codes stay.
        view["anonymised_at"] = instant(doc.anonymised_at)
    if is_informed_only(caller, facts, _need_to_know(deps)):
        view["informed"] = True
        return view
    mine = sides(caller, facts, _need_to_know(deps))
    view.update(
        {
            "case_id": doc.case_id,
            "person_id": doc.person_id,
            "return_case_id": doc.return_case_id,
            "field_sets": list(doc.field_sets or ()),
            "granted_fields": list(doc.granted_fields or ()),
            "outdated_fields": list(doc.outdated_fields or ()),
            "capacity_group": doc.capacity_group,
            "informed_agencies": list(doc.informed_agencies or ()),
            "legal_basis": doc.legal_basis,
            "consent_given": bool((doc.consent or {}).get("given")),
            "timeline": [plain(e) for e in doc.timeline or ()],
            "allowed_actions": [
                str(a) for a in lifecycle.allowed_actions(doc.status) if lifecycle.SIDE_OF[a] in mine
            ],
        }
    )
    return view


def logged_ids(doc: ReferralDocument) -> list[str]:
    """What a read's access-log entry names: the referral, and the identification case and person it is about
    when it comes from one, so that a country's auditors find every read of a child's data by the child's id
    (GET /v1/referral/access-log?record_id=, docs/data-protection.md)."""
    return [doc.id, *(link for link in (doc.case_id, doc.person_id) if link)]
