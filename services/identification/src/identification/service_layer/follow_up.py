"""The second writes of two-aggregate commands, as follow-up steps (plumbing.steps).

- Registering a person opens the first-contact case: step `open_case` on the person.
- Deciding a category notifies the coordinator's office: step `notify_coordinator` on the case.
- Deciding an access request records the decision on the case's timeline and, when granted, assigns the case
  and its person to the requester: step `record_access_decision` on the request.

Each command stores its step in the same write as the first aggregate and then performs it; if the API dies in
between, the relay process's StepRunner performs it once the step is due. Both handlers are idempotent: the
second document's id is fixed in the step.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from identification.adapters.documents import (
    AccessRequestDocument,
    CaseDocument,
    NotificationDocument,
    PersonDocument,
)
from identification.service_layer.deps import SequenceAllocator, SystemRepositoryFactory
from plumbing.errors import Conflict, NotFound
from plumbing.steps import StepHandler

OPEN_CASE = "open_case"
NOTIFY_COORDINATOR = "notify_coordinator"
RECORD_ACCESS_DECISION = "record_access_decision"


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


def handlers(
    system_repository: SystemRepositoryFactory, next_sequence: SequenceAllocator
) -> dict[type, dict[str, StepHandler]]:
    """What the relay process's StepRunner performs."""
    return {
        PersonDocument: {OPEN_CASE: open_case_handler(system_repository, next_sequence)},
        CaseDocument: {NOTIFY_COORDINATOR: notify_handler(system_repository)},
        AccessRequestDocument: {RECORD_ACCESS_DECISION: access_decision_handler(system_repository)},
    }
