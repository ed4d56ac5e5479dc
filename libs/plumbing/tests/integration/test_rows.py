"""`ProjectingRepository.rows` against the real Mongo-wire server: the records `find` would return (the caller's
scope, restrictions of processing), only the members asked for, from a filter the server serves by index."""

import contextlib
import json
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from mongoengine import ListField, StringField

from plumbing import request_context, restrictions
from plumbing.auth import Caller
from plumbing.clock import FixedClock
from plumbing.documents import OwnedDocument
from plumbing.repository import ExistencePolicy, SystemRepository
from plumbing.request_context import RequestContext
from plumbing.restrictions import PERSON, RestrictionDocument
from plumbing.rows import ProjectingRepository

pytestmark = pytest.mark.integration

ALIAS = "default"
NOW = datetime(2026, 12, 7, 10, 0, tzinfo=UTC)
EXISTENCE = ExistencePolicy(frozenset({"case-manager"}))


class Keyed(OwnedDocument):
    meta = {
        "collection": "rows_keyed",
        "indexes": [{"fields": ["keys"]}],
    }
    RETENTION_CLASS = "person"
    RESTRICTED_BY = {"id": PERSON}
    keys = ListField(StringField())
    secret = StringField()


def officer(country: str) -> Caller:
    return Caller(
        sub=f"user-{uuid.uuid4().hex[:8]}",
        azp="thb-test",
        country=country,
        agency="social-services",
        roles=frozenset({"case-manager"}),
        acting_user=None,
        is_machine=False,
        token="not-a-real-token",
    )


@pytest.fixture(autouse=True)
def clean(database: object) -> None:
    Keyed.objects.delete()
    RestrictionDocument.objects.delete()
    restrictions.forget_held()


@contextlib.contextmanager
def in_request(purpose: str, caller: Caller) -> Iterator[None]:
    token = request_context.set_current(RequestContext(request_id="r", caller=caller, purpose=purpose))
    try:
        yield
    finally:
        request_context.reset(token)


def test_rows_are_what_find_answers_with_only_the_members_asked_for() -> None:
    clock = FixedClock(NOW)
    al, xk = officer("AL"), officer("XK")
    mine = [
        ProjectingRepository(Keyed, al, clock).insert(Keyed(keys=["a", "b"], secret="s")).id for _ in range(3)
    ]
    ProjectingRepository(Keyed, al, clock).insert(Keyed(keys=["c"], secret="s"))
    ProjectingRepository(Keyed, xk, clock).insert(Keyed(keys=["a"], secret="s"))  # another country's

    with in_request("identification", al):
        repository = ProjectingRepository(Keyed, al, clock, EXISTENCE)
        rows = repository.rows({"keys": {"$in": ["a", "x"]}}, ("keys",))
        assert [row["_id"] for row in rows] == [doc.id for doc in repository.find(keys__in=["a", "x"])]
    assert sorted(row["_id"] for row in rows) == sorted(mine)
    assert {frozenset(row) for row in rows} == {frozenset({"_id", "updated_at", "keys"})}

    # A restriction of processing hides her row as it hides her record.
    restrictions.hold(
        SystemRepository(RestrictionDocument, actor="test"),
        person_id=mine[0],
        owner_country="AL",
        owner_agency="social-services",
        restricted=True,
        case_ids=[],
        purposes=["case-management"],
        changed_at=NOW,
    )
    with in_request("identification", al):
        hidden = ProjectingRepository(Keyed, al, clock, EXISTENCE).rows({"keys": {"$in": ["a"]}}, ("keys",))
    assert sorted(row["_id"] for row in hidden) == sorted(mine[1:])


def test_the_filter_rows_sends_is_flat_and_led_by_the_callers_indexed_member() -> None:
    """The embedded server plans a filter with no `$` member by its first member an index serves (its `explain`
    does not mirror that step for two operator members, docs/engineering.md): the caller's `keys` comes first,
    the scope after it, and that member alone is an index scan."""
    clock = FixedClock(NOW)
    al = officer("AL")
    for n in range(20):
        ProjectingRepository(Keyed, al, clock).insert(Keyed(keys=[f"k{n}", "common"], secret="s"))
    repository = ProjectingRepository(Keyed, al, clock, EXISTENCE)
    [where] = repository._where({"keys": {"$in": ["k1", "k2"]}}) or []  # what `rows` sends

    assert not any(member.startswith("$") for member in where) and next(iter(where)) == "keys"
    plan = Keyed._get_collection().find({"keys": where["keys"]}).explain()
    assert "IXSCAN" in json.dumps(plan["queryPlanner"]["winningPlan"])
    assert plan["executionStats"]["totalKeysExamined"] == 2


def test_a_limit_answers_at_most_that_many_rows_of_the_callers_scope() -> None:
    """A duplicate search asks for the first few holders of a key to learn whether it is common; more than the
    limit are never answered, and other countries' rows never fill it."""
    clock = FixedClock(NOW)
    al, xk = officer("AL"), officer("XK")
    for _ in range(5):
        ProjectingRepository(Keyed, xk, clock).insert(Keyed(keys=["common"], secret="s"))
    mine = {
        ProjectingRepository(Keyed, al, clock).insert(Keyed(keys=["common"], secret="s")).id for _ in range(4)
    }

    with in_request("identification", al):
        repository = ProjectingRepository(Keyed, al, clock, EXISTENCE)
        three = repository.rows({"keys": "common"}, ("keys",), limit=3)
        everything = repository.rows({"keys": "common"}, ("keys",), limit=10)

    assert len(three) == 3 and {row["_id"] for row in three} <= mine
    assert {row["_id"] for row in everything} == mine
