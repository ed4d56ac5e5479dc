"""Sending: drafts, the send itself, acknowledgement, withdrawal, correction (also drafted from identification after
a rectification of the person: service_layer/rectification.py), reminders and the notice that
consent was withdrawn (an officer's, or the system's when identification announced it: service_layer/consent.py;
both through `_withdraw_consent`). Every command validates completely before its one write (bad input stores
nothing) and takes an idempotency key: a retry with the same key returns what the first call made, never a second
form.

Body of a draft (the HTTP contract of the next slice maps onto it; pointers of errors are into it):

    {"form_type", "version"?, "recipient", "case_id"?, "refers_to"?, "supersedes"?, "legal_basis"?,
     "subject"?, "content", "attachments"?}

A command whose one write loses a race on the same record (the inbox storing a receipt meanwhile, the scheduler)
is run again from the record as it is then (plumbing.repository.retry_concurrent): a user never gets a 409 for
what the inbox did while she typed.

A notification opens a new case when no `case_id` is given. Control messages need no `subject`; without a
`legal_basis` they take the basis of the form they refer to.
"""

from __future__ import annotations

import base64
import binascii
import logging
from collections.abc import Mapping
from typing import Any

from exchange.adapters.documents import ExchangeCaseDocument
from exchange.domain import legal
from exchange.domain.case import Direction, Form, Status, TransnationalCase, status_now
from exchange.domain.catalogue import (
    CONSENT_WITHDRAWN,
    CONTROL,
    RECEIPT,
    REMINDER,
    WITHDRAWAL,
    Attachments,
    FormType,
)
from exchange.domain.errors import DomainError, ErrorDetail, InvalidTransition, NotPermitted, raise_all
from exchange.domain.evidence import content_digest
from exchange.service_layer import outgoing
from exchange.service_layer.deps import Deps
from exchange.service_layer.records import (
    case_reference,
    cases,
    load_for_change,
    new_record,
    to_case,
    withdrawal_of,
)
from plumbing.auth import Caller
from plumbing.documents import new_id
from plumbing.errors import Conflict
from plumbing.repository import retry_concurrent

log = logging.getLogger(__name__)

PENDING_REFERENCE = "pending"  # a new case gets its reference only when its first draft is stored
# The scope of the notice the system sends when identification announces a withdrawal: all that rested on it.
SYSTEM_CONSENT_SCOPE = "all-processing"
# 403 codes: the form type's catalogue roles leave the caller out of this step (drafting, or sending)
MAY_NOT_DRAFT, MAY_NOT_SEND = "role_may_not_draft", "role_may_not_send"

# ---------------------------------------------------------------------------------------------- drafts


def validate_form(deps: Deps, caller: Caller, body: Mapping[str, Any]) -> None:
    """Every check a draft gets (422 with every pointer, 409 for the case's state), storing nothing."""
    _kind, _form, _doc, _case, _new = _prepare(deps, caller, body)


@retry_concurrent()
def draft_form(
    deps: Deps,
    caller: Caller,
    body: Mapping[str, Any],
    *,
    idempotency_key: str,
    refreshed: Mapping[str, Any] | None = None,
) -> tuple[str, str]:
    """A draft of ours, validated in full, then stored. Returns (case record id, form id). `refreshed`: the report
    of a correction drafted from identification (service_layer/rectification.py), kept on the draft."""
    kind = deps.catalogue.form_type(str(body.get("form_type")))
    _require_role(caller, kind.draft_roles, MAY_NOT_DRAFT)
    fingerprint = content_digest(dict(body))
    existing = drafted_with_key(deps, caller, idempotency_key)
    if existing is not None:
        doc, form = existing
        if form.draft_fingerprint != fingerprint:
            raise Conflict("idempotency_key_reused")
        return doc.id, form.id
    kind, form, doc, case, new = _prepare(deps, caller, body)
    form.draft_key, form.draft_fingerprint = idempotency_key, fingerprint
    form.refreshed_from_identification = dict(refreshed) if refreshed is not None else None
    if new:  # the counter moves only for a case that is really opened
        doc.reference = case.reference = case_reference(deps, caller.country)
    sealed_body = outgoing.payload(body["content"], body.get("attachments"))
    doc.contents = {**doc.contents, form.id: deps.contents.seal(caller.country, doc.id, form.id, sealed_body)}
    stored = outgoing.store(deps, caller, doc, case, new=new)
    return stored.id, form.id


