"""Registering and reading people through the service layer, on fakes (tests/unit/fakes.py): what an officer or a
national system would notice, without a database."""

from __future__ import annotations

import json
import unicodedata
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from identification.adapters.documents import CaseDocument, DuplicateSearchDocument, PersonDocument
from identification.domain.errors import DomainError
from identification.service_layer import duplicates, follow_up, persons
from identification.service_layer.deps import Deps
from plumbing.clock import FixedClock
from plumbing.errors import NotFound, StaleVersion
from services.identification.tests.unit.fakes import NOW, FakeSequences, FakeStore, user

ADULT: dict[str, Any] = {
    "given_names": ["Ëngjëll"],
    "surnames": ["Hoxha"],
    "date_of_birth": "1990-03-04",
    "sex": "male",
}
CHILD: dict[str, Any] = {
    "given_names": ["Ëngjëll"],
    "surnames": ["Hoxha"],
    "date_of_birth": "2010-05",
    "sex": "male",
}


def register(deps: Deps, username: str = "al-police", **fields: Any) -> dict[str, Any]:
    view, created = persons.register_person(deps, user(username), {**ADULT, **fields})
    assert created
    return view


def error_pointers(error: pytest.ExceptionInfo[DomainError]) -> set[tuple[str, str]]:
    return {(d.code, d.pointer) for d in error.value.details}


# ------------------------------------------------------------------------------------------ registration


def test_registration_is_owned_by_the_callers_country_and_agency_whatever_the_body_says(
    deps: Deps, store: FakeStore
) -> None:
    view = register(deps, "al-police", owner_country="XK", owner_agency="someone-else")

    assert (view["owner_country"], view["owner_agency"]) == ("AL", "state-police")
    [stored] = store.all(PersonDocument)
    assert (stored.owner_country, stored.owner_agency, stored.created_by) == (
        "AL",
        "state-police",
        "sub-al-police",
    )
    [case] = store.all(CaseDocument)
    assert (case.owner_country, case.owner_agency, case.responsible_officer) == (
        "AL",
        "state-police",
        "sub-al-police",
    )


def test_registration_opens_the_first_contact_case_with_a_country_year_sequence_reference(
    deps: Deps, store: FakeStore
) -> None:
    first = register(deps, "al-police")
    second = register(deps, "al-case-manager")
    kosovo = register(deps, "xk-police")

    references = {c.id: c.reference for c in store.all(CaseDocument)}
    assert references == {
        first["case_id"]: "AL-2026-00001",
        second["case_id"]: "AL-2026-00002",
        kosovo["case_id"]: "XK-2026-00001",
    }
    case = store.load(CaseDocument, store.raw(CaseDocument, first["case_id"]))
    assert case.person_id == first["id"] and case.status == "open"
    assert [entry["type"] for entry in case.timeline] == ["opened"]
    # The follow-up step that opened the case is done, so the relay's runner has nothing left to do.
    assert store.raw(PersonDocument, first["id"])["pending_steps"] == []


def test_the_case_reference_carries_the_year_of_the_registration(
    deps: Deps, store: FakeStore, clock: FixedClock
) -> None:
    clock.set(datetime(2027, 1, 1, 0, 0, 1, tzinfo=UTC))
    view = register(deps)
    assert store.raw(CaseDocument, view["case_id"])["reference"] == "AL-2027-00001"


def test_names_are_kept_in_nfc_and_trimmed_so_both_spellings_are_one_person(
    deps: Deps, store: FakeStore
) -> None:
    decomposed = unicodedata.normalize("NFD", " Ëngjëll ")
    assert decomposed.strip() != "Ëngjëll"  # the input really is another code point sequence
    nfd = register(deps, given_names=[decomposed], surnames=[unicodedata.normalize("NFD", "Hoxha")])
    nfc = register(deps, given_names=["Ëngjëll"])

    assert nfd["given_names"] == ["Ëngjëll"]
    stored = store.all(PersonDocument)
    by_id = {doc.id: doc for doc in stored}
    opened = deps.sealer.open("AL", nfd["id"], by_id[nfd["id"]].sealed)
    assert opened["given_names"] == ["Ëngjëll"]
    # Equal blocking tokens: a duplicate search finds one spelling from the other.
    assert by_id[nfd["id"]].blocking_keys == by_id[nfc["id"]].blocking_keys


def test_identifying_details_are_stored_encrypted(deps: Deps, store: FakeStore) -> None:
    view = register(deps, documents=[{"type": "passport", "number": "P-12345"}])

    raw = json.dumps(store.raw(PersonDocument, view["id"]), default=str)
    for secret in ("Ëngjëll", "Hoxha", "P-12345", "1990-03-04"):
        assert secret not in raw, secret
    assert persons.get_person(deps, user("al-police"), view["id"])["documents"] == [
        {"type": "passport", "number": "P-12345"}
    ]


