"""An adult's withdrawal of consent on fakes: recorded once on the person and on every case of hers, carried to the
other services by one event naming her and her cases; refused for a child; completed by the step runner after a
crash between the two writes."""

from __future__ import annotations

from typing import Any

import pytest

from identification.adapters.documents import CaseDocument
from identification.service_layer import cases, consent, follow_up, persons
from identification.service_layer.deps import Deps
from plumbing.clock import FixedClock
from plumbing.errors import Conflict, NotFound
from services.identification.tests.unit.fakes import FakeStore, user

OFFICER = "al-case-manager"
EVENT = "identification.person.consent_withdrawn.v1"


@pytest.fixture
def adult(deps: Deps) -> dict[str, Any]:
    view, _ = persons.register_person(
        deps,
        user(OFFICER),
        {"given_names": ["Drita"], "surnames": ["Berisha"], "date_of_birth": "1990-03-14"},
    )
    return view


def timeline(store: FakeStore, case_id: str) -> list[dict[str, Any]]:
    return list(store.load(CaseDocument, store.raw(CaseDocument, case_id)).timeline)


def test_a_withdrawal_is_on_the_person_on_every_case_and_in_one_event(
    deps: Deps, store: FakeStore, adult: dict[str, Any]
) -> None:
    second = cases.open_case(deps, user(OFFICER), adult["id"])
    cases.close_case(deps, user(OFFICER), second.id, {"reason": "assistance_declined"})

    view = consent.withdraw_consent(deps, user(OFFICER), adult["id"], {"expressed": "in_writing"})

    withdrawal = view["consent_withdrawal"]
    assert (withdrawal["by"], withdrawal["agency"], withdrawal["expressed"]) == (
        "sub-al-case-manager",
        "social-services",
        "in_writing",
    )
    assert persons.get_person(deps, user(OFFICER), adult["id"])["consent_withdrawal"] == withdrawal
    for case_id in (adult["case_id"], second.id):  # the open case and the closed one
        last = timeline(store, case_id)[-1]
        assert (last["type"], last["withdrawal_id"], last["expressed"]) == (
            "consent_withdrawn",
            withdrawal["id"],
            "in_writing",
        )
    [event] = store.events(EVENT)
    assert event["data"] == {
        "person_id": adult["id"],
        "withdrawal_id": withdrawal["id"],
        "owner_country": "AL",
        "owner_agency": "social-services",
        "case_ids": sorted([adult["case_id"], second.id]),
        "expressed": "in_writing",
        "effective_on": "2026-06-01",
    }


def test_a_second_withdrawal_is_refused_and_the_first_stands(
    deps: Deps, store: FakeStore, adult: dict[str, Any]
) -> None:
    first = consent.withdraw_consent(deps, user(OFFICER), adult["id"], {"expressed": "in_person"})
    with pytest.raises(Conflict):
        consent.withdraw_consent(deps, user("al-coordinator"), adult["id"], {"expressed": "in_writing"})
    assert (
        persons.get_person(deps, user(OFFICER), adult["id"])["consent_withdrawal"]
        == first["consent_withdrawal"]
    )
    assert len(store.events(EVENT)) == 1


def test_a_child_has_no_consent_to_withdraw(deps: Deps, store: FakeStore) -> None:
    child, _ = persons.register_person(
        deps, user(OFFICER), {"given_names": ["Arta"], "surnames": ["Gashi"], "date_of_birth": "2012-07"}
    )
    with pytest.raises(Conflict, match="child"):
        consent.withdraw_consent(deps, user(OFFICER), child["id"], {"expressed": "in_person"})
    assert "consent_withdrawal" not in persons.get_person(deps, user(OFFICER), child["id"])
    assert store.events(EVENT) == []


def test_another_country_cannot_record_it(deps: Deps, store: FakeStore, adult: dict[str, Any]) -> None:
    with pytest.raises(NotFound):
        consent.withdraw_consent(deps, user("xk-case-manager"), adult["id"], {"expressed": "in_person"})
    assert store.events(EVENT) == []


def test_a_withdrawal_interrupted_after_the_first_write_is_completed_by_the_step_runner(
    deps: Deps,
    store: FakeStore,
    clock: FixedClock,
    adult: dict[str, Any],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(follow_up, "consent_handler", lambda _: _fail)
    consent.withdraw_consent(deps, user(OFFICER), adult["id"], {"expressed": "in_person"})
    assert timeline(store, adult["case_id"])[-1]["type"] != "consent_withdrawn"
    monkeypatch.undo()
    clock.advance(minutes=5)
    handlers = follow_up.handlers(store.system_repositories(clock), lambda country, year: 1)
    assert store.run_due_steps(handlers, clock.now()) == 1
    assert [e["type"] for e in timeline(store, adult["case_id"])].count("consent_withdrawn") == 1


def _fail(*_: Any) -> None:
    raise ConnectionError("database gone")