def _prepare(
    deps: Deps, caller: Caller, body: Mapping[str, Any]
) -> tuple[FormType, Form, ExchangeCaseDocument, TransnationalCase, bool]:
    """The checked draft added to the (loaded or new) case, nothing stored: (kind, form, doc, case, new)."""
    kind = deps.catalogue.form_type(str(body.get("form_type")))
    _require_role(caller, kind.draft_roles, MAY_NOT_DRAFT)
    version = body.get("version", kind.current_version)
    if not isinstance(version, int) or not kind.accepts_version(version):
        raise_all([ErrorDetail("version_not_accepted", "/version")], "version not accepted")
        raise AssertionError("unreachable")
    recipient = str(body.get("recipient"))
    recipient_problems = _recipient_problems(deps, caller, recipient)
    problems = recipient_problems + _content_problems(deps, kind, version, body)
    case_id = body.get("case_id")
    if case_id is None and not kind.opens_case:
        problems.append(ErrorDetail("required", "/case_id"))
    if case_id is None and (body.get("refers_to") or body.get("supersedes")):
        problems.append(ErrorDetail("cannot_refer_to_form", "/refers_to"))
    record = load_for_change(deps, caller, str(case_id)) if case_id is not None else None
    basis = body.get("legal_basis")
    if basis is None and record is not None:
        basis = _inherited_basis(record[1], kind, body.get("refers_to"))
    if not recipient_problems:  # without a valid recipient there is no pair to look the basis up in
        problems += legal.basis_problems(_pair_bases(deps, caller.country, recipient), basis)
    if kind.kind != CONTROL:
        problems += legal.subject_problems(basis, body.get("subject"))
    raise_all(problems, "invalid draft")
    new = record is None
    doc, case = record if record is not None else new_record(PENDING_REFERENCE, [caller.country, recipient])
    _refuse_after_consent_withdrawn(deps, caller, doc, case, basis)
    supersedes = body.get("supersedes")
    if supersedes is not None:
        if not case.has_form(str(supersedes)):
            raise_all([ErrorDetail("cannot_supersede_form", "/supersedes")], "unknown form")
        if case.begin_correction(str(supersedes)).form_type != kind.code:
            raise_all([ErrorDetail("correction_of_another_type", "/supersedes")], "wrong correction")
    form = Form(
        id=new_id(),
        form_type=kind.code,
        version=version,
        kind=kind.kind,
        direction=Direction.OUT,
        counterpart=recipient,
        status=Status.DRAFT,
        created_at=deps.clock.now(),
        created_by=caller.sub,
        refers_to=body.get("refers_to"),
        supersedes=supersedes,
        legal_basis=basis,
        subject=dict(body["subject"]) if kind.kind != CONTROL and body.get("subject") else None,
    )
    case.add_draft(form, kind)
    return kind, form, doc, case, new


@retry_concurrent()
def discard_draft(deps: Deps, caller: Caller, case_id: str, form_id: str) -> None:
    doc, case = load_for_change(deps, caller, case_id)
    _require_role(caller, deps.catalogue.form_type(case.form(form_id).form_type).draft_roles, MAY_NOT_DRAFT)
    case.discard_draft(form_id)
    doc.contents = {k: v for k, v in doc.contents.items() if k != form_id}
    outgoing.store(deps, caller, doc, case, new=False)


# ---------------------------------------------------------------------------------------------- sending


