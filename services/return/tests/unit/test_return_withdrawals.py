"""An adult's withdrawal of consent recorded in identification (`identification.person.consent_withdrawn.v1`),
followed by the return service (service_layer/withdrawals.py), on fakes: her running return cases in that country
stop with `consent_withdrawn` (published), once per withdrawal, nobody else's, an ended case is left as it is, and
no consent of hers is recorded any more."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import Any

import pytest

from voluntary_return.adapters.documents import ConsentWithdrawalDocument, ReturnCaseDocument
from voluntary_return.domain.errors import Refused
from voluntary_return.service_layer import cases, withdrawals

PERSON = "3f0c6a4e-9b1d-4c57-8f0e-2a6d9c1b7e55"  # the adult who withdraws, identified in Kosovo
OTHER_PERSON = "4a1d7b5f-0c2e-4d68-9f1a-3b7e0d2c8f66"
HER_CASE = "7c1e9a2b-3d4f-4a6b-8c9d-0e1f2a3b4c5d"  # her identification cases in Kosovo
HER_OTHER_CASE = "8d2f0b3c-4e5a-4b7c-9d0e-1f2a3b4c5d6e"
LATER_CASE = "9e3a1c4d-5f6b-4c8d-8e1f-2a3b4c5d6e7f"  # opened in identification after the withdrawal
OTHER_PERSONS_CASE = "a04b2d5e-6a7c-4d9e-9f2a-3b4c5d6e7f80"


class Identification:
    """Identification read on the case manager's behalf: each case id names its person, an adult."""

    def __init__(self, persons: Mapping[str, str]) -> None:
        self.persons = persons

    def case_and_person(self, case_id: str) -> Mapping[str, Mapping[str, Any]]:
        person = {"id": self.persons[case_id], "child": False}
        return {"case": {"id": case_id, "person_id": person["id"]}, "person": person}


IDENTIFICATION = Identification(
    {
        HER_CASE: PERSON,
        HER_OTHER_CASE: PERSON,
        LATER_CASE: PERSON,
        OTHER_PERSONS_CASE: OTHER_PERSON,
    }
)


def withdrawal_event(
    owner: str = "XK", person: str = PERSON, case_ids: tuple[str, ...] = (HER_CASE, HER_OTHER_CASE)
) -> dict[str, Any]:
    return {
        "id": str(uuid.uuid4()),
        "type": withdrawals.CONSENT_WITHDRAWN_EVENT,
        "data": {
            "person_id": person,
            "withdrawal_id": str(uuid.uuid4()),
            "owner_country": owner,
            "owner_agency": "social-services",
            "case_ids": list(case_ids),
            "expressed": "in_writing",
            "effective_on": "2026-06-01",
        },
    }


def opened(world: Any, user: str = "xk-case-manager", **body: Any) -> str:
    origin = "XK" if user.startswith("me-") else "ME"
    return str(cases.open_case(world.deps, world.user(user), {"origin_country": origin, **body})["id"])


def consented(world: Any, build: Any, user: str = "xk-case-manager", **body: Any) -> str:
    """An adult's case, assessed on her consent and decided."""
    case_id = opened(world, user, **body)
    officer = world.user(user)
    cases.transition(world.deps, officer, case_id, {"action": "start_assessment"})
    cases.record_consent(world.deps, officer, case_id, build.consent_body())
    cases.transition(world.deps, officer, case_id, {"action": "record_decision"})
    return case_id


def received(world: Any, build: Any) -> str:
    """Her case in Kosovo's identification case, approved on her consent, travelled and received: its
    reintegration deadlines run."""
    case_id = consented(world, build, identification_case_id=HER_CASE)
    coordinator = world.user("xk-coordinator")
    cases.approve_plan(world.deps, coordinator, case_id, build.plan_body(escort=None))
    for action in ("record_departure", "record_reception"):
        cases.transition(world.deps, coordinator, case_id, {"action": action})
    return case_id


def case(world: Any, case_id: str, user: str = "xk-case-manager") -> dict[str, Any]:
    return cases.get_case(world.deps, world.user(user), case_id)


def stops(world: Any, case_id: str) -> list[dict[str, Any]]:
    return [e for e in world.store.events("return.case.stopped.v1") if e["subject"] == case_id]


@pytest.fixture
def linked(world: Any) -> Any:
    """A deployment with identification: a case naming an identification case names its person."""
    world.deps.identification = IDENTIFICATION
    return world


