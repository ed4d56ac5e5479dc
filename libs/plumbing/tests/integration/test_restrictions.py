"""A restriction of processing enforced by the scoped repository, against the real Mongo-wire server: a request of
a purpose the restriction does not list sees none of the records naming the person or her cases and is told why
when it asks for one; listed purposes, the always-allowed ones and the workers read as before; lifting it, or an
older change arriving late, behave."""

import contextlib
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from mongoengine import StringField

from plumbing import request_context, restrictions
from plumbing.auth import Caller
from plumbing.clock import FixedClock
from plumbing.documents import OwnedDocument
from plumbing.errors import NotFound
from plumbing.repository import ScopedRepository, SystemRepository
from plumbing.request_context import RequestContext
from plumbing.restrictions import CASE, PERSON, ProcessingRestricted, RestrictionDocument

pytestmark = pytest.mark.integration

ALIAS = "default"  # where RestrictionDocument lives in every service
CHANGED = datetime(2026, 12, 6, 10, 0, tzinfo=UTC)


class Referral(OwnedDocument):
    meta = {"collection": "restricted_referrals"}
    RETENTION_CLASS = "referral"
    RESTRICTED_BY = {"person_id": PERSON, "case_id": CASE}
    person_id = StringField(null=True)
    case_id = StringField(null=True)


def officer(country: str = "AL") -> Caller:
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
    Referral.objects.delete()
    RestrictionDocument.objects.delete()
    restrictions.forget_held()  # removed behind the process's back: not read again within FRESH_S otherwise


@pytest.fixture
def clock() -> FixedClock:
    return FixedClock(CHANGED)


@contextlib.contextmanager
def in_request(purpose: str | None, caller: Caller) -> Iterator[None]:
    token = request_context.set_current(RequestContext(request_id="r", caller=caller, purpose=purpose))
    try:
        yield
    finally:
        request_context.reset(token)


def hold(
    person_id: str, case_ids: list[str], purposes: list[str], *, restricted: bool = True, at=CHANGED
) -> bool:
    return restrictions.hold(
        SystemRepository(RestrictionDocument, actor="test"),
        person_id=person_id,
        owner_country="AL",
        owner_agency="social-services",
        restricted=restricted,
        case_ids=case_ids,
        purposes=purposes,
        changed_at=at,
    )


def seeded(clock: FixedClock) -> dict[str, str]:
    """Her referral by person, one by case only (a proposal), and another person's."""
    ids = {"person": str(uuid.uuid4()), "case": str(uuid.uuid4()), "other": str(uuid.uuid4())}
    writer = ScopedRepository(Referral, officer(), clock)
    ids["by_person"] = writer.insert(Referral(person_id=ids["person"], case_id=ids["case"])).id
    ids["by_case"] = writer.insert(Referral(case_id=ids["case"])).id
    ids["unrelated"] = writer.insert(Referral(person_id=ids["other"])).id
    return ids


def reads(purpose: str | None, clock: FixedClock, caller: Caller | None = None) -> set[str]:
    caller = caller or officer()
    with in_request(purpose, caller):
        return {r.id for r in ScopedRepository(Referral, caller, clock).find()}


def test_a_restriction_hides_her_records_from_other_purposes_and_says_why(clock: FixedClock) -> None:
    ids = seeded(clock)
    assert reads("referral", clock) == {ids["by_person"], ids["by_case"], ids["unrelated"]}
    hold(ids["person"], [ids["case"]], ["case-management"])

    assert reads("referral", clock) == {ids["unrelated"]}  # by her person id and by her case id alike
    assert reads("case-management", clock) == {ids["by_person"], ids["by_case"], ids["unrelated"]}
    for purpose in ("data-subject-access", "audit"):  # her rights and oversight always read
        assert len(reads(purpose, clock)) == 3
    caller = officer()
    with in_request("referral", caller):
        repository = ScopedRepository(Referral, caller, clock)
        with pytest.raises(ProcessingRestricted):
            repository.get(ids["by_case"])
        assert repository.get(ids["unrelated"]).id == ids["unrelated"]
        with pytest.raises(NotFound) as missing:  # a record that does not exist is still just missing
            repository.get(str(uuid.uuid4()))
        assert not isinstance(missing.value, ProcessingRestricted)
    # Another country's officer learns nothing: not found, as before.
    foreign = officer("XK")
    with in_request("referral", foreign):
        with pytest.raises(NotFound) as hidden:
            ScopedRepository(Referral, foreign, clock).get(ids["by_person"])
        assert not isinstance(hidden.value, ProcessingRestricted)
    # An operation that answers no personal data carries no purpose: nothing of hers to hold back.
    assert len(reads(None, clock)) == 3
    # A worker (no request) goes on storing and ending what it must.
    assert {r.id for r in ScopedRepository(Referral, officer(), clock).find()} >= {ids["by_person"]}


def test_lifting_restores_every_purpose_and_a_late_older_change_undoes_nothing(clock: FixedClock) -> None:
    ids = seeded(clock)
    assert hold(ids["person"], [ids["case"]], [])
    assert reads("case-management", clock) == {ids["unrelated"]}
    later = CHANGED + timedelta(minutes=5)
    assert hold(ids["person"], [ids["case"]], [], restricted=False, at=later)
    assert len(reads("case-management", clock)) == 3
    # The first restriction delivered again (older than the lifting): ignored.
    assert not hold(ids["person"], [ids["case"]], [], at=CHANGED)
    assert len(reads("case-management", clock)) == 3


def test_follow_holds_what_identifications_event_announces(clock: FixedClock) -> None:
    ids = seeded(clock)
    envelope = {
        "type": restrictions.EVENT,
        "data": {
            "person_id": ids["person"],
            "owner_country": "AL",
            "owner_agency": "social-services",
            "case_ids": [ids["case"]],
            "restricted": True,
            "purposes": ["return"],
            "changed_at": "2026-12-06T10:00:00.000Z",
        },
    }
    assert restrictions.follow_with(None, envelope)
    assert not restrictions.follow_with(None, envelope)  # a redelivery changes nothing
    assert reads("referral", clock) == {ids["unrelated"]}
    assert len(reads("return", clock)) == 3
    with pytest.raises(ValueError):
        restrictions.follow_with(None, {**envelope, "type": "identification.person.corrected.v1"})


def test_a_restriction_held_by_another_process_holds_here_within_a_second(
    clock: FixedClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each process reads its country's restrictions at most once per FRESH_S; one held by another process (the
    consumer, the follow-up step) is in force here as soon as that copy is older."""
    ids = seeded(clock)
    assert reads("referral", clock) == {ids["by_person"], ids["by_case"], ids["unrelated"]}  # the copy: none
    RestrictionDocument._get_collection().insert_one(  # as another process's hold() writes it
        {
            "_id": ids["person"],
            "owner_country": "AL",
            "owner_agency": "social-services",
            "restricted": True,
            "case_ids": [ids["case"]],
            "purposes": [],
            "changed_at": CHANGED,
        }
    )
    later = restrictions._monotonic() + restrictions.FRESH_S
    monkeypatch.setattr(restrictions, "_monotonic", lambda: later)
    assert reads("referral", clock) == {ids["unrelated"]}
