"""A consumer process with lanes (plumbing.worker.run_consumer's `own_lanes`): which loop gets which topic, and
that the loops run, stop and fail together."""

from __future__ import annotations

import threading
from typing import Any

import pytest

from plumbing import worker
from plumbing.kafka import wait_until
from plumbing.worker import ConsumerLanes, lanes


def test_each_own_lane_topic_gets_a_loop_and_the_rest_share_the_first() -> None:
    assert lanes(["events.a", "events.b"], ["inbox.x", "inbox.y"], ["inbox.x", "inbox.y"]) == [
        (["events.a", "events.b"], []),
        ([], ["inbox.x"]),
        ([], ["inbox.y"]),
    ]


def test_without_own_lanes_there_is_one_loop_for_every_topic() -> None:
    assert lanes(["events.a"], ["inbox.x"], []) == [(["events.a"], ["inbox.x"])]


def test_a_lane_named_twice_or_not_consumed_makes_no_loop() -> None:
    assert lanes(["events.a"], ["inbox.x"], ["inbox.x", "inbox.x", "not.consumed"]) == [
        (["events.a"], []),
        ([], ["inbox.x"]),
    ]


def test_when_every_topic_has_its_own_lane_no_empty_loop_is_made() -> None:
    assert lanes([], ["inbox.x", "inbox.y"], ["inbox.y", "inbox.x"]) == [([], ["inbox.y"]), ([], ["inbox.x"])]


class Loop:
    """Stands in for a ConsumerLoop: runs until stopped, or ends (raising `failure`) when told to."""

    def __init__(self, failure: BaseException | None = None) -> None:
        self.ready = threading.Event()
        self.stopped = threading.Event()
        self.end_now = threading.Event()
        self.failure = failure
        self.ran_in: str | None = None

    def run(self, *, install_signal_handlers: bool = True) -> None:
        assert install_signal_handlers is False  # the lanes' run() owns the signals
        self.ran_in = threading.current_thread().name
        self.ready.set()
        while not (self.stopped.is_set() or self.end_now.is_set()):
            self.stopped.wait(0.01)
        self.ready.clear()
        if self.end_now.is_set() and self.failure is not None:
            raise self.failure

    def stop(self) -> None:
        self.stopped.set()


def running(lanes_: ConsumerLanes) -> tuple[threading.Thread, list[BaseException]]:
    raised: list[BaseException] = []

    def body() -> None:
        try:
            lanes_.run(install_signal_handlers=False)
        except BaseException as exc:  # noqa: BLE001 - the test looks at it
            raised.append(exc)

    thread = threading.Thread(target=body, daemon=True)
    thread.start()
    return thread, raised


def test_the_lanes_run_in_threads_of_their_own_ready_only_when_all_are_and_stop_together() -> None:
    loops = [Loop(), Loop()]
    together = ConsumerLanes(loops)  # type: ignore[arg-type]
    thread, raised = running(together)
    assert wait_until(lambda: all(loop.ready.is_set() for loop in loops), 5)
    assert together.ready.is_set()
    assert len({loop.ran_in for loop in loops}) == 2
    loops[1].ready.clear()
    assert not together.ready.is_set()  # /readyz answers 503 while one lane is not connected
    together.stop()
    thread.join(5)
    assert not thread.is_alive() and raised == []
    assert all(loop.stopped.is_set() for loop in loops)


def test_a_lane_that_fails_stops_the_others_and_the_failure_is_raised() -> None:
    broken = Loop(failure=RuntimeError("lost the plot"))
    other = Loop()
    thread, raised = running(ConsumerLanes([broken, other]))  # type: ignore[list-item]
    assert wait_until(lambda: broken.ready.is_set() and other.ready.is_set(), 5)
    broken.end_now.set()
    thread.join(5)
    assert not thread.is_alive()
    assert other.stopped.is_set()  # the healthy lane was stopped: the process exits whole
    assert [str(exc) for exc in raised] == ["lost the plot"]


def test_run_consumer_makes_a_loop_per_lane(monkeypatch: pytest.MonkeyPatch) -> None:
    made: list[tuple[list[str], dict[str, Any]]] = []
    ran: list[Any] = []

    class FakeLoop(Loop):
        def __init__(self, topics: list[str], group: str, table: Any, bootstrap: str, **options: Any) -> None:
            super().__init__()
            made.append((topics, options))

    monkeypatch.setattr(worker, "start", lambda service, settings: (settings, "db", "b:1"))
    monkeypatch.setattr(worker, "ensure_topics", lambda bootstrap, specs: None)
    monkeypatch.setattr(worker, "ConsumerLoop", FakeLoop)
    monkeypatch.setattr(worker.worker_endpoints, "serve", lambda ready: ran.append(ready))
    monkeypatch.setattr(ConsumerLanes, "run", lambda self: ran.append(self))
    x, y = print, repr
    worker.run_consumer(
        "svc", ["events.a"], lambda db: {}, raw_handlers={"inbox.x": x, "inbox.y": y},
        own_lanes=["inbox.x", "inbox.y"], max_attempts=3,
    )  # fmt: skip
    assert made == [
        (["events.a"], {"raw_handlers": {}, "client_id": "svc-lane-0", "max_attempts": 3}),
        ([], {"raw_handlers": {"inbox.x": x}, "client_id": "svc-lane-1", "max_attempts": 3}),
        ([], {"raw_handlers": {"inbox.y": y}, "client_id": "svc-lane-2", "max_attempts": 3}),
    ]
    ready, lanes_ = ran
    assert isinstance(lanes_, ConsumerLanes) and len(lanes_.loops) == 3
    assert not ready.is_set()  # none of the loops has connected