def test_registration_emits_person_registered_with_ids_and_codes_only(deps: Deps, store: FakeStore) -> None:
    view = register(deps, **CHILD, nationalities=["XK"], unaccompanied_child=True)

    [event] = store.events()
    assert event["type"] == "identification.person.registered.v1"
    assert event["subject"] == view["id"]
    assert event["data"] == {
        "person_id": view["id"],
        "case_id": view["case_id"],
        "owner_country": "AL",
        "owner_agency": "state-police",
        "age_group": "child",
        "unaccompanied_child": True,
    }
    text = json.dumps(event, ensure_ascii=False)
    for personal in ("Ëngjëll", "Hoxha", "2010-05"):
        assert personal not in text, personal


def test_an_adult_is_never_reported_as_an_unaccompanied_child(deps: Deps, store: FakeStore) -> None:
    register(deps, unaccompanied_child=True)
    [event] = store.events("identification.person.registered.v1")
    assert event["data"]["age_group"] == "adult"
    assert event["data"]["unaccompanied_child"] is False


def test_the_same_external_ref_from_the_same_client_returns_the_existing_person(
    deps: Deps, store: FakeStore, sequences: FakeSequences
) -> None:
    national = user("al-police", azp="al-national-system")
    first, created = persons.register_person(deps, national, {**ADULT, "external_ref": "AL/123"})
    again, created_again = persons.register_person(deps, national, {**ADULT, "external_ref": "AL/123"})

    assert (created, created_again) == (True, False)
    assert again["id"] == first["id"] and again["case_id"] == first["case_id"]
    assert again["external_ref"] == "AL/123"
    assert len(store.all(PersonDocument)) == 1 and len(store.all(CaseDocument)) == 1
    assert len(store.events()) == 1 and sequences.calls == [("AL", 2026)]


def test_the_same_external_ref_from_another_client_is_another_person(deps: Deps, store: FakeStore) -> None:
    one, _ = persons.register_person(
        deps, user("al-police", azp="al-national-system"), {**ADULT, "external_ref": "AL/123"}
    )
    other, created = persons.register_person(
        deps, user("al-police", azp="thb-test"), {**ADULT, "external_ref": "AL/123"}
    )
    assert created and other["id"] != one["id"]
    assert len(store.all(PersonDocument)) == 2


def test_invalid_registration_lists_every_pointer_and_stores_nothing(
    deps: Deps, store: FakeStore, sequences: FakeSequences
) -> None:
    body = {
        "surnames": ["Canary-Name"],
        "date_of_birth_range": {"earliest": "2030", "latest": "2031"},
        "age_determinations": [
            {"decided_on": "2026-05-01", "method": "interview", "authority": "police", "result": "adult"},
            {"decided_on": "2026-07-01", "method": "interview", "authority": "police", "result": "adult"},
        ],
        "duplicate_check": {"outcome": "linked"},
    }
    with pytest.raises(DomainError) as error:
        persons.register_person(deps, user("al-police"), body)

    assert error_pointers(error) == {
        ("date_of_birth_in_future", "/date_of_birth_range"),
        ("date_in_future", "/age_determinations/1/decided_on"),
        ("age_determination_not_authorised", "/age_determinations"),
        ("required", "/duplicate_check/linked_person_id"),
    }
    assert "Canary-Name" not in str(error.value)
    assert store.all(PersonDocument) == [] and store.all(CaseDocument) == []
    assert store.events() == [] and sequences.calls == []


def test_a_registration_reports_its_problems_and_an_unknown_link_in_one_answer(
    deps: Deps, store: FakeStore
) -> None:
    body = {
        **ADULT,
        "date_of_birth": "2031-01-01",
        "duplicate_check": {"outcome": "linked", "linked_person_id": "0b7a3f4e-7f44-4a36-9a5c-3f4a0e1d2c3b"},
    }
    with pytest.raises(DomainError) as error:
        persons.register_person(deps, user("al-police"), body)
    assert error_pointers(error) == {
        ("date_of_birth_in_future", "/date_of_birth"),
        ("unknown_person", "/duplicate_check/linked_person_id"),
    }
    assert store.all(PersonDocument) == []


def test_an_authorised_role_records_age_determinations(deps: Deps) -> None:
    determination = {
        "decided_on": "2026-05-01",
        "method": "medical_examination",
        "authority": "forensic institute",
        "result": "child",
    }
    view = register(deps, "al-case-manager", date_of_birth=None, age_determinations=[determination])
    assert view["age_determinations"] == [determination]
    assert view["child"] is True


