"""A return case as the rules see it, and every transition but plan approval.

`ReturnCase` holds the facts the rules need (status, age facts, consent, the current best-interests
determination); the service layer builds it from its stored document. `step` is how a case moves: it checks the
transition table (409 `<action>_not_allowed_when_<status>`), the coded reason of a stop or close (422), the rule
that a case whose child a panel decided should not return may only stop with `other_durable_solution` (409), and
the child gate for deciding (409). Approving a plan is not a step: only `plan.approve_plan` does it, with the
coordinator's role and a valid plan, through the same gate.

`withdraw_consent` records an adult's withdrawal at any time and, while the case runs, stops it at once with the
reason `consent_withdrawn` - whatever else the case holds: a withdrawal is never refused for the state of the
paperwork. `withdrawn_in_identification` is the same withdrawal recorded in identification (her consent, not
this case's record of it): never refused, it withdraws the consent the case holds, if still current, and stops the
case the same way.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from voluntary_return.domain import child_gate, lifecycle
from voluntary_return.domain import consent as consent_rules
from voluntary_return.domain.best_interests import Determination
from voluntary_return.domain.catalogue import CONSENT_WITHDRAWN, OTHER_DURABLE_SOLUTION, ReturnCatalogue
from voluntary_return.domain.consent import Consent
from voluntary_return.domain.errors import DomainError, Refused, raise_all
from voluntary_return.domain.lifecycle import Action, Side, Status, Transition
from voluntary_return.domain.shape import Reader
from voluntary_return.domain.subject import Subject


@dataclass(frozen=True)
class ReturnCase:
    status: Status
    subject: Subject
    consent: Consent | None = None
    determination: Determination | None = None  # the panel's current determination, if any
    side: Side = Side.HOST


@dataclass(frozen=True)
class Withdrawal:
    # The case's consent, now withdrawn; None when the case held no current consent (a withdrawal recorded in
    # identification concerns the person, whatever the case recorded).
    consent: Consent | None
    transition: Transition | None  # the stop, or None when the case had already ended


def step(
    case: ReturnCase, action: Action, *, catalogue: ReturnCatalogue, reason: str | None = None
) -> Transition:
    """The transition `action` makes on `case`, or the first refusal: 409 invalid transition, 422 reason,
    409 other durable solution, 409 child gate / consent."""
    if action is Action.APPROVE_PLAN:
        raise TypeError("a plan is approved by plan.approve_plan, never by a bare step")
    lifecycle.target(case.status, action, case.side)
    code = _reason(action, reason, catalogue)
    if child_gate.rejects_return(case.subject, case.determination):
        if action is not Action.STOP:
            raise Refused(child_gate.NO_DETERMINATION_IN_FAVOUR_OF_RETURN)
        if code != OTHER_DURABLE_SOLUTION:
            raise Refused("stop_reason_must_be_other_durable_solution")
    clearance = None
    if action in lifecycle.GATED:
        clearance = child_gate.require_clearance(
            case.subject, determination=case.determination, consent=case.consent
        )
    return lifecycle.plan(case.status, action, reason=code, clearance=clearance, side=case.side)


def withdraw_consent(case: ReturnCase, *, at: datetime, by: str) -> Withdrawal:
    """Record the withdrawal of the case's consent; stop the case at once unless it has ended (closed or
    stopped: nothing left to stop). 409 `no_consent_recorded` / `consent_already_withdrawn`."""
    if case.consent is None:
        raise Refused("no_consent_recorded")
    return Withdrawal(consent_rules.withdraw(case.consent, at=at, by=by), _stop_on_withdrawal(case))


def withdrawn_in_identification(case: ReturnCase, *, at: datetime, by: str) -> Withdrawal:
    """The person's withdrawal of consent recorded in identification, applied to one of her cases: never refused
    (there may be no consent on this case, or one already withdrawn here). A current consent the case holds is
    withdrawn with it; the case stops unless it has ended, exactly as `withdraw_consent` stops it."""
    consent = case.consent
    withdrawn = consent_rules.withdraw(consent, at=at, by=by) if consent and consent.current else None
    return Withdrawal(withdrawn, _stop_on_withdrawal(case))


def _stop_on_withdrawal(case: ReturnCase) -> Transition | None:
    """The stop a withdrawal of consent makes (`consent_withdrawn`), or None once the case has ended."""
    if case.status not in lifecycle.ACTIVE:
        return None
    return lifecycle.plan(case.status, Action.STOP, reason=CONSENT_WITHDRAWN, side=case.side)


def reception_services(
    case: ReturnCase, action: Action, services: object, *, catalogue: ReturnCatalogue
) -> tuple[str, ...]:
    """The referral service types the origin country asks for when it records the person's reception (codes of
    the plan catalogue's `reception_services`, which are referral's service types): its referral service
    proposes one referral each (`return.reception.recorded.v1`). Only there: with another action, or on the
    host side (whose country the person has left), 422 `not_allowed`; a code outside the list 422
    `unknown_code`, a repeated one `duplicate`."""
    if services is None:
        return ()
    if action is not Action.RECORD_RECEPTION or case.side is not Side.ORIGIN:
        raise DomainError(
            "not_allowed",
            "reception services are asked for by the origin country as it records the reception",
            pointer="/reception_services",
        )
    read = Reader([])
    found = read.codes(
        {"reception_services": services}, "reception_services", "", catalogue.reception_services
    )
    raise_all(read.errors, "the reception services cannot be read")
    return found


def _reason(action: Action, reason: str | None, catalogue: ReturnCatalogue) -> str | None:
    """The coded reason a stop or close needs (422 `reason_required` / `unknown_reason`); other actions take
    none (422 `not_allowed`), so a reason never lands on a timeline entry it does not explain."""
    kind = lifecycle.REASON_LIST.get(action)
    if kind is None:
        if reason is not None:
            raise DomainError("not_allowed", "this action takes no reason", pointer="/reason")
        return None
    return catalogue.reason(kind, reason).code
