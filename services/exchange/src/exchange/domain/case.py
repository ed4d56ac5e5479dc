"""The transnational case: one person's cross-border case as one country keeps it.

Each participant country keeps its own record under the shared reference: the forms it sent and the forms
addressed to it, in order, each with its status. A form's id is the same on both sides, so a reply names the
form it answers in either country's record. The link to the country's own identification case is kept on its
side only and never travels.

Statuses (docs/exchange.md, "States"):

    sent by us:      draft -> sent -> received (their receipt) -> acknowledged (their officer) -> answered
    addressed to us:         received -> acknowledged (our officer) -> answered (we replied)
    either:          withdrawn (by the sender, with a reason; a correction withdraws what it supersedes)
    overdue:         computed, never stored: a reply is due, its deadline has passed and it has not come

Rectification (domain/rectification.py): a form of ours still in force whose content carries person data that
identification corrected since is marked `correction_due` (the correction ids, the content pointers, since when);
the record keeps one entry per correction that marked something (`rectifications`: ids and codes only), which is
also what makes a second delivery of the same correction change nothing. Sending the correction that supersedes
the form clears its mark; what that correction did not resolve stays marked on the new form.

An action that the current state does not allow raises `InvalidTransition` (409). A sent form is immutable:
only its status and the times and ids of what happened to it change.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field, fields
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from exchange.domain.catalogue import CLARIFICATION_REQUEST, CONTROL, RECEIPT, FormCatalogue, FormType
from exchange.domain.errors import ErrorDetail, InvalidTransition, raise_all
from plumbing.clock import rfc3339
from plumbing.errors import NotFound


class Status(StrEnum):
    DRAFT = "draft"
    SENT = "sent"
    RECEIVED = "received"
    ACKNOWLEDGED = "acknowledged"
    ANSWERED = "answered"
    OVERDUE = "overdue"
    WITHDRAWN = "withdrawn"


class Direction(StrEnum):
    OUT = "out"
    IN = "in"


class Action(StrEnum):
    EDIT = "edit"
    SEND = "send"
    DISCARD = "discard"
    WITHDRAW = "withdraw"
    CORRECT = "correct"
    REMIND = "remind"
    ACKNOWLEDGE = "acknowledge"
    ANSWER = "answer"
    REQUEST_CLARIFICATION = "request-clarification"


OPEN, CLOSED = "open", "closed"
# Statuses in which a reply can still be awaited (and so become overdue).
AWAITING = frozenset({Status.SENT, Status.RECEIVED, Status.ACKNOWLEDGED})
# A form of ours in these statuses is in force at the partner's: what a rectification must reach.
IN_FORCE = AWAITING | {Status.ANSWERED}
SUPERSEDED = "superseded-by-correction"
# The timeline entry of a correction of the person that marked forms of the record (ids and codes only).
CORRECTION_DUE = "correction_due"


@dataclass
class Form:
    """One form as one country holds it (content is stored apart, sealed; see service_layer)."""

    id: str
    form_type: str
    version: int
    kind: str
    direction: Direction
    counterpart: str  # the recipient of a form we send, the sender of a form we received
    status: Status
    created_at: datetime
    created_by: str
    refers_to: str | None = None  # the form it answers or is about (same id in both countries)
    is_answer: bool = False
    supersedes: str | None = None
    superseded_by: str | None = None
    legal_basis: str | None = None
    subject: dict[str, Any] | None = None
    content_digest: str | None = None
    sent_at: datetime | None = None
    received_at: datetime | None = None
    acknowledged_at: datetime | None = None
    answered_at: datetime | None = None
    answered_by: str | None = None
    deadline: datetime | None = None
    withdrawn_at: datetime | None = None
    withdrawal_reason: str | None = None
    envelope_id: str | None = None
    signature_id: str | None = None
    receipt_ids: list[str] = field(default_factory=list)
    draft_key: str | None = None  # the idempotency key of the draft and the fingerprint of its request
    draft_fingerprint: str | None = None
    send_key: str | None = None
    restricted: bool = False  # consent withdrawn and the form rested on it: its content is no longer used
    # Identification corrected person data this form (ours, in force) carries: {correction_id (the latest),
    # correction_ids, fields (content pointers), since, updated_at (RFC 3339)}; None when nothing is due.
    correction_due: dict[str, Any] | None = None
    # A correction drafted from identification (domain/rectification.py): {at, copied, left_out, removed}
    # (content pointers only, never values).
    refreshed_from_identification: dict[str, Any] | None = None

    def as_record(self) -> dict[str, Any]:
        record = asdict(self)
        record["direction"], record["status"] = str(self.direction), str(self.status)
        return record

    @classmethod
    def from_record(cls, record: Mapping[str, Any]) -> Form:
        known = {f.name for f in fields(cls)}
        values = {k: v for k, v in record.items() if k in known}
        values["direction"], values["status"] = Direction(record["direction"]), Status(record["status"])
        return cls(**values)

    def status_at(self, now: datetime, reply_within_days: int | None, *, answerable: bool = True) -> Status:
        """The status a reader sees: `overdue` when a response was due before `now` and has not come. The
        response due is an answer, or, for a form no form type answers (a notification), the acknowledgement."""
        overdue = self.deadline is not None and now > self.deadline
        if reply_within_days and overdue and self.awaits_response(answerable=answerable):
            return Status.OVERDUE
        return self.status

    def awaits_response(self, *, answerable: bool) -> bool:
        """A response with a deadline is still awaited: the answer, or (`answerable` False: no form type answers
        this one) the acknowledgement."""
        awaiting = AWAITING if answerable else AWAITING - {Status.ACKNOWLEDGED}
        return self.status in awaiting and self.deadline is not None


def status_now(form: Form, catalogue: FormCatalogue, now: datetime) -> Status:
    """`Form.status_at` with the form type's deadline and whether any form type answers it."""
    kind = catalogue.types.get(form.form_type)
    if kind is None:
        return form.status
    return form.status_at(now, kind.reply_within_days, answerable=bool(catalogue.answered_by(kind.code)))


