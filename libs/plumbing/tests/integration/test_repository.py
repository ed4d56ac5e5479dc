"""ScopedRepository / SystemRepository against the real Mongo-wire server."""

import threading
import uuid
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace

import pytest
from mongoengine import DictField, StringField

from plumbing import mongo as connections
from plumbing.auth import Caller
from plumbing.clock import FixedClock
from plumbing.documents import OwnedDocument
from plumbing.errors import Conflict, InvalidCursor, NotFound, OutOfScope
from plumbing.repository import NeedToKnowPolicy, ScopedRepository, SystemRepository

pytestmark = pytest.mark.integration

ALIAS = "plumbing-repository-tests"


class Dossier(OwnedDocument):
    meta = {"collection": "dossiers", "db_alias": ALIAS}
    RETENTION_CLASS = "case"
    note = StringField()
    status = StringField()


class StrictDossier(OwnedDocument):
    """A class with its own policy: only coordinators see it."""

    meta = {"collection": "strict_dossiers", "db_alias": ALIAS}
    RETENTION_CLASS = "case"
    SCOPE_POLICY = NeedToKnowPolicy(
        country_wide_roles=frozenset({"coordinator"}),
        agency_roles=frozenset(),
        assigned_only_roles=frozenset(),
    )
    note = StringField()


class Shelter(OwnedDocument):
    """A record with places to take: what `update_where` exists for (the referral service's providers)."""

    meta = {"collection": "shelters", "db_alias": ALIAS}
    RETENTION_CLASS = "case"
    note = StringField()
    capacity = DictField()


def caller(country="AL", agency="al-police", roles=("police-officer",), sub=None) -> Caller:
    return Caller(
        sub=sub or f"user-{uuid.uuid4().hex[:8]}",
        azp="identification-ui",
        country=country,
        agency=agency,
        roles=frozenset(roles),
        acting_user=None,
        is_machine=False,
        token="not-a-real-token",
    )


@pytest.fixture
def clock():
    return FixedClock(datetime(2025, 6, 1, 8, 0, tzinfo=UTC))


@pytest.fixture(autouse=True)
def clean(database):
    Dossier.objects.delete()
    StrictDossier.objects.delete()
    Shelter.objects.delete()


def test_ping(database):
    assert connections.ping(ALIAS)


def test_insert_sets_ownership_from_the_caller_not_from_input(database, clock):
    officer = caller(sub="officer-1")
    doc = Dossier(note="n", owner_country="XK", owner_agency="xk-police", created_by="mallory")
    stored = ScopedRepository(Dossier, officer, clock).insert(doc, events=[{"id": "e1", "type": "t"}])
    raw = database.dossiers.find_one({"_id": stored.id})
    assert (raw["owner_country"], raw["owner_agency"], raw["created_by"]) == ("AL", "al-police", "officer-1")
    assert raw["updated_by"] == "officer-1" and raw["version"] == 1 and raw["schema_version"] == 1
    assert raw["retention_class"] == "case"
    assert raw["pending_events"] == [{"id": "e1", "type": "t"}]
    uuid.UUID(raw["_id"])  # a random UUID string, not an ObjectId
    assert raw["created_at"] == datetime(2025, 6, 1, 8, 0, tzinfo=UTC)


def test_other_country_never_sees_a_record(clock):
    stored = ScopedRepository(Dossier, caller(roles=("case-manager",)), clock).insert(Dossier(note="al"))
    for roles in [("coordinator",), ("case-manager",), ("police-officer",), ("contact-point",)]:
        xk = ScopedRepository(Dossier, caller(country="XK", agency="al-police", roles=roles), clock)
        with pytest.raises(NotFound):
            xk.get(stored.id)
        assert xk.find() == []
        # Even a filter naming the owner cannot widen the scope.
        assert xk.find(owner_country="AL") == []
        assert xk.list_page().items == []
        with pytest.raises(NotFound):
            xk.update(stored)
        with pytest.raises(NotFound):
            xk.delete(stored.id)
    assert Dossier.objects(id=stored.id).count() == 1


