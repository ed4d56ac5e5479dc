"""The hash-chained access log against the real Mongo-wire server."""

import threading
import uuid
from datetime import UTC, datetime

import pytest
from pymongo import MongoClient, monitoring
from pymongo.errors import AutoReconnect

from plumbing.access_log import GENESIS_HASH, AccessLog
from plumbing.auth import Caller
from plumbing.clock import FixedClock
from plumbing.errors import AccessLogUnavailable

pytestmark = pytest.mark.integration

PURPOSES = {"case-management", "identification", "audit"}


def caller(sub="officer-1", country="AL", machine=False) -> Caller:
    return Caller(
        sub=sub,
        azp="al-national-system" if machine else "identification-ui",
        country=country,
        agency=f"{country.lower()}-police",
        roles=frozenset({"police-officer", "case-manager"}),
        acting_user="clerk-7" if machine else None,
        is_machine=machine,
        token="not-a-real-token",
    )


@pytest.fixture(scope="module")
def client(mongo):
    client = MongoClient(mongo.env["MONGODB_URI"], tz_aware=True)
    yield client
    client.close()


@pytest.fixture
def db(client):
    name = f"plumbing_access_{uuid.uuid4().hex[:8]}"
    yield client[name]
    client.drop_database(name)


@pytest.fixture
def clock():
    return FixedClock(datetime(2025, 6, 1, 9, 0, tzinfo=UTC))


@pytest.fixture
def access_log(db, clock):
    return AccessLog(db, clock, purposes=PURPOSES)


def record(log: AccessLog, ids, sub="officer-1", **kw):
    return log.record_read(
        kw.pop("who", caller(sub)),
        kw.pop("purpose", "case-management"),
        kw.pop("operation_id", "identification.listPersons"),
        "person",
        ids,
        kw.pop("outcome", "ok"),
        kw.pop("request_id", "req-1"),
        kw.pop("trace_id", "4bf92f3577b34da6a3ce929d0e0e4736"),
    )


def test_entry_holds_who_what_when_why(access_log, db):
    ids = [str(uuid.uuid4()) for _ in range(3)]
    entry = record(access_log, ids, who=caller("sys-1", machine=True))
    raw = db.access_log.find_one({"_id": entry.seq})
    assert raw["time"] == datetime(2025, 6, 1, 9, 0, tzinfo=UTC)
    assert (raw["sub"], raw["azp"], raw["country"], raw["agency"]) == (
        "sys-1",
        "al-national-system",
        "AL",
        "al-police",
    )
    assert raw["roles"] == ["case-manager", "police-officer"]
    assert raw["acting_user"] == "clerk-7"
    assert (raw["purpose"], raw["operation_id"], raw["resource_type"]) == (
        "case-management",
        "identification.listPersons",
        "person",
    )
    assert raw["ids"] == ids and raw["outcome"] == "ok"
    assert (raw["request_id"], raw["trace_id"]) == ("req-1", "4bf92f3577b34da6a3ce929d0e0e4736")
    assert entry.seq == 1 and entry.prev_hash == GENESIS_HASH and len(entry.hash) == 64
    # Nothing but these fields: no names, no bodies.
    assert set(raw) == {
        "_id", "v", "time", "sub", "azp", "country", "agency", "roles", "acting_user", "purpose",
        "operation_id", "resource_type", "ids", "outcome", "request_id", "trace_id", "prev_hash", "hash",
    }  # fmt: skip


def test_chain_links_entries(access_log):
    first = record(access_log, ["a"])
    second = record(access_log, ["b"])
    assert (second.seq, second.prev_hash) == (2, first.hash)
    report = access_log.verify_chain()
    assert report.ok and report.checked == 2


class CommandsOfThisThread(monitoring.CommandListener):
    """The database commands the calling thread sends (the head's own thread is not the caller's wait)."""

    def __init__(self) -> None:
        self.thread = threading.get_ident()
        self.names: list[str] = []

    def started(self, event):
        if threading.get_ident() == self.thread:
            self.names.append(event.command_name)

    def succeeded(self, event):
        pass

    def failed(self, event):
        pass


def test_a_read_waits_for_one_insert_when_its_process_appended_last(mongo, db, clock):
    """The reader's answer waits for the durable entry only: no look for the tip (the insert after the tip this
    process appended is the check) and no head update (written after the answer, then current)."""
    commands = CommandsOfThisThread()
    watched = MongoClient(mongo.env["MONGODB_URI"], tz_aware=True, event_listeners=[commands])
    try:
        access_log = AccessLog(watched[db.name], clock, purposes=PURPOSES)
        record(access_log, ["p0"])  # the first append of a process finds the tip (and creates the indexes)
        commands.names.clear()
        second = record(access_log, ["p1"])
        assert commands.names == ["insert"]
        assert access_log.flush()
        assert db.access_log_head.find_one({"_id": "head"})["seq"] == second.seq == 2
        other = AccessLog(db, clock, purposes=PURPOSES)  # another process appends meanwhile
        assert record(other, ["p2"]).seq == 3
        fourth = record(access_log, ["p3"])  # its insert at 3 collides; it walks on and takes 4
        assert (fourth.seq, fourth.prev_hash) == (4, db.access_log.find_one({"_id": 3})["hash"])
        assert other.flush()
        assert access_log.verify_chain().ok
    finally:
        watched.close()


def test_unknown_purpose_and_bad_ids_are_refused(access_log, db):
    with pytest.raises(ValueError):
        record(access_log, ["a"], purpose="curiosity")
    with pytest.raises(ValueError):
        record(access_log, "a-single-string")
    assert db.access_log.count_documents({}) == 0


