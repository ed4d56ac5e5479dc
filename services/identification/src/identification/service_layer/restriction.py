"""Restriction of processing of one person (GDPR Art. 18), set and lifted by her country's data protection officer.

While it holds, only the purposes it lists may read or change her records, in every service: identification keeps
it on the person (`restriction`: purposes, reason, when, who), announces the whole state in
`identification.person.restriction_changed.v1` (her id, every case id of hers, the purposes), and holds it in its
own `restrictions` collection through a follow-up step in the same write, where the scoped repository enforces it
(plumbing.restrictions: lists leave her records out, a read by id answers 403 `processing_restricted`). The other
services hold it from the event. `data-subject-access` and `audit` always read; the officer who sets, changes
or lifts it sees the person whatever the request's purpose.
"""

from __future__ import annotations

from typing import Any

from identification.adapters.documents import PersonDocument
from identification.domain.errors import ErrorDetail, raise_all
from identification.service_layer import follow_up
from identification.service_layer.deps import SOURCE, Deps
from identification.service_layer.persons import case_ids_of, person_view
from plumbing import restrictions
from plumbing.auth import Caller
from plumbing.clock import rfc3339
from plumbing.errors import Conflict
from plumbing.events import new_event
from plumbing.restrictions import ALWAYS_ALLOWED, EVENT
from plumbing.steps import new_step, perform


def restrict(deps: Deps, caller: Caller, person_id: str, body: dict[str, Any]) -> dict[str, Any]:
    """Restrict (or change the purposes of a restriction of) the processing of her data."""
    purposes = sorted(set(body["purposes"]) - ALWAYS_ALLOWED)
    unknown = [
        ErrorDetail("unknown_purpose", f"/purposes/{i}")
        for i, p in enumerate(body["purposes"])
        if p not in deps.config.purpose_codes
    ]
    raise_all(unknown, "invalid restriction")
    return _change(deps, caller, person_id, {"purposes": purposes, "reason": body["reason"]})


def lift(deps: Deps, caller: Caller, person_id: str) -> dict[str, Any]:
    """Lift her restriction: every purpose reads again, as the need-to-know scope allows."""
    return _change(deps, caller, person_id, None)


def _change(deps: Deps, caller: Caller, person_id: str, restriction: dict[str, Any] | None) -> dict[str, Any]:
    with restrictions.managing():  # the officer who manages it reads and writes her, whatever her purpose
        return _write(deps, caller, person_id, restriction)


def _write(deps: Deps, caller: Caller, person_id: str, restriction: dict[str, Any] | None) -> dict[str, Any]:
    people = deps.repository(PersonDocument, caller)
    person = people.get(person_id)  # 404 unless her country's officer
    if restriction is None and not person.restriction:
        raise Conflict("her processing is not restricted")
    now = deps.clock.now()
    person.restriction = (
        {**restriction, "at": now, "by": caller.sub, "agency": caller.agency}
        if restriction is not None
        else None
    )
    purposes = restriction["purposes"] if restriction is not None else []
    data = {
        "person_id": person.id,
        "owner_country": person.owner_country,
        "owner_agency": person.owner_agency,
        "case_ids": case_ids_of(deps, person),
        "restricted": restriction is not None,
        "purposes": purposes,
        "changed_at": rfc3339(now),
    }
    event = new_event(EVENT, person.id, data, SOURCE, clock=deps.clock.now)
    step = new_step(follow_up.HOLD_RESTRICTION, now, by=caller.sub, agency=caller.agency, **_step_state(data))
    people.update(person, events=[event], steps=[step])  # Conflict (409) if it changed since it was read
    perform(
        PersonDocument,
        person,
        step,
        follow_up.restriction_handler(deps.system_repository),
        deps.complete_step,
    )
    return person_view(deps, person)


def _step_state(data: dict[str, Any]) -> dict[str, Any]:
    return {name: data[name] for name in ("case_ids", "restricted", "purposes", "changed_at")}
