"""The inbox: an envelope addressed to a country is verified before anything is stored, stored once, answered
with a signed receipt, and its reply deadline starts.

Called by the transport's consumer (entrypoints/consumer.py) with the receiving country and the envelope as it came off the
wire. No user is involved: the inbox works under the receiving country's own scope (`records.inbox_caller`).

Outcomes: `stored` (a new form, or a receipt, withdrawal, consent notice or closure applied), `duplicate` (the
envelope id was seen before: a redelivery or a replay stores nothing new). A refused envelope raises
`EnvelopeRefused` with its reason and stores nothing (`record-anonymised`: the record it is about was anonymised
at the end of its retention period and takes nothing new); the consumer logs it once, with routing only (countries,
envelope id, topic position).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from exchange.adapters.documents import ExchangeCaseDocument
from exchange.adapters.envelope import EnvelopeRefused, Opened
from exchange.domain import legal
from exchange.domain.case import Direction, Form, Status, TransnationalCase
from exchange.domain.catalogue import CONSENT_WITHDRAWN, RECEIPT, WITHDRAWAL
from exchange.domain.errors import DomainError, InvalidTransition
from exchange.domain.evidence import content_digest
from exchange.service_layer import outgoing
from exchange.service_layer.deps import Deps
from exchange.service_layer.records import find_by_reference, inbox_caller, instant, new_record, to_case
from exchange.service_layer.sending import attachment_problems
from plumbing.clock import as_utc
from plumbing.documents import new_id
from plumbing.errors import NotFound

STORED, DUPLICATE = "stored", "duplicate"
# Refused for good: the record this envelope is about was anonymised (service_layer/retention.py).
RECORD_ANONYMISED = "record-anonymised"


@dataclass(frozen=True)
class Outcome:
    result: str
    form_id: str | None
    case_id: str | None


def receive_envelope(deps: Deps, country: str, token: str) -> Outcome:
    opened = deps.envelopes.open(token, recipient=country)  # EnvelopeRefused: the consumer logs and commits
    message = _checked(deps, opened)
    caller = inbox_caller(country)
    reference = message["case"]["reference"]
    doc = find_by_reference(deps, caller, reference)
    if doc is not None and opened.envelope_id in doc.received_envelopes:
        return Outcome(DUPLICATE, message["form"]["id"], doc.id)
    if doc is not None and doc.anonymised_at is not None:
        # Past its retention period the record keeps no content: a late form would stay in it for good.
        raise EnvelopeRefused(RECORD_ANONYMISED)
    new = doc is None
    if doc is None:
        participants = sorted(set(message["case"]["participants"]) | {opened.sender, country})
        doc, case = new_record(reference, participants)
    else:
        case = to_case(doc)
    now = deps.clock.now()
    try:
        form_id, receipt_id = _apply(deps, doc, case, opened, message, country)
    except (NotFound, InvalidTransition):
        # Signed and addressed to us, but about a form this country does not hold or cannot change now.
        raise EnvelopeRefused("inapplicable") from None
    doc.received_envelopes = [*doc.received_envelopes, opened.envelope_id]
    doc = outgoing.store(deps, caller, doc, case, new=new)
    # Logged once stored (a failed write logs nothing; a redelivery then stores and logs it once).
    deps.message_log.append(country, _received_entry(opened, message["form"], reference, now, receipt_id))
    outgoing.deliver(deps, caller, doc)
    return Outcome(STORED, form_id, doc.id)


def _apply(
    deps: Deps,
    doc: ExchangeCaseDocument,
    case: TransnationalCase,
    opened: Opened,
    message: dict[str, Any],
    country: str,
) -> tuple[str, str | None]:
    """Apply one verified message to our record; returns (the form it is or is about, our receipt's envelope)."""
    header, body, now = message["form"], message["body"], deps.clock.now()
    if header["form_type"] == RECEIPT:
        case.apply_receipt(str(header["refers_to"]), body["content"]["stage"], opened.envelope_id, now)
        return str(header["refers_to"]), None
    form = _received_form(deps, opened, header, body)
    _apply_control(case, form, body["content"], now)
    kind = deps.catalogue.form_type(form.form_type)
    case.add_received(form, now, kind.reply_within_days)
    if kind.closes_case:
        case.close()
    doc.contents = {**doc.contents, form.id: deps.contents.seal(country, doc.id, form.id, body)}
    receipt = _automatic_receipt(deps, doc, case, form, country)
    form.receipt_ids = [str(receipt.envelope_id)]
    return form.id, receipt.envelope_id


def _checked(deps: Deps, opened: Opened) -> dict[str, Any]:
    """The opened message must be a form the catalogue accepts, its content valid and its digest right: a
    signed form that breaks the schema is refused as well (the sender's checks are not trusted blindly)."""
    message = opened.message
    try:
        header, body = message["form"], message["body"]
        reference = message["case"]["reference"]
        deps.catalogue.validate(header["form_type"], header["version"], body["content"])
        if not isinstance(reference, str) or content_digest(body) != header["content_digest"]:
            raise EnvelopeRefused("invalid-content")
        bases = [basis.code for basis in deps.config.legal_bases_for(opened.sender, opened.recipient)]
        if legal.basis_problems(bases, header.get("legal_basis")):
            raise EnvelopeRefused("invalid-content")  # no basis agreed for this pair: nothing may arrive
        if header["form_type"] != RECEIPT and body.get("attachments"):
            kind = deps.catalogue.form_type(header["form_type"])
            if attachment_problems(kind.attachments, body["attachments"]):
                raise EnvelopeRefused("invalid-content")
    except (KeyError, TypeError, DomainError):
        raise EnvelopeRefused("invalid-content") from None
    return message


def _received_form(deps: Deps, opened: Opened, header: dict[str, Any], body: dict[str, Any]) -> Form:
    return Form(
        id=str(header["id"]),
        form_type=header["form_type"],
        version=int(header["version"]),
        kind=header["kind"],
        direction=Direction.IN,
        counterpart=opened.sender,
        status=Status.RECEIVED,
        created_at=deps.clock.now(),
        created_by=f"{opened.sender}:exchange",
        refers_to=header.get("refers_to"),
        is_answer=bool(header.get("is_answer")),
        supersedes=header.get("supersedes"),
        legal_basis=header.get("legal_basis"),
        subject=header.get("subject"),
        content_digest=content_digest(body),
        sent_at=as_utc(_parse(header["sent_at"])) if header.get("sent_at") else None,
        envelope_id=opened.envelope_id,
        signature_id=opened.signature_id,
    )


def _apply_control(case: TransnationalCase, form: Form, content: dict[str, Any], now: datetime) -> None:
    if form.form_type == WITHDRAWAL and form.refers_to:
        case.apply_withdrawal(form.refers_to, content["reason"], now)
    elif form.form_type == CONSENT_WITHDRAWN:
        case.withdraw_consent(now, legal.CONSENT_BASIS)


def _automatic_receipt(
    deps: Deps, doc: ExchangeCaseDocument, case: TransnationalCase, received: Form, country: str
) -> Form:
    """The signed receipt (stage delivered) that storing a form sends back, in the same write."""
    receipt = Form(
        id=new_id(),
        form_type=RECEIPT,
        version=deps.catalogue.form_type(RECEIPT).current_version or 1,
        kind=deps.catalogue.form_type(RECEIPT).kind,
        direction=Direction.OUT,
        counterpart=received.counterpart,
        status=Status.DRAFT,
        created_at=deps.clock.now(),
        created_by=inbox_caller(country).sub,
        refers_to=received.id,
        legal_basis=received.legal_basis,
    )
    case.forms.append(receipt)
    case.mark_sent(receipt.id, deps.clock.now(), None)
    body = outgoing.payload({"stage": "delivered"}, None)
    doc.contents = {**doc.contents, receipt.id: deps.contents.seal(country, doc.id, receipt.id, body)}
    outgoing.send_sealed(deps, doc, case, receipt, body, sender=country)
    return receipt


def _received_entry(
    opened: Opened, header: dict[str, Any], reference: str, now: Any, receipt_id: str | None
) -> dict[str, Any]:
    return {
        "direction": "received",
        "envelope_id": opened.envelope_id,
        "form_id": header["id"],
        "form_type": header["form_type"],
        "version": header["version"],
        "case_reference": reference,
        "sender": opened.sender,
        "recipient": opened.recipient,
        "refers_to": header.get("refers_to"),
        "sent_at": header.get("sent_at"),
        "received_at": instant(now),
        "content_digest": header["content_digest"],
        "signature_id": opened.signature_id,
        "receipt_id": receipt_id,
        "logged_at": instant(now),
    }


def _parse(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))
