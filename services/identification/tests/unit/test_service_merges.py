"""Merges on fakes: the coordinator's office merges a duplicate into the record kept and undoes it; nothing is
deleted, both first-contact cases say so on their timelines, consumers get events, and half a merge cannot be
left behind by a crash."""

from __future__ import annotations

from typing import Any

import pytest

from identification.adapters.documents import CaseDocument, PersonDocument
from identification.domain.errors import DomainError
from identification.service_layer import follow_up, merges, persons
from identification.service_layer.deps import Deps
from plumbing.clock import FixedClock
from plumbing.errors import Conflict, NotFound
from services.identification.tests.unit.fakes import FakeStore, user

COORDINATOR = "al-coordinator"


@pytest.fixture
def twins(deps: Deps) -> tuple[dict[str, Any], dict[str, Any]]:
    """The same child registered twice: by the border police and by the labour inspectorate."""
    first, _ = persons.register_person(
        deps,
        user("al-border"),
        {"given_names": ["Ëngjëll"], "surnames": ["Hoxha"], "date_of_birth": "2010-05"},
    )
    second, _ = persons.register_person(
        deps, user("al-labour"), {"given_names": ["Engjel"], "surnames": ["Hoxa"], "date_of_birth": "2010"}
    )
    return first, second


def timeline(store: FakeStore, case_id: str) -> list[dict[str, Any]]:
    return list(store.load(CaseDocument, store.raw(CaseDocument, case_id)).timeline)


def test_a_merge_points_the_duplicate_to_the_record_kept_and_both_timelines_say_so(
    deps: Deps, store: FakeStore, twins: tuple[dict[str, Any], dict[str, Any]]
) -> None:
    kept, duplicate = twins
    view = merges.merge(
        deps,
        user(COORDINATOR),
        duplicate["id"],
        {"into_person_id": kept["id"], "reason": "same_person_confirmed"},
    )
    assert view["merged_into"] == kept["id"]
    assert view["surnames"] == ["Hoxa"]  # nothing of the duplicate's content is lost or overwritten
    assert persons.get_person(deps, user(COORDINATOR), kept["id"])["merged_from"] == [duplicate["id"]]
    for case_id in (kept["case_id"], duplicate["case_id"]):
        last = timeline(store, case_id)[-1]
        assert (last["type"], last["person_id"], last["into_person_id"]) == (
            "merged",
            duplicate["id"],
            kept["id"],
        )
    [event] = store.events("identification.person.merged.v1")
    assert event["data"] == {
        "person_id": duplicate["id"],
        "into_person_id": kept["id"],
        "merge_id": view["merges"][0]["id"],
        "owner_country": "AL",
        "reason": "same_person_confirmed",
    }
    # Each agency still reads its own record, as before the merge.
    assert persons.get_person(deps, user("al-labour"), duplicate["id"])["merged_into"] == kept["id"]
    with pytest.raises(NotFound):
        persons.get_person(deps, user("al-labour"), kept["id"])


def test_undoing_a_merge_restores_both_records_and_keeps_the_history(
    deps: Deps, store: FakeStore, twins: tuple[dict[str, Any], dict[str, Any]]
) -> None:
    kept, duplicate = twins
    merges.merge(deps, user(COORDINATOR), duplicate["id"], {"into_person_id": kept["id"], "reason": "other"})
    view = merges.unmerge(deps, user(COORDINATOR), duplicate["id"], {"reason": "not_the_same_person"})
    assert "merged_into" not in view
    assert view["merges"][0]["undo_reason"] == "not_the_same_person"
    assert "merged_from" not in persons.get_person(deps, user(COORDINATOR), kept["id"])
    for case_id in (kept["case_id"], duplicate["case_id"]):
        assert [e["type"] for e in timeline(store, case_id)][-2:] == ["merged", "merge_undone"]
    assert len(store.events("identification.person.unmerged.v1")) == 1
    with pytest.raises(Conflict):  # nothing left to undo
        merges.unmerge(deps, user(COORDINATOR), duplicate["id"], {"reason": "other"})
    # Undone, the same two records can be merged again (the other way round, too).
    again = merges.merge(
        deps, user(COORDINATOR), kept["id"], {"into_person_id": duplicate["id"], "reason": "other"}
    )
    assert again["merged_into"] == duplicate["id"]


def test_what_cannot_be_merged(deps: Deps, twins: tuple[dict[str, Any], dict[str, Any]]) -> None:
    kept, duplicate = twins
    with pytest.raises(DomainError) as error:
        merges.merge(deps, user(COORDINATOR), kept["id"], {"into_person_id": kept["id"], "reason": "other"})
    assert [(d.code, d.pointer) for d in error.value.details] == [("merge_with_itself", "/into_person_id")]
    merges.merge(deps, user(COORDINATOR), duplicate["id"], {"into_person_id": kept["id"], "reason": "other"})
    third, _ = persons.register_person(
        deps, user("al-police"), {"surnames": ["Hoxha"], "date_of_birth": "2010"}
    )
    for person_id, into in (
        (duplicate["id"], third["id"]),  # merged already
        (third["id"], duplicate["id"]),  # into a record that is itself merged
        (kept["id"], third["id"]),  # a record others are merged into
    ):
        with pytest.raises(Conflict):
            merges.merge(deps, user(COORDINATOR), person_id, {"into_person_id": into, "reason": "other"})


def test_another_countrys_coordinator_cannot_see_either_record(
    deps: Deps, twins: tuple[dict[str, Any], dict[str, Any]]
) -> None:
    kept, duplicate = twins
    with pytest.raises(NotFound):
        merges.merge(
            deps, user("xk-coordinator"), duplicate["id"], {"into_person_id": kept["id"], "reason": "other"}
        )


def test_a_merge_interrupted_after_the_first_write_is_completed_by_the_step_runner(
    deps: Deps,
    store: FakeStore,
    clock: FixedClock,
    twins: tuple[dict[str, Any], dict[str, Any]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    kept, duplicate = twins
    monkeypatch.setattr(follow_up, "merge_handler", lambda _: _fail)
    merges.merge(deps, user(COORDINATOR), duplicate["id"], {"into_person_id": kept["id"], "reason": "other"})
    assert store.raw(PersonDocument, kept["id"])["merged_from"] == []
    monkeypatch.undo()
    clock.advance(minutes=5)
    handlers = follow_up.handlers(store.system_repositories(clock), lambda country, year: 1)
    assert store.run_due_steps(handlers, clock.now()) == 1
    assert store.raw(PersonDocument, kept["id"])["merged_from"] == [duplicate["id"]]
    assert timeline(store, kept["case_id"])[-1]["type"] == "merged"


def _fail(*_: Any) -> None:
    raise ConnectionError("database gone")
