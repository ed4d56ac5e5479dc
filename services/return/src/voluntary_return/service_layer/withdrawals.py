"""An adult's withdrawal of consent recorded in identification (`identification.person.consent_withdrawn.v1`),
followed by the return service: her returns in that country stop, and none of hers rests on consent any more.

The event names the person (`person_id`), every identification case of hers in the owner country (`case_ids`) and
the withdrawal (`withdrawal_id`). A return case is hers when it is of the owner country and names her person id or
one of those cases (`person_id`, `identification_case_id`: the host side's links; an origin-side case names
neither). Each running case of hers stops with `consent_withdrawn` through the same transition as an officer's
withdrawal on the case (`cases.apply_consent_withdrawal`): the consent it holds no longer current,
`return.case.stopped.v1` through the outbox, deadlines cleared, and a timeline entry naming the withdrawal
(`withdrawal_id`, `recorded_in: identification`), by the consumer (`system:return-consumer`). A case already
ended is left as it is.

Why a record of its own (`ConsentWithdrawalDocument`, id = `withdrawal_id`) rather than a mark on the cases: she
may have no return case yet, and a case opened later must know too. The record is written FIRST, so from that
instant `cases.record_consent` refuses consent on any case of hers (409 `consent_withdrawn`; without a current
consent no adult's return is decided or approved: `consent_required`), then her running cases stop, then the
record is marked applied (`applied_at`). Applied once: a redelivery finds the record applied and changes nothing
(not even a case of hers opened since, which can get no consent anyway); one that finds it not applied (a crash in
between) stops what is still running, the cases already stopped being left as they are.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from plumbing.errors import Conflict
from plumbing.ports import SystemRecords
from plumbing.repository import retry_concurrent
from voluntary_return.adapters.documents import ConsentWithdrawalDocument, ReturnCaseDocument
from voluntary_return.service_layer.border import ACTOR, RUNNING
from voluntary_return.service_layer.cases import apply_consent_withdrawal
from voluntary_return.service_layer.deps import Deps

CONSENT_WITHDRAWN_EVENT = "identification.person.consent_withdrawn.v1"


def follow_identification(deps: Deps, envelope: Mapping[str, Any]) -> list[str]:
    """Apply one withdrawal of consent recorded in identification; the ids of the return cases it stopped."""
    if str(envelope.get("type")) != CONSENT_WITHDRAWN_EVENT:
        return []
    withdrawals = deps.system_repository(ConsentWithdrawalDocument, ACTOR)
    withdrawal = _recorded(withdrawals, envelope["data"])
    if withdrawal.applied_at is not None:
        return []  # a redelivery
    stopped = [case_id for case_id in _her_cases(deps, withdrawal) if _stop(deps, case_id, withdrawal.id)]
    withdrawals.update_where(withdrawal.id, {"applied_at": None}, {"$set": {"applied_at": deps.clock.now()}})
    return stopped


def _recorded(
    withdrawals: SystemRecords[ConsentWithdrawalDocument], data: Mapping[str, Any]
) -> ConsentWithdrawalDocument:
    """The withdrawal as the return service keeps it: recorded now, or as it was the first time."""
    doc = ConsentWithdrawalDocument(
        id=str(data["withdrawal_id"]),
        person_id=str(data["person_id"]),
        case_ids=[str(case_id) for case_id in data["case_ids"]],
    )
    try:
        return withdrawals.insert(
            doc, owner_country=str(data["owner_country"]), owner_agency=str(data["owner_agency"])
        )
    except Conflict:  # seen before
        return withdrawals.get(doc.id)


def _her_cases(deps: Deps, withdrawal: ConsentWithdrawalDocument) -> list[str]:
    """The ids of the owner country's return cases naming her person id or one of her identification cases."""
    cases = deps.system_repository(ReturnCaseDocument, ACTOR)
    country = withdrawal.owner_country
    found = [doc.id for doc in cases.find(owner_country=country, person_id=withdrawal.person_id)]
    if withdrawal.case_ids:
        named = cases.find(owner_country=country, identification_case_id__in=list(withdrawal.case_ids))
        found.extend(doc.id for doc in named)
    return list(dict.fromkeys(found))


@retry_concurrent()
def _stop(deps: Deps, case_id: str, withdrawal_id: str) -> bool:
    """Stop one running case of hers (an officer's step racing this write: applied to the case as it now is);
    False when it had already ended (left as it is)."""
    cases = deps.system_repository(ReturnCaseDocument, ACTOR)
    doc = cases.get(case_id)
    if doc.status not in RUNNING:
        return False
    events = apply_consent_withdrawal(
        deps, doc, by=ACTOR, agency=doc.owner_agency, withdrawal_id=withdrawal_id
    )
    cases.update(doc, events=events)
    return True