def test_a_link_to_a_person_the_caller_cannot_see_is_refused_and_nothing_is_stored(
    deps: Deps, store: FakeStore
) -> None:
    foreign = register(deps, "xk-police")
    body = {**ADULT, "duplicate_check": {"outcome": "linked", "linked_person_id": foreign["id"]}}

    with pytest.raises(DomainError) as error:
        persons.register_person(deps, user("al-police"), body)

    assert error_pointers(error) == {("unknown_person", "/duplicate_check/linked_person_id")}
    assert [p.owner_country for p in store.all(PersonDocument)] == ["XK"]


def test_a_link_to_a_visible_person_is_recorded(deps: Deps) -> None:
    existing = register(deps)
    check = {"outcome": "linked", "linked_person_id": existing["id"]}
    linked = register(deps, duplicate_check=check)
    assert linked["id"] != existing["id"] and linked["duplicate_check"] == check


# ------------------------------------------------------------------------------------------ scope (reads)


@pytest.mark.parametrize("reader", ["xk-police", "xk-case-manager", "me-case-manager"])
def test_another_countrys_person_is_not_found(deps: Deps, reader: str) -> None:
    view = register(deps, "al-police")
    with pytest.raises(NotFound):
        persons.get_person(deps, user(reader), view["id"])
    items, _ = persons.list_persons(deps, user(reader), limit=None, cursor=None, updated_since=None)
    assert items == []


@pytest.mark.parametrize(
    ("reader", "sees"),
    [
        ("al-police", True),  # own agency
        ("al-case-manager", True),  # country-wide
        ("al-coordinator", True),  # country-wide
        ("al-labour", False),  # another agency, nothing assigned
        ("al-shelter", False),  # assigned records only
        ("al-analyst", False),  # no owned records at all
    ],
)
def test_need_to_know_within_the_country(deps: Deps, reader: str, sees: bool) -> None:
    view = register(deps, "al-police")
    if sees:
        assert persons.get_person(deps, user(reader), view["id"])["surnames"] == ["Hoxha"]
    else:
        with pytest.raises(NotFound):
            persons.get_person(deps, user(reader), view["id"])


def test_listing_pages_through_every_visible_person_once(deps: Deps, clock: FixedClock) -> None:
    ids = []
    for _ in range(5):
        ids.append(register(deps)["id"])
        clock.advance(seconds=1)
    register(deps, "xk-police")

    seen: list[str] = []
    cursor = None
    for _ in range(5):
        items, cursor = persons.list_persons(
            deps, user("al-police"), limit=2, cursor=cursor, updated_since=None
        )
        seen += [item["id"] for item in items]
        if cursor is None:
            break
    assert seen == ids

    since = NOW + timedelta(seconds=3)
    items, _ = persons.list_persons(deps, user("al-police"), limit=None, cursor=None, updated_since=since)
    assert [item["id"] for item in items] == ids[3:]


# --------------------------------------------------------------------------- the second write, after a crash


def test_a_failed_second_write_is_completed_later_by_the_step_runner(
    deps: Deps, store: FakeStore, clock: FixedClock, sequences: FakeSequences
) -> None:
    clock.set(datetime(2026, 12, 31, 23, 59, 50, tzinfo=UTC))
    sequences.failing = True
    view, created = persons.register_person(deps, user("al-police"), ADULT)

    # The registration is accepted; its case is not there yet, but the step to open it is stored.
    assert created and store.all(CaseDocument) == []
    [step] = store.raw(PersonDocument, view["id"])["pending_steps"]
    assert step["name"] == follow_up.OPEN_CASE and step["case_id"] == view["case_id"]

    sequences.failing = False
    clock.advance(minutes=1)  # due now, and already the next year
    handlers = follow_up.handlers(store.system_repositories(clock), sequences)
    assert store.run_due_steps(handlers, clock.now()) == 1
    [case] = store.all(CaseDocument)
    assert case.id == view["case_id"] and case.reference == "AL-2026-00001"
    assert store.raw(PersonDocument, view["id"])["pending_steps"] == []
    # Performing the same step again (a runner racing a slow request) opens no second case.
    follow_up.open_case_handler(store.system_repositories(clock), sequences)(
        store.all(PersonDocument)[0], step
    )
    assert len(store.all(CaseDocument)) == 1


# ------------------------------------------------------------------------------ corrections (rectification)


def correct(deps: Deps, person: dict[str, Any], username: str = "al-police", **body: Any) -> dict[str, Any]:
    view, _ = persons.correct_person(deps, user(username), person["id"], person["version"], body)
    return view


