"""Cases through the service layer, on fakes (tests/unit/fakes.py): screening, the category decision and the
coordinator's notification, needs, the recovery and reflection period, closure, and what each role may do."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import date, timedelta
from typing import Any

import pytest
import yaml

import thb_contracts
from identification.adapters.documents import CaseDocument, NotificationDocument, PersonDocument
from identification.domain.errors import DomainError
from identification.service_layer import cases, persons
from identification.service_layer.deps import Deps
from plumbing.errors import Conflict, NotFound
from services.identification.tests.unit.fakes import (
    NOW,
    FakeStore,
    packaged_catalogue,
    user,
)

TODAY = NOW.date()
ADULT_LABOUR = [
    {"list_id": "A-LAB", "indicator_id": "A-LAB-DR-01"},
    {"list_id": "A-LAB", "indicator_id": "A-LAB-EX-01"},
    {"list_id": "A-LAB", "indicator_id": "A-LAB-CD-01"},
]


def contract_needs() -> list[str]:
    contract = yaml.load(
        thb_contracts.contract("identification").read_text(encoding="utf-8"), Loader=yaml.CSafeLoader
    )
    return list(contract["components"]["schemas"]["IdentificationNeed"]["enum"])


def register(deps: Deps, username: str = "al-police", **fields: Any) -> dict[str, Any]:
    body = {
        "given_names": ["Ëngjëll"],
        "surnames": ["Hoxha"],
        "date_of_birth": "1990-03-04",
        "sex": "male",
        **fields,
    }
    view, created = persons.register_person(deps, user(username), body)
    assert created
    return view


def screen(deps: Deps, case_id: str, username: str = "al-police", **fields: Any) -> dict[str, Any]:
    body = {"case_id": case_id, "indicator_set_version": "2026.1", "answers": ADULT_LABOUR, **fields}
    case, item = cases.record_screening(deps, user(username), body)
    return cases.screening_view(case, item)


def stored_case(store: FakeStore, case_id: str) -> CaseDocument:
    return store.load(CaseDocument, store.raw(CaseDocument, case_id))


def error_pointers(error: pytest.ExceptionInfo[DomainError]) -> set[tuple[str, str]]:
    return {(d.code, d.pointer) for d in error.value.details}


@pytest.fixture
def case_id(deps: Deps) -> str:
    return str(register(deps, nationalities=["ME"])["case_id"])


# ------------------------------------------------------------------------------------------------ scope

COMMANDS: dict[str, Callable[[Deps, str, str], object]] = {
    "get": lambda deps, who, cid: cases.get_case(deps, user(who), cid),
    "screening": lambda deps, who, cid: cases.record_screening(
        deps, user(who), {"case_id": cid, "indicator_set_version": "2026.1", "answers": ADULT_LABOUR}
    ),
    "decision": lambda deps, who, cid: cases.decide_category(
        deps, user(who), cid, {"category": "person_at_risk"}
    ),
    "needs": lambda deps, who, cid: cases.record_needs(deps, user(who), cid, {"needs": ["shelter"]}),
    "recovery": lambda deps, who, cid: cases.start_recovery_period(deps, user(who), cid, {}),
    "closure": lambda deps, who, cid: cases.close_case(deps, user(who), cid, {"reason": "other"}),
}


@pytest.mark.parametrize("command", sorted(COMMANDS))
@pytest.mark.parametrize("who", ["xk-case-manager", "me-case-manager", "xk-coordinator"])
def test_another_countrys_case_is_not_found_and_stays_unchanged(
    deps: Deps, store: FakeStore, case_id: str, command: str, who: str
) -> None:
    before = store.raw(CaseDocument, case_id)
    with pytest.raises(NotFound):
        COMMANDS[command](deps, who, case_id)
    assert store.raw(CaseDocument, case_id) == before
    assert store.all(NotificationDocument) == []


@pytest.mark.parametrize(("who", "sees"), [("al-police", True), ("al-labour", False), ("al-shelter", False)])
def test_an_agency_sees_its_own_cases_only(deps: Deps, case_id: str, who: str, sees: bool) -> None:
    page = cases.list_cases(deps, user(who), limit=None, cursor=None, updated_since=None)
    assert [c.id for c in page.items] == ([case_id] if sees else [])


def test_another_countrys_screening_is_not_found(deps: Deps, case_id: str) -> None:
    screening = screen(deps, case_id)
    assert cases.find_screening(deps, user("al-case-manager"), screening["id"])[1]["id"] == screening["id"]
    with pytest.raises(NotFound):
        cases.find_screening(deps, user("xk-case-manager"), screening["id"])


def test_a_further_case_is_opened_only_for_a_visible_person(deps: Deps, store: FakeStore) -> None:
    person = register(deps)
    further = cases.open_case(deps, user("al-case-manager"), person["id"])
    assert further.reference == "AL-2026-00002" and further.person_id == person["id"]
    assert further.owner_agency == "social-services"
    with pytest.raises(NotFound):
        cases.open_case(deps, user("xk-case-manager"), person["id"])
    assert len(store.all(CaseDocument)) == 2


# -------------------------------------------------------------------------------------------- screening


def test_screening_suggests_a_category_and_emits_codes_only(
    deps: Deps, store: FakeStore, case_id: str
) -> None:
    screening = screen(deps, case_id)

    assert screening["suggested_category"] == "potential_victim"
    assert screening["indicator_set"].startswith("regional@2026.1")
    case = stored_case(store, case_id)
    assert [s["id"] for s in case.screenings] == [screening["id"]]
    assert [e["type"] for e in case.timeline] == ["opened", "screening_completed"]
    [event] = store.events("identification.screening.completed.v1")
    assert event["subject"] == screening["id"]
    assert event["data"]["case_id"] == case_id and event["data"]["suggested_category"] == "potential_victim"
    assert event["data"]["forms_of_exploitation"] == ["labour"] and event["data"]["age_group"] == "adult"
    assert "Hoxha" not in json.dumps(event, ensure_ascii=False)


def every_indicator(age_group: str) -> list[dict[str, str]]:
    """An answer for every indicator in force of every list of one age group (AL's additions included)."""
    regional = packaged_catalogue().resolve("2026.1", "AL")
    return [
        {"list_id": lst.id, "indicator_id": ind.id}
        for lst in regional.lists
        if str(lst.age_group) == age_group
        for ind in lst.indicators
        if ind.effective_on(TODAY)
    ]


@pytest.mark.parametrize(
    ("date_of_birth", "answers", "flags", "suggested"),
    [
        ("1990-03-04", [], [], "no_indication"),
        ("1990-03-04", ADULT_LABOUR, [], "potential_victim"),
        ("1990-03-04", every_indicator("adult"), [], "potential_victim"),
        (
            "2012",
            every_indicator("child"),
            ["unaccompanied", "begging", "living_on_street"],
            "potential_victim",
        ),
    ],
)
def test_screening_suggests_but_never_decides_victim(
    deps: Deps,
    date_of_birth: str,
    answers: list[dict[str, str]],
    flags: list[str],
    suggested: str,
) -> None:
    person = register(deps, date_of_birth=date_of_birth)
    screening = screen(deps, person["case_id"], answers=answers, flags=flags)
    assert screening["suggested_category"] == suggested
    assert cases.get_case(deps, user("al-police"), person["case_id"]).category is None


def test_screening_with_an_indicator_of_the_wrong_list_is_refused_and_stores_nothing(
    deps: Deps, store: FakeStore, case_id: str
) -> None:
    before = store.raw(CaseDocument, case_id)
    with pytest.raises(DomainError) as error:
        screen(deps, case_id, answers=[{"list_id": "C-BEG", "indicator_id": "C-BEG-EX-01"}])
    assert error.value.details[0].code == "indicator_wrong_list"
    assert store.raw(CaseDocument, case_id) == before


def test_a_screening_dated_in_the_future_is_refused(deps: Deps, case_id: str) -> None:
    tomorrow = (TODAY + timedelta(days=1)).isoformat()
    with pytest.raises(DomainError) as error:
        screen(deps, case_id, screening_date=tomorrow)
    assert error_pointers(error) == {("date_in_future", "/screening_date")}


# --------------------------------------------------------------------------------------------- decision


@pytest.mark.parametrize(
    ("who", "body", "expected"),
    [
        (
            "al-police",
            {"category": "victim"},
            {("formal_identification_not_authorised", "/category"), ("required", "/legal_reference")},
        ),
        (
            "al-police",
            {"category": "victim", "legal_reference": "decision 12/2026"},
            {("formal_identification_not_authorised", "/category")},
        ),
        ("al-case-manager", {"category": "victim"}, {("required", "/legal_reference")}),
    ],
)
def test_victim_needs_an_authorised_role_and_a_legal_reference(
    deps: Deps, store: FakeStore, case_id: str, who: str, body: dict[str, Any], expected: set[Any]
) -> None:
    before = store.raw(CaseDocument, case_id)
    with pytest.raises(DomainError) as error:
        cases.decide_category(deps, user(who), case_id, body)
    assert error_pointers(error) == expected
    assert store.raw(CaseDocument, case_id) == before
    assert store.all(NotificationDocument) == []


@pytest.mark.parametrize("who", ["al-case-manager", "al-coordinator"])
def test_an_authorised_role_decides_victim_with_a_legal_reference(
    deps: Deps, store: FakeStore, case_id: str, who: str
) -> None:
    body = {"category": "victim", "legal_reference": "decision 12/2026"}
    case = cases.decide_category(deps, user(who), case_id, body)
    view = cases.case_view(case)
    assert view["category"] == "victim" and view["legal_reference"] == "decision 12/2026"
    assert stored_case(store, case_id).category == "victim"


@pytest.mark.parametrize("category", ["no_indication", "potential_victim", "person_at_risk"])
def test_only_an_authorised_role_revises_a_formal_victim_decision(
    deps: Deps, store: FakeStore, case_id: str, category: str
) -> None:
    cases.decide_category(
        deps, user("al-case-manager"), case_id, {"category": "victim", "legal_reference": "decision 12/2026"}
    )
    with pytest.raises(DomainError) as error:
        cases.decide_category(deps, user("al-police"), case_id, {"category": category})
    assert error_pointers(error) == {
        ("formal_identification_not_authorised", "/category"),
        ("required", "/legal_reference"),
    }
    assert stored_case(store, case_id).category == "victim"

    revised = cases.decide_category(
        deps, user("al-case-manager"), case_id, {"category": category, "legal_reference": "appeal 3/2026"}
    )
    assert revised.category == category and revised.category_legal_reference == "appeal 3/2026"


def test_an_identifying_officer_decides_potential_victim(deps: Deps, case_id: str) -> None:
    screening = screen(deps, case_id)
    case = cases.decide_category(
        deps, user("al-police"), case_id, {"category": "potential_victim", "screening_id": screening["id"]}
    )
    assert case.category == "potential_victim" and case.category_legal_reference is None


def test_a_decision_emits_codes_and_the_cross_border_links(deps: Deps, store: FakeStore) -> None:
    person = register(deps, nationalities=["ME"], residence_country="XK")
    screening = screen(deps, person["case_id"])
    cases.decide_category(
        deps,
        user("al-police"),
        person["case_id"],
        {"category": "potential_victim", "screening_id": screening["id"], "exploited_in": ["XK"]},
    )

    [event] = store.events("identification.category.decided.v1")
    data = event["data"]
    assert data["category"] == "potential_victim" and data["previous_category"] is None
    assert data["follows_suggestion"] is True and data["forms_of_exploitation"] == ["labour"]
    assert data["is_cross_border"] is True
    assert data["cross_border"] == [
        {"country": "ME", "links": ["national"]},
        {"country": "XK", "links": ["exploited_in", "resident"]},
    ]
    text = json.dumps(event, ensure_ascii=False)
    assert "Hoxha" not in text and "1990-03-04" not in text


def test_decision_problems_are_listed_together(deps: Deps, store: FakeStore, case_id: str) -> None:
    body = {"category": "victim", "screening_id": "no-such-screening", "exploited_in": ["AL", "DE"]}
    with pytest.raises(DomainError) as error:
        cases.decide_category(deps, user("al-police"), case_id, body)
    assert error_pointers(error) == {
        ("formal_identification_not_authorised", "/category"),
        ("required", "/legal_reference"),
        ("unknown_screening", "/screening_id"),
        ("not_a_partner_country", "/exploited_in/1"),
    }
    assert stored_case(store, case_id).category is None


def test_a_decision_notifies_the_coordinators_office(deps: Deps, store: FakeStore, case_id: str) -> None:
    cases.decide_category(deps, user("al-police"), case_id, {"category": "person_at_risk"})

    # The follow-up step was performed and removed.
    assert store.raw(CaseDocument, case_id)["pending_steps"] == []
    page = cases.list_notifications(deps, user("al-coordinator"), acknowledged=False, limit=None, cursor=None)
    [note] = [cases.notification_view(doc) for doc in page.items]
    assert note["case_id"] == case_id and note["category"] == "person_at_risk"
    assert note["case_reference"] == "AL-2026-00001" and note["owner_country"] == "AL"
    assert note["acknowledged"] is False
    # Another country's coordinator is not told.
    other = cases.list_notifications(deps, user("xk-coordinator"), acknowledged=None, limit=None, cursor=None)
    assert other.items == []

    acknowledged = cases.acknowledge_notification(deps, user("al-coordinator"), note["id"])
    assert acknowledged.acknowledged and acknowledged.acknowledged_by == "sub-al-coordinator"
    still_open = cases.list_notifications(
        deps, user("al-coordinator"), acknowledged=False, limit=None, cursor=None
    )
    assert still_open.items == []


def test_each_decision_notifies_once(deps: Deps, store: FakeStore, case_id: str) -> None:
    cases.decide_category(deps, user("al-police"), case_id, {"category": "person_at_risk"})
    cases.decide_category(deps, user("al-police"), case_id, {"category": "potential_victim"})
    categories = sorted(n.category for n in store.all(NotificationDocument))
    assert categories == ["person_at_risk", "potential_victim"]
    [first, second] = store.events("identification.category.decided.v1")
    assert second["data"]["previous_category"] == first["data"]["category"] == "person_at_risk"


# ------------------------------------------------------------------------------------------------ needs


@pytest.mark.parametrize("need", contract_needs())
def test_every_need_code_of_the_contract_is_accepted(
    deps: Deps, store: FakeStore, case_id: str, need: str
) -> None:
    case = cases.record_needs(deps, user("al-police"), case_id, {"needs": [need]})
    assert case.needs == [need]
    [event] = store.events("identification.needs.identified.v1")
    assert event["data"]["needs"] == [need]


def test_all_needs_at_once_with_interpreter_languages(deps: Deps, store: FakeStore, case_id: str) -> None:
    every = contract_needs()
    case = cases.record_needs(
        deps, user("al-police"), case_id, {"needs": [*every, "shelter"], "interpreter_languages": ["srp"]}
    )
    assert case.needs == every  # repeated codes once, in the order given
    [event] = store.events("identification.needs.identified.v1")
    assert event["data"]["interpreter_languages"] == ["srp"] and event["data"]["urgent"] is True


@pytest.mark.parametrize(
    ("body", "urgent"),
    [
        ({"needs": ["shelter"]}, True),
        ({"needs": ["education", "employment"]}, False),
        ({"needs": ["medical"], "urgent": False}, False),
        ({"needs": ["education"], "urgent": True}, True),
    ],
)
def test_urgency_follows_the_needs_unless_stated(
    deps: Deps, store: FakeStore, case_id: str, body: dict[str, Any], urgent: bool
) -> None:
    cases.record_needs(deps, user("al-police"), case_id, body)
    [event] = store.events("identification.needs.identified.v1")
    assert event["data"]["urgent"] is urgent


def test_interpreter_languages_need_the_interpreter_need(deps: Deps, store: FakeStore, case_id: str) -> None:
    with pytest.raises(DomainError) as error:
        cases.record_needs(
            deps, user("al-police"), case_id, {"needs": ["shelter"], "interpreter_languages": ["srp"]}
        )
    assert error_pointers(error) == {("interpreter_need_missing", "/interpreter_languages")}
    assert stored_case(store, case_id).needs == []


# ---------------------------------------------------------------------------- recovery and reflection


def decide(deps: Deps, case_id: str, category: str) -> None:
    body = {"category": category, "legal_reference": "decision 12/2026"}
    cases.decide_category(deps, user("al-case-manager"), case_id, body)


@pytest.mark.parametrize("category", [None, "person_at_risk", "no_indication"])
def test_a_recovery_period_needs_a_victim_or_potential_victim_decision(
    deps: Deps, case_id: str, category: str | None
) -> None:
    if category:
        decide(deps, case_id, category)
    with pytest.raises(Conflict):
        cases.start_recovery_period(deps, user("al-case-manager"), case_id, {})


@pytest.mark.parametrize("category", ["victim", "potential_victim"])
def test_the_recovery_period_lasts_at_least_30_days(
    deps: Deps, store: FakeStore, case_id: str, category: str
) -> None:
    decide(deps, case_id, category)
    with pytest.raises(DomainError) as error:
        cases.start_recovery_period(deps, user("al-case-manager"), case_id, {"days": 29})
    assert error_pointers(error) == {("recovery_period_too_short", "/days")}
    assert stored_case(store, case_id).recovery_period is None

    case = cases.start_recovery_period(deps, user("al-case-manager"), case_id, {})
    end = (TODAY + timedelta(days=30)).isoformat()
    assert case.recovery_period == {"start": TODAY.isoformat(), "end": end, "days": 30}
    assert stored_case(store, case_id).recovery_period == case.recovery_period


def test_a_longer_recovery_period_from_a_given_start(deps: Deps, case_id: str) -> None:
    screen(deps, case_id, screening_date="2026-05-20")  # the first contact, entered afterwards
    decide(deps, case_id, "victim")
    case = cases.start_recovery_period(
        deps, user("al-case-manager"), case_id, {"start": "2026-05-20", "days": 90}
    )
    assert case.recovery_period == {"start": "2026-05-20", "end": "2026-08-18", "days": 90}


def test_the_recovery_period_cannot_start_before_the_first_contact_the_case_records(
    deps: Deps, store: FakeStore, case_id: str
) -> None:
    screen(deps, case_id, screening_date="2026-05-20")
    decide(deps, case_id, "victim")
    for start in ("2026-05-19", "1900-01-01"):
        with pytest.raises(DomainError) as error:
            cases.start_recovery_period(deps, user("al-case-manager"), case_id, {"start": start})
        assert error_pointers(error) == {("date_before_first_contact", "/start")}
    assert stored_case(store, case_id).recovery_period is None


def test_the_recovery_period_starts_once_and_not_far_ahead(deps: Deps, case_id: str) -> None:
    decide(deps, case_id, "victim")
    too_late = (TODAY + timedelta(days=31)).isoformat()
    with pytest.raises(DomainError) as error:
        cases.start_recovery_period(deps, user("al-case-manager"), case_id, {"start": too_late, "days": 10})
    assert error_pointers(error) == {
        ("date_too_far_ahead", "/start"),
        ("recovery_period_too_short", "/days"),
    }
    cases.start_recovery_period(deps, user("al-case-manager"), case_id, {})
    with pytest.raises(Conflict):
        cases.start_recovery_period(deps, user("al-case-manager"), case_id, {})


# ---------------------------------------------------------------------------------------------- closure


def test_closure_closes_the_case_and_emits_the_mapped_reason(
    deps: Deps, store: FakeStore, case_id: str
) -> None:
    decide(deps, case_id, "victim")
    case = cases.close_case(deps, user("al-case-manager"), case_id, {"reason": "returned_to_origin"})

    view = cases.case_view(case)
    assert view["status"] == "closed" and view["closure"]["reason"] == "returned_to_origin"
    assert view["closure"]["by"] == "sub-al-case-manager"
    [event] = store.events("identification.case.closed.v1")
    assert event["data"]["reason"] == "returned" and event["data"]["final_category"] == "victim"
    assert stored_case(store, case_id).status == "closed"


def test_a_case_closed_without_a_decision_reports_no_indication(
    deps: Deps, store: FakeStore, case_id: str
) -> None:
    cases.close_case(deps, user("al-police"), case_id, {"reason": "lost_contact"})
    [event] = store.events("identification.case.closed.v1")
    assert event["data"]["final_category"] == "no_indication" and event["data"]["reason"] == "not_reachable"


@pytest.mark.parametrize("command", ["screening", "decision", "needs", "recovery", "closure"])
def test_a_closed_case_answers_conflict_to_every_command(
    deps: Deps, store: FakeStore, case_id: str, command: str
) -> None:
    decide(deps, case_id, "victim")
    cases.close_case(deps, user("al-case-manager"), case_id, {"reason": "other"})
    before = store.raw(CaseDocument, case_id)

    with pytest.raises(Conflict):
        COMMANDS[command](deps, "al-case-manager", case_id)
    assert store.raw(CaseDocument, case_id) == before
    # Reading a closed case still works.
    assert cases.get_case(deps, user("al-case-manager"), case_id).status == "closed"


def test_a_case_is_not_closed_as_a_duplicate_of_its_own_person(
    deps: Deps, store: FakeStore, case_id: str
) -> None:
    own_person = stored_case(store, case_id).person_id
    with pytest.raises(DomainError) as error:
        cases.close_case(
            deps,
            user("al-case-manager"),
            case_id,
            {"reason": "duplicate_record", "duplicate_of_person_id": own_person},
        )
    assert error_pointers(error) == {("duplicate_of_itself", "/duplicate_of_person_id")}
    assert stored_case(store, case_id).status == "open"


def test_a_duplicate_target_is_refused_with_any_other_closure_reason(
    deps: Deps, store: FakeStore, case_id: str
) -> None:
    other = register(deps)
    with pytest.raises(DomainError) as error:
        cases.close_case(
            deps,
            user("al-case-manager"),
            case_id,
            {"reason": "lost_contact", "duplicate_of_person_id": other["id"]},
        )
    assert error_pointers(error) == {("only_for_duplicate_record", "/duplicate_of_person_id")}
    assert (
        stored_case(store, case_id).status == "open" and store.events("identification.case.closed.v1") == []
    )


def test_closing_as_a_duplicate_needs_a_person_the_caller_can_see(
    deps: Deps, store: FakeStore, case_id: str
) -> None:
    foreign = register(deps, "xk-police")
    with pytest.raises(DomainError) as error:
        cases.close_case(deps, user("al-case-manager"), case_id, {"reason": "duplicate_record"})
    assert error_pointers(error) == {("required", "/duplicate_of_person_id")}
    with pytest.raises(DomainError) as error:
        cases.close_case(
            deps,
            user("al-case-manager"),
            case_id,
            {"reason": "duplicate_record", "duplicate_of_person_id": foreign["id"]},
        )
    assert error_pointers(error) == {("unknown_person", "/duplicate_of_person_id")}
    assert stored_case(store, case_id).status == "open"

    original = register(deps)
    cases.close_case(
        deps,
        user("al-case-manager"),
        case_id,
        {"reason": "duplicate_record", "duplicate_of_person_id": original["id"]},
    )
    [event] = store.events("identification.case.closed.v1")
    assert (
        event["data"]["reason"] == "duplicate" and event["data"]["duplicate_of_person_id"] == original["id"]
    )


def test_the_timeline_records_every_command_in_order(deps: Deps, store: FakeStore, case_id: str) -> None:
    screening = screen(deps, case_id)
    cases.decide_category(
        deps, user("al-police"), case_id, {"category": "potential_victim", "screening_id": screening["id"]}
    )
    decide(deps, case_id, "victim")
    cases.start_recovery_period(deps, user("al-case-manager"), case_id, {})
    cases.record_needs(deps, user("al-police"), case_id, {"needs": ["shelter"]})
    cases.close_case(deps, user("al-case-manager"), case_id, {"reason": "returned_to_origin"})

    timeline = cases.case_view(stored_case(store, case_id))["timeline"]
    assert [(e["type"], e["by"]) for e in timeline] == [
        ("opened", "sub-al-police"),
        ("screening_completed", "sub-al-police"),
        ("category_decided", "sub-al-police"),
        ("category_decided", "sub-al-case-manager"),
        ("recovery_period_started", "sub-al-case-manager"),
        ("needs_identified", "sub-al-police"),
        ("closed", "sub-al-case-manager"),
    ]
    assert store.raw(CaseDocument, case_id)["version"] == 7  # one write per command
    assert len(store.all(PersonDocument)) == 1


def test_a_child_is_screened_with_the_child_lists(deps: Deps) -> None:
    child = register(deps, date_of_birth=date(TODAY.year - 15, 1, 1).isoformat())
    with pytest.raises(DomainError) as error:
        screen(deps, child["case_id"])  # adult labour indicators
    assert error.value.details[0].code == "indicator_wrong_list"
