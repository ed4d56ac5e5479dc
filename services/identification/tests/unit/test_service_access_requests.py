"""Access requests on fakes: a restricted match is asked for, the responsible side decides, a grant opens the
case and the person to the requester only, and both steps are on the case's timeline."""

from __future__ import annotations

from typing import Any

import pytest

from identification.adapters.documents import AccessRequestDocument, CaseDocument
from identification.domain.errors import DomainError
from identification.service_layer import access_requests, cases, duplicates, follow_up, persons
from identification.service_layer.deps import Deps
from plumbing.clock import FixedClock
from plumbing.errors import Conflict, NotFound
from services.identification.tests.unit.fakes import FakeStore, user

CHILD: dict[str, Any] = {"given_names": ["Ëngjëll"], "surnames": ["Hoxha"], "date_of_birth": "2010-05"}
SEARCH: dict[str, Any] = {"given_names": ["Engjell"], "surnames": ["Hoxha"], "date_of_birth": "2010"}


def error_pointers(error: pytest.ExceptionInfo[DomainError]) -> set[tuple[str, str]]:
    return {(d.code, d.pointer) for d in error.value.details}


@pytest.fixture
def known(deps: Deps) -> dict[str, Any]:
    """A child the labour inspectorate registered; the border police do not see it."""
    view, _ = persons.register_person(deps, user("al-labour"), CHILD)
    return view


def ask(deps: Deps, known: dict[str, Any], username: str = "al-border") -> AccessRequestDocument:
    outcome = duplicates.search(deps, user(username), SEARCH)
    [restricted] = outcome.view["restricted_candidates"]
    body = {
        "search_id": outcome.view["id"],
        "case_id": restricted["case_id"],
        "reason": "same_person_suspected",
    }
    request, created = access_requests.request_access(deps, user(username), body)
    assert created
    return request


def test_a_granted_request_opens_the_case_and_the_person_to_the_requester(
    deps: Deps, store: FakeStore, known: dict[str, Any]
) -> None:
    with pytest.raises(NotFound):
        cases.get_case(deps, user("al-border"), known["case_id"])
    request = ask(deps, known)
    assert request.owner_agency == "labour-inspectorate" and request.status == "pending"

    # The responsible officer sees it among her requests and grants it.
    page = access_requests.list_access_requests(
        deps, user("al-labour"), status="pending", limit=None, cursor=None
    )
    assert [r.id for r in page.items] == [request.id]
    decided = access_requests.decide_access(
        deps, user("al-labour"), request.id, {"granted": True, "reason": "same_person_confirmed"}
    )
    assert decided.status == "granted" and decided.decided_by == "sub-al-labour"

    assert cases.get_case(deps, user("al-border"), known["case_id"]).id == known["case_id"]
    assert persons.get_person(deps, user("al-border"), known["id"])["surnames"] == ["Hoxha"]
    # Another agency's officer, who asked nothing, still does not see it.
    with pytest.raises(NotFound):
        cases.get_case(deps, user("al-police"), known["case_id"])
    timeline = [
        e["type"] for e in store.load(CaseDocument, store.raw(CaseDocument, known["case_id"])).timeline
    ]
    assert timeline[-2:] == ["access_requested", "access_granted"]
    assert store.raw(AccessRequestDocument, request.id)["pending_steps"] == []


def test_a_refused_request_opens_nothing_and_is_on_the_timeline(
    deps: Deps, store: FakeStore, known: dict[str, Any]
) -> None:
    request = ask(deps, known)
    access_requests.decide_access(
        deps, user("al-case-manager"), request.id, {"granted": False, "reason": "other"}
    )
    with pytest.raises(NotFound):
        cases.get_case(deps, user("al-border"), known["case_id"])
    case = store.load(CaseDocument, store.raw(CaseDocument, known["case_id"]))
    assert (
        case.timeline[-1]["type"] == "access_refused"
        and case.timeline[-1]["requester_agency"] == "border-police"
    )
    with pytest.raises(Conflict):  # decided once
        access_requests.decide_access(
            deps, user("al-case-manager"), request.id, {"granted": True, "reason": "other"}
        )


@pytest.mark.parametrize("decider", ["al-border", "al-police"])
def test_the_requester_and_an_outsider_cannot_decide(deps: Deps, known: dict[str, Any], decider: str) -> None:
    request = ask(deps, known)
    try:
        access_requests.decide_access(deps, user(decider), request.id, {"granted": True, "reason": "other"})
    except DomainError as error:
        assert [d.code for d in error.details] == ["access_decision_not_authorised"]
    except NotFound:
        assert decider == "al-police"  # another agency does not even see the request
    else:
        pytest.fail("decided by someone who may not")


def test_only_a_restricted_match_of_the_callers_own_search_can_be_asked_for(
    deps: Deps, known: dict[str, Any]
) -> None:
    own = duplicates.search(deps, user("al-border"), {"surnames": ["Krasniqi"], "date_of_birth": "2010"}).view
    body = {"search_id": own["id"], "case_id": known["case_id"], "reason": "other"}
    with pytest.raises(DomainError) as error:
        access_requests.request_access(deps, user("al-border"), body)
    assert error_pointers(error) == {("not_a_restricted_match", "/case_id")}
    others = duplicates.search(deps, user("al-police"), SEARCH).view  # another agency's search
    with pytest.raises(NotFound):
        access_requests.request_access(deps, user("al-border"), {**body, "search_id": others["id"]})


def test_asking_again_while_pending_returns_the_same_request(deps: Deps, known: dict[str, Any]) -> None:
    first = ask(deps, known)
    outcome = duplicates.search(deps, user("al-border"), SEARCH).view
    body = {"search_id": outcome["id"], "case_id": known["case_id"], "reason": "other"}
    again, created = access_requests.request_access(deps, user("al-border"), body)
    assert not created and again.id == first.id


def test_a_grant_interrupted_after_the_decision_is_completed_by_the_step_runner(
    deps: Deps, store: FakeStore, clock: FixedClock, known: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    request = ask(deps, known)
    monkeypatch.setattr(follow_up, "access_decision_handler", lambda _: _fail)
    access_requests.decide_access(deps, user("al-labour"), request.id, {"granted": True, "reason": "other"})
    with pytest.raises(NotFound):
        cases.get_case(deps, user("al-border"), known["case_id"])
    monkeypatch.undo()
    clock.advance(minutes=5)
    handlers = follow_up.handlers(store.system_repositories(clock), lambda country, year: 1)
    assert store.run_due_steps(handlers, clock.now()) == 1
    assert cases.get_case(deps, user("al-border"), known["case_id"]).id == known["case_id"]


def _fail(*_: Any) -> None:
    raise ConnectionError("database gone")
