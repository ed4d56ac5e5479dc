"""People: register (with the first case), read, list. Validation completes before the first write."""

from __future__ import annotations

import unicodedata
from datetime import date
from typing import Any

from identification.adapters.documents import CaseDocument, DuplicateSearchDocument, PersonDocument
from identification.domain import ages, names
from identification.domain.ages import AgeDetermination, BirthRange
from identification.domain.categories import AgeGroup
from identification.domain.errors import DomainError, ErrorDetail, raise_all
from identification.service_layer import follow_up
from identification.service_layer.deps import SOURCE, Deps
from plumbing.auth import Caller
from plumbing.documents import new_id
from plumbing.errors import Conflict, NotFound, StaleVersion
from plumbing.events import new_event
from plumbing.repository import Page
from plumbing.steps import new_step, perform

DUPLICATE_OUTCOMES = ("new_person", "linked")


def _nfc_list(values: Any) -> list[str]:
    return [unicodedata.normalize("NFC", v).strip() for v in values or [] if v and v.strip()]


def _split_alias(alias: str) -> tuple[tuple[str, ...], tuple[str, ...]]:
    words = alias.split()
    if len(words) <= 1:
        return (tuple(words), ())
    return (tuple(words[:-1]), (words[-1],))


def parse_birth(body: dict[str, Any], today: date, errors: list[ErrorDetail]) -> BirthRange | None:
    single = body.get("date_of_birth")
    ranged = body.get("date_of_birth_range")
    try:
        if single is not None and ranged is not None:
            errors.append(ErrorDetail("date_of_birth_ambiguous", "/date_of_birth_range"))
            return None
        if ranged is not None:
            return ages.parse_date_of_birth(
                (ranged["earliest"], ranged["latest"]), today=today, pointer="/date_of_birth_range"
            )
        return ages.parse_date_of_birth(single, today=today, pointer="/date_of_birth")
    except DomainError as error:
        errors.extend(error.details)
        return None


def parse_determinations(
    raw: list[dict[str, Any]], today: date, errors: list[ErrorDetail]
) -> list[AgeDetermination]:
    out: list[AgeDetermination] = []
    for i, item in enumerate(raw or []):
        pointer = f"/age_determinations/{i}"
        try:
            decided = date.fromisoformat(item["decided_on"])
        except ValueError:
            errors.append(ErrorDetail("date_invalid", f"{pointer}/decided_on"))
            continue
        if decided > today:
            errors.append(ErrorDetail("date_in_future", f"{pointer}/decided_on"))
            continue
        try:
            assessed = None
            if item.get("assessed_birth_range"):
                r = item["assessed_birth_range"]
                # Relative to the determination: every detail below is prefixed with its `pointer` once.
                assessed = ages.parse_date_of_birth(
                    (r["earliest"], r["latest"]), today=decided, pointer="/assessed_birth_range"
                )
            out.append(
                AgeDetermination(
                    decided_on=decided,
                    method=ages.AgeDeterminationMethod(item["method"]),
                    authority=item["authority"],
                    result=ages.AgeDeterminationResult(item["result"]),
                    assessed_birth=assessed,
                )
            )
        except DomainError as error:
            errors.extend(ErrorDetail(d.code, pointer + d.pointer) for d in error.details)
    return out


def birth_to_record(birth: BirthRange | None) -> dict[str, str] | None:
    return (
        None
        if birth is None
        else {"earliest": birth.earliest.isoformat(), "latest": birth.latest.isoformat()}
    )


def birth_from_record(raw: dict[str, str] | None) -> BirthRange | None:
    if not raw:
        return None
    return BirthRange(date.fromisoformat(raw["earliest"]), date.fromisoformat(raw["latest"]))


def determinations_from_record(raw: list[dict[str, Any]]) -> list[AgeDetermination]:
    return [
        AgeDetermination(
            decided_on=date.fromisoformat(d["decided_on"]),
            method=ages.AgeDeterminationMethod(d["method"]),
            authority=d["authority"],
            result=ages.AgeDeterminationResult(d["result"]),
            assessed_birth=birth_from_record(d.get("assessed_birth")),
        )
        for d in raw or []
    ]


def is_child(details: dict[str, Any], on_date: date) -> bool:
    birth = birth_from_record(details.get("birth"))
    determinations = determinations_from_record(details.get("age_determinations", []))
    if birth is not None and birth.earliest > on_date:
        return True
    return ages.child_status(on_date, birth, determinations)


