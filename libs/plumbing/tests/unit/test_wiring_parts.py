"""The small parts every service's wiring takes from plumbing instead of writing its own: the Deps' unscoped
repositories (plumbing.repository.system_repositories) and access-log recorder (plumbing.access_log.read_recorder),
and in its HTTP module the runtime the app was built over (plumbing.app.AppRuntime) and the received-events
listing (plumbing.inbox.country_listing). No servers."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from mongoengine import StringField

from plumbing import request_context
from plumbing.access_log import read_recorder
from plumbing.app import AppRuntime
from plumbing.auth import Caller
from plumbing.clock import FixedClock
from plumbing.documents import OwnedDocument
from plumbing.idempotency import READ_RECORD, ReadRecord
from plumbing.inbox import country_listing
from plumbing.pagination import DEFAULT_LIMIT
from plumbing.repository import SystemRepository, system_repositories
from plumbing.request_context import RequestContext

CLOCK = FixedClock(datetime(2026, 6, 1, 9, 30, tzinfo=UTC))


class WiringThing(OwnedDocument):
    meta = {"collection": "wiring_things"}
    note = StringField()


def caller(sub: str, country: str = "AL") -> Caller:
    return Caller(sub, "thb-test", country, "state-police", frozenset({"case-manager"}), None, False, "t")


@pytest.fixture
def request_of() -> Iterator[Any]:
    """Makes `context` the current request's for the rest of the test."""
    tokens: list[Any] = []

    def enter(context: RequestContext) -> RequestContext:
        tokens.append(request_context.set_current(context))
        return context

    yield enter
    for token in reversed(tokens):
        request_context.reset(token)


def test_system_repositories_are_unscoped_on_the_process_clock_writing_as_the_actor() -> None:
    repository = system_repositories(CLOCK)(WiringThing, "system:retention-job")
    assert isinstance(repository, SystemRepository)
    assert (repository.document_class, repository.clock, repository.actor) == (
        WiringThing,
        CLOCK,
        "system:retention-job",
    )
    assert repository._scope() == {}  # every country's records: for jobs, never for a request


class RecordingAccessLog:
    def __init__(self) -> None:
        self.reads: list[tuple[Any, ...]] = []

    def record_read(self, *args: Any) -> str:
        self.reads.append(args)
        return "entry"


def test_read_recorder_logs_the_read_of_the_current_request(request_of: Any) -> None:
    reader = caller("u-reader")
    context = request_of(
        RequestContext("req-12345678", operation_id="getThing", caller=reader, purpose="case-management")
    )
    access_log = RecordingAccessLog()

    read_recorder(access_log)(reader, "person", ["p1", "p2"])  # type: ignore[arg-type]

    assert access_log.reads == [
        (reader, "case-management", "getThing", "person", ["p1", "p2"], "ok", "req-12345678", None)
    ]
    # Kept on the request, so that an Idempotency-Key replay of this answer logs the same ids.
    assert context.extra[READ_RECORD] == ReadRecord("person", ("p1", "p2"))


def test_read_recorder_outside_a_request_is_a_programming_error() -> None:
    with pytest.raises(RuntimeError, match="authenticated request"):
        read_recorder(RecordingAccessLog())(caller("u-reader"), "person", ["p1"])  # type: ignore[arg-type]


def test_an_app_runtime_is_read_once_the_app_was_built() -> None:
    state: AppRuntime[str] = AppRuntime("demo")
    with pytest.raises(RuntimeError, match="the demo app was not built"):
        state.get()
    state.runtime = "the runtime"
    assert state.get() == "the runtime"


class FakeInbox:
    def __init__(self, database: Any) -> None:
        self.database = database
        self.asked: list[tuple[Any, dict[str, Any]]] = []

    def page(self, request: Any, **where: Any) -> Any:
        self.asked.append((request, where))
        return self

    def body(self, view: Any) -> dict[str, Any]:
        return {"items": [view({"event_id": "e1"})], "next_cursor": None}

    def view(self, row: dict[str, Any]) -> dict[str, Any]:
        return {"shown": row["event_id"]}


def test_the_received_events_listing_shows_the_callers_country_only(
    request_of: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from plumbing import app

    database = object()
    monkeypatch.setattr(app, "current_database", lambda: database)
    inboxes: list[FakeInbox] = []

    def inbox_of(given: Any) -> FakeInbox:
        inboxes.append(FakeInbox(given))
        return inboxes[-1]

    list_received_events = country_listing(inbox_of)  # type: ignore[arg-type]
    request_of(RequestContext("req-12345678", caller=caller("u-reader", country="XK")))

    assert list_received_events() == {"items": [{"shown": "e1"}], "next_cursor": None}
    assert list_received_events(limit=3) == {"items": [{"shown": "e1"}], "next_cursor": None}

    [first, second] = inboxes
    assert first.database is database  # the inbox of the app's database, each request
    [(request, where)] = first.asked
    assert (request.limit, where) == (DEFAULT_LIMIT, {"country": "XK"})
    assert second.asked[0][0].limit == 3
