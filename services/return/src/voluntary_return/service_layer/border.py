"""What crosses the border about a return, followed from the exchange's events (`exchange.events.v1`).

The forms themselves (the return request, family and risk assessment requests and reports, the plan, the handover
confirmation, reintegration follow-ups, the closure) are drafted, signed and sent in the exchange, by the officers
its form types name, with its deadlines and message log. The return service does not send them: it follows them.
Each return case names its country's record of the transnational case (`exchange_case_id`), and each exchange
event about that record (ids and codes only: the form's id, type, direction, counterpart) becomes an entry on the
case's timeline, so each country's timeline shows what it sent and received, and when.

Three events do more than that:
- a `return-request` received opens the origin country's return case (`side: origin`), owned by its coordinator's
  office (where the exchange's inbox records belong), unless an origin case of that record is still running (a
  new request is a new return: it lands on the running cases, not on those that ended);
- a consent withdrawal, sent or received (`exchange.case.consent_withdrawn.v1`), stops every running return case
  of the record with `consent_withdrawn`, on both sides: a withdrawal in either country stops the return in both;
- a `return-stopped` form received (the partner's return stopped, told by its exchange: exchange's
  service_layer/return_stops.py) stops the running cases of the record with `stopped_in_partner_country`. This
  country's own stops are told to the partner the same way, by this country's exchange, from the return's
  `return.case.stopped.v1` event.

Applied once per event: the ids of the exchange events a case took are kept on it (a redelivery adds nothing),
and an origin case's id derives from the event that opened it.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import Any

from plumbing.ports import SystemRecords
from plumbing.repository import retry_concurrent
from voluntary_return.adapters.documents import ReturnCaseDocument
from voluntary_return.domain import events, lifecycle
from voluntary_return.domain.catalogue import CONSENT_WITHDRAWN, STOPPED_IN_PARTNER_COUNTRY
from voluntary_return.domain.lifecycle import Action, Side, Status
from voluntary_return.service_layer import deadlines
from voluntary_return.service_layer.deps import Deps
from voluntary_return.service_layer.events import case_event, transition_events

ACTOR = "system:return-consumer"
# The origin country's return cases open where the exchange files what it receives: the coordinator's office.
ORIGIN_AGENCY = "coordinator-office"

FORM_SENT = "exchange.form.sent.v1"
FORM_RECEIVED = "exchange.form.received.v1"
FORM_WITHDRAWN = "exchange.form.withdrawn.v1"
CONSENT_WITHDRAWN_EVENT = "exchange.case.consent_withdrawn.v1"
# What crossed (an acknowledgement is the exchange's own bookkeeping, not a step of the return).
FOLLOWED = {
    FORM_SENT: "form_sent",
    FORM_RECEIVED: "form_received",
    FORM_WITHDRAWN: "form_withdrawn",
}
# The exchange's form types a return is made of (services/exchange/src/exchange/forms/types/); others - a
# notification, an identity verification - concern the transnational case, not its return.
RETURN_REQUEST, RETURN_STOPPED = "return-request", "return-stopped"
RETURN_FORMS = frozenset(
    {
        RETURN_REQUEST,
        "family-assessment-request",
        "family-assessment-report",
        "risk-assessment-request",
        "risk-assessment-report",
        "return-plan",
        "handover-confirmation",
        "reintegration-follow-up",
        "case-closure",
        RETURN_STOPPED,
    }
)
RUNNING = frozenset(str(status) for status in lifecycle.ACTIVE)
# Derives an origin case's id from the event that opened it: a redelivery finds the case it already opened.
_ORIGIN_IDS = uuid.UUID("6b1f3f0e-5d0a-4e8e-9c44-0d7f6a1e2b3c")


@retry_concurrent()
def follow_exchange(deps: Deps, envelope: Mapping[str, Any]) -> list[str]:
    """Apply one exchange event to the return cases of its record; the ids of the cases it changed."""
    kind = str(envelope.get("type"))
    data = envelope["data"]
    if kind not in FOLLOWED and kind != CONSENT_WITHDRAWN_EVENT:
        return []
    if kind in FOLLOWED and data["form_type"] not in RETURN_FORMS:
        return []
    event_id = str(envelope["id"])
    country, record = str(data["owner_country"]), str(data["case_id"])
    cases = deps.system_repository(ReturnCaseDocument, ACTOR)
    new_request = kind == FORM_RECEIVED and data["form_type"] == RETURN_REQUEST
    if new_request:
        _open_origin_case(deps, cases, event_id, data)
    changed: list[str] = []
    for doc in cases.find(owner_country=country, exchange_case_id=record):
        if event_id in (doc.exchange_events or ()):
            continue
        if new_request and doc.status not in RUNNING:
            continue  # a new request is a new return: not on the timeline of one that ended
        now = deps.clock.now()
        entry: dict[str, Any] = {"at": now, "by": ACTOR, "agency": doc.owner_agency}
        if kind == CONSENT_WITHDRAWN_EVENT:
            entry.update(action="consent_withdrawn_notice", direction=data["direction"])
        else:
            entry.update(
                action=FOLLOWED[kind],
                form_type=data["form_type"],
                form_id=data["form_id"],
                counterpart=data["counterpart"],
            )
            if data.get("reason"):
                entry["reason"] = data["reason"]
        entries = [entry]
        stop = None
        reason = _stop_reason(kind, data)
        if reason is not None and doc.status in RUNNING:
            stop = lifecycle.plan(doc.status, Action.STOP, reason=reason, side=doc.side)
            doc.status, doc.reason = str(stop.target), reason
            doc.consent_current = doc.consent_current and reason != CONSENT_WITHDRAWN
            entries.append(lifecycle.timeline_entry(stop, at=now, by=ACTOR, agency=doc.owner_agency))
            deadlines.schedule(deps, doc)  # a stopped case has nothing due
        doc.timeline = [*doc.timeline, *entries]
        doc.exchange_events = [*(doc.exchange_events or ()), event_id]
        # A stop is published (return.case.stopped.v1) like every stop; the exchange tells no partner of one
        # the partner caused (`stopped_in_partner_country`) or a consent notice already told.
        cases.update(doc, events=transition_events(deps, doc, stop))
        changed.append(doc.id)
    return changed


def _stop_reason(kind: str, data: Mapping[str, Any]) -> str | None:
    """The reason the event stops the record's running return cases for, if it does."""
    if kind == CONSENT_WITHDRAWN_EVENT:
        return CONSENT_WITHDRAWN
    if kind == FORM_RECEIVED and data["form_type"] == RETURN_STOPPED:
        return STOPPED_IN_PARTNER_COUNTRY
    return None


