"""`retry_concurrent`: a command whose guarded write lost a race runs again; a state conflict (InvalidTransition
and other Conflicts) is never retried; after the last attempt the race is the client's 409."""

import pytest

from plumbing.errors import Conflict
from plumbing.repository import ConcurrentUpdate, retry_concurrent


def test_a_lost_race_runs_the_command_again() -> None:
    calls: list[int] = []

    @retry_concurrent(attempts=3)
    def command() -> str:
        calls.append(1)
        if len(calls) < 3:
            raise ConcurrentUpdate("changed meanwhile")
        return "done"

    assert command() == "done" and len(calls) == 3


def test_the_last_lost_race_and_other_conflicts_reach_the_caller() -> None:
    calls: list[int] = []

    @retry_concurrent(attempts=2)
    def always_racing() -> None:
        calls.append(1)
        raise ConcurrentUpdate("changed meanwhile")

    with pytest.raises(ConcurrentUpdate):
        always_racing()
    assert len(calls) == 2

    @retry_concurrent()
    def invalid_now() -> None:
        calls.append(1)
        raise Conflict("form_not_draft")

    with pytest.raises(Conflict):
        invalid_now()
    assert len(calls) == 3  # not retried
