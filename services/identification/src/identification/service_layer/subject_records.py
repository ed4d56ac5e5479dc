"""What identification holds about one person, for her request of access (plumbing.subject_access): her person
record, her cases (with their screenings, decisions and timeline) and the notifications about them, each in the
view the API gives its readers. Read through the caller's scope: a data protection officer reads her country's."""

from __future__ import annotations

from identification.adapters.documents import CaseDocument, NotificationDocument, PersonDocument
from identification.service_layer.cases import case_view, notification_view
from identification.service_layer.deps import Deps
from identification.service_layer.persons import person_view
from plumbing.auth import Caller
from plumbing.subject_access import SubjectRecord


def records_about(deps: Deps, caller: Caller, person_id: str) -> list[SubjectRecord]:
    people = deps.repository(PersonDocument, caller).find(id=person_id)
    cases = deps.repository(CaseDocument, caller).find(person_id=person_id)
    notifications = deps.repository(NotificationDocument, caller).find(person_id=person_id)
    return [
        *(SubjectRecord("person", doc.id, person_view(deps, doc)) for doc in people),
        *(SubjectRecord("case", doc.id, case_view(doc)) for doc in cases),
        *(SubjectRecord("notification", doc.id, notification_view(doc)) for doc in notifications),
    ]