def test_not_found_does_not_reveal_existence(clock):
    stored = ScopedRepository(Dossier, caller(), clock).insert(Dossier(note="x"))
    outsider = ScopedRepository(Dossier, caller(country="XK"), clock)
    with pytest.raises(NotFound) as hidden:
        outsider.get(stored.id)
    with pytest.raises(NotFound) as missing:
        outsider.get(str(uuid.uuid4()))
    assert str(hidden.value) == str(missing.value)


def test_agency_and_assignment_scope(clock):
    author = caller(agency="al-police", sub="author")
    stored = ScopedRepository(Dossier, author, clock).insert(Dossier(note="n"))
    colleague = ScopedRepository(Dossier, caller(agency="al-police"), clock)
    assert colleague.get(stored.id).note == "n"

    social = caller(agency="al-social-services", roles=("social-worker",), sub="sw-1")
    other_agency = ScopedRepository(Dossier, social, clock)
    with pytest.raises(NotFound):
        other_agency.get(stored.id)
    assert other_agency.find() == []

    shelter = ScopedRepository(
        Dossier, caller(agency="al-shelter", roles=("service-provider",), sub="sp"), clock
    )
    with pytest.raises(NotFound):
        shelter.get(stored.id)

    doc = colleague.get(stored.id)
    doc.assigned_to = ["sw-1", "sp"]
    colleague.update(doc)
    assert other_agency.get(stored.id).note == "n"
    assert [d.id for d in other_agency.find()] == [stored.id]
    assert shelter.get(stored.id).id == stored.id
    # An assignment in another country gives nothing: the subject of the assignment must be of AL.
    foreign = ScopedRepository(Dossier, caller(country="XK", roles=("social-worker",), sub="sw-1"), clock)
    with pytest.raises(NotFound):
        foreign.get(stored.id)


def test_country_wide_roles_see_the_whole_country(clock):
    a = ScopedRepository(Dossier, caller(agency="al-police"), clock).insert(Dossier(note="a"))
    b = ScopedRepository(Dossier, caller(agency="al-border", roles=("border-police",)), clock).insert(
        Dossier(note="b")
    )
    ScopedRepository(Dossier, caller(country="ME", agency="me-police"), clock).insert(Dossier(note="me"))
    manager = ScopedRepository(Dossier, caller(agency="al-ministry", roles=("case-manager",)), clock)
    assert {d.id for d in manager.find()} == {a.id, b.id}
    assert manager.count() == 2


@pytest.mark.parametrize("roles", [("analyst",), ("auditor",), ("administrator",), ()])
def test_analysts_and_auditors_see_nothing_and_create_nothing(clock, roles):
    stored = ScopedRepository(Dossier, caller(roles=("case-manager",)), clock).insert(Dossier(note="n"))
    blind = ScopedRepository(Dossier, caller(roles=roles), clock)
    with pytest.raises(NotFound):
        blind.get(stored.id)
    assert blind.find() == [] and blind.count() == 0 and blind.list_page().items == []
    with pytest.raises(OutOfScope):
        blind.insert(Dossier(note="x"))


def test_policy_is_pluggable_per_class(clock):
    stored = ScopedRepository(StrictDossier, caller(roles=("coordinator",)), clock).insert(
        StrictDossier(note="s")
    )
    with pytest.raises(NotFound):
        ScopedRepository(StrictDossier, caller(roles=("case-manager",)), clock).get(stored.id)


def test_update_is_atomic_with_events_and_version(database, clock):
    officer = caller()
    repo = ScopedRepository(Dossier, officer, clock)
    stored = repo.insert(Dossier(note="first", status="open"), events=[{"id": "e1"}])
    clock.advance(minutes=3)
    doc = repo.get(stored.id)
    doc.note, doc.status = "second", None
    doc.owner_country = "XK"  # ignored: ownership is not writable through update
    repo.update(doc, events=[{"id": "e2"}])
    raw = database.dossiers.find_one({"_id": stored.id})
    assert raw["note"] == "second" and "status" not in raw
    assert raw["owner_country"] == "AL" and raw["version"] == 2
    assert [e["id"] for e in raw["pending_events"]] == ["e1", "e2"]
    assert raw["updated_at"] == datetime(2025, 6, 1, 8, 3, tzinfo=UTC)
    assert raw["created_at"] == datetime(2025, 6, 1, 8, 0, tzinfo=UTC)