def test_concurrent_writers_do_not_fork_the_chain(db, clock):
    writers, per_writer = 8, 10
    barrier = threading.Barrier(writers)
    errors: list[BaseException] = []

    def write(n):
        own = AccessLog(db, clock)  # separate instances, like separate worker processes
        barrier.wait()
        try:
            for i in range(per_writer):
                record(own, [f"person-{n}-{i}"], sub=f"writer-{n}")
            assert own.flush()  # its head update is written after the answer
        except BaseException as exc:  # noqa: BLE001  # surfaced by the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=write, args=(n,)) for n in range(writers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    seqs = [d["_id"] for d in db.access_log.find({}, {"_id": 1}).sort("_id", 1)]
    assert seqs == list(range(1, writers * per_writer + 1))
    prev_hashes = [d["prev_hash"] for d in db.access_log.find({}, {"prev_hash": 1})]
    assert len(set(prev_hashes)) == len(prev_hashes)  # no two entries claim the same predecessor
    report = AccessLog(db, clock).verify_chain()
    assert report.ok and report.checked == writers * per_writer
    assert db.access_log_head.find_one({"_id": "head"})["seq"] == writers * per_writer


@pytest.mark.parametrize(
    "lag",
    [
        lambda db: db.access_log_head.update_one({"_id": "head"}, {"$set": {"seq": 1, "hash": "stale"}}),
        lambda db: db.access_log_head.delete_one({"_id": "head"}),
    ],
    ids=["head-behind", "head-missing"],
)
def test_a_head_behind_the_entries_still_yields_one_chain(access_log, db, clock, lag):
    """The next entry is found from the head and then forward by `_id`, so a head left behind (a writer that died
    between its insert and its head update) costs a short walk, never a fork or a scan."""
    for n in range(3):
        record(access_log, [f"p{n}"])
    assert access_log.flush()
    lag(db)
    writer = AccessLog(db, clock)  # a writer that starts now (a new process) reads the head
    fourth = record(writer, ["p3"])
    third = db.access_log.find_one({"_id": 3})
    assert (fourth.seq, fourth.prev_hash) == (4, third["hash"])
    # Its head update is written after the answer, by its own thread: wait for it, as that process would have
    # done within 100 ms, before the head is compared with the entries.
    assert writer.flush()
    assert access_log.verify_chain().ok
    assert db.access_log_head.find_one({"_id": "head"})["seq"] == 4


@pytest.mark.parametrize(
    ("tamper", "reason"),
    [
        (lambda db: db.access_log.update_one({"_id": 2}, {"$set": {"ids": ["someone-else"]}}), "hash"),
        (lambda db: db.access_log.update_one({"_id": 2}, {"$set": {"purpose": "audit"}}), "hash"),
        (lambda db: db.access_log.delete_one({"_id": 2}), "missing"),
        (lambda db: db.access_log.delete_one({"_id": 4}), "removed"),
        (lambda db: db.access_log_head.delete_one({"_id": "head"}), "head is missing"),
    ],
)
def test_tampering_is_detected(access_log, db, tamper, reason):
    for n in range(4):
        record(access_log, [f"p{n}"])
    assert access_log.verify_chain().ok  # the head holds entry 4 once verified
    tamper(db)
    report = access_log.verify_chain()
    assert not report.ok and reason in report.reason


def test_rehashed_edit_still_breaks_the_next_link(access_log, db):
    from plumbing.access_log import entry_hash

    for n in range(3):
        record(access_log, [f"p{n}"])
    doc = db.access_log.find_one({"_id": 2})
    doc["ids"] = ["forged"]
    doc["hash"] = entry_hash(doc)
    db.access_log.replace_one({"_id": 2}, doc)
    report = access_log.verify_chain()
    assert not report.ok and report.first_bad_seq == 3 and "link" in report.reason


def test_query_by_person_actor_and_period(access_log, clock):
    record(access_log, ["p1", "p2"], sub="alice")
    clock.advance(hours=1)
    record(access_log, ["p2"], sub="bob")
    clock.advance(hours=1)
    record(access_log, ["p3"], sub="alice")
    assert [e.sub for e in access_log.query(person_id="p2")] == ["alice", "bob"]
    assert [e.ids for e in access_log.query(actor_sub="alice")] == [("p1", "p2"), ("p3",)]
    window = access_log.query(
        since=datetime(2025, 6, 1, 9, 30, tzinfo=UTC), until=datetime(2025, 6, 1, 10, 30, tzinfo=UTC)
    )
    assert [e.sub for e in window] == ["bob"]
    assert [e.seq for e in access_log.query(actor_sub="alice", after_seq=1)] == [3]
    assert access_log.query(person_id="p2", actor_sub="bob")[0].time == datetime(
        2025, 6, 1, 10, 0, tzinfo=UTC
    )


def handler(access_log: AccessLog, people: dict[str, str]) -> dict:
    """What a list handler does: log the ids, then (and only then) build the body."""
    record(access_log, list(people))
    return {"items": [{"id": pid, "name": name} for pid, name in people.items()]}


def test_injected_failure_raises_unavailable_and_nothing_is_returned(db, clock):
    def database_down():
        raise AutoReconnect("injected")

    failing = AccessLog(db, clock, fault=database_down)
    with pytest.raises(AccessLogUnavailable) as error:
        handler(failing, {"p1": "Canary Name"})
    assert "Canary" not in str(error.value) and "p1" not in str(error.value)
    assert db.access_log.count_documents({}) == 0


def test_unreachable_database_raises_unavailable_promptly(clock):
    unreachable = MongoClient("mongodb://127.0.0.1:1/", serverSelectionTimeoutMS=200)
    try:
        with pytest.raises(AccessLogUnavailable):
            record(AccessLog(unreachable["x"], clock, timeout_s=0.5), ["p1"])
    finally:
        unreachable.close()