def blocking_keys_of(details: dict[str, Any]) -> frozenset[str]:
    birth = birth_from_record(details.get("birth"))
    keys = set(names.blocking_keys(details.get("given_names", []), details.get("surnames", []), birth))
    for alias in details.get("aliases", []):
        given, family = _split_alias(alias)
        keys |= names.blocking_keys(given, family, birth)
    return frozenset(keys)


def _duplicate_check_problems(deps: Deps, caller: Caller, check: dict[str, Any]) -> list[ErrorDetail]:
    """The duplicate check a registration reports: complete, and naming a person and a search the caller can see
    (resolved inside the caller's scope)."""
    problems: list[ErrorDetail] = []
    outcome = check.get("outcome")
    if outcome == "linked" and not check.get("linked_person_id"):
        problems.append(ErrorDetail("required", "/duplicate_check/linked_person_id"))
    if outcome == "new_person" and not check.get("reason"):
        problems.append(ErrorDetail("required", "/duplicate_check/reason"))
    if outcome == "linked" and check.get("linked_person_id"):
        try:
            deps.repository(PersonDocument, caller).get(check["linked_person_id"])
        except NotFound:
            problems.append(ErrorDetail("unknown_person", "/duplicate_check/linked_person_id"))
    if check.get("search_id"):
        try:
            deps.repository(DuplicateSearchDocument, caller).get(check["search_id"])
        except NotFound:
            problems.append(ErrorDetail("unknown_duplicate_search", "/duplicate_check/search_id"))
    return problems


# What a registration stores, member by member, in the form the request sends it; compared on an external_ref
# replay and changed by a correction.
SEALED_MEMBERS = ("given_names", "surnames", "aliases", "date_of_birth", "date_of_birth_range", "documents")
CLEAR_MEMBERS = ("sex", "nationalities", "residence_country", "languages")


def _documents(raw: Any) -> list[dict[str, Any]]:
    return [{**d, "number": unicodedata.normalize("NFC", d["number"])} for d in raw or []]


def _stored_members(doc: PersonDocument, details: dict[str, Any]) -> dict[str, Any]:
    """The person's correctable members as a request would send them (a birth range as the days it covers)."""
    return {
        "given_names": details.get("given_names", []),
        "surnames": details.get("surnames", []),
        "aliases": details.get("aliases", []),
        "date_of_birth": details.get("date_of_birth"),
        # A range was given when there is a birth and no single (partial) date.
        "date_of_birth_range": details.get("birth") if not details.get("date_of_birth") else None,
        "documents": details.get("documents", []),
        "sex": doc.sex or "unknown",
        "nationalities": list(doc.nationalities or []),
        "residence_country": doc.residence_country,
        "languages": list(doc.languages or []),
    }


def _requested_members(
    body: dict[str, Any], today: date, errors: list[ErrorDetail]
) -> tuple[dict[str, Any], dict[str, str] | None]:
    """The members the body names, normalised as `_stored_members` shows them (names in NFC), and the birth they
    give as the days it covers (None when the body gives no birth or clears it)."""
    wanted: dict[str, Any] = {}
    birth_record: dict[str, str] | None = None
    for name in ("given_names", "surnames", "aliases"):
        if name in body:
            wanted[name] = _nfc_list(body[name])
    if "documents" in body:
        wanted["documents"] = _documents(body["documents"])
    if "date_of_birth" in body or "date_of_birth_range" in body:
        birth_record = birth_to_record(parse_birth(body, today, errors))
        wanted["date_of_birth"] = body.get("date_of_birth")
        wanted["date_of_birth_range"] = birth_record if body.get("date_of_birth_range") else None
    for name in CLEAR_MEMBERS:
        if name in body:
            wanted[name] = body[name]
    return wanted, birth_record