@dataclass(frozen=True)
class AllowedAction:
    action: Action
    form_types: tuple[str, ...] = ()  # for answer / request-clarification: the form types that may be drafted


@dataclass
class TransnationalCase:
    reference: str
    participants: list[str]
    forms: list[Form] = field(default_factory=list)
    status: str = OPEN
    consent_withdrawn_at: datetime | None = None
    # One entry per correction of the person that marked forms here: {action, correction_id, at, by, forms, fields}.
    rectifications: list[dict[str, Any]] = field(default_factory=list)

    # ------------------------------------------------------------------------------------------ reads

    def form(self, form_id: str) -> Form:
        for item in self.forms:
            if item.id == form_id:
                return item
        raise NotFound("form not found")

    def has_form(self, form_id: str) -> bool:
        return any(item.id == form_id for item in self.forms)

    # ------------------------------------------------------------------------------------------ drafts

    def add_draft(self, form: Form, kind: FormType) -> None:
        """A new draft of ours: the case must be open for a (non-control) form, and what it refers to must be a
        form this kind may refer to (what it answers must have been addressed to us and not answered yet)."""
        if form.kind != CONTROL and self.status == CLOSED:
            raise InvalidTransition("case_closed")
        if form.refers_to is not None:
            self._check_reference(form, kind)
        self.forms.append(form)

    def _check_reference(self, form: Form, kind: FormType) -> None:
        referred = self.form(str(form.refers_to)) if self.has_form(str(form.refers_to)) else None
        if referred is None or not kind.may_refer_to(referred.form_type):
            raise_all([ErrorDetail("cannot_refer_to_form", "/refers_to")], "wrong reference")
            return
        if referred.status is Status.WITHDRAWN:
            raise InvalidTransition("form_withdrawn")
        if referred.form_type in kind.answers:
            form.is_answer = True
            if referred.direction is not Direction.IN:
                raise InvalidTransition("answers_only_forms_received")
            if referred.status is Status.ANSWERED and referred.answered_by != form.supersedes:
                raise InvalidTransition("form_already_answered")  # a correction of the answer may replace it
            if form.counterpart != referred.counterpart:
                raise_all([ErrorDetail("answer_goes_to_the_sender", "/recipient")], "wrong recipient")

    def discard_draft(self, form_id: str) -> None:
        self._require(self.form(form_id), Status.DRAFT, "form_not_draft")
        self.forms = [item for item in self.forms if item.id != form_id]

    # ------------------------------------------------------------------------------------------ sending

    def mark_sent(self, form_id: str, at: datetime, reply_within_days: int | None) -> Form:
        """A draft of ours goes out: it becomes immutable; what it answers becomes answered; a correction
        withdraws the form it supersedes."""
        form = self.form(form_id)
        self._require(form, Status.DRAFT, "form_not_draft")
        if form.kind != CONTROL and self.status == CLOSED:
            raise InvalidTransition("case_closed")
        form.status, form.sent_at = Status.SENT, at
        form.deadline = at + timedelta(days=reply_within_days) if reply_within_days else None
        if form.counterpart not in self.participants:
            self.participants.append(form.counterpart)
        if form.is_answer and form.refers_to:
            self._answered(self.form(form.refers_to), form.id, at)
        if form.supersedes:
            old = self.form(form.supersedes)
            old.status, old.withdrawn_at = Status.WITHDRAWN, at
            old.withdrawal_reason, old.superseded_by = SUPERSEDED, form.id
            form.correction_due, old.correction_due = _unresolved(old.correction_due, form), None
        return form

    def withdraw(self, form_id: str, reason: str, at: datetime) -> Form:
        """The sender withdraws a form it sent (the recipient sees it withdrawn, with the reason)."""
        form = self.form(form_id)
        if form.direction is not Direction.OUT or form.status in (Status.DRAFT, Status.WITHDRAWN):
            raise InvalidTransition("form_not_withdrawable")
        if form.kind == CONTROL:  # receipts, reminders, notices: facts that happened, not claims to take back
            raise InvalidTransition("control_message_not_withdrawable")
        form.status, form.withdrawn_at, form.withdrawal_reason = Status.WITHDRAWN, at, reason
        form.correction_due = None  # no longer in force: nothing of it to correct
        return form

    def begin_correction(self, form_id: str) -> Form:
        """The form a correction will supersede: one we sent, not withdrawn, not already being corrected."""
        form = self.form(form_id)
        if form.direction is not Direction.OUT or form.status in (Status.DRAFT, Status.WITHDRAWN):
            raise InvalidTransition("form_not_correctable")
        if any(item.supersedes == form_id and item.status is Status.DRAFT for item in self.forms):
            raise InvalidTransition("correction_already_drafted")
        return form

    # ------------------------------------------------------------------------------------------ receiving

    def add_received(self, form: Form, at: datetime, reply_within_days: int | None) -> None:
        """A form addressed to us, verified and stored once: its reply deadline starts now."""
        if self.has_form(form.id):
            raise InvalidTransition("form_already_received")
        form.status, form.received_at = Status.RECEIVED, at
        form.deadline = at + timedelta(days=reply_within_days) if reply_within_days else None
        if form.counterpart not in self.participants:
            self.participants.append(form.counterpart)
        self.forms.append(form)
        if form.is_answer and form.refers_to and self.has_form(form.refers_to):
            self._answered(self.form(form.refers_to), form.id, at)
        if form.supersedes and self.has_form(form.supersedes):
            old = self.form(form.supersedes)
            old.status, old.withdrawn_at = Status.WITHDRAWN, at
            old.withdrawal_reason, old.superseded_by = SUPERSEDED, form.id

    def apply_receipt(self, form_id: str, stage: str, receipt_id: str, at: datetime) -> None:
        """Their receipt for a form we sent: delivered -> received, an officer's acknowledgement ->
        acknowledged. A later status (answered, withdrawn) is never set back."""
        form = self.form(form_id)
        if form.direction is not Direction.OUT:
            raise InvalidTransition("receipt_for_a_form_not_sent")
        form.receipt_ids = [*form.receipt_ids, receipt_id]
        if stage == "delivered" and form.status is Status.SENT:
            form.status, form.received_at = Status.RECEIVED, at
        elif stage == "acknowledged" and form.status in (Status.SENT, Status.RECEIVED):
            form.status, form.acknowledged_at = Status.ACKNOWLEDGED, at

    def acknowledge(self, form_id: str, at: datetime) -> Form:
        form = self.form(form_id)
        if form.direction is not Direction.IN:
            raise InvalidTransition("acknowledges_only_forms_received")
        self._require(form, Status.RECEIVED, "form_not_awaiting_acknowledgement")
        form.status, form.acknowledged_at = Status.ACKNOWLEDGED, at
        return form

    def apply_withdrawal(self, form_id: str, reason: str, at: datetime) -> None:
        """The sender withdrew a form it had sent us."""
        form = self.form(form_id)
        if form.direction is not Direction.IN:
            raise InvalidTransition("withdrawal_of_a_form_not_received")
        form.status, form.withdrawn_at, form.withdrawal_reason = Status.WITHDRAWN, at, reason

    # ------------------------------------------------------------------------------------------ the case

    def close(self) -> None:
        self.status = CLOSED

    def withdraw_consent(self, at: datetime, consent_basis: str) -> list[Form]:
        """Consent withdrawn: every form that rested on consent is restricted (its content no longer read or
        used); forms under another basis stay usable as far as that basis allows. Returns the forms marked."""
        self.consent_withdrawn_at = self.consent_withdrawn_at or at
        marked = [item for item in self.forms if item.legal_basis == consent_basis and not item.restricted]
        for item in marked:
            item.restricted = True
            item.correction_due = None  # its content is no longer used, here or there: nothing to correct
        return marked

    def carries_for_rectification(self, form: Form) -> bool:
        """A form of ours whose content the partner holds and may still use: sent (not a draft), a form (not a
        control message), in force (not withdrawn or superseded), not restricted by a consent withdrawal."""
        return (
            form.direction is Direction.OUT
            and form.kind != CONTROL
            and form.status in IN_FORCE
            and form.superseded_by is None
            and not form.restricted
        )

    def mark_correction_due(
        self,
        correction_id: str,
        pointers: Mapping[str, Sequence[str]],
        *,
        members: Sequence[str],
        at: str,
        by: str,
    ) -> list[Form]:
        """Identification corrected the person's `members` (correction `correction_id`, at `at`, RFC 3339):
        each form of `pointers` (form id -> the content pointers it carries of those members) that still
        `carries_for_rectification` is marked, and the record gets one timeline entry. Once per correction: a
        correction already on the record's timeline marks nothing (a redelivery). Returns the forms marked."""
        if any(entry.get("correction_id") == correction_id for entry in self.rectifications):
            return []
        marked: list[Form] = []
        for form in self.forms:
            wanted = sorted(set(pointers.get(form.id, ())))
            if not wanted or not self.carries_for_rectification(form):
                continue
            due = form.correction_due or {"correction_ids": [], "fields": [], "since": at}
            form.correction_due = {
                "correction_id": correction_id,
                "correction_ids": [*due["correction_ids"], correction_id],
                "fields": sorted(set(due["fields"]) | set(wanted)),
                "since": due["since"],
                "updated_at": at,
            }
            marked.append(form)
        if marked:
            self.rectifications.append(
                {
                    "action": CORRECTION_DUE,
                    "correction_id": correction_id,
                    "at": at,
                    "by": by,
                    "forms": [form.id for form in marked],
                    "fields": sorted(members),
                }
            )
        return marked

    def countries_that_received(self, country: str) -> list[str]:
        """The partner countries we sent person data to (forms, not control messages)."""
        return sorted(
            {
                item.counterpart
                for item in self.forms
                if item.direction is Direction.OUT
                and item.kind != CONTROL
                and item.status is not Status.DRAFT
            }
            - {country}
        )

    # ------------------------------------------------------------------------------------------ actions

    def allowed_actions(
        self, form: Form, roles: Iterable[str], catalogue: FormCatalogue, now: datetime
    ) -> list[AllowedAction]:
        """What a caller with `roles` may do next with `form` (the state allows it and her roles may)."""
        roles = frozenset(roles)
        kind = catalogue.types.get(form.form_type)
        if kind is None:
            return []
        may_draft, may_send = bool(roles & kind.draft_roles), bool(roles & kind.send_roles)
        actions: list[AllowedAction] = []
        if form.direction is Direction.OUT:
            if form.status is Status.DRAFT:
                actions += [AllowedAction(Action.EDIT), AllowedAction(Action.DISCARD)] if may_draft else []
                actions += [AllowedAction(Action.SEND)] if may_send else []
            elif form.status is not Status.WITHDRAWN and may_send and kind.kind != CONTROL:
                actions += [AllowedAction(Action.WITHDRAW), AllowedAction(Action.CORRECT)]
                if status_now(form, catalogue, now) is Status.OVERDUE:
                    actions.append(AllowedAction(Action.REMIND))
            elif form.correction_due and may_draft and self.carries_for_rectification(form):
                actions.append(AllowedAction(Action.CORRECT))  # a correction is due: whoever may draft it
            return actions
        if form.status is Status.WITHDRAWN or form.restricted:
            return actions
        if form.status is Status.RECEIVED and kind.kind != CONTROL and roles & acknowledging_roles(catalogue):
            actions.append(AllowedAction(Action.ACKNOWLEDGE))
        if form.status is not Status.ANSWERED:
            replies = _drafting(catalogue, roles, lambda t: form.form_type in t.answers)
            if replies:
                actions.append(AllowedAction(Action.ANSWER, replies))
        clarify = _drafting(
            catalogue, roles, lambda t: t.code == CLARIFICATION_REQUEST and t.may_refer_to(form.form_type)
        )
        if clarify and self.status != CLOSED:
            actions.append(AllowedAction(Action.REQUEST_CLARIFICATION, clarify))
        return actions

    @staticmethod
    def _require(form: Form, status: Status, code: str) -> None:
        if form.status is not status:
            raise InvalidTransition(code)

    @staticmethod
    def _answered(form: Form, by: str, at: datetime) -> None:
        if form.status is not Status.WITHDRAWN:
            form.status, form.answered_at, form.answered_by = Status.ANSWERED, at, by


