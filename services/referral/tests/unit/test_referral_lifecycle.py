"""The lifecycle as a transition table: every allowed move, every refused one with its stable code, which side
acts, when a place is taken or freed, and the basis a referral needs before it is requested."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from referral.domain import lifecycle
from referral.domain.errors import InvalidTransition
from referral.domain.lifecycle import Action, Side, Status
from services.referral.tests.unit.fakes import packaged_catalogue

ALLOWED = {
    ("proposed", "request"): "requested",
    ("requested", "accept"): "accepted",
    ("requested", "decline"): "declined",
    ("accepted", "start"): "in_progress",
    ("in_progress", "complete"): "completed",
    ("proposed", "cancel"): "cancelled",
    ("requested", "cancel"): "cancelled",
    ("accepted", "revoke"): "revoked",
    ("in_progress", "revoke"): "revoked",
    ("requested", "expire"): "expired",
}


@pytest.mark.parametrize("status", list(Status))
@pytest.mark.parametrize("action", list(Action))
def test_every_status_and_action(status: Status, action: Action) -> None:
    expected = ALLOWED.get((str(status), str(action)))
    if expected is None:
        with pytest.raises(InvalidTransition) as error:
            lifecycle.plan(status, action, capacity=True)
        assert error.value.code == f"{action}_not_allowed_when_{status}"
    else:
        assert lifecycle.plan(status, action, capacity=True).target == expected


def test_ended_referrals_allow_nothing() -> None:
    for status in lifecycle.ENDED:
        assert lifecycle.allowed_actions(status) == []


def test_sides() -> None:
    assert {a for a, s in lifecycle.SIDE_OF.items() if s is Side.PROVIDER} == {
        "accept",
        "decline",
        "start",
        "complete",
    }
    assert {a for a, s in lifecycle.SIDE_OF.items() if s is Side.REFERRER} == {"request", "cancel", "revoke"}
    assert {a for a, s in lifecycle.SIDE_OF.items() if s is Side.SYSTEM} == {"expire"}


def test_places_are_taken_on_accept_and_freed_on_every_end_after_acceptance() -> None:
    assert lifecycle.plan("requested", Action.ACCEPT, capacity=True).takes_place
    assert not lifecycle.plan("requested", Action.ACCEPT, capacity=False).takes_place
    assert lifecycle.plan("in_progress", Action.COMPLETE, capacity=True).frees_place
    assert lifecycle.plan("accepted", Action.REVOKE, capacity=True).frees_place
    assert lifecycle.plan("in_progress", Action.REVOKE, capacity=True).frees_place
    # Before acceptance no place is held, so nothing is freed.
    assert not lifecycle.plan("requested", Action.CANCEL, capacity=True).frees_place
    assert not lifecycle.plan("requested", Action.DECLINE, capacity=True).frees_place
    assert not lifecycle.plan("accepted", Action.START, capacity=True).frees_place


def test_a_timeline_entry_holds_who_when_from_to_and_the_reason() -> None:
    at = datetime(2026, 6, 1, tzinfo=UTC)
    entry = lifecycle.timeline_entry(
        lifecycle.plan("requested", Action.DECLINE, capacity=True),
        at=at,
        by="sub-x",
        agency="shelter",
        reason="no_capacity",
    )
    assert entry == {
        "at": at,
        "by": "sub-x",
        "agency": "shelter",
        "action": "decline",
        "from": "requested",
        "to": "declined",
        "reason": "no_capacity",
    }


def test_withdrawn_consent_cancels_before_acceptance_and_revokes_after() -> None:
    assert lifecycle.withdrawal_action("proposed") is Action.CANCEL
    assert lifecycle.withdrawal_action("requested") is Action.CANCEL
    assert lifecycle.withdrawal_action("accepted") is Action.REVOKE
    assert lifecycle.withdrawal_action("in_progress") is Action.REVOKE
    assert lifecycle.withdrawal_action("completed") is None


def test_the_basis_an_adult_and_a_child_need() -> None:
    rules = packaged_catalogue().country("AL")

    def codes(age_group: object, consent: object = None, basis: str | None = None) -> set[tuple[str, str]]:
        return {(d.code, d.pointer) for d in lifecycle.basis_problems(age_group, consent, basis, rules)}  # type: ignore[arg-type]

    assert codes("adult", {"given": True}) == set()
    assert codes("adult") == {("consent_required", "/consent")}
    assert codes("adult", {"given": False}) == {("consent_required", "/consent")}
    # A child's consent is not the basis: the legal basis is.
    assert codes("child", {"given": True}) == {("legal_basis_required", "/legal_basis")}
    assert codes("child", None, "parental-whim") == {("unknown_legal_basis", "/legal_basis")}
    assert codes("child", None, "court-order") == set()
    assert codes(None) == {("age_group_required", "/age_group")}
