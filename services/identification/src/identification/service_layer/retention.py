"""What the retention job does to identification's records (docs/data-protection.md "Retention"; the mechanism
is plumbing.retention, run by entrypoints/scheduler.py).

- person (P10Y from `closed`): her period starts at the latest closure of her cases once every case of hers is
  closed; an open case stops the clock (the job looks again a period later). A record with no case left (merged
  into another, whose cases carry on) counts from its last change. Anonymising removes the sealed details (names,
  aliases, birth, documents, age determinations), the previous values of corrections, the blocking and year keys,
  the national system's reference, the duplicate check, the free text of her consent withdrawal and the officers'
  ids (replaced by `[removed]`, so every answer keeps its shape); it keeps sex, nationalities,
  residence, languages and the ids her cases and the other services' records name.
- case (P10Y from its closure): anonymising removes the officers' ids (responsible officer, assignments, timeline,
  screenings, closure) and the screening answers (which indicators were seen); it keeps the category, the
  decision's codes and month (`stat`, what the statistics read), the screenings' results and forms, needs,
  interpreter languages, recovery period, closure reason and every date.
- identification-decision (the coordinator's notification; from its case's closure): only the acknowledging
  officer's id is removed; the rest is codes.
- access requests (case; from the case's closure): the free-text reasons and the officers' ids are removed.
- duplicate searches (person; from when they ran): the ranked candidates (other persons' ids and scores) are
  removed; how many were examined stays.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from identification.adapters.documents import (
    AccessRequestDocument,
    CaseDocument,
    DuplicateSearchDocument,
    NotificationDocument,
    PersonDocument,
)
from identification.domain import names
from identification.service_layer.deps import Deps
from plumbing.clock import as_utc
from plumbing.retention import ACTOR, Retained

REMOVED = "[removed]"  # a required free-text field after anonymisation (its absence would fail validation)


def retained(deps: Deps) -> list[Retained]:
    cases = deps.system_repository(CaseDocument, ACTOR)

    def case_closed_at(case_id: str) -> datetime | None:
        found = cases.find(id=case_id, limit=1)
        return _closure(found[0]) if found else None

    def person_closed_at(person: PersonDocument) -> datetime | None:
        hers = cases.find(person_id=person.id)
        if not hers:
            return as_utc(person.updated_at)
        closures = [_closure(case) for case in hers]
        if any(closed is None for closed in closures):
            return None
        return max(closed for closed in closures if closed is not None)

    def anonymise_person(person: PersonDocument) -> None:
        person.sealed = deps.sealer.seal(person.owner_country, person.id, {})
        person.blocking_keys = []
        person.year_keys = []
        person.keys_scheme = names.KEY_SCHEME  # no keys is what today's scheme makes of no details
        person.external_ref = None
        person.duplicate_check = None
        person.corrections = [
            _removed(c, "by")
            | {"previous": deps.sealer.seal_previous(person.owner_country, person.id, c["id"], {})}
            for c in person.corrections or []
        ]
        person.merges = [_removed(m, "by", "undone_by") for m in person.merges or []]
        if person.consent_withdrawal:
            person.consent_withdrawal = _removed(person.consent_withdrawal, "by", "expressed")
        if person.restriction:
            person.restriction = _removed(person.restriction, "by")
        person.assigned_to = []

    return [
        Retained(PersonDocument, closed_at=person_closed_at, anonymise=anonymise_person),
        Retained(CaseDocument, closed_at=_closure, anonymise=anonymise_case),
        Retained(
            NotificationDocument,
            closed_at=lambda doc: case_closed_at(doc.case_id),
            anonymise=anonymise_notification,
        ),
        Retained(
            AccessRequestDocument,
            closed_at=lambda doc: case_closed_at(doc.case_id),
            anonymise=anonymise_access_request,
        ),
        Retained(
            DuplicateSearchDocument, closed_at=lambda doc: as_utc(doc.created_at), anonymise=anonymise_search
        ),
    ]


def _closure(case: CaseDocument) -> datetime | None:
    if case.status != "closed" or not case.closure:
        return None
    return as_utc(case.closure["at"])


def _removed(entry: dict[str, Any], *names: str) -> dict[str, Any]:
    """The entry with the named members' values replaced by REMOVED where present (the views keep their shape)."""
    return {
        key: REMOVED if key in names and value is not None else value for key, value in dict(entry).items()
    }


def anonymise_case(case: CaseDocument) -> None:
    case.responsible_officer = REMOVED
    case.assigned_to = []
    case.screenings = [_removed(s, "by") | {"answers": []} for s in case.screenings or []]
    case.timeline = [_removed(entry, "by") for entry in case.timeline or []]
    if case.closure:
        case.closure = _removed(case.closure, "by")


def anonymise_notification(notification: NotificationDocument) -> None:
    notification.acknowledged_by = None
    notification.assigned_to = []


def anonymise_access_request(request: AccessRequestDocument) -> None:
    request.requested_by = REMOVED
    request.reason = REMOVED
    request.decided_by = None
    request.decision_reason = None
    request.assigned_to = []


def anonymise_search(search: DuplicateSearchDocument) -> None:
    search.results = []
    search.assigned_to = []