def _external_ref_replay(deps: Deps, existing: PersonDocument, body: dict[str, Any]) -> dict[str, Any]:
    """A national system sent its reference again: the same person when the body says what is stored, else 409
    naming the first member that differs (a changed body is a correction, never silently dropped)."""
    details = deps.sealer.open(existing.owner_country, existing.id, existing.sealed)
    stored = _stored_members(existing, details)
    errors: list[ErrorDetail] = []
    members = {k: v for k, v in body.items() if k in SEALED_MEMBERS or k in CLEAR_MEMBERS}
    sent, _ = _requested_members(members, deps.clock.now().date(), errors)
    differing = sorted(name for name, value in sent.items() if stored.get(name) != value)
    if differing:
        # 409, not 422 (entrypoints/http.py): the body is valid; it disagrees with what the reference names.
        raise_all(
            [ErrorDetail("external_ref_differs", f"/{differing[0]}")], "external_ref sent with other details"
        )
    return person_view(deps, existing, details)


def register_person(deps: Deps, caller: Caller, body: dict[str, Any]) -> tuple[dict[str, Any], bool]:
    """Returns (person view, created). An `external_ref` already registered by the same client returns the
    existing person (created = False)."""
    repo = deps.repository(PersonDocument, caller)
    external_ref = body.get("external_ref")
    if external_ref:
        existing = repo.find(limit=1, external_client=caller.azp, external_ref=external_ref)
        if existing:
            return _external_ref_replay(deps, existing[0], body), False

    today = deps.clock.now().date()
    errors: list[ErrorDetail] = []
    birth = parse_birth(body, today, errors)
    determinations = parse_determinations(body.get("age_determinations") or [], today, errors)
    if determinations and not deps.config.is_authorised(caller.country, "age-determination", caller.roles):
        errors.append(ErrorDetail("age_determination_not_authorised", "/age_determinations"))
    duplicate_check = body.get("duplicate_check")
    if duplicate_check:
        errors.extend(_duplicate_check_problems(deps, caller, duplicate_check))
    residence = body.get("residence_country")
    # Every problem of the request in one answer, before anything is written.
    raise_all(errors, "invalid person")

    person_id, case_id = new_id(), new_id()
    details: dict[str, Any] = {
        "given_names": _nfc_list(body.get("given_names")),
        "surnames": _nfc_list(body.get("surnames")),
        "aliases": _nfc_list(body.get("aliases")),
        "date_of_birth": body.get("date_of_birth"),
        "birth": birth_to_record(birth),
        "documents": _documents(body.get("documents")),
        "age_determinations": [
            {
                "decided_on": d.decided_on.isoformat(),
                "method": str(d.method),
                "authority": d.authority,
                "result": str(d.result),
                "assessed_birth": birth_to_record(d.assessed_birth),
            }
            for d in determinations
        ],
    }
    child = is_child(details, today)
    blocking, years = keys_for(deps, caller.country, details)
    doc = PersonDocument(
        id=person_id,
        sealed=deps.sealer.seal(caller.country, person_id, details),
        blocking_keys=blocking,
        year_keys=years,
        keys_scheme=names.KEY_SCHEME,
        sex=body.get("sex", "unknown"),
        nationalities=list(body.get("nationalities") or []),
        residence_country=residence,
        languages=list(body.get("languages") or []),
        external_client=caller.azp if external_ref else None,
        external_ref=external_ref,
        first_case_id=case_id,
        duplicate_check=duplicate_check,
        assigned_to=[caller.sub],
    )
    data: dict[str, Any] = {
        "person_id": person_id,
        "case_id": case_id,
        "owner_country": caller.country,
        "owner_agency": caller.agency,
        "age_group": str(AgeGroup.CHILD if child else AgeGroup.ADULT),
    }
    if body.get("unaccompanied_child") is not None:
        data["unaccompanied_child"] = bool(body["unaccompanied_child"]) and child
    event = new_event("identification.person.registered.v1", person_id, data, SOURCE, clock=deps.clock.now)
    # Second write (its own document): the case opened at first contact, stored as a follow-up step with the
    # person so that a crash before it is written cannot lose it. Its id is fixed, so it opens one case only.
    step = new_step(
        follow_up.OPEN_CASE, deps.clock.now(), by=caller.sub, agency=caller.agency, case_id=case_id
    )
    try:
        repo.insert(doc, events=[event], steps=[step])
    except Conflict:
        # The unique (client, external_ref) index: a concurrent request of the same client registered it first.
        existing = (
            repo.find(limit=1, external_client=caller.azp, external_ref=external_ref) if external_ref else []
        )
        if not existing:
            raise
        return _external_ref_replay(deps, existing[0], body), False
    handler = follow_up.open_case_handler(deps.system_repository, deps.next_sequence)
    perform(PersonDocument, doc, step, handler, deps.complete_step)
    return person_view(deps, doc, details), True


