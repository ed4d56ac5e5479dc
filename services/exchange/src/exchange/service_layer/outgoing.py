"""Sealing a form of ours into its envelope and handing it over: shared by sending, receipts and the inbox.

A send is one write of the case record holding the sent form and its envelope (`outgoing`); delivery comes
after it: the message-log entry (once per envelope), the transport, then the envelope leaves `outgoing`. A
transport that fails leaves the envelope in the record for a later attempt (the relay of the next slice);
the receiver's replay detection makes a second delivery harmless.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

from exchange.adapters.documents import ExchangeCaseDocument
from exchange.adapters.transport import TransportError
from exchange.domain import deadlines, events
from exchange.domain.case import Form, TransnationalCase
from exchange.domain.events import Change
from exchange.domain.evidence import content_digest
from exchange.service_layer.deps import Deps
from exchange.service_layer.records import cases, instant, require_not_anonymised, to_case, write_back
from plumbing.auth import Caller
from plumbing.documents import new_id

log = logging.getLogger(__name__)


def payload(content: Any, attachments: list[dict[str, Any]] | None) -> dict[str, Any]:
    """What is sealed, digested and sent for one form: its content and its attachments."""
    return {"content": content, "attachments": attachments or []}


def send_sealed(
    deps: Deps,
    doc: ExchangeCaseDocument,
    case: TransnationalCase,
    form: Form,
    body: Mapping[str, Any],
    *,
    sender: str,
) -> None:
    """The form (already marked sent in `case`) gets its envelope; the record is not written here."""
    form.envelope_id = form.envelope_id or new_id()
    form.content_digest = content_digest(body)
    message = {
        "case": {"reference": case.reference, "participants": list(case.participants)},
        "form": {
            "id": form.id,
            "form_type": form.form_type,
            "version": form.version,
            "kind": form.kind,
            "refers_to": form.refers_to,
            "is_answer": form.is_answer,
            "supersedes": form.supersedes,
            "legal_basis": form.legal_basis,
            "subject": form.subject,
            "sent_at": instant(form.sent_at),
            "content_digest": form.content_digest,
        },
        "body": dict(body),
    }
    sealed = deps.envelopes.seal(
        message, sender=sender, recipient=form.counterpart, envelope_id=form.envelope_id
    )
    form.signature_id = sealed.signature_id
    entry = log_fields(form, case.reference, sender=sender, recipient=form.counterpart, direction="sent")
    doc.outgoing = [
        *doc.outgoing,
        {
            "envelope_id": sealed.envelope_id,
            "recipient": form.counterpart,
            "token": sealed.token,
            "log": entry,
        },
    ]


def log_fields(
    form: Form, reference: str, *, sender: str, recipient: str, direction: str, receipt_id: str | None = None
) -> dict[str, Any]:
    """A message-log entry: metadata only, never content."""
    return {
        "direction": direction,
        "envelope_id": form.envelope_id,
        "form_id": form.id,
        "form_type": form.form_type,
        "version": form.version,
        "case_reference": reference,
        "sender": sender,
        "recipient": recipient,
        "refers_to": form.refers_to,
        "sent_at": instant(form.sent_at),
        "received_at": instant(form.received_at),
        "content_digest": form.content_digest,
        "signature_id": form.signature_id,
        "receipt_id": receipt_id,
    }


def deliver(deps: Deps, caller: Caller, doc: ExchangeCaseDocument) -> list[str]:
    """Log and hand over every envelope waiting in the record; those handed over leave it (one write).

    The removal is a conditional `$pull` of the delivered envelope ids, not a version-guarded update: while
    the transport waits for the broker, the consumer may store a receipt on the same record, and that must not
    turn a send that was stored and handed over into a 409. Returns the ids of the envelopes handed over (the
    record is not read again: no caller needs it, and each read is a round trip on the send's path)."""
    delivered: list[str] = []
    for item in doc.outgoing:
        deps.message_log.append(caller.country, {**item["log"], "logged_at": instant(deps.clock.now())})
        try:
            deps.transport.deliver(item["recipient"], item["envelope_id"], item["token"])
        except TransportError:
            log.warning(
                "exchange envelope not delivered yet", extra={"fields": {"envelope_id": item["envelope_id"]}}
            )
            continue
        delivered.append(item["envelope_id"])
    if delivered:
        pull = {"$pull": {"outgoing": {"envelope_id": {"$in": delivered}}}}
        cases(deps, caller).update_where(doc.id, {}, pull)  # False only when the record is gone
    return delivered


def store(
    deps: Deps,
    caller: Caller,
    doc: ExchangeCaseDocument,
    case: TransnationalCase,
    *,
    new: bool,
    extra_events: Sequence[Change] = (),
) -> ExchangeCaseDocument:
    """Write the case as a command left it, in ONE write with the events its change means (domain/events.py)
    and the instant its next reply deadline falls due (for the scheduler). An anonymised record takes no change
    (409 `record_anonymised`: records.require_not_anonymised)."""
    if not new:
        require_not_anonymised(doc)
    before = None if new else to_case(doc)  # the document still holds what was read
    owner = doc.owner_country or caller.country
    common = events.record_data(doc.id, case.reference, owner)
    out = [
        deps.new_event(event_type, doc.id, {**common, **data})
        for event_type, data in [*events.changes(before, case), *extra_events]
    ]
    write_back(doc, case)
    doc.next_due_at = deadlines.next_due(case, deps.catalogue, doc.deadline_actions_done or ())
    repository = cases(deps, caller)
    return repository.insert(doc, events=out) if new else repository.update(doc, events=out)