@retry_concurrent()
def send_form(deps: Deps, caller: Caller, case_id: str, form_id: str, *, idempotency_key: str) -> Form:
    """Send one draft to its recipient: validated again, signed, encrypted, stored sent, delivered."""
    doc, case = load_for_change(deps, caller, case_id)
    form = case.form(form_id)
    if form.send_key == idempotency_key and form.status is not Status.DRAFT:
        return form  # a retry: the first call sent it
    kind = deps.catalogue.form_type(form.form_type)
    _require_role(caller, kind.send_roles, MAY_NOT_SEND)
    body = deps.contents.open(caller.country, doc.id, form.id, doc.contents[form.id])
    problems = _content_problems(deps, kind, form.version, body)
    problems += legal.basis_problems(_pair_bases(deps, caller.country, form.counterpart), form.legal_basis)
    raise_all(problems, "the draft no longer validates")
    _refuse_after_consent_withdrawn(deps, caller, doc, case, form.legal_basis)
    form.send_key = idempotency_key
    case.mark_sent(form.id, deps.clock.now(), kind.reply_within_days)
    if kind.closes_case:
        case.close()
    outgoing.send_sealed(deps, doc, case, form, body, sender=caller.country)
    doc = outgoing.store(deps, caller, doc, case, new=False)
    outgoing.deliver(deps, caller, doc)
    return form


def draft_and_send(
    deps: Deps, caller: Caller, body: Mapping[str, Any], *, idempotency_key: str
) -> tuple[str, Form]:
    """Draft and send in one call (control messages, national systems); both steps keyed by the same key."""
    case_id, form_id = draft_form(deps, caller, body, idempotency_key=idempotency_key)
    return case_id, send_form(deps, caller, case_id, form_id, idempotency_key=idempotency_key)


@retry_concurrent()
def acknowledge_form(deps: Deps, caller: Caller, case_id: str, form_id: str, *, idempotency_key: str) -> Form:
    """An officer acknowledges a form addressed to her country: a signed receipt (stage acknowledged) goes back."""
    doc, case = load_for_change(deps, caller, case_id)
    receipt = _keyed_form(case, idempotency_key)
    if receipt is not None:
        return receipt
    _require_role(caller, deps.catalogue.form_type(RECEIPT).send_roles, MAY_NOT_SEND)
    received = case.acknowledge(form_id, deps.clock.now())
    receipt = _control(deps, caller, doc, case, RECEIPT, received, {"stage": "acknowledged"}, idempotency_key)
    return receipt


@retry_concurrent()
def withdraw_form(
    deps: Deps, caller: Caller, case_id: str, form_id: str, reason: str, *, idempotency_key: str
) -> Form:
    """The sender withdraws a form it sent, with a coded reason; the recipient sees it withdrawn."""
    doc, case = load_for_change(deps, caller, case_id)
    done = _keyed_form(case, idempotency_key)
    if done is not None:
        return done
    _require_role(caller, deps.catalogue.form_type(WITHDRAWAL).send_roles, MAY_NOT_SEND)
    deps.catalogue.validate(WITHDRAWAL, _current(deps, WITHDRAWAL), {"reason": reason}, prefix="")
    withdrawn = case.withdraw(form_id, reason, deps.clock.now())
    return _control(deps, caller, doc, case, WITHDRAWAL, withdrawn, {"reason": reason}, idempotency_key)


def correct_form(
    deps: Deps,
    caller: Caller,
    case_id: str,
    form_id: str,
    content: Any,
    *,
    idempotency_key: str,
    refreshed: Mapping[str, Any] | None = None,
) -> tuple[str, str]:
    """A correction: a new draft of the same type (current version) superseding a form we sent. Sending it
    withdraws the old one on both sides (reason `superseded-by-correction`) and clears a `correction_due` mark of
    the old form (domain/case.py). `refreshed`: drafted from identification (service_layer/rectification.py)."""
    _doc, case = load_for_change(deps, caller, case_id)
    old = case.begin_correction(form_id)
    body = {
        "form_type": old.form_type,
        "recipient": old.counterpart,
        "case_id": case_id,
        "refers_to": old.refers_to,
        "supersedes": old.id,
        "legal_basis": old.legal_basis,
        "subject": old.subject,
        "content": content,
    }
    return draft_form(
        deps,
        caller,
        {k: v for k, v in body.items() if v is not None},
        idempotency_key=idempotency_key,
        refreshed=refreshed,
    )


