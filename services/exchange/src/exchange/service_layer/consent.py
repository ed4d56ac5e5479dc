"""An adult's withdrawal of consent, announced by identification: `identification.person.consent_withdrawn.v1`.

Identification is the one place an officer records the withdrawal; its event names the withdrawal, the owner
country and every identification case of the person there (ids, codes and the day it took effect). The
consumer applies it here to every record of the owner country linked to one of those cases
(`identification_case_id`), exactly as an officer's `POST .../consent-withdrawals` would
(`sending.withdraw_consent_by_system`, sharing `sending.notify_consent_withdrawn`'s code): the forms that rested on
consent restricted, consent-based sends refused afterwards, a signed `consent-withdrawn` notice (scope
`all-processing`, the event's `effective_on`) to every country that received forms of the record from us, the
event `exchange.case.consent_withdrawn.v1` (the return service stops the returns on both sides from it).

- Sender: the system actor `system:exchange-consumer`, for the record's owner country and agency.
- Legal basis of each notice: `legal.notice_basis` of the pair's catalogue (the first basis that is not consent;
  consent only when the pair has no other); a pair without any basis refuses before anything is written.
- Once: every notice is keyed `consent-withdrawal:<withdrawal id>:<country>` (a redelivery finds them sent); a
  record whose consent is already withdrawn (an officer's notice, or one received) sends nothing to a country
  already told, and nothing at all when nobody is left to tell.
- Later links: the withdrawal is kept (`ConsentWithdrawalDocument`, stored before the records are looked up);
  linking a record to one of its identification cases afterwards applies it to that record the same way
  (`apply_on_link`), and a draft or send on consent is refused for a record linked to a withdrawn case
  (`sending._refuse_after_consent_withdrawn`) even before that.
- A record anonymised at the end of its retention period (service_layer/retention.py) is left as it is: it has no
  content to restrict any more and takes no new form.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Mapping
from typing import Any

from exchange.adapters.documents import ConsentWithdrawalDocument, ExchangeCaseDocument
from exchange.service_layer import sending
from exchange.service_layer.deps import Deps
from exchange.service_layer.records import INBOX_AGENCY, cases, withdrawal_of, withdrawals
from plumbing.auth import Caller
from plumbing.errors import Conflict

log = logging.getLogger(__name__)

CONSENT_WITHDRAWN_EVENT = "identification.person.consent_withdrawn.v1"
ACTOR = "system:exchange-consumer"
# Derives the stored withdrawal's id from the event's withdrawal id: a redelivery finds it stored.
_WITHDRAWAL_IDS = uuid.UUID("2f6e0c1a-8d4b-4f3e-9a57-c3b1d0e4f812")


def system_caller(country: str, agency: str = INBOX_AGENCY) -> Caller:
    """The system actor, for `country`'s records (country-wide scope, through the same scoped repository as every
    user) and on behalf of the record's owning `agency`."""
    return Caller(
        sub=ACTOR,
        azp="exchange-consumer",
        country=country,
        agency=agency,
        roles=frozenset({"contact-point"}),
        acting_user=None,
        is_machine=True,
        token="",
    )


def notice_key(withdrawal_id: str) -> str:
    """The idempotency key of the notices one withdrawal sends (each notice: `<key>:<country>`)."""
    return f"consent-withdrawal:{withdrawal_id}"


def apply_consent_withdrawal(deps: Deps, envelope: Mapping[str, Any]) -> list[str]:
    """Apply one withdrawal to the owner country's records linked to the person's identification cases; returns
    their ids (each applied once, whatever the number of deliveries)."""
    if envelope.get("type") != CONSENT_WITHDRAWN_EVENT:
        raise ValueError("not a consent-withdrawn event")
    data = envelope["data"]
    country = str(data["owner_country"])
    if country not in deps.config.country_codes:
        log.warning("consent withdrawal of a country not configured", extra={"fields": {"country": country}})
        return []
    caller = system_caller(country)
    withdrawal = _remember(deps, caller, data)
    linked: list[ExchangeCaseDocument] = cases(deps, caller).find(
        identification_case_id__in=list(withdrawal.identification_case_ids)
    )
    for doc in linked:
        _apply(deps, withdrawal, doc)
    return [doc.id for doc in linked]


def apply_on_link(deps: Deps, caller: Caller, case_id: str, identification_case_id: str) -> bool:
    """After a record was linked to `identification_case_id`: a withdrawal identification announced for it applies
    to the record now (restriction, notices, event). Whether there was one."""
    withdrawal = withdrawal_of(deps, caller, identification_case_id)
    if withdrawal is None:
        return False
    _apply(deps, withdrawal, cases(deps, caller).get(case_id))
    return True


def _apply(deps: Deps, withdrawal: ConsentWithdrawalDocument, doc: ExchangeCaseDocument) -> None:
    if doc.anonymised_at is not None:
        # Anonymised at the end of its retention period: no content left to restrict, and it takes no new form.
        log.info("consent withdrawal not applied: record anonymised", extra={"fields": {"case_id": doc.id}})
        return
    sender = system_caller(str(doc.owner_country), str(doc.owner_agency))
    notices = sending.withdraw_consent_by_system(
        deps,
        sender,
        str(doc.id),
        effective_on=str(withdrawal.effective_on),
        idempotency_key=notice_key(str(withdrawal.withdrawal_id)),
    )
    log.info(
        "consent withdrawal applied",
        extra={"fields": {"case_id": doc.id, "notified": sorted(n.counterpart for n in notices)}},
    )


def _remember(deps: Deps, caller: Caller, data: Mapping[str, Any]) -> ConsentWithdrawalDocument:
    """The withdrawal stored once, before any record is looked up: a link made meanwhile finds it (the link is
    written before it looks for a withdrawal, so one of the two always sees the other)."""
    withdrawal_id = str(data["withdrawal_id"])
    record_id = str(uuid.uuid5(_WITHDRAWAL_IDS, f"{caller.country}:{withdrawal_id}"))
    doc = ConsentWithdrawalDocument(
        id=record_id,
        withdrawal_id=withdrawal_id,
        identification_case_ids=[str(case_id) for case_id in data["case_ids"]],
        effective_on=str(data["effective_on"]),
    )
    try:
        return withdrawals(deps, caller).insert(doc)
    except Conflict:  # a redelivery: stored by the first
        return withdrawals(deps, caller).get(record_id)
