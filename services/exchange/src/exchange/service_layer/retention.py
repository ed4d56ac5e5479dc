"""What the retention job does to the exchange's records (docs/data-protection.md "Retention"; the mechanism is
plumbing.retention, run by entrypoints/scheduler.py).

- exchange-message: the country's record of a transnational case (`ExchangeCaseDocument`;
  config/platform.yaml `retention.exchange-message`: P5Y from `closed`, anonymise). Its period starts when the
  record closed: the earliest `case-closure` (any form type that `closes_case`) it sent (`sent_at`) or received
  (`received_at`, our own clock). A record never closed counts from its last form: the latest instant anything
  happened to one of its forms (drafted, sent, received, acknowledged, answered, withdrawn; for a form received,
  never the sender's `sent_at`, which is the sender's clock). A record with no form at all (its only draft
  discarded) has nothing to count from: the job looks again a period later. Later forms do not move a closure.
  Anonymising, in the one write of the job:
  - removes every form's sealed content and attachments (`contents`: the attachments are sealed with the content)
    and every envelope still waiting for the relay (`outgoing`: each holds the sealed form for the recipient);
  - removes the drafts altogether: nothing of a draft ever crossed, so nothing of it is evidence, and a draft
    without content could neither be sent nor edited;
  - of every form sent or received, removes its `subject` (age group, consent, the child's views), the officer's
    id that created a form of ours (`created_by` -> `[removed]`, as identification does; a received form's is the
    sender country's `XX:exchange`, kept) and the idempotency keys and the fingerprint of the draft's body
    (`draft_key`, `draft_fingerprint`, `send_key`) and a correction still due (`correction_due`: no content is
    left to correct); and the record's `assigned_to`;
  - clears `next_due_at`: nothing is due on an anonymised record (service_layer/deadlines.py skips it too).
  Free text exists only inside the sealed content (`remarks` and the like of the catalogue's forms); the form
  metadata holds codes, ids and instants only, so nothing else is free text.
  It keeps every sent or received form's id, type, version, kind, direction, counterpart, status, creation time,
  `refers_to`, `is_answer`, `supersedes`, `superseded_by`, legal basis, content digest, every instant (sent,
  received, acknowledged, answered, deadline, withdrawn), `answered_by`, the withdrawal's reason code, envelope
  id, signature id, receipt ids and `restricted`; the record's reference, participants, status,
  `consent_withdrawn_at`, `received_envelopes` (replay detection: ids only), `deadline_actions_done`,
  `rectifications` (correction ids, form ids, codes and instants: service_layer/rectification.py) and the link
  to the country's own identification case (an id: the person's record there has its own rule, and a restriction
  of her processing still finds the record by it). The message log (adapters/message_log.py: ids, types,
  directions, times, digests, signature and receipt ids, hash-chained) is not touched: the evidence of what
  crossed. Everything the statistics read (domain/statistics.py: type, kind, direction, counterpart, status,
  sent, received, acknowledged, answered, deadline; drafts are never counted) stays, so they stay the same.
  After it, the record takes no change (records.require_not_anonymised: 409 `record_anonymised`; the inbox
  refuses an envelope for it as `record-anonymised`; a consent withdrawal or return stop announced for it is not
  applied), its views show `anonymised_at` with no allowed action, a form's read answers its metadata with no
  content (nothing is read, nothing access-logged), and the evidence check counts its forms as anonymised
  instead of checking a content that is gone (service_layer/evidence.py).
- consent withdrawal (`ConsentWithdrawalDocument`, record type `exchange-message` too): no `Retained`. It holds
  ids and a day only (the withdrawal's id, the person's identification case ids, `effective_on`), never the
  person's id or anything about her, and it must outlive every record that could still be linked to one of those
  cases (service_layer/consent.py applies it on a later link). It follows the person (docs: "the withdrawal ...
  records (ids only) with the person"), whose record identification anonymises; its `retention_due_at` (set on
  insert) is claimed by no job.
- Not documents of this kind: received envelopes are ids in the record (`received_envelopes`, kept); attachments
  are inside each form's sealed content (removed with it); the message log holds no content (kept); the
  received-events inbox and the Idempotency-Key store are removed by their TTL indexes; the access log is pruned
  by the scheduler (plumbing.retention.ServiceRetention.tasks); the reference counters hold numbers only.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from datetime import datetime

from exchange.adapters.documents import ExchangeCaseDocument
from exchange.domain.case import CLOSED, Direction, Form, Status, TransnationalCase
from exchange.domain.catalogue import FormCatalogue
from exchange.service_layer.deps import Deps
from exchange.service_layer.records import to_case, write_back
from plumbing.clock import as_utc
from plumbing.retention import Retained

REMOVED = "[removed]"  # `created_by` of a form of ours once anonymised (required, so never left empty)


def retained(deps: Deps) -> list[Retained]:
    """The document classes the retention job anonymises: the case records only (see the module's docstring)."""
    return [
        Retained(
            ExchangeCaseDocument,
            closed_at=record_closed_at(deps.catalogue),
            anonymise=anonymise_record,
        )
    ]


def record_closed_at(catalogue: FormCatalogue) -> Callable[[ExchangeCaseDocument], datetime | None]:
    """`closed_at` of a case record, with the form types that close a case taken from `catalogue`."""
    closing = frozenset(code for code, kind in catalogue.types.items() if kind.closes_case)

    def closed_at(doc: ExchangeCaseDocument) -> datetime | None:
        """When the record closed, or, never closed, the instant of its last form (None without any form)."""
        case = to_case(doc)
        if case.status == CLOSED:
            closures = [_crossed_at(form) for form in case.forms if form.form_type in closing]
            crossed = [at for at in closures if at is not None]
            if crossed:
                return min(crossed)
        return last_form_at(case)

    return closed_at


def _crossed_at(form: Form) -> datetime | None:
    """When a form crossed: sent by us, or received (our clock); None for a draft."""
    if form.status is Status.DRAFT:
        return None
    at = form.sent_at if form.direction is Direction.OUT else form.received_at
    return as_utc(at) if at is not None else None


def last_form_at(case: TransnationalCase) -> datetime | None:
    """The latest instant anything happened to one of the record's forms; None when it has none."""
    # A received form's `sent_at` is the sender's clock: its `created_at` is when it arrived here.
    instants = [
        as_utc(at)
        for form in case.forms
        for at in (
            form.created_at,
            form.sent_at if form.direction is Direction.OUT else None,
            form.received_at,
            form.acknowledged_at,
            form.answered_at,
            form.withdrawn_at,
        )
        if at is not None
    ]
    return max(instants, default=None)


def anonymise_record(doc: ExchangeCaseDocument) -> None:
    """Remove the content, the drafts and the personal metadata of a case record, in place (the job writes it);
    everything the message log, the evidence and the statistics rest on stays (see the module's docstring)."""
    case = to_case(doc)
    case.forms = [_metadata_only(form) for form in case.forms if form.status is not Status.DRAFT]
    write_back(doc, case)
    doc.contents = {}
    doc.outgoing = []
    doc.assigned_to = []
    doc.next_due_at = None


def _metadata_only(form: Form) -> Form:
    return replace(
        form,
        subject=None,
        created_by=REMOVED if form.direction is Direction.OUT else form.created_by,
        draft_key=None,
        draft_fingerprint=None,
        send_key=None,
        correction_due=None,  # no content left to correct (service_layer/rectification.py)
    )