@retry_concurrent()
def send_reminder(deps: Deps, caller: Caller, case_id: str, form_id: str, *, idempotency_key: str) -> Form:
    """A reminder about a form of ours whose reply is overdue."""
    doc, case = load_for_change(deps, caller, case_id)
    done = _keyed_form(case, idempotency_key)
    if done is not None:
        return done
    _require_role(caller, deps.catalogue.form_type(REMINDER).send_roles, MAY_NOT_SEND)
    awaited = case.form(form_id)
    if (
        awaited.direction is not Direction.OUT
        or status_now(awaited, deps.catalogue, deps.clock.now()) is not Status.OVERDUE
    ):
        raise InvalidTransition("reply_not_overdue")
    earlier = [f for f in case.forms if f.form_type == REMINDER and f.refers_to == form_id]
    kind = "second-reminder" if earlier else "reply-overdue"
    return _control(deps, caller, doc, case, REMINDER, awaited, {"kind": kind}, idempotency_key)


@retry_concurrent()
def notify_consent_withdrawn(
    deps: Deps,
    caller: Caller,
    case_id: str,
    *,
    scope: str,
    effective_on: str,
    legal_basis: str,
    idempotency_key: str,
) -> list[Form]:
    """The person withdrew consent: our forms that rested on it are restricted, and every country that received
    the person's data from us gets a notice (each one a signed control message)."""
    doc, case = load_for_change(deps, caller, case_id)
    already = _keyed_notices(case, idempotency_key)
    if already:
        return already
    _require_role(caller, deps.catalogue.form_type(CONSENT_WITHDRAWN).send_roles, MAY_NOT_SEND)
    content = _consent_notice(deps, scope, effective_on)
    recipients = case.countries_that_received(caller.country)
    problems = [
        detail
        for country in recipients
        for detail in legal.basis_problems(_pair_bases(deps, caller.country, country), legal_basis)
    ]
    raise_all(problems, "invalid legal basis")
    bases = dict.fromkeys(recipients, legal_basis)
    return _withdraw_consent(deps, caller, doc, case, content, bases, idempotency_key)


@retry_concurrent()
def withdraw_consent_by_system(
    deps: Deps, caller: Caller, case_id: str, *, effective_on: str, idempotency_key: str
) -> list[Form]:
    """`notify_consent_withdrawn` without an officer (service_layer/consent.py: identification announced the
    withdrawal): the same restriction, notices, event and delivery, sent by the system actor `caller` for the
    record's country, scope `all-processing`, each notice under `legal.notice_basis` of its pair (a pair without
    any basis gets none: logged). Applied once per key (a retry returns the notices it sent); a country already
    told (by an officer's notice) or that told us gets no second notice, and a record already withdrawn with
    nobody left to tell is not written at all. Returns the notices this key sent."""
    doc, case = load_for_change(deps, caller, case_id)
    already = _keyed_notices(case, idempotency_key)
    if already:
        return already
    content = _consent_notice(deps, SYSTEM_CONSENT_SCOPE, effective_on)
    told = {form.counterpart for form in case.forms if form.form_type == CONSENT_WITHDRAWN}
    bases: dict[str, str] = {}
    for country in case.countries_that_received(caller.country):
        if country in told:
            continue
        basis = legal.notice_basis(_pair_bases(deps, caller.country, country))
        if basis is None:  # the pair has no basis (any more): nothing may go that way; still restricted here
            log.warning(
                "consent notice not sent: the pair has no legal basis",
                extra={"fields": {"case_id": doc.id, "from": caller.country, "to": country}},
            )
            continue
        bases[country] = basis
    if case.consent_withdrawn_at is not None and not bases:
        return []  # withdrawn already, and nobody left to tell: nothing is written
    return _withdraw_consent(deps, caller, doc, case, content, bases, idempotency_key)