def _open_origin_case(
    deps: Deps, cases: SystemRecords[ReturnCaseDocument], event_id: str, data: Mapping[str, Any]
) -> None:
    """The origin country's case for a return request it received, unless one of the record still runs."""
    country, record = str(data["owner_country"]), str(data["case_id"])
    case_id = str(uuid.uuid5(_ORIGIN_IDS, event_id))
    running = [
        doc
        for doc in cases.find(owner_country=country, exchange_case_id=record, side=str(Side.ORIGIN))
        if doc.id == case_id or doc.status in RUNNING
    ]
    if running:
        return
    doc = ReturnCaseDocument(
        id=case_id,
        side=str(Side.ORIGIN),
        status=str(Status.REQUESTED),
        origin_country=country,
        host_country=str(data["counterpart"]),
        exchange_case_id=record,
        # Not known here (the request's content is read in the exchange, by a person): presumed a child.
        age_group=None,
        timeline=[
            {
                "at": deps.clock.now(),
                "by": ACTOR,
                "agency": ORIGIN_AGENCY,
                "action": "open",
                "to": str(Status.REQUESTED),
                "form_id": data["form_id"],
            }
        ],
    )
    doc.owner_country, doc.owner_agency = country, ORIGIN_AGENCY  # the event needs them before the insert
    cases.insert(
        doc,
        owner_country=country,
        owner_agency=ORIGIN_AGENCY,
        events=[case_event(deps, doc, events.REQUESTED)],
    )