def test_her_running_case_stops_with_consent_withdrawn_and_the_stop_is_published(
    linked: Any, build: Any
) -> None:
    case_id = consented(linked, build, identification_case_id=HER_CASE)
    event = withdrawal_event()
    assert withdrawals.follow_identification(linked.deps, event) == [case_id]
    seen = case(linked, case_id)
    assert (seen["status"], seen["reason"]) == ("stopped", "consent_withdrawn")
    assert seen["consent"]["withdrawn_at"], "her consent on the case is withdrawn with it"
    withdrawn, stop = seen["timeline"][-2:]
    assert withdrawn == {
        "at": withdrawn["at"],
        "by": "system:return-consumer",
        "agency": "social-services",
        "action": "consent_withdrawn",
        "withdrawal_id": event["data"]["withdrawal_id"],
        "recorded_in": "identification",
    }
    assert (stop["action"], stop["from"], stop["to"], stop["reason"]) == (
        "stop",
        "decided",
        "stopped",
        "consent_withdrawn",
    )
    (stopped,) = stops(linked, case_id)
    assert stopped["data"]["reason"] == "consent_withdrawn" and stopped["data"]["status"] == "stopped"
    assert linked.store.raw(ReturnCaseDocument, case_id)["consent_current"] is False


def test_her_cases_are_found_by_her_person_or_by_one_of_her_case_ids(linked: Any, build: Any) -> None:
    by_person = opened(linked, identification_case_id=LATER_CASE, age_group="adult")  # not in case_ids
    home = received(linked, build)
    assert linked.store.raw(ReturnCaseDocument, home)["next_due_at"] is not None
    linked.deps.identification = None  # a deployment without identification: the case names only the case id
    by_case = opened(linked, identification_case_id=HER_OTHER_CASE, age_group="adult")
    assert set(withdrawals.follow_identification(linked.deps, withdrawal_event())) == {
        by_person,
        home,
        by_case,
    }
    for case_id in (by_person, home, by_case):
        assert (case(linked, case_id)["status"], len(stops(linked, case_id))) == ("stopped", 1)
    assert linked.store.raw(ReturnCaseDocument, home)["next_due_at"] is None, "her deadlines are cleared"


def test_a_redelivery_changes_nothing(linked: Any, build: Any) -> None:
    case_id = consented(linked, build, identification_case_id=HER_CASE)
    event = withdrawal_event()
    withdrawals.follow_identification(linked.deps, event)
    before = case(linked, case_id)
    events_before = len(linked.store.events())
    later = opened(linked, identification_case_id=LATER_CASE, age_group="adult")  # hers, opened since
    assert withdrawals.follow_identification(linked.deps, event) == []
    assert case(linked, case_id)["timeline"] == before["timeline"]
    assert case(linked, later)["status"] == "requested"
    assert len(linked.store.events()) == events_before + 1, "only the later case's opening"
    assert len(linked.store.all(ConsentWithdrawalDocument)) == 1


def test_a_withdrawal_interrupted_midway_is_finished_by_the_redelivery(linked: Any, build: Any) -> None:
    hers = {
        consented(linked, build, identification_case_id=HER_CASE),
        opened(linked, identification_case_id=HER_OTHER_CASE),
    }
    real = linked.deps.system_repository
    written: list[str] = []

    def crashing(document_class: type, actor: str) -> Any:
        repository = real(document_class, actor)
        update = repository.update

        def crash_before_the_second_case(doc: Any, **kwargs: Any) -> Any:
            if document_class is ReturnCaseDocument and len(written) == 1:
                raise ConnectionError("the consumer stopped")
            written.append(doc.id)
            return update(doc, **kwargs)

        repository.update = crash_before_the_second_case
        return repository

    linked.deps.system_repository = crashing
    event = withdrawal_event()
    with pytest.raises(ConnectionError):
        withdrawals.follow_identification(linked.deps, event)
    (first,) = written
    (second,) = hers - {first}
    assert case(linked, first)["status"] == "stopped" and case(linked, second)["status"] != "stopped"
    linked.deps.system_repository = real
    assert withdrawals.follow_identification(linked.deps, event) == [second]
    assert [len(stops(linked, case_id)) for case_id in (first, second)] == [1, 1]
    assert [e["action"] for e in case(linked, first)["timeline"]].count("consent_withdrawn") == 1
    assert withdrawals.follow_identification(linked.deps, event) == []


