"""The second writes of two-aggregate commands, as follow-up steps (plumbing.steps).

- Registering a person opens the first-contact case: step `open_case` on the person.
- Deciding a category notifies the coordinator's office: step `notify_coordinator` on the case.
- Deciding an access request records the decision on the case's timeline and, when granted, assigns the case
  and its person to the requester: step `record_access_decision` on the request.
- Merging a person into another (or undoing it) lists it on the kept record and writes both first-contact
  cases' timelines: step `record_merge` on the merged person.
- Withdrawing an adult's consent writes a `consent_withdrawn` entry on each of her cases' timelines: step
  `record_consent_withdrawal` on the person.
- Restricting a person's processing (or lifting it) holds the new state where the scoped repository enforces it
  (plumbing.restrictions): step `hold_restriction` on the person.

Each command stores its step in the same write as the first aggregate and then performs it; if the API dies in
between, the relay process's StepRunner performs it once the step is due. Both handlers are idempotent: the
second document's id is fixed in the step.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from identification.adapters.documents import (
    AccessRequestDocument,
    CaseDocument,
    NotificationDocument,
    PersonDocument,
)
from identification.service_layer.deps import SequenceAllocator, SystemRepositoryFactory
from plumbing import restrictions
from plumbing.clock import as_utc
from plumbing.errors import Conflict, NotFound
from plumbing.steps import StepHandler

OPEN_CASE = "open_case"
NOTIFY_COORDINATOR = "notify_coordinator"
RECORD_ACCESS_DECISION = "record_access_decision"
RECORD_MERGE = "record_merge"
RECORD_CONSENT_WITHDRAWAL = "record_consent_withdrawal"
HOLD_RESTRICTION = "hold_restriction"


def case_reference(next_sequence: SequenceAllocator, country: str, year: int) -> str:
    return f"{country}-{year}-{next_sequence(country, year):05d}"


def open_case_handler(
    system_repository: SystemRepositoryFactory, next_sequence: SequenceAllocator
) -> StepHandler:
    def open_case(person: PersonDocument, step: Mapping[str, Any]) -> None:
        cases = system_repository(CaseDocument, step["by"])
        try:
            cases.get(step["case_id"])
            return  # done already
        except NotFound:
            pass
        doc = CaseDocument(
            id=step["case_id"],
            person_id=person.id,
            # The year of the registration, even when the runner completes the step later.
            reference=case_reference(next_sequence, person.owner_country, step["at"].year),
            status="open",
            responsible_officer=step["by"],
            assigned_to=[step["by"]],
            timeline=[{"at": step["at"], "by": step["by"], "agency": step["agency"], "type": "opened"}],
        )
        try:
            cases.insert(doc, owner_country=person.owner_country, owner_agency=person.owner_agency)
        except Conflict:
            pass  # a concurrent run of the same step won

    return open_case


def notify_handler(system_repository: SystemRepositoryFactory) -> StepHandler:
    def notify(case: CaseDocument, step: Mapping[str, Any]) -> None:
        notifications = system_repository(NotificationDocument, step["by"])
        doc = NotificationDocument(**step["notification"])
        try:
            notifications.insert(doc, owner_country=case.owner_country, owner_agency=step["agency"])
        except Conflict:
            pass  # the id is derived from the decision: this decision has notified already

    return notify


def access_decision_handler(system_repository: SystemRepositoryFactory) -> StepHandler:
    def record(request: AccessRequestDocument, step: Mapping[str, Any]) -> None:
        cases = system_repository(CaseDocument, step["by"])
        case = cases.get(request.case_id)
        kind = "access_granted" if step["granted"] else "access_refused"
        if not any(e.get("request_id") == request.id and e.get("type") == kind for e in case.timeline):
            entry = {
                "at": step["at"],
                "by": step["by"],
                "agency": step["agency"],
                "type": kind,
                "request_id": request.id,
                "requester_agency": request.requester_agency,
                "reason": step["reason"],
            }
            case.timeline = [*case.timeline, entry]
            if step["granted"] and request.requested_by not in case.assigned_to:
                case.assigned_to = [*case.assigned_to, request.requested_by]
            cases.update(case)
        if step["granted"]:
            people = system_repository(PersonDocument, step["by"])
            person = people.get(request.person_id)
            if request.requested_by not in person.assigned_to:
                person.assigned_to = [*person.assigned_to, request.requested_by]
                people.update(person)

    return record


def merge_handler(system_repository: SystemRepositoryFactory) -> StepHandler:
    """The kept record's `merged_from` and the timelines of both first-contact cases, for a merge or its undoing
    (`undone`). Idempotent: the timeline entries are keyed by the merge id and kind; `merged_from` follows what the
    merged record says now, so a merge undone before its step ran leaves no trace on the kept record."""

    def record(merged: PersonDocument, step: Mapping[str, Any]) -> None:
        people = system_repository(PersonDocument, step["by"])
        kept = people.get(step["into_person_id"])
        current = people.get(merged.id)
        should_list = current.merged_into == kept.id
        if should_list != (merged.id in kept.merged_from):
            kept.merged_from = (
                [*kept.merged_from, merged.id]
                if should_list
                else [pid for pid in kept.merged_from if pid != merged.id]
            )
            people.update(kept)
        kind = "merge_undone" if step["undone"] else "merged"
        cases = system_repository(CaseDocument, step["by"])
        for case_id in (current.first_case_id, kept.first_case_id):
            if not case_id:
                continue
            try:
                case = cases.get(case_id)
            except NotFound:
                continue  # a first-contact case whose own step has not run yet
            if any(e.get("merge_id") == step["merge_id"] and e.get("type") == kind for e in case.timeline):
                continue
            entry = {
                "at": step["at"],
                "by": step["by"],
                "agency": step["agency"],
                "type": kind,
                "merge_id": step["merge_id"],
                "person_id": merged.id,
                "into_person_id": kept.id,
                "reason": step["reason"],
            }
            case.timeline = [*case.timeline, entry]
            cases.update(case)

    return record


def consent_handler(system_repository: SystemRepositoryFactory) -> StepHandler:
    """A `consent_withdrawn` entry on every case the withdrawal named, open or closed (the timeline is the case's
    history). Idempotent: keyed by the withdrawal id."""

    def record(person: PersonDocument, step: Mapping[str, Any]) -> None:
        cases = system_repository(CaseDocument, step["by"])
        for case_id in step["case_ids"]:
            try:
                case = cases.get(case_id)
            except NotFound:
                continue  # a first-contact case whose own step has not run yet: it opens after the withdrawal
            if any(e.get("withdrawal_id") == step["withdrawal_id"] for e in case.timeline):
                continue
            entry = {
                "at": step["at"],
                "by": step["by"],
                "agency": step["agency"],
                "type": "consent_withdrawn",
                "withdrawal_id": step["withdrawal_id"],
                "expressed": step["expressed"],
            }
            case.timeline = [*case.timeline, entry]
            cases.update(case)

    return record


def restriction_handler(system_repository: SystemRepositoryFactory) -> StepHandler:
    """The state the step names, held unless a newer one is (plumbing.restrictions.hold): idempotent."""

    def hold(person: PersonDocument, step: Mapping[str, Any]) -> None:
        restrictions.hold(
            system_repository(restrictions.RestrictionDocument, step["by"]),
            person_id=person.id,
            owner_country=person.owner_country,
            owner_agency=person.owner_agency,
            restricted=step["restricted"],
            case_ids=step["case_ids"],
            purposes=step["purposes"],
            changed_at=as_utc(datetime.fromisoformat(step["changed_at"])),
        )

    return hold


def handlers(
    system_repository: SystemRepositoryFactory, next_sequence: SequenceAllocator
) -> dict[type, dict[str, StepHandler]]:
    """What the relay process's StepRunner performs."""
    return {
        PersonDocument: {
            OPEN_CASE: open_case_handler(system_repository, next_sequence),
            RECORD_MERGE: merge_handler(system_repository),
            RECORD_CONSENT_WITHDRAWAL: consent_handler(system_repository),
            HOLD_RESTRICTION: restriction_handler(system_repository),
        },
        CaseDocument: {NOTIFY_COORDINATOR: notify_handler(system_repository)},
        AccessRequestDocument: {RECORD_ACCESS_DECISION: access_decision_handler(system_repository)},
    }