def _withdraw_consent(
    deps: Deps,
    caller: Caller,
    doc: ExchangeCaseDocument,
    case: TransnationalCase,
    content: dict[str, Any],
    bases: Mapping[str, str | None],
    key: str,
) -> list[Form]:
    """Shared by the officer's and the system's path: the forms that rested on consent restricted and a notice
    to each country of `bases` under its basis (keyed `<key>:<country>`), in ONE write with the event it means
    (events.changes: `exchange.case.consent_withdrawn.v1`), then delivered."""
    case.withdraw_consent(deps.clock.now(), legal.CONSENT_BASIS)
    notices = []
    for country, basis in bases.items():
        notice = _new_control(deps, caller, case, CONSENT_WITHDRAWN, None, country, basis)
        notices.append(notice)
        _seal_control(deps, caller, doc, case, notice, content, f"{key}:{country}")
    doc = outgoing.store(deps, caller, doc, case, new=False)
    outgoing.deliver(deps, caller, doc)
    return notices


def _consent_notice(deps: Deps, scope: str, effective_on: str) -> dict[str, Any]:
    content = {"scope": scope, "effective_on": effective_on}
    deps.catalogue.validate(CONSENT_WITHDRAWN, _current(deps, CONSENT_WITHDRAWN), content, prefix="")
    return content


def _keyed_notices(case: TransnationalCase, key: str) -> list[Form]:
    return [f for f in case.forms if f.send_key and f.send_key.startswith(f"{key}:")]


# ---------------------------------------------------------------------------------------------- helpers


def _control(
    deps: Deps,
    caller: Caller,
    doc: ExchangeCaseDocument,
    case: TransnationalCase,
    form_type: str,
    about: Form,
    content: dict[str, Any],
    idempotency_key: str,
) -> Form:
    """Send a control message about `about` to its counterpart, in the same write as the state change."""
    control = _new_control(deps, caller, case, form_type, about, about.counterpart, about.legal_basis)
    _seal_control(deps, caller, doc, case, control, content, idempotency_key)
    doc = outgoing.store(deps, caller, doc, case, new=False)
    outgoing.deliver(deps, caller, doc)
    return control


def _new_control(
    deps: Deps,
    caller: Caller,
    case: TransnationalCase,
    form_type: str,
    about: Form | None,
    recipient: str,
    legal_basis: str | None,
) -> Form:
    kind = deps.catalogue.form_type(form_type)
    return Form(
        id=new_id(),
        form_type=form_type,
        version=_current(deps, form_type),
        kind=kind.kind,
        direction=Direction.OUT,
        counterpart=recipient,
        status=Status.DRAFT,
        created_at=deps.clock.now(),
        created_by=caller.sub,
        refers_to=about.id if about else None,
        legal_basis=legal_basis,
    )


def _seal_control(
    deps: Deps,
    caller: Caller,
    doc: ExchangeCaseDocument,
    case: TransnationalCase,
    control: Form,
    content: dict[str, Any],
    key: str,
) -> None:
    kind = deps.catalogue.form_type(control.form_type)
    deps.catalogue.validate(control.form_type, control.version, content, prefix="/content")
    control.send_key = key
    case.forms.append(control)
    case.mark_sent(control.id, deps.clock.now(), kind.reply_within_days)
    body = outgoing.payload(content, None)
    doc.contents = {**doc.contents, control.id: deps.contents.seal(caller.country, doc.id, control.id, body)}
    outgoing.send_sealed(deps, doc, case, control, body, sender=caller.country)


def _current(deps: Deps, form_type: str) -> int:
    version = deps.catalogue.form_type(form_type).current_version
    if version is None:
        raise InvalidTransition("form_type_retired")
    return version