def keys_for(deps: Deps, country: str, details: dict[str, Any]) -> tuple[list[str], list[str]]:
    """Blocking tokens (names) and year tokens (birth years) of the details, under the country's index key, of
    today's `names.KEY_SCHEME` (store it beside them)."""
    keys = blocking_keys_of(details)
    return (
        deps.sealer.blocking_tokens(country, {k for k in keys if not k.startswith("y:")}),
        deps.sealer.blocking_tokens(country, {k for k in keys if k.startswith("y:")}),
    )


def correct_person(
    deps: Deps, caller: Caller, person_id: str, expected_version: int, body: dict[str, Any]
) -> tuple[dict[str, Any], PersonDocument]:
    """Rectify a person's details. Returns (view, document). Refused with `StaleVersion` when the person changed
    since `expected_version`; validated like a registration, every problem at once, before anything is written."""
    repo = deps.repository(PersonDocument, caller)
    doc = repo.get(person_id)
    if doc.version != expected_version:
        raise StaleVersion("the person changed since it was read")
    details = deps.sealer.open(doc.owner_country, doc.id, doc.sealed)
    stored = _stored_members(doc, details)
    errors: list[ErrorDetail] = []
    wanted, birth_record = _requested_members(body, deps.clock.now().date(), errors)
    raise_all(errors, "invalid correction")
    changed = sorted(name for name, value in wanted.items() if stored[name] != value)
    if not changed:
        return person_view(deps, doc, details), doc  # nothing to correct: no new version, nothing recorded

    new_details = dict(details)
    for name in ("given_names", "surnames", "aliases", "documents"):
        if name in changed:
            new_details[name] = wanted[name]
    if "date_of_birth" in wanted:
        # The birth is one fact in two forms: a correction of either replaces both.
        new_details["date_of_birth"] = wanted["date_of_birth"]
        new_details["birth"] = birth_record
    if "sex" in changed:
        doc.sex = wanted["sex"]
    if "nationalities" in changed:
        doc.nationalities = list(wanted["nationalities"])
    if "residence_country" in changed:
        doc.residence_country = wanted["residence_country"]
    if "languages" in changed:
        doc.languages = list(wanted["languages"])

    correction_id = new_id()
    previous = {name: stored[name] for name in changed}
    doc.sealed = deps.sealer.seal(doc.owner_country, doc.id, new_details)
    doc.blocking_keys, doc.year_keys = keys_for(deps, doc.owner_country, new_details)
    doc.keys_scheme = names.KEY_SCHEME
    doc.corrections = [
        *(doc.corrections or []),
        {
            "id": correction_id,
            "at": deps.clock.now(),
            "by": caller.sub,
            "agency": caller.agency,
            "reason": body["reason"],
            "fields": changed,
            "previous": deps.sealer.seal_previous(doc.owner_country, doc.id, correction_id, previous),
        },
    ]
    child = is_child(new_details, deps.clock.now().date())
    data = {
        "person_id": doc.id,
        "correction_id": correction_id,
        "owner_country": doc.owner_country,
        "owner_agency": doc.owner_agency,
        "case_ids": case_ids_of(deps, doc),
        "reason": body["reason"],
        "fields": changed,
        "age_group": str(AgeGroup.CHILD if child else AgeGroup.ADULT),
    }
    event = new_event("identification.person.corrected.v1", doc.id, data, SOURCE, clock=deps.clock.now)
    try:
        repo.update(doc, events=[event])
    except Conflict:
        raise StaleVersion("the person changed while it was corrected") from None
    return person_view(deps, doc, new_details), doc


def case_ids_of(deps: Deps, person: PersonDocument) -> list[str]:
    """Every case of the person in her country, open or closed (the other services hold records linked to
    either), with the first-contact case even before its follow-up step opened it."""
    cases = deps.system_repository(CaseDocument, "system:identification-api").find(
        person_id=person.id, owner_country=person.owner_country
    )
    return sorted({c.id for c in cases} | ({person.first_case_id} if person.first_case_id else set()))