def test_update_preserves_events_the_relay_has_not_seen(database, clock):
    repo = ScopedRepository(Dossier, caller(), clock)
    stored = repo.insert(Dossier(note="n"), events=[{"id": "e1"}])
    doc = repo.get(stored.id)
    # Meanwhile the relay publishes e1 and removes it: the stale copy in `doc` must not bring it back.
    database.dossiers.update_one({"_id": stored.id}, {"$pull": {"pending_events": {"id": "e1"}}})
    doc.note = "changed"
    repo.update(doc, events=[{"id": "e2"}])
    assert [e["id"] for e in database.dossiers.find_one({"_id": stored.id})["pending_events"]] == ["e2"]


def test_stale_update_conflicts(clock):
    repo = ScopedRepository(Dossier, caller(), clock)
    stored = repo.insert(Dossier(note="n"))
    first, second = repo.get(stored.id), repo.get(stored.id)
    first.note = "first"
    repo.update(first)
    second.note = "second"
    with pytest.raises(Conflict):
        repo.update(second)
    with pytest.raises(Conflict):
        repo.update(repo.get(stored.id), expected_version=1)
    assert repo.get(stored.id).note == "first"


def test_concurrent_updates_exactly_one_wins(clock):
    repo = ScopedRepository(Dossier, caller(), clock)
    stored = repo.insert(Dossier(note="n"))
    copies = [repo.get(stored.id) for _ in range(8)]
    barrier = threading.Barrier(len(copies))
    outcomes: list[str] = []

    def write(doc, n):
        doc.note = f"writer-{n}"
        barrier.wait()
        try:
            ScopedRepository(Dossier, caller(), clock).update(doc)
            outcomes.append("ok")
        except Conflict:
            outcomes.append("conflict")

    threads = [threading.Thread(target=write, args=(doc, n)) for n, doc in enumerate(copies)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(outcomes) == ["conflict"] * 7 + ["ok"]
    assert repo.get(stored.id).version == 2


def test_delete_is_scoped_and_waits_for_the_outbox(database, clock):
    repo = ScopedRepository(Dossier, caller(), clock)
    stored = repo.insert(Dossier(note="n"), events=[{"id": "e1"}])
    with pytest.raises(Conflict):
        repo.delete(stored.id)
    database.dossiers.update_one({"_id": stored.id}, {"$set": {"pending_events": []}})
    with pytest.raises(Conflict):
        repo.delete(stored.id, expected_version=7)
    repo.delete(stored.id)
    with pytest.raises(NotFound):
        repo.get(stored.id)


def test_duplicate_id_conflicts(clock):
    repo = ScopedRepository(Dossier, caller(), clock)
    stored = repo.insert(Dossier(note="n"))
    with pytest.raises(Conflict):
        repo.insert(Dossier(id=stored.id, note="again"))


def test_pages_follow_updated_at_then_id_without_gaps(clock):
    repo = ScopedRepository(Dossier, caller(roles=("case-manager",)), clock)
    ids = []
    for n in range(7):
        if n % 3 == 0:
            clock.advance(seconds=1)  # several records share an updated_at: the id breaks the tie
        ids.append(repo.insert(Dossier(note=str(n))).id)
    ScopedRepository(Dossier, caller(country="XK", roles=("case-manager",)), clock).insert(Dossier(note="xk"))
    expected = [d.id for d in sorted(Dossier.objects(owner_country="AL"), key=lambda d: (d.updated_at, d.id))]
    seen, cursor = [], None
    while True:
        page = repo.list_page(limit=3, cursor=cursor)
        seen += [d.id for d in page.items]
        cursor = page.next_cursor
        if cursor is None:
            break
    assert seen == expected and sorted(seen) == sorted(ids)
    since = repo.list_page(updated_since=datetime(2025, 6, 1, 8, 0, 3, tzinfo=UTC))
    assert {d.note for d in since.items} == {"6"}
    assert len(repo.list_page(limit=10_000).items) == 7  # capped at 200, not an error
    assert [d.note for d in repo.list_page(note="4").items] == ["4"]
    with pytest.raises(InvalidCursor):
        repo.list_page(cursor="not-a-cursor")


def test_system_repository_is_unscoped_and_named(database, clock):
    system = SystemRepository(Dossier, clock, actor="system:test-consumer")
    al = system.insert(Dossier(note="al"), owner_country="AL", owner_agency="al-police")
    xk = system.insert(Dossier(note="xk"), owner_country="XK", owner_agency="xk-police")
    assert {d.id for d in system.find()} == {al.id, xk.id}
    doc = system.get(xk.id)
    doc.note = "by job"
    system.update(doc)
    raw = database.dossiers.find_one({"_id": xk.id})
    assert raw["updated_by"] == "system:test-consumer" and raw["created_by"] == "system:test-consumer"


# ----------------------------------------------------------------------------------------- update_where
# Scope semantics: update_where answers False whenever nothing was written - a missing record, one outside the
# caller's scope (or a caller who sees nothing at all) and one failing the condition are not told apart, so a
# False reveals no more than NotFound; `get` is how a caller learns which (NotFound outside the scope).


def take(referral_id, group="places"):
    path = f"capacity.{group}"
    condition = {f"{path}.free": {"$gt": 0}, f"{path}.held_by": {"$ne": referral_id}}
    return condition, {"$inc": {f"{path}.free": -1}, "$push": {f"{path}.held_by": referral_id}}


def free(referral_id, group="places"):
    path = f"capacity.{group}"
    return {f"{path}.held_by": referral_id}, {
        "$inc": {f"{path}.free": 1},
        "$pull": {f"{path}.held_by": referral_id},
    }


def new_shelter(clock, places=3, **kwargs):
    shelter = Shelter(note="n", capacity={"places": {"total": places, "free": places, "held_by": []}})
    return ScopedRepository(Shelter, caller(roles=("case-manager",)), clock).insert(shelter, **kwargs)


def test_fifty_threads_take_exactly_the_three_places(database, clock):
    stored = new_shelter(clock)
    referral_ids = [str(uuid.uuid4()) for _ in range(50)]
    barrier = threading.Barrier(len(referral_ids))
    outcomes: dict[str, bool] = {}
    errors: list[BaseException] = []

    def attempt(referral_id):
        repo = ScopedRepository(Shelter, caller(roles=("case-manager",)), clock)
        condition, operators = take(referral_id)
        barrier.wait()
        try:
            outcomes[referral_id] = repo.update_where(
                stored.id, condition, operators, events=[{"id": f"taken-{referral_id}"}]
            )
        except BaseException as exc:  # noqa: BLE001 - reported by the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=attempt, args=(rid,)) for rid in referral_ids]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert errors == [] and len(outcomes) == 50
    takers = sorted(rid for rid, took in outcomes.items() if took)
    assert len(takers) == 3
    raw = database.shelters.find_one({"_id": stored.id})
    places = raw["capacity"]["places"]
    assert places["free"] == 0 and places["total"] == 3
    assert sorted(places["held_by"]) == takers
    assert raw["version"] == 1 + 3
    assert sorted(e["id"] for e in raw["pending_events"]) == sorted(f"taken-{rid}" for rid in takers)
    # Full: nobody else gets in, and the count never goes below zero.
    condition, operators = take(str(uuid.uuid4()))
    assert (
        ScopedRepository(Shelter, caller(roles=("case-manager",)), clock).update_where(
            stored.id, condition, operators
        )
        is False
    )
    assert database.shelters.find_one({"_id": stored.id})["capacity"]["places"]["free"] == 0


def test_update_where_writes_the_change_version_stamps_and_events_in_one_update(database, clock):
    stored = new_shelter(clock, events=[{"id": "e1", "type": "t"}])
    clock.advance(minutes=5)
    taker = caller(roles=("case-manager",), sub="taker")
    repo = ScopedRepository(Shelter, taker, clock)
    condition, operators = take("r1")
    assert repo.update_where(stored.id, condition, operators, events=[{"id": "e2", "type": "t"}]) is True
    raw = database.shelters.find_one({"_id": stored.id})
    assert raw["capacity"]["places"] == {"total": 3, "free": 2, "held_by": ["r1"]}
    assert raw["version"] == 2 and raw["note"] == "n"
    assert raw["updated_by"] == "taker" and raw["updated_at"] == datetime(2025, 6, 1, 8, 5, tzinfo=UTC)
    assert raw["created_at"] == datetime(2025, 6, 1, 8, 0, tzinfo=UTC) and raw["owner_country"] == "AL"
    # In the outbox, after the events already there: what the relay publishes, in order.
    assert [e["id"] for e in raw["pending_events"]] == ["e1", "e2"]
    # The document reads back normally (mongoengine sees the raw update's result).
    assert repo.get(stored.id).capacity["places"]["held_by"] == ["r1"]


def test_an_unmatched_condition_changes_nothing(database, clock):
    stored = new_shelter(clock, places=1)
    repo = ScopedRepository(Shelter, caller(roles=("case-manager",)), clock)
    assert repo.update_where(stored.id, *take("r1")) is True
    before = database.shelters.find_one({"_id": stored.id})
    clock.advance(minutes=1)
    assert repo.update_where(stored.id, *take("r1"), events=[{"id": "lost"}]) is False  # already held
    assert repo.update_where(stored.id, *take("r2"), events=[{"id": "lost"}]) is False  # none free
    assert repo.update_where(stored.id, *free("r2")) is False  # r2 holds nothing to free
    assert repo.update_where(str(uuid.uuid4()), *take("r3")) is False  # no such record
    assert database.shelters.find_one({"_id": stored.id}) == before  # version, stamps and outbox unchanged
    # Freeing is the same kind of update: once, then never again.
    assert repo.update_where(stored.id, *free("r1")) is True
    assert repo.update_where(stored.id, *free("r1")) is False
    after = database.shelters.find_one({"_id": stored.id})
    assert after["capacity"]["places"] == {"total": 1, "free": 1, "held_by": []} and after["version"] == 3


def test_update_where_outside_the_scope_is_false_and_writes_nothing(database, clock):
    stored = new_shelter(clock)
    before = database.shelters.find_one({"_id": stored.id})
    outsiders = [
        caller(country="XK", roles=("coordinator",)),  # another country: never in scope
        caller(agency="al-social-services", roles=("social-worker",)),  # same country, other agency
        caller(roles=("analyst",)),  # sees no owned record at all (the policy's filter is None)
    ]
    for outsider in outsiders:
        repo = ScopedRepository(Shelter, outsider, clock)
        assert repo.update_where(stored.id, *take("r1"), events=[{"id": "e"}]) is False
        # The condition cannot widen the scope, even naming the owner.
        assert repo.update_where(stored.id, {"owner_country": "AL"}, take("r1")[1]) is False
        with pytest.raises(NotFound):
            repo.get(stored.id)  # how a caller tells "not yours" from "condition not met"
    assert database.shelters.find_one({"_id": stored.id}) == before


def test_system_update_where_is_unscoped_and_named(database, clock):
    stored = new_shelter(clock)
    system = SystemRepository(Shelter, clock, actor="system:test-job")
    assert system.update_where(stored.id, *take("r1"), events=[{"id": "e1"}]) is True
    raw = database.shelters.find_one({"_id": stored.id})
    assert raw["updated_by"] == "system:test-job" and raw["capacity"]["places"]["held_by"] == ["r1"]
    assert [e["id"] for e in raw["pending_events"]] == ["e1"]
    assert [d.id for d in system.find(owner_country="AL")] == [stored.id]


@pytest.mark.parametrize(
    "operators",
    [
        {"$set": {"version": 9}},
        {"$inc": {"version": 1}},
        {"$push": {"pending_events": {"id": "forged"}}},
        {"$set": {"pending_events.0.type": "x"}},
        {"$set": {"owner_country": "XK"}},
        {"$set": {"owner_agency": "x", "note": "fine"}},
        {"$set": {"updated_by": "mallory"}},
        {"$set": {"outbox_lease_owner": "me"}},
        {"$pull": {"pending_steps": {"id": "s"}}},
        {"$unset": {"note": ""}},
        {"$rename": {"note": "other"}},
    ],
)
def test_update_where_refuses_operators_on_fields_only_the_repository_writes(database, clock, operators):
    stored = new_shelter(clock)
    before = database.shelters.find_one({"_id": stored.id})
    for repo in (
        ScopedRepository(Shelter, caller(roles=("case-manager",)), clock),
        SystemRepository(Shelter, clock),
    ):
        with pytest.raises(ValueError):
            repo.update_where(stored.id, {}, operators)
    assert database.shelters.find_one({"_id": stored.id}) == before


def test_ping_is_false_when_the_server_is_unreachable():
    settings = SimpleNamespace(mongodb_uri="mongodb://127.0.0.1:1/", mongodb_db="none", service="t")
    connections.connect(settings, alias="plumbing-unreachable")
    try:
        assert connections.ping("plumbing-unreachable", timeout_ms=300) is False
    finally:
        connections.disconnect("plumbing-unreachable")


def _finds_while(database, action):
    """The find commands the server received on `dossiers` while `action` ran (the server's own profiler; the
    module's tests share the database, so only the entries recorded after those already there count)."""
    before = database.system.profile.count_documents({})
    database.command("profile", 2)
    try:
        action()
    finally:
        database.command("profile", 0)
    entries = list(database.system.profile.find({}))[before:]
    return [
        entry["command"]
        for entry in entries
        if entry.get("op") == "query"
        and entry.get("ns") == f"{database.name}.dossiers"
        and "find" in entry.get("command", {})
    ]


def test_a_sync_page_reads_only_the_callers_records_from_where_it_starts(database, clock):
    """A national system syncing an agency's records: each query of each page is served by an index and reads
    the caller's own records after the page's start, not the country's or the collection's (docs/performance.md,
    figure 3: before, every page scanned the collection)."""
    me = caller(agency="al-police", sub="officer")
    mine = ScopedRepository(Dossier, me, clock)
    others = {
        "agency": ScopedRepository(
            Dossier, caller(agency="al-social-services", roles=("social-worker",)), clock
        ),
        "country": ScopedRepository(Dossier, caller(country="XK"), clock),
    }
    visible = []
    for n in range(60):
        clock.advance(seconds=1)
        visible.append(mine.insert(Dossier(note=f"mine-{n}")).id)
        for repo in others.values():
            doc = repo.insert(Dossier(note=f"other-{n}"))
            if n % 10 == 0 and repo is others["agency"]:
                doc.assigned_to = ["officer"]  # assigned to her: in her scope too
                repo.update(doc)
                visible.append(doc.id)
    since = datetime(2025, 6, 1, 8, 0, 31, tzinfo=UTC)
    expected = [
        d.id
        for d in sorted(Dossier.objects(id__in=visible), key=lambda d: (d.updated_at, d.id))
        if d.updated_at >= since
    ]

    seen: list[str] = []

    def sync() -> None:
        cursor = None
        while True:
            page = mine.list_page(limit=7, cursor=cursor, updated_since=since)
            seen.extend(d.id for d in page.items)
            if (cursor := page.next_cursor) is None:
                break

    finds = _finds_while(database, sync)
    assert seen == expected and len(expected) < 60
    assert finds, "the profiler recorded the pages' queries"
    collection = Dossier._get_collection()
    for command in finds:
        plan = (
            collection.find(command["filter"])
            .sort(list(command["sort"].items()))
            .limit(command["limit"])
            .explain()
        )
        examined = plan["executionStats"]["totalDocsExamined"]
        # Never more than her records after the start (the whole collection is 180 + her 60).
        assert examined <= len(expected), (command["filter"], examined)
        assert "COLLSCAN" not in str(plan["queryPlanner"]["winningPlan"]), command["filter"]


def test_an_exclusion_is_applied_without_losing_a_page_row(database, clock):
    """What a restriction of processing hides (`$nin`) is checked in the process: a page still holds `limit` of the
    records not hidden, in order, however many hidden ones come first."""
    repo = ScopedRepository(Dossier, caller(roles=("case-manager",)), clock)
    for n in range(30):
        clock.advance(seconds=1)
        repo.insert(Dossier(note="hidden" if n < 12 or n % 3 == 0 else f"shown-{n}"))
    shown = [d.note for d in repo.find(note__nin=["hidden"])]
    assert shown[:3] == ["shown-13", "shown-14", "shown-16"] and "hidden" not in shown
    assert [d.note for d in repo.find(limit=5, note__nin=["hidden"])] == shown[:5]
    page = repo.list_page(limit=5, note__nin=["hidden"])
    assert [d.note for d in page.items] == shown[:5] and page.next_cursor
    rest = repo.list_page(limit=50, cursor=page.next_cursor, note__nin=["hidden"])
    assert [d.note for d in rest.items] == shown[5:] and rest.next_cursor is None

    # A restriction hides records by id: the page beside it is still served by an index.
    since = datetime(2025, 6, 1, 8, 0, 20, tzinfo=UTC)
    hidden = [d.id for d in Dossier.objects(note="hidden")]
    pages: list = []
    finds = _finds_while(
        database, lambda: pages.append(repo.list_page(limit=3, updated_since=since, id__nin=hidden))
    )
    assert [d.note for d in pages[0].items] == [n for n in shown if int(n.split("-")[1]) >= 19][:3]
    collection = Dossier._get_collection()
    for command in finds:
        plan = collection.find(command["filter"]).sort(list(command["sort"].items())).explain()
        assert "COLLSCAN" not in str(plan["queryPlanner"]["winningPlan"]), command["filter"]


class Creature(OwnedDocument):
    """A class with subclasses: mongoengine keeps them in one collection, told apart by `_cls`."""

    meta = {"collection": "creatures", "db_alias": ALIAS, "allow_inheritance": True}
    RETENTION_CLASS = "case"
    note = StringField()


class Cat(Creature):
    pass


class Dog(Creature):
    pass


def test_a_subclass_repository_never_answers_a_sibling_class_record(database, clock):
    """A get reads by `_id` and checks the scope in the process; for a class with subclasses the server decides
    (its class filter), so the repository of one subclass never answers another's record of the same id space."""
    officer = caller(roles=("case-manager",))
    dog = ScopedRepository(Dog, officer, clock).insert(Dog(note="dog"))
    with pytest.raises(NotFound):
        ScopedRepository(Cat, officer, clock).get(dog.id)
    assert isinstance(ScopedRepository(Creature, officer, clock).get(dog.id), Dog)
    assert ScopedRepository(Dog, officer, clock).get(dog.id).note == "dog"


def test_a_page_behind_many_newer_records_reads_about_its_own_size(database, clock):
    """A sync page whose start has hundreds of newer records after it asks for `updated_at` window by window, so
    the server reads about the page, not everything changed since (docs/performance.md, figure 3); and a record
    stamped in the future (another host's clock) still comes, in the last page."""
    repo = ScopedRepository(Dossier, caller(roles=("case-manager",)), clock)
    stored = []
    for n in range(200):
        clock.advance(seconds=1)
        stored.append(repo.insert(Dossier(note=str(n))))
    ahead = stored[50]
    Dossier._get_collection().update_one(
        {"_id": ahead.id}, {"$set": {"updated_at": clock.now() + timedelta(days=30)}}
    )
    since = stored[10].updated_at
    pages: list = []
    finds = _finds_while(database, lambda: pages.append(repo.list_page(limit=5, updated_since=since)))
    assert [d.note for d in pages[0].items] == ["10", "11", "12", "13", "14"]
    collection = Dossier._get_collection()
    examined = sum(
        collection.find(c["filter"])
        .sort(list(c["sort"].items()))
        .explain()["executionStats"]["totalDocsExamined"]
        for c in finds
    )
    assert examined <= 40, examined  # one query for all since then reads 190

    seen, cursor = [], None
    while True:
        page = repo.list_page(limit=40, cursor=cursor, updated_since=since)
        seen += [d.note for d in page.items]
        if (cursor := page.next_cursor) is None:
            break
    assert seen == [str(n) for n in range(10, 200) if n != 50] + ["50"]
