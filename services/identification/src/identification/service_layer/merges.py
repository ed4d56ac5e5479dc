"""Merging two records of the same person, and undoing it: the coordinator's office only (the contract's x-roles).

A merge changes nothing of either record's content and deletes nothing: the *merged* record (the duplicate)
points to the record it was merged into (`merged_into`), the *kept* record lists the records merged into it
(`merged_from`), and both first-contact cases say so on their timelines. Both records, their cases and
timelines stay readable by whoever could read them before, so undoing a merge is exact: the pointers go, the
timelines say it was undone. Consumers learn both from events (ids and codes only).

The merged record is written first, with its event and a follow-up step that writes the kept record and the two
timelines (service_layer/follow_up), so a crash between the writes cannot leave half a merge.
"""

from __future__ import annotations

from typing import Any

from identification.adapters.documents import PersonDocument
from identification.domain.errors import ErrorDetail, raise_all
from identification.service_layer import follow_up
from identification.service_layer.deps import SOURCE, Deps
from identification.service_layer.persons import person_view
from plumbing.auth import Caller
from plumbing.documents import new_id
from plumbing.errors import Conflict
from plumbing.events import new_event
from plumbing.steps import new_step, perform


def merge(deps: Deps, caller: Caller, person_id: str, body: dict[str, Any]) -> dict[str, Any]:
    """Merge `person_id` (the duplicate) into `body["into_person_id"]` (the record kept)."""
    people = deps.repository(PersonDocument, caller)
    merged = people.get(person_id)  # 404 unless the caller may read both records
    kept = people.get(body["into_person_id"])
    if kept.id == merged.id:
        raise_all([ErrorDetail("merge_with_itself", "/into_person_id")], "a record is not its own duplicate")
    if merged.merged_into:
        raise Conflict("this record is merged already: undo that merge first")
    if kept.merged_into:
        raise Conflict("the record to keep is itself merged into another: merge into that one")
    if merged.merged_from:
        raise Conflict("other records are merged into this one: undo those merges first")
    merge_id = new_id()
    now = deps.clock.now()
    merged.merged_into = kept.id
    merged.merges = [
        *(merged.merges or []),
        {
            "id": merge_id,
            "into": kept.id,
            "at": now,
            "by": caller.sub,
            "agency": caller.agency,
            "reason": body["reason"],
        },
    ]
    data = {
        "person_id": merged.id,
        "into_person_id": kept.id,
        "merge_id": merge_id,
        "owner_country": merged.owner_country,
        "reason": body["reason"],
    }
    event = new_event("identification.person.merged.v1", merged.id, data, SOURCE, clock=deps.clock.now)
    step = new_step(
        follow_up.RECORD_MERGE,
        now,
        by=caller.sub,
        agency=caller.agency,
        merge_id=merge_id,
        into_person_id=kept.id,
        undone=False,
        reason=body["reason"],
    )
    people.update(merged, events=[event], steps=[step])  # Conflict (409) if it changed since it was read
    perform(PersonDocument, merged, step, follow_up.merge_handler(deps.system_repository), deps.complete_step)
    return person_view(deps, merged)


def unmerge(deps: Deps, caller: Caller, person_id: str, body: dict[str, Any]) -> dict[str, Any]:
    """Undo the merge of `person_id` into another record."""
    people = deps.repository(PersonDocument, caller)
    merged = people.get(person_id)
    if not merged.merged_into:
        raise Conflict("this record is not merged into another")
    kept_id = merged.merged_into
    last = merged.merges[-1]
    now = deps.clock.now()
    merged.merged_into = None
    merged.merges = [
        *merged.merges[:-1],
        {**last, "undone_at": now, "undone_by": caller.sub, "undo_reason": body["reason"]},
    ]
    data = {
        "person_id": merged.id,
        "into_person_id": kept_id,
        "merge_id": last["id"],
        "owner_country": merged.owner_country,
        "reason": body["reason"],
    }
    event = new_event("identification.person.unmerged.v1", merged.id, data, SOURCE, clock=deps.clock.now)
    step = new_step(
        follow_up.RECORD_MERGE,
        now,
        by=caller.sub,
        agency=caller.agency,
        merge_id=last["id"],
        into_person_id=kept_id,
        undone=True,
        reason=body["reason"],
    )
    people.update(merged, events=[event], steps=[step])
    perform(PersonDocument, merged, step, follow_up.merge_handler(deps.system_repository), deps.complete_step)
    return person_view(deps, merged)
