"""The relay's delivery job on fakes: the real selection (adapters/undelivered.py, its filter evaluated by the
fake store's matcher) over the fake store; envelopes left in `outgoing` by a failed transport are delivered
later as the owning country, once each; a record just written is left to its request (grace); a delivery that
fails again holds the record for its back-off and ends the pass."""

from __future__ import annotations

import copy
from types import SimpleNamespace
from typing import Any

from exchange.adapters.documents import ExchangeCaseDocument
from exchange.adapters.undelivered import LEASE, UndeliveredRecords
from exchange.entrypoints.relay import DeliveryJob, job
from exchange.service_layer import cases, sending
from plumbing.fake_store import FakeStore, apply_operators, matches
from services.exchange.tests.unit.conftest import notification
from services.exchange.tests.unit.fakes import World, user

XK, ME = user("xk-contact-point"), user("me-contact-point")


class Rows(list):  # type: ignore[type-arg]
    """A find's answer: the rows, and `limit` as a pymongo cursor has it."""

    def limit(self, count: int) -> Rows:
        return Rows(self[:count]) if count else self


def _project(row: dict[str, Any], projection: dict[str, Any] | None) -> dict[str, Any]:
    return dict(row) if projection is None else {k: row.get(k) for k in ("_id", *projection)}


class StoreCollection:
    """The pymongo calls the selection makes, on the fake store's rows (filters by plumbing's matcher)."""

    def __init__(self, store: FakeStore) -> None:
        self.store = store
        self.selections: list[dict[str, Any]] = []  # the filters of the finds

    def find(self, query: dict[str, Any], projection: dict[str, Any] | None = None) -> Rows:
        self.selections.append(query)
        rows = self.store.snapshot(ExchangeCaseDocument)
        return Rows(_project(row, projection) for row in rows if matches(row, query))

    def find_one(self, query: dict[str, Any], projection: dict[str, Any] | None = None) -> Any:
        rows = self.store.snapshot(ExchangeCaseDocument)
        return next((_project(row, projection) for row in rows if matches(row, query)), None)

    def update_one(self, query: dict[str, Any], update: dict[str, Any]) -> Any:
        with self.store.lock:
            rows = self.store.rows(ExchangeCaseDocument)
            for key, row in rows.items():
                if matches(row, query):
                    changed = copy.deepcopy(row)
                    apply_operators(changed, update)
                    rows[key] = changed
                    return SimpleNamespace(matched_count=1)
        return SimpleNamespace(matched_count=0)


def relay(world: World, **kw: Any) -> tuple[DeliveryJob, StoreCollection]:
    collection = StoreCollection(world.store)
    records = UndeliveredRecords(
        world.deps.config.country_codes, world.clock, grace_s=30, lease_s=120, collection=lambda: collection
    )
    return DeliveryJob(world.deps, records, retry_s=60, **kw), collection


def sent_while_down(world: World, key: str = "k-1") -> str:
    world.transport.down = True
    case_id, _ = sending.draft_and_send(world.deps, XK, notification(), idempotency_key=key)
    world.transport.down = False
    return case_id


def outgoing(world: World, case_id: str) -> list[dict[str, Any]]:
    return list(world.store.raw(ExchangeCaseDocument, case_id)["outgoing"])


def test_an_envelope_left_undelivered_is_delivered_by_the_relay_and_received_once(world: World) -> None:
    case_id = sent_while_down(world)
    assert len(outgoing(world, case_id)) == 1
    delivery, collection = relay(world)
    assert delivery.run_once() == 0  # within the grace: the request that wrote it may still be delivering
    world.clock.advance(seconds=31)
    assert delivery.run_once() == 1
    assert outgoing(world, case_id) == [] and len(world.transport.queue) == 1
    assert world.store.raw(ExchangeCaseDocument, case_id)[LEASE] is None  # released
    assert delivery.run_once() == 0  # nothing left
    world.pump()  # ME stores it; its receipt comes back to XK
    form = next(
        f for f in cases.get_case(world.deps, XK, case_id)["forms"] if f["form_type"] == "notification"
    )
    assert form["status"] == "received"
    # The selection is an equality on the indexed recipient field, nothing scanned by range or sort.
    assert all(
        query["outgoing.recipient"] == {"$in": sorted(world.deps.config.country_codes)}
        for query in collection.selections
    )
    sent = [
        e
        for e in world.message_log.entries("XK")
        if e["direction"] == "sent" and e["form_type"] == "notification"
    ]
    assert len(sent) == 1  # logged once, though delivery was tried twice


def test_a_failing_delivery_holds_the_record_for_its_back_off_and_ends_the_pass(world: World) -> None:
    first, second = sent_while_down(world, "k-1"), sent_while_down(world, "k-2")
    world.clock.advance(seconds=31)
    delivery, _ = relay(world)
    world.transport.down = True
    assert delivery.run_once() == 0
    held = [c for c in (first, second) if world.store.raw(ExchangeCaseDocument, c)[LEASE] is not None]
    assert len(held) == 1  # the pass stopped at the first failure
    world.transport.down = False
    assert delivery.run_once() == 1  # the other record; the held one waits for its back-off
    world.clock.advance(seconds=61)
    assert delivery.run_once() == 1
    assert outgoing(world, first) == outgoing(world, second) == []


def test_a_record_claimed_by_another_relay_is_left_alone_until_its_lease_expires(world: World) -> None:
    case_id = sent_while_down(world)
    world.clock.advance(seconds=31)
    mine, _ = relay(world)
    other, _ = relay(world)
    assert other.records.claim() is not None  # another replica took it (and died)
    assert mine.records.claim() is None
    assert mine.run_once() == 0
    world.clock.advance(seconds=121)
    assert mine.run_once() == 1 and outgoing(world, case_id) == []


def test_receipts_waiting_in_the_receivers_record_go_too(world: World) -> None:
    sending.draft_and_send(world.deps, XK, notification(), idempotency_key="k-1")
    world.transport.down = True
    world.pump()  # ME stores the form; its receipt cannot leave
    (me_case,) = cases.list_cases(world.deps, ME)
    assert len(outgoing(world, me_case["id"])) == 1
    world.transport.down = False
    world.clock.advance(seconds=31)
    delivery, _ = relay(world)
    assert delivery.run_once() == 1
    ((recipient, _, _),) = world.transport.queue
    assert recipient == "XK"


def test_the_process_job_reads_its_timings_from_the_environment(world: World) -> None:
    made = job(world.deps, {"EXCHANGE_RELAY_GRACE_S": "7", "EXCHANGE_RELAY_RETRY_S": "9"})
    assert made.retry_s == 9 and made.records.grace.total_seconds() == 7
    assert made.records.countries == sorted(world.deps.config.country_codes)