def test_another_persons_and_another_countrys_cases_are_untouched(linked: Any, build: Any) -> None:
    others = consented(linked, build, identification_case_id=OTHER_PERSONS_CASE)
    no_link = opened(linked, age_group="adult")
    # Montenegro's case naming her ids (its own identification would not, but the rule is the country).
    montenegro = opened(linked, "me-coordinator", identification_case_id=HER_CASE)
    # Her withdrawal in Montenegro does not stop her return from Kosovo.
    mine = consented(linked, build, identification_case_id=HER_CASE)
    assert withdrawals.follow_identification(linked.deps, withdrawal_event(owner="ME")) == [montenegro]
    assert case(linked, mine)["status"] == "decided"
    assert withdrawals.follow_identification(linked.deps, withdrawal_event()) == [mine]
    for case_id, status in ((others, "decided"), (no_link, "requested")):
        seen = case(linked, case_id)
        assert seen["status"] == status and "consent_withdrawn" not in [e["action"] for e in seen["timeline"]]
        assert stops(linked, case_id) == []
    assert case(linked, others)["consent"]["withdrawn_at"] is None


def test_an_ended_case_stays_as_it_ended(linked: Any, build: Any) -> None:
    case_id = opened(linked, identification_case_id=HER_CASE)
    officer = linked.user("xk-case-manager")
    cases.transition(linked.deps, officer, case_id, {"action": "stop", "reason": "travel_not_possible"})
    before = case(linked, case_id)
    events_before = len(linked.store.events())
    assert withdrawals.follow_identification(linked.deps, withdrawal_event()) == []
    after = case(linked, case_id)
    assert (after["status"], after["reason"]) == ("stopped", "travel_not_possible")
    assert after["timeline"] == before["timeline"] and len(linked.store.events()) == events_before


def test_no_consent_of_hers_is_recorded_afterwards(linked: Any, build: Any) -> None:
    withdrawals.follow_identification(linked.deps, withdrawal_event())
    manager = linked.user("xk-case-manager")
    later = opened(linked, identification_case_id=LATER_CASE)  # a new case: hers by her person id
    cases.transition(linked.deps, manager, later, {"action": "start_assessment"})
    linked.deps.identification = None
    by_case = opened(linked, identification_case_id=HER_CASE, age_group="adult")  # by her case id only
    for case_id in (later, by_case):
        with pytest.raises(Refused) as refused:
            cases.record_consent(linked.deps, manager, case_id, build.consent_body())
        assert refused.value.code == "consent_withdrawn"
    # So no return of hers is decided (nor its plan approved) on consent.
    with pytest.raises(Refused) as undecided:
        cases.transition(linked.deps, manager, later, {"action": "record_decision"})
    assert undecided.value.code == "consent_required"
    # Anyone else's consent is recorded as before.
    linked.deps.identification = IDENTIFICATION
    others = opened(linked, identification_case_id=OTHER_PERSONS_CASE)
    assert cases.record_consent(linked.deps, manager, others, build.consent_body())["consent"]


def test_the_officers_withdrawal_on_a_case_is_the_same_transition(linked: Any, build: Any) -> None:
    """The API path: refused without a consent to withdraw, and its entry names no withdrawal of identification."""
    case_id = consented(linked, build, identification_case_id=HER_CASE)
    manager = linked.user("xk-case-manager")
    stopped = cases.withdraw_consent(linked.deps, manager, case_id)
    assert (stopped["status"], stopped["reason"]) == ("stopped", "consent_withdrawn")
    withdrawn = stopped["timeline"][-2]
    assert withdrawn["action"] == "consent_withdrawn" and "withdrawal_id" not in withdrawn
    assert len(stops(linked, case_id)) == 1
    with pytest.raises(Refused) as again:
        cases.withdraw_consent(linked.deps, manager, case_id)
    assert again.value.code == "consent_already_withdrawn"
    assert withdrawals.follow_identification(linked.deps, withdrawal_event()) == [], "ended: left as it is"


def test_the_consumer_applies_the_event_before_recording_it_in_its_inbox(
    linked: Any, build: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from voluntary_return.adapters import received_events
    from voluntary_return.entrypoints import consumer

    recorded: list[tuple[str, str]] = []

    class Inbox:
        def record_once(self, event: Mapping[str, Any]) -> bool:
            recorded.append((event["id"], case(linked, case_id)["status"]))
            return True

    monkeypatch.setattr(received_events, "inbox", lambda database: Inbox())
    monkeypatch.setattr(consumer, "_deps", lambda: linked.deps)
    case_id = consented(linked, build, identification_case_id=HER_CASE)
    event = withdrawal_event()
    assert consumer.handlers(None)[withdrawals.CONSENT_WITHDRAWN_EVENT](event) is True
    assert recorded == [(event["id"], "stopped")]