def test_a_correction_changes_the_person_and_keeps_the_previous_values(
    deps: Deps, store: FakeStore, clock: FixedClock
) -> None:
    person = register(deps)
    clock.advance(minutes=5)
    corrected = correct(deps, person, surnames=["Hoxhaj"], date_of_birth="1991", reason="document_seen")

    assert corrected["surnames"] == ["Hoxhaj"] and corrected["date_of_birth"] == "1991"
    assert corrected["given_names"] == ["Ëngjëll"]  # untouched
    assert corrected["version"] == person["version"] + 1
    [entry] = corrected["corrections"]
    assert entry["fields"] == ["date_of_birth", "surnames"] and entry["reason"] == "document_seen"
    assert entry["by"] == "sub-al-police" and entry["agency"] == "state-police"
    assert entry["previous"] == {"date_of_birth": "1990-03-04", "surnames": ["Hoxha"]}
    # Read again, as another officer of the agency would.
    assert persons.get_person(deps, user("al-police"), person["id"])["corrections"] == [entry]
    # The old and the new values are stored encrypted only.
    raw = json.dumps(store.raw(PersonDocument, person["id"]), default=str, ensure_ascii=False)
    assert "Hoxha" not in raw and "1990-03-04" not in raw


def test_a_correction_tells_consumers_which_members_changed_never_the_values(
    deps: Deps, store: FakeStore
) -> None:
    person = register(deps)
    correct(deps, person, surnames=["Hoxhaj"], reason="spelling")
    [event] = store.events("identification.person.corrected.v1")
    assert event["data"]["fields"] == ["surnames"] and event["data"]["person_id"] == person["id"]
    assert event["data"]["reason"] == "spelling" and event["data"]["age_group"] == "adult"
    assert "Hoxha" not in json.dumps(event, ensure_ascii=False)


def test_a_duplicate_search_finds_the_person_by_the_corrected_name(deps: Deps) -> None:
    person = register(deps)
    correct(deps, person, surnames=["Berisha"], reason="document_seen")

    def found(surname: str) -> list[str]:
        body = {"surnames": [surname], "date_of_birth": "1990-03-04"}
        return [c["person_id"] for c in duplicates.search(deps, user("al-police"), body).view["candidates"]]

    assert found("Berisha") == [person["id"]]
    assert found("Hoxha") == []


def test_a_correction_of_a_stale_version_is_refused_and_changes_nothing(deps: Deps, store: FakeStore) -> None:
    person = register(deps)
    correct(deps, person, surnames=["Hoxhaj"], reason="spelling")
    before = store.raw(PersonDocument, person["id"])
    with pytest.raises(StaleVersion):
        correct(deps, person, given_names=["Engjell"], reason="spelling")  # still the first version
    assert store.raw(PersonDocument, person["id"]) == before


def test_a_correction_is_validated_like_a_registration(deps: Deps, store: FakeStore) -> None:
    person = register(deps)
    before = store.raw(PersonDocument, person["id"])
    with pytest.raises(DomainError) as error:
        correct(
            deps,
            person,
            date_of_birth="1990",
            date_of_birth_range={"earliest": "1989", "latest": "1991"},
            reason="other",
        )
    assert error_pointers(error) == {("date_of_birth_ambiguous", "/date_of_birth_range")}
    with pytest.raises(DomainError) as error:
        correct(deps, person, date_of_birth="2031", reason="other")
    assert error_pointers(error) == {("date_of_birth_in_future", "/date_of_birth")}
    assert store.raw(PersonDocument, person["id"]) == before


def test_a_correction_that_changes_nothing_records_nothing(deps: Deps, store: FakeStore) -> None:
    person = register(deps)
    same = correct(deps, person, surnames=["Hoxha"], sex="male", reason="spelling")
    assert same["version"] == person["version"] and same["corrections"] == []
    assert store.events("identification.person.corrected.v1") == []


def test_a_birth_range_replaces_a_date_of_birth_and_null_clears_the_birth(deps: Deps) -> None:
    person = register(deps)
    ranged = correct(
        deps, person, date_of_birth_range={"earliest": "1989", "latest": "1990"}, reason="new_information"
    )
    assert "date_of_birth" not in ranged
    assert ranged["date_of_birth_range"] == {"earliest": "1989-01-01", "latest": "1990-12-31"}
    cleared = correct(deps, ranged, date_of_birth=None, residence_country=None, reason="other")
    assert "date_of_birth" not in cleared and "date_of_birth_range" not in cleared
    assert cleared["child"] is True  # no birth and no determination: presumed a child
    assert cleared["corrections"][-1]["previous"] == {
        "date_of_birth_range": {"earliest": "1989-01-01", "latest": "1990-12-31"}
    }