def _unresolved(due: Mapping[str, Any] | None, correction: Form) -> dict[str, Any] | None:
    """What of `due` (the mark of the form `correction` supersedes) the correction, now sent, leaves due on itself:
    everything when it was drafted before the latest marking (it cannot carry what identification corrected
    later), the marked pointers whose new value the form refused when it was drafted from identification, and
    nothing when an officer wrote its content after the mark (what she sends is her decision)."""
    if not due:
        return None
    if rfc3339(correction.created_at) < str(due.get("updated_at") or due["since"]):
        return dict(due)
    refreshed = correction.refreshed_from_identification
    if refreshed is None:
        return None
    left = sorted(set(due["fields"]) & set(refreshed.get("left_out", ())))
    return {**due, "fields": left} if left else None


def acknowledging_roles(catalogue: FormCatalogue) -> frozenset[str]:
    """Roles that may send the receipt (acknowledge what arrived)."""
    receipt = catalogue.types.get(RECEIPT)
    return receipt.send_roles if receipt else frozenset()


def _drafting(catalogue: FormCatalogue, roles: frozenset[str], wanted: Any) -> tuple[str, ...]:
    return tuple(
        sorted(
            code
            for code, kind in catalogue.types.items()
            if kind.current_version is not None and roles & kind.draft_roles and wanted(kind)
        )
    )