def person_view(deps: Deps, doc: PersonDocument, details: dict[str, Any] | None = None) -> dict[str, Any]:
    if details is None:
        details = deps.sealer.open(doc.owner_country, doc.id, doc.sealed)
    today = deps.clock.now().date()
    view: dict[str, Any] = {
        "id": doc.id,
        "owner_country": doc.owner_country,
        "owner_agency": doc.owner_agency,
        "created_at": _time(doc.created_at),
        "updated_at": _time(doc.updated_at),
        "given_names": details.get("given_names", []),
        "surnames": details.get("surnames", []),
        "aliases": details.get("aliases", []),
        "sex": doc.sex or "unknown",
        "nationalities": list(doc.nationalities or []),
        "languages": list(doc.languages or []),
        "documents": details.get("documents", []),
        "age_determinations": [
            {k: v for k, v in d.items() if v is not None and k != "assessed_birth"}
            | ({"assessed_birth_range": d["assessed_birth"]} if d.get("assessed_birth") else {})
            for d in details.get("age_determinations", [])
        ],
        "child": is_child(details, today),
        "case_id": doc.first_case_id,
        "version": doc.version,
        "corrections": [_correction_view(deps, doc, c) for c in doc.corrections or []],
    }
    if details.get("date_of_birth"):
        view["date_of_birth"] = details["date_of_birth"]
    if details.get("birth"):
        view["date_of_birth_range"] = details["birth"]
    if doc.residence_country:
        view["residence_country"] = doc.residence_country
    if doc.external_ref:
        view["external_ref"] = doc.external_ref
    if doc.duplicate_check:
        view["duplicate_check"] = dict(doc.duplicate_check)
    if doc.merged_into:
        view["merged_into"] = doc.merged_into
    if doc.merged_from:
        view["merged_from"] = list(doc.merged_from)
    if doc.merges:
        view["merges"] = [_merge_view(m) for m in doc.merges]
    if doc.anonymised_at:
        view["anonymised_at"] = _time(doc.anonymised_at)
    if doc.restriction:
        restriction = doc.restriction
        view["restriction"] = {k: restriction[k] for k in ("purposes", "reason", "by", "agency")} | {
            "at": _time(restriction["at"])
        }
    if doc.consent_withdrawal:
        withdrawal = doc.consent_withdrawal
        view["consent_withdrawal"] = {k: withdrawal[k] for k in ("id", "by", "agency", "expressed")} | {
            "at": _time(withdrawal["at"])
        }
    return view


def _merge_view(merge: dict[str, Any]) -> dict[str, Any]:
    view = {k: merge[k] for k in ("id", "into", "by", "agency", "reason")} | {"at": _time(merge["at"])}
    if merge.get("undone_at"):
        view |= {
            "undone_at": _time(merge["undone_at"]),
            "undone_by": merge["undone_by"],
            "undo_reason": merge["undo_reason"],
        }
    return view


def _correction_view(deps: Deps, doc: PersonDocument, correction: dict[str, Any]) -> dict[str, Any]:
    previous = deps.sealer.open_previous(doc.owner_country, doc.id, correction["id"], correction["previous"])
    return {
        "id": correction["id"],
        "at": _time(correction["at"]),
        "by": correction["by"],
        "agency": correction["agency"],
        "reason": correction["reason"],
        "fields": list(correction["fields"]),
        "previous": previous,
    }


def _time(value: Any) -> str:
    from plumbing.clock import rfc3339

    return rfc3339(value)


def get_person(deps: Deps, caller: Caller, person_id: str) -> dict[str, Any]:
    return person_view(deps, deps.repository(PersonDocument, caller).get(person_id))


def list_persons(
    deps: Deps, caller: Caller, *, limit: int | None, cursor: str | None, updated_since: Any
) -> tuple[list[dict[str, Any]], str | None]:
    page: Page[PersonDocument] = deps.repository(PersonDocument, caller).list_page(
        limit=limit, cursor=cursor, updated_since=updated_since
    )
    return [person_view(deps, doc) for doc in page.items], page.next_cursor


def load_person_facts(deps: Deps, caller: Caller, person_id: str) -> tuple[PersonDocument, dict[str, Any]]:
    doc = deps.repository(PersonDocument, caller).get(person_id)
    return doc, deps.sealer.open(doc.owner_country, doc.id, doc.sealed)


__all__ = ["CaseDocument", "register_person", "get_person", "list_persons", "person_view"]