def test_another_countrys_person_cannot_be_corrected(deps: Deps) -> None:
    person = register(deps, "xk-police")
    with pytest.raises(NotFound):
        correct(deps, person, "al-police", surnames=["X"], reason="other")


def test_the_same_external_ref_with_other_details_is_a_conflict_not_a_silent_drop(
    deps: Deps, store: FakeStore
) -> None:
    national = user("al-police", azp="al-national-system")
    first, _ = persons.register_person(deps, national, {**ADULT, "external_ref": "AL/124"})
    with pytest.raises(DomainError) as error:
        persons.register_person(deps, national, {**ADULT, "surnames": ["Hoxhaj"], "external_ref": "AL/124"})
    assert error_pointers(error) == {("external_ref_differs", "/surnames")}
    # Sent again as first sent (names in another normal form included): the same person.
    decomposed = unicodedata.normalize("NFD", "Ëngjëll")
    again, created = persons.register_person(
        deps, national, {**ADULT, "given_names": [decomposed], "external_ref": "AL/124"}
    )
    assert not created and again["id"] == first["id"]
    assert persons.get_person(deps, national, first["id"])["surnames"] == ["Hoxha"]


# ------------------------------------------------------------------------ duplicate searches from little


def test_a_surname_only_search_returns_possible_candidates_ranked_with_reasons(deps: Deps) -> None:
    child = register(deps, **CHILD)
    register(deps, surnames=["Krasniqi"])
    result = duplicates.search(deps, user("al-police"), {"surnames": ["Hodža"], "sex": "male"}).view
    [candidate] = result["candidates"]
    assert candidate["person_id"] == child["id"] and candidate["level"] == "possible"
    assert "given_name_not_searched" in candidate["reasons"]


def test_a_person_without_a_known_name_can_be_duplicate_checked_by_age_and_sex(deps: Deps) -> None:
    unnamed = register(
        deps,
        given_names=[],
        surnames=[],
        date_of_birth=None,
        sex="male",
        date_of_birth_range={"earliest": "2011", "latest": "2012"},
        nationalities=["ME"],
    )
    register(deps, given_names=["Ana"], surnames=["Marković"], date_of_birth="2011", sex="female")
    register(deps, given_names=["Petar"], surnames=["Marković"], date_of_birth="1980", sex="male")
    search = {
        "date_of_birth_range": {"earliest": "2010", "latest": "2012"},
        "sex": "male",
        "nationalities": ["ME"],
    }
    result = duplicates.search(deps, user("al-police"), search).view
    assert [c["person_id"] for c in result["candidates"]] == [unnamed["id"]]
    assert result["candidates"][0]["reasons"][0] == "name_not_searched"

    with pytest.raises(DomainError) as error:
        duplicates.search(deps, user("al-police"), {"sex": "male"})
    assert error_pointers(error) == {("name_or_birth_required", "")}


# ------------------------------------------------------------- a match known to another agency of the country


def test_a_match_in_another_agency_is_answered_as_restricted_without_anything_personal(
    deps: Deps, store: FakeStore
) -> None:
    known = register(deps, "al-labour", **CHILD)  # registered by the labour inspectorate
    register(deps, "xk-police", **CHILD)  # the same child known in Kosovo: never part of Albania's answer
    search = {"given_names": ["Engjell"], "surnames": ["Hoxha"], "date_of_birth": "2010"}

    outcome = duplicates.search(deps, user("al-border"), search)
    assert outcome.view["candidates"] == []
    [restricted] = outcome.view["restricted_candidates"]
    assert restricted["level"] == "likely" and restricted["owner_agency"] == "labour-inspectorate"
    assert restricted["case_id"] == known["case_id"] and restricted["case_reference"] == "AL-2026-00001"
    text = json.dumps(outcome.view, ensure_ascii=False)
    assert "Hoxha" not in text and "Ëngjëll" not in text
    assert set(restricted) == {"score", "level", "reasons", "owner_agency", "case_id", "case_reference"}
    assert known["id"] not in text
    # The access log is told whom the answer was about, and the stored search marks the match restricted.
    assert outcome.person_ids == [known["id"]]
    [stored] = store.all(DuplicateSearchDocument)
    assert stored.results[0]["restricted"] is True

    # A case manager reads the whole country: the same match in full.
    full = duplicates.search(deps, user("al-case-manager"), search).view
    assert [c["person_id"] for c in full["candidates"]] == [known["id"]] and full[
        "restricted_candidates"
    ] == []
