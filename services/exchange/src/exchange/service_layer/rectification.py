"""Rectification of person data already sent (GDPR Art. 16 and 19): a correction of the person in identification
reaching the forms this country sent about her, and the correction form drafted from identification.

1. Marking (the consumer, `mark_corrections_due`): identification's `identification.person.corrected.v1` names
   the members that changed, never their values, and every identification case of hers in the owner country
   (`case_ids`). No service account may read identification (calls on a user's behalf only), so the consumer does
   not fetch the new values: on every record of the owner country linked to one of those cases
   (`identification_case_id`), each form the country sent that is still in force at the partner's (sent,
   received, acknowledged or answered; not a draft, not withdrawn or superseded, not restricted after a consent
   withdrawal) and whose sent content holds a value at a pointer the form type's catalogue `prefill` takes from a
   changed member (`/person/surnames: person.surnames`) is marked `correction_due` (the correction ids, those
   pointers, since when), with one entry on the record's `rectifications` (ids and codes only), in the record's
   one version-guarded write. The sealed content is opened in the process only to see which pointers hold a
   value: nothing of it is stored, logged or sent. Records anonymised at the end of their retention period are
   skipped. Once per correction: its id on the record's `rectifications` makes a redelivery change nothing. An
   event without `case_ids` (published before identification added them) or for a person with no linked record
   marks nothing. Nothing crosses the border by itself: the partner learns of the rectification only from the
   correction a Contact Point sends.
2. Producing the correction (`POST .../corrections` with `{"refresh_from_identification": true}`,
   `correct_form`): the old form's content with the person's pointers set to identification's current values,
   read on the user's behalf exactly as pre-filling reads them (service_layer/prefills.py: her token exchanged,
   identification applies her scope and logs her read), checked and drafted as any correction
   (sending.correct_form: a new draft superseding the old form). What was copied, left out (the schema refuses
   the value; the old value stays) or removed (a corrected member identification no longer holds) is kept on the
   draft as pointers (`refreshed_from_identification`). Sending it withdraws the old form on both sides
   (`superseded-by-correction`) and clears its mark (domain/case.py `mark_sent`; what it did not resolve stays
   marked on the new form).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from exchange.adapters.documents import ExchangeCaseDocument
from exchange.domain.case import TransnationalCase
from exchange.domain.errors import ErrorDetail, InvalidTransition, NotPermitted, raise_all
from exchange.domain.rectification import pointers_carried, refreshed
from exchange.service_layer import outgoing, sending
from exchange.service_layer.consent import ACTOR, system_caller
from exchange.service_layer.deps import Deps
from exchange.service_layer.records import cases, load, load_for_change
from plumbing.auth import Caller
from plumbing.clock import rfc3339
from plumbing.errors import Conflict, DependencyUnavailable
from plumbing.repository import retry_concurrent

log = logging.getLogger(__name__)

PERSON_CORRECTED = "identification.person.corrected.v1"
PURPOSE = "cross-border-exchange"
# 409: the record names no identification case of the country's, so there is nothing to draft the correction from
NOT_LINKED = "identification_case_not_linked"

# ---------------------------------------------------------------------------------------------- marking


def mark_corrections_due(deps: Deps, envelope: Mapping[str, Any]) -> list[str]:
    """Apply one correction of the person to the owner country's records linked to her identification cases;
    returns the ids of the records it marked forms on (empty for a redelivery, or when nothing sent carries a
    changed member)."""
    if envelope.get("type") != PERSON_CORRECTED:
        raise ValueError("not a person-corrected event")
    data = envelope["data"]
    country = str(data["owner_country"])
    case_ids = [str(case_id) for case_id in data.get("case_ids") or ()]
    if country not in deps.config.country_codes or not case_ids:
        log.info(
            "person correction not applied: no case ids or a country not configured",
            extra={"fields": {"country": country, "correction_id": data.get("correction_id")}},
        )
        return []
    linked: list[ExchangeCaseDocument] = cases(deps, system_caller(country)).find(
        identification_case_id__in=case_ids
    )
    members = sorted(str(member) for member in data["fields"])
    correction_id = str(data["correction_id"])
    marked = [
        doc.id for doc in linked if doc.anonymised_at is None and _mark(deps, doc, correction_id, members)
    ]
    log.info(
        "person correction applied",
        extra={"fields": {"correction_id": correction_id, "records": len(linked), "marked": marked}},
    )
    return marked


@retry_concurrent()
def _mark(deps: Deps, found: ExchangeCaseDocument, correction_id: str, members: list[str]) -> bool:
    """One record, in its one version-guarded write (run again from the record as it is then when it lost a race
    with a command or the inbox). Whether forms were marked."""
    caller = system_caller(str(found.owner_country), str(found.owner_agency))
    doc, case = load(deps, caller, str(found.id))
    if (
        doc.anonymised_at is not None
    ):  # anonymised meanwhile: no content left to correct, and it takes no change
        return False
    pointers = _pointers(deps, doc, case, members)
    if not case.mark_correction_due(
        correction_id, pointers, members=members, at=rfc3339(deps.clock.now()), by=ACTOR
    ):
        return False
    outgoing.store(deps, caller, doc, case, new=False)
    return True


def _pointers(
    deps: Deps, doc: ExchangeCaseDocument, case: TransnationalCase, members: list[str]
) -> dict[str, list[str]]:
    """Form id -> the pointers of the changed members its sent content holds a value at (forms that may be
    marked only; the content is opened here and nothing of it leaves this function)."""
    out: dict[str, list[str]] = {}
    for form in case.forms:
        kind = deps.catalogue.types.get(form.form_type)
        if kind is None or not kind.prefill or not case.carries_for_rectification(form):
            continue
        sealed = (doc.contents or {}).get(form.id)
        if sealed is None:
            continue
        body = deps.contents.open(str(doc.owner_country), str(doc.id), form.id, sealed)
        carried = pointers_carried(kind, body.get("content") or {}, members)
        if carried:
            out[form.id] = carried
    return out


# ---------------------------------------------------------------------------------------------- correcting


def correct_form(
    deps: Deps, caller: Caller, case_id: str, form_id: str, body: Mapping[str, Any], *, idempotency_key: str
) -> tuple[str, str]:
    """`POST .../corrections`: `{content}` (the officer's corrected content: sending.correct_form) or
    `{"refresh_from_identification": true}` (`correct_from_identification`); exactly one (422 otherwise, nothing
    read, nothing stored). Returns (case record id, the correction's form id)."""
    refresh = body.get("refresh_from_identification") is True
    if refresh and "content" in body:
        raise_all([ErrorDetail("not_with_content", "/refresh_from_identification")], "content or refresh")
    if refresh:
        return correct_from_identification(deps, caller, case_id, form_id, idempotency_key=idempotency_key)
    if "content" not in body:
        raise_all([ErrorDetail("content_or_refresh_required", "/content")], "content or refresh")
    return sending.correct_form(
        deps, caller, case_id, form_id, body["content"], idempotency_key=idempotency_key
    )


def correct_from_identification(
    deps: Deps, caller: Caller, case_id: str, form_id: str, *, idempotency_key: str
) -> tuple[str, str]:
    """The correction draft of a form we sent, its content the old one with the person's pointers set to what
    identification holds now (read on the caller's behalf). Every check that needs no identification comes
    first (roles, state, link), so a refused request reads nothing; a retry with the same key answers the draft
    the first call made without reading identification again."""
    doc, case = load_for_change(deps, caller, case_id)
    old = case.form(form_id)
    kind = deps.catalogue.form_type(old.form_type)
    if not caller.has_any_role(kind.draft_roles):
        raise NotPermitted(sending.MAY_NOT_DRAFT)
    earlier = sending.drafted_with_key(deps, caller, idempotency_key)
    if earlier is not None:
        record, draft = earlier
        if draft.supersedes != form_id or draft.refreshed_from_identification is None:
            raise Conflict("idempotency_key_reused")
        return record.id, draft.id
    case.begin_correction(form_id)  # 409 form_not_correctable / correction_already_drafted
    if old.restricted:
        raise InvalidTransition("consent_withdrawn")  # its content is no longer used: nothing to correct
    if not doc.identification_case_id:
        raise InvalidTransition(NOT_LINKED)
    version = kind.current_version
    if version is None:
        raise InvalidTransition("form_type_retired")
    if deps.identification is None:
        raise DependencyUnavailable(
            "identification", "a correction from identification is drafted by the API"
        )
    # This operation answers no personal data itself (no X-Purpose of its own in the request context): it names
    # why identification is read, the exchange's own purpose.
    identification_case = deps.identification.case(doc.identification_case_id, purpose=PURPOSE)
    person_id = identification_case.get("person_id")
    person = deps.identification.person(str(person_id), purpose=PURPOSE) if person_id else {}
    sealed = deps.contents.open(caller.country, doc.id, old.id, doc.contents[old.id])
    corrected = _members_due(kind.prefill, old.correction_due)
    result = refreshed(kind, version, sealed["content"], person, corrected)
    report = result.report(rfc3339(deps.clock.now()))
    return sending.correct_form(
        deps, caller, case_id, form_id, result.content, idempotency_key=idempotency_key, refreshed=report
    )


def _members_due(prefill: Mapping[str, str], due: Mapping[str, Any] | None) -> set[str]:
    """The person's members a pending mark names (its pointers mapped back through the catalogue's prefill)."""
    pointers = set((due or {}).get("fields") or ())
    return {source.partition(".")[2] for pointer, source in prefill.items() if pointer in pointers}