def _keyed_form(case: TransnationalCase, key: str) -> Form | None:
    return next((f for f in case.forms if f.send_key == key), None)


def drafted_with_key(deps: Deps, caller: Caller, key: str) -> tuple[ExchangeCaseDocument, Form] | None:
    """The draft an earlier call with this key made, in any record of the caller's country."""
    for doc in cases(deps, caller).find(limit=1, forms__draft_key=key):
        for record in doc.forms:
            if record.get("draft_key") == key:
                return doc, to_case(doc).form(record["id"])
    return None


def _require_role(caller: Caller, roles: frozenset[str], code: str) -> None:
    if not caller.has_any_role(roles):
        raise NotPermitted(code)


def _recipient_problems(deps: Deps, caller: Caller, recipient: str) -> list[ErrorDetail]:
    if recipient not in deps.config.country_codes:
        return [ErrorDetail("not_a_partner_country", "/recipient")]
    if recipient == caller.country:
        return [ErrorDetail("recipient_is_own_country", "/recipient")]
    return []


def _pair_bases(deps: Deps, sender: str, recipient: str) -> list[str]:
    return [basis.code for basis in deps.config.legal_bases_for(sender, recipient)]


def _inherited_basis(case: TransnationalCase, kind: FormType, refers_to: Any) -> str | None:
    if kind.kind == CONTROL and isinstance(refers_to, str) and case.has_form(refers_to):
        return case.form(refers_to).legal_basis
    return None


def _refuse_after_consent_withdrawn(
    deps: Deps, caller: Caller, doc: ExchangeCaseDocument, case: TransnationalCase, basis: str | None
) -> None:
    """Nothing new on consent once it was withdrawn on the record, or once identification announced a withdrawal
    for the identification case the record is linked to (even if the record was linked after it)."""
    if basis != legal.CONSENT_BASIS:
        return
    if case.consent_withdrawn_at is not None or withdrawal_of(deps, caller, doc.identification_case_id):
        raise InvalidTransition("consent_withdrawn")


def _content_problems(deps: Deps, kind: FormType, version: int, body: Mapping[str, Any]) -> list[ErrorDetail]:
    problems: list[ErrorDetail] = []
    if "content" not in body:
        problems.append(ErrorDetail("required", "/content"))
    else:
        try:
            deps.catalogue.validate(kind.code, version, body["content"])
        except DomainError as error:
            problems += error.details
    problems += attachment_problems(kind.attachments, body.get("attachments"))
    return problems


def attachment_problems(rules: Attachments, attachments: Any) -> list[ErrorDetail]:
    """`[{filename, media_type, data (base64)}]`, within the form type's caps; none where it allows none."""
    if attachments is None or attachments == []:
        return []
    if not rules.allowed:
        return [ErrorDetail("attachments_not_allowed", "/attachments")]
    if not isinstance(attachments, list):
        return [ErrorDetail("wrong_type", "/attachments")]
    if len(attachments) > rules.max_count:
        return [ErrorDetail("too_many", "/attachments")]
    problems = []
    for index, item in enumerate(attachments):
        where = f"/attachments/{index}"
        if not isinstance(item, dict) or set(item) != {"filename", "media_type", "data"}:
            problems.append(ErrorDetail("wrong_shape", where))
            continue
        if item["media_type"] not in rules.media_types:
            problems.append(ErrorDetail("media_type_not_allowed", f"{where}/media_type"))
        if not isinstance(item["filename"], str) or not 0 < len(item["filename"]) <= 100:
            problems.append(ErrorDetail("bad_format", f"{where}/filename"))
        try:
            size = len(base64.b64decode(str(item["data"]), validate=True))
        except (binascii.Error, ValueError):
            problems.append(ErrorDetail("bad_format", f"{where}/data"))
            continue
        if size > rules.max_bytes:
            problems.append(ErrorDetail("too_large", f"{where}/data"))
    return problems
