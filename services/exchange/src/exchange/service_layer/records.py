"""Reading and writing one country's record of a transnational case, and what the service layer shares."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from exchange.adapters.documents import ConsentWithdrawalDocument, ExchangeCaseDocument
from exchange.domain.case import OPEN, Form, TransnationalCase
from exchange.domain.errors import InvalidTransition
from exchange.service_layer.deps import Deps, Repository
from plumbing.auth import Caller
from plumbing.clock import as_utc, rfc3339, to_millis

# The receiving country's inbox belongs to its coordinator's office: records it creates are owned by it.
INBOX_AGENCY = "coordinator-office"
INBOX_SUB = "exchange-inbox"
RESOURCE_FORM = "exchange-form"
# 409 code of a change asked of a record the retention job anonymised (service_layer/retention.py)
RECORD_ANONYMISED = "record_anonymised"


def inbox_caller(country: str) -> Caller:
    """The identity under which the inbox (and the evidence check) works: the country's own records only,
    through the same scoped repository as every user (never another country's)."""
    return Caller(
        sub=INBOX_SUB,
        azp="exchange-api",
        country=country,
        agency=INBOX_AGENCY,
        roles=frozenset({"contact-point"}),
        acting_user=None,
        is_machine=True,
        token="",
    )


def cases(deps: Deps, caller: Caller) -> Repository[ExchangeCaseDocument]:
    return deps.repository(ExchangeCaseDocument, caller)


def withdrawals(deps: Deps, caller: Caller) -> Repository[ConsentWithdrawalDocument]:
    return deps.repository(ConsentWithdrawalDocument, caller)


def withdrawal_of(
    deps: Deps, caller: Caller, identification_case_id: str | None
) -> ConsentWithdrawalDocument | None:
    """The consent withdrawal identification announced for this identification case of the caller's country, if
    any (service_layer/consent.py)."""
    if not identification_case_id:
        return None
    found = withdrawals(deps, caller).find(limit=1, identification_case_ids=identification_case_id)
    return found[0] if found else None


def require_not_anonymised(doc: ExchangeCaseDocument) -> None:
    """A record anonymised at the end of its retention period (service_layer/retention.py) is kept as evidence of
    what crossed and changes no more: no new form, receipt, notice, link or deadline action, whose content would
    then stay for good (409 `record_anonymised`; the inbox refuses an envelope for it)."""
    if doc.anonymised_at is not None:
        raise InvalidTransition(RECORD_ANONYMISED)


def _plain(value: Any) -> Any:
    """Plain dicts, lists and aware datetimes: mongoengine hands back its own containers and naive UTC times."""
    if isinstance(value, datetime):
        return as_utc(value)
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


def to_case(doc: ExchangeCaseDocument) -> TransnationalCase:
    return TransnationalCase(
        reference=doc.reference,
        participants=list(doc.participants),
        forms=[Form.from_record(_plain(item)) for item in doc.forms],
        status=doc.status,
        consent_withdrawn_at=as_utc(doc.consent_withdrawn_at) if doc.consent_withdrawn_at else None,
        rectifications=[_plain(entry) for entry in doc.rectifications or []],
    )


def _stored(record: dict[str, Any]) -> dict[str, Any]:
    # BSON keeps milliseconds: truncate now so that what the domain compares survives a round trip.
    return {k: to_millis(v) if isinstance(v, datetime) else v for k, v in record.items()}


def write_back(doc: ExchangeCaseDocument, case: TransnationalCase) -> None:
    doc.participants = list(case.participants)
    doc.forms = [_stored(item.as_record()) for item in case.forms]
    doc.status = case.status
    doc.consent_withdrawn_at = case.consent_withdrawn_at
    doc.rectifications = [dict(entry) for entry in case.rectifications]


def load(deps: Deps, caller: Caller, case_id: str) -> tuple[ExchangeCaseDocument, TransnationalCase]:
    """The caller's country's record (404 for a missing one and for another country's: never which)."""
    doc = cases(deps, caller).get(case_id)
    return doc, to_case(doc)


def load_for_change(
    deps: Deps, caller: Caller, case_id: str
) -> tuple[ExchangeCaseDocument, TransnationalCase]:
    """`load` for a command: 409 `record_anonymised` first when the record was anonymised, whatever was asked."""
    doc, case = load(deps, caller, case_id)
    require_not_anonymised(doc)
    return doc, case


def find_by_reference(deps: Deps, caller: Caller, reference: str) -> ExchangeCaseDocument | None:
    found = cases(deps, caller).find(limit=1, reference=reference)
    return found[0] if found else None


def new_record(reference: str, participants: list[str]) -> tuple[ExchangeCaseDocument, TransnationalCase]:
    doc = ExchangeCaseDocument(
        reference=reference, participants=participants, status=OPEN, forms=[], contents={}
    )
    return doc, to_case(doc)


def case_reference(deps: Deps, country: str) -> str:
    """`<country>-EX-<year>-<sequence>`, from the atomic per-country counter."""
    year = deps.clock.now().year
    return f"{country}-EX-{year}-{deps.next_sequence(country, year):04d}"


def instant(value: datetime | None) -> str | None:
    return rfc3339(value) if value is not None else None
