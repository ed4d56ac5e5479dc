"""What the retention job does to the return service's records (docs/data-protection.md "Retention": record type
`return-case`, P5Y from `closed`, anonymise; the mechanism is plumbing.retention, run by entrypoints/scheduler.py).

- return case (`ReturnCaseDocument`): its period starts at its end, the instant it was closed or stopped (the `at`
  of the timeline entry that took it there); a running case has no end, so the job looks again a period later.
  Anonymising removes the sealed records, every token of `sealed`: consent (with its withdrawal), family
  assessment, best-interests assessment, determination and plan. They hold all the free text and every detail
  people recorded about her; the rule's "reception, follow-ups" are, in this service, the plan's reception part
  (sealed, removed) and instants and codes in clear (kept). It keeps everything else: status, reason, side, the
  countries (owner, origin, host), age group and its uncertainty, the decision's code, whether consent was
  current, every instant (created, received, reintegration plan, follow-ups), the reception services' codes, the
  reminders sent and the timeline, which holds codes, ids and instants only (`lifecycle.timeline_entry`, the
  exchange's form ids, a withdrawal's id: no free text). So statistics (bootstrap STATISTICS_FIELDS) stay the
  same. The links (`person_id`, `identification_case_id`, `exchange_case_id`, `exchange_events`) are ids the other
  services' records name, kept as the person rule keeps them; the officers' ids (timeline `by`, `assigned_to`)
  are not in the return rule and are kept. The case view answers each removed record as null, with
  `anonymised_at`.
- consent withdrawal (`ConsentWithdrawalDocument`): no `Retained`. It holds ids only (identification's person and
  case ids, when it was applied), follows the person (docs: the withdrawal records "(ids only) with the person")
  and must outlive her return cases: a case opened later still refuses consent on it. Its `retention_due_at`, set
  on insert like every `return-case` class's, is never claimed: no job runs for the class.
"""

from __future__ import annotations

from datetime import datetime

from plumbing.clock import as_utc
from plumbing.retention import Retained
from voluntary_return.adapters.documents import ReturnCaseDocument
from voluntary_return.domain import lifecycle
from voluntary_return.service_layer.deps import Deps

ENDED = frozenset(str(status) for status in lifecycle.TERMINAL)


def retained(deps: Deps) -> list[Retained]:
    """The return service's retained classes: its return cases (consent withdrawals hold ids only: see above).
    `deps` is the wiring the service's other jobs get; anonymising a case needs nothing of it (it removes the
    sealed tokens rather than sealing empty values: a record never recorded is absent the same way)."""
    return [Retained(ReturnCaseDocument, closed_at=ended_at, anonymise=anonymise_case)]


def ended_at(doc: ReturnCaseDocument) -> datetime | None:
    """When the case was closed or stopped (None while it runs): the timeline entry that ended it. An ended case
    always has one (every transition writes its entry with the new status); were it missing, the case's last
    change stands in, which is never earlier than its end."""
    if doc.status not in ENDED:
        return None
    ends = [entry["at"] for entry in doc.timeline or () if entry.get("to") == doc.status and entry.get("at")]
    return as_utc(ends[-1]) if ends else as_utc(doc.updated_at)


def anonymise_case(doc: ReturnCaseDocument) -> None:
    """Remove what people recorded about her (the sealed records), keep the codes, countries and instants."""
    doc.sealed = {}
