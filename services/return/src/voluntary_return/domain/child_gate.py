"""THE CHILD GATE: no return of a child without a best-interests determination in favour of return.

The 2016 trilateral meeting agreed that return procedures must not violate children's rights. Here that is one
function, `require_clearance`, which every path to a decided case and an approved plan goes through, whatever
the role or channel (a case manager's screen, a coordinator, a national system's machine client):

- a person treated as a child (a child, anyone whose age is uncertain whatever they look like, an unknown age
  group: `subject.treated_as_child`) is cleared only by a determination whose decision is `return`. None, or one
  in favour of another durable solution, is refused with 409 `no_determination_in_favour_of_return`;
- an adult is cleared only by a current (not withdrawn) consent: 409 `consent_required`.

The result is a `Clearance`, which nothing else can make (its constructor checks a token only this module holds)
and which `lifecycle.plan` requires for the gated transitions (record_decision, approve_plan). Once a panel has
chosen another durable solution for a child, the case can only be stopped, with the reason
`other_durable_solution` (`rejects_return`, enforced by `case.step`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date

from voluntary_return.domain.best_interests import Determination
from voluntary_return.domain.consent import Consent, require_current
from voluntary_return.domain.errors import Refused
from voluntary_return.domain.subject import Subject

NO_DETERMINATION_IN_FAVOUR_OF_RETURN = "no_determination_in_favour_of_return"
# What cleared the case: the timeline and the approval record name it.
BASIS_DETERMINATION = "best_interests_determination"
BASIS_CONSENT = "consent"

_GATE = object()  # only this module can make a Clearance


@dataclass(frozen=True)
class Clearance:
    """Proof that the gate was passed, and on what: a determination in favour of return (a child) or a current
    consent (an adult), with the day it was made or given."""

    child: bool
    basis: str
    basis_date: date
    _token: object = field(default=None, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self._token is not _GATE:
            raise TypeError("only child_gate.require_clearance makes a Clearance")


def require_clearance(
    subject: Subject, *, determination: Determination | None, consent: Consent | None
) -> Clearance:
    """Clearance to decide a return and to approve its plan, or a 409 (see the module docstring). A child's
    consent never clears a child's return."""
    if subject.treated_as_child:
        if determination is None or not determination.in_favour_of_return:
            raise Refused(NO_DETERMINATION_IN_FAVOUR_OF_RETURN)
        return Clearance(True, BASIS_DETERMINATION, determination.decided_on, _token=_GATE)
    current = require_current(consent)
    return Clearance(False, BASIS_CONSENT, current.given_on, _token=_GATE)


def rejects_return(subject: Subject, determination: Determination | None) -> bool:
    """A panel chose another durable solution for a person treated as a child: the return must not go ahead,
    and the case may only be stopped, with the reason `other_durable_solution`."""
    return subject.treated_as_child and determination is not None and not determination.in_favour_of_return
