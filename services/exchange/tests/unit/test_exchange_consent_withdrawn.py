"""An adult's consent withdrawn in identification (`identification.person.consent_withdrawn.v1`), applied by the
consumer to the records linked to her identification cases (service_layer/consent.py), on fakes: the record is
restricted and every country that received its forms gets one signed notice under the pair's first basis that is
not consent, with the exchange's own event; a redelivery sends nothing new; records of other identification
cases or of other countries are untouched; a record that sent nothing is restricted without a notice; an
officer's notice is not sent twice; a record linked after the withdrawal gets it too."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from pymongo import MongoClient

from exchange.adapters.documents import ExchangeCaseDocument
from exchange.domain import events, legal
from exchange.domain.errors import InvalidTransition
from exchange.entrypoints import consumer
from exchange.service_layer import cases, consent, sending
from plumbing.events import new_event
from plumbing.inbox import Inbox
from services.exchange.tests.unit.conftest import ADULT, BASIS, notification
from services.exchange.tests.unit.fakes import World, user

XK, ME, AL = user("xk-contact-point"), user("me-contact-point"), user("al-contact-point")
HERS, HER_OTHER, SOMEONE_ELSE = (str(uuid.uuid4()) for _ in range(3))
ON_CONSENT = {**notification(subject=ADULT), "legal_basis": legal.CONSENT_BASIS}
# The first basis of the configured XK-ME and XK-AL catalogues that is not consent (config/platform.yaml).
NOTICE_BASIS = "bilateral-cooperation-agreement"


def withdrawn(case_ids: list[str], country: str = "XK", withdrawal_id: str | None = None) -> dict[str, Any]:
    """The event as identification publishes it (validated against its schema)."""
    data = {
        "person_id": str(uuid.uuid4()),
        "withdrawal_id": withdrawal_id or str(uuid.uuid4()),
        "owner_country": country,
        "owner_agency": "social-services",
        "case_ids": case_ids,
        "expressed": "in_writing",
        "effective_on": "2026-05-31",
    }
    return new_event(consent.CONSENT_WITHDRAWN_EVENT, data["person_id"], data, "/identification")


@pytest.fixture
def handle(monkeypatch: pytest.MonkeyPatch, world: World) -> Any:
    """The consumer's handler of the event, its inbox in memory (True the first time an event id is recorded)."""
    seen: set[str] = set()

    def record_once(self: Inbox, event: Any, extra: Any = None) -> bool:
        first = event["id"] not in seen
        seen.add(event["id"])
        return first

    monkeypatch.setattr(Inbox, "record_once", record_once)
    database = MongoClient("mongodb://localhost:1", connect=False)["thb_exchange_unit"]  # never reached
    return consumer.handlers(database, deps=lambda: world.deps)[consent.CONSENT_WITHDRAWN_EVENT]


def sent(world: World, caller: Any, body: dict[str, Any], key: str, case_id: str | None = None) -> str:
    record, _ = sending.draft_and_send(
        world.deps, caller, {**body, **({"case_id": case_id} if case_id else {})}, idempotency_key=key
    )
    return record


def hers(world: World, link: str | None = HERS) -> str:
    """XK's record of her: a notification to ME on consent, one to AL on vital interests; linked to `link`."""
    record = sent(world, XK, ON_CONSENT, "n-me")
    sent(world, XK, {**notification(recipient="AL", subject=ADULT)}, "n-al", record)
    world.pump()
    if link:
        cases.link_identification_case(world.deps, XK, record, link)
    return record


def view(world: World, caller: Any, record: str) -> dict[str, Any]:
    return cases.get_case(world.deps, caller, record)


def forms(world: World, caller: Any, record: str, form_type: str) -> list[dict[str, Any]]:
    return [f for f in view(world, caller, record)["forms"] if f["form_type"] == form_type]


def row(world: World, record: str) -> dict[str, Any]:
    return world.store.rows(ExchangeCaseDocument)[record]


def received_record(world: World, caller: Any, reference: str) -> str:
    return next(c["id"] for c in cases.list_cases(world.deps, caller) if c["reference"] == reference)


def consent_events(world: World, record: str) -> list[dict[str, Any]]:
    return [e for e in world.store.events(events.CONSENT_WITHDRAWN) if e["subject"] == record]


def refused_on_consent(world: World, caller: Any, record: str) -> str:
    with pytest.raises(InvalidTransition) as error:
        sending.draft_form(world.deps, caller, {**ON_CONSENT, "case_id": record}, idempotency_key="again")
    return error.value.code


def test_the_event_restricts_the_linked_record_and_notifies_every_country_that_received_its_forms(
    world: World, handle: Any
) -> None:
    record = hers(world)
    reference = view(world, XK, record)["reference"]
    assert handle(withdrawn([HER_OTHER, HERS])) is True
    case = view(world, XK, record)
    assert case["consent_withdrawn_at"] is not None
    restricted = {
        f["counterpart"]: f["restricted"] for f in case["forms"] if f["form_type"] == "notification"
    }
    assert restricted == {"ME": True, "AL": False}  # only what rested on consent
    notices = forms(world, XK, record, "consent-withdrawn")
    assert sorted(n["counterpart"] for n in notices) == ["AL", "ME"]
    assert {n["legal_basis"] for n in notices} == {NOTICE_BASIS} and {n["status"] for n in notices} == {
        "sent"
    }
    stored = [f for f in row(world, record)["forms"] if f["form_type"] == "consent-withdrawn"]
    assert {f["created_by"] for f in stored} == {consent.ACTOR}
    # Delivered like an officer's: signed and encrypted to each country, logged once each.
    assert sorted(recipient for recipient, _, _ in world.transport.queue) == ["AL", "ME"]
    logged = [e for e in world.message_log.entries("XK") if e["form_type"] == "consent-withdrawn"]
    assert sorted(e["recipient"] for e in logged) == ["AL", "ME"]
    # The exchange's own event, which the return service stops returns from.
    (event,) = consent_events(world, record)
    assert event["data"] == {
        "case_id": record,
        "reference": reference,
        "owner_country": "XK",
        "direction": "out",
        "countries": ["AL", "ME"],
        "forms_restricted": 1,
    }
    assert refused_on_consent(world, XK, record) == "consent_withdrawn"
    # There: the notice arrives, verified, and restricts Montenegro's copy of what rested on consent.
    world.pump()
    me_record = received_record(world, ME, reference)
    assert view(world, ME, me_record)["consent_withdrawn_at"] is not None
    (notice,) = forms(world, ME, me_record, "consent-withdrawn")
    assert cases.read_form(world.deps, ME, me_record, notice["id"])["content"] == {
        "scope": "all-processing",
        "effective_on": "2026-05-31",
    }
    (arrived,) = forms(world, ME, me_record, "notification")
    with pytest.raises(InvalidTransition):
        cases.read_form(world.deps, ME, me_record, arrived["id"])


def test_a_redelivery_sends_nothing_new(world: World, handle: Any) -> None:
    record = hers(world)
    event = withdrawn([HERS])
    assert handle(event) is True
    world.pump()
    version, log = row(world, record)["version"], world.message_log.entries("XK")
    assert handle(event) is False  # the inbox knew it
    assert world.transport.queue == [] and row(world, record)["version"] == version
    assert world.message_log.entries("XK") == log
    # Applied again after a crash before the inbox record (the same event, a new inbox): still nothing.
    consent.apply_consent_withdrawal(world.deps, event)
    assert world.transport.queue == [] and row(world, record)["version"] == version
    assert len(forms(world, XK, record, "consent-withdrawn")) == 2 and len(consent_events(world, record)) == 1


def test_records_of_other_identification_cases_or_other_countries_are_untouched(
    world: World, handle: Any
) -> None:
    other = hers(world, link=SOMEONE_ELSE)
    unlinked = hers(world, link=None)
    albanian = sent(world, AL, ON_CONSENT, "al-n")
    world.pump()
    cases.link_identification_case(world.deps, AL, albanian, HERS)  # the same id, in another country's record
    before = {r: row(world, r)["version"] for r in (other, unlinked, albanian)}
    handle(withdrawn([HERS]))
    assert {r: row(world, r)["version"] for r in before} == before
    for caller, record in ((XK, other), (XK, unlinked), (AL, albanian)):
        assert view(world, caller, record)["consent_withdrawn_at"] is None
        assert forms(world, caller, record, "consent-withdrawn") == []
    assert world.transport.queue == [] and world.store.events(events.CONSENT_WITHDRAWN) == []
    sending.draft_form(world.deps, AL, {**ON_CONSENT, "case_id": albanian}, idempotency_key="still")
    # An event of Albania's names only Albania's records.
    handle(withdrawn([HERS], country="AL"))
    assert view(world, AL, albanian)["consent_withdrawn_at"] is not None
    assert {r: row(world, r)["version"] for r in (other, unlinked)} == {
        r: before[r] for r in (other, unlinked)
    }


def test_a_record_that_sent_nothing_is_restricted_without_a_notice(world: World, handle: Any) -> None:
    record, draft = sending.draft_form(world.deps, XK, ON_CONSENT, idempotency_key="d")
    cases.link_identification_case(world.deps, XK, record, HERS)
    handle(withdrawn([HERS]))
    assert world.transport.queue == [] and forms(world, XK, record, "consent-withdrawn") == []
    assert view(world, XK, record)["consent_withdrawn_at"] is not None
    (event,) = consent_events(world, record)
    assert event["data"]["countries"] == [] and event["data"]["direction"] == "out"
    with pytest.raises(InvalidTransition) as error:
        sending.send_form(world.deps, XK, record, draft, idempotency_key="s")
    assert error.value.code == "consent_withdrawn"


def test_an_officer_who_already_notified_is_not_repeated(world: World, handle: Any) -> None:
    record = hers(world)
    sending.notify_consent_withdrawn(
        world.deps,
        XK,
        record,
        scope="cross-border-exchange",
        effective_on="2026-05-31",
        legal_basis=BASIS,
        idempotency_key="officer",
    )
    world.pump()
    version = row(world, record)["version"]
    handle(withdrawn([HERS]))
    assert world.transport.queue == [] and row(world, record)["version"] == version
    assert len(forms(world, XK, record, "consent-withdrawn")) == 2


def test_a_record_linked_after_the_withdrawal_gets_it_too(world: World, handle: Any) -> None:
    handle(withdrawn([HERS]))  # nothing linked yet: only kept
    assert world.transport.queue == []
    record = hers(world, link=None)
    cases.link_identification_case(world.deps, user("xk-case-manager"), record, HERS)
    assert view(world, XK, record)["consent_withdrawn_at"] is not None
    notices = forms(world, XK, record, "consent-withdrawn")
    assert sorted((n["counterpart"], n["legal_basis"]) for n in notices) == [
        ("AL", NOTICE_BASIS),
        ("ME", NOTICE_BASIS),
    ]
    assert [e["data"]["countries"] for e in consent_events(world, record)] == [["AL", "ME"]]
    assert refused_on_consent(world, XK, record) == "consent_withdrawn"
    # Linking again changes nothing more.
    cases.link_identification_case(world.deps, XK, record, HERS)
    assert len(forms(world, XK, record, "consent-withdrawn")) == 2


def test_a_record_linked_to_a_withdrawn_case_never_sends_on_consent(world: World, handle: Any) -> None:
    """Even when the withdrawal has not been applied to the record yet (the link written, then a crash)."""
    handle(withdrawn([HERS]))
    record, draft = sending.draft_form(world.deps, XK, ON_CONSENT, idempotency_key="d")
    world.store.rows(ExchangeCaseDocument)[record]["identification_case_id"] = HERS  # linked, not applied
    assert view(world, XK, record)["consent_withdrawn_at"] is None
    with pytest.raises(InvalidTransition) as error:
        sending.send_form(world.deps, XK, record, draft, idempotency_key="s")
    assert error.value.code == "consent_withdrawn"
    assert refused_on_consent(world, XK, record) == "consent_withdrawn"
    sending.draft_form(
        world.deps, XK, {**notification(subject=ADULT), "case_id": record}, idempotency_key="v"
    )


def test_the_notice_basis_is_the_pairs_first_that_is_not_consent() -> None:
    assert legal.notice_basis([legal.CONSENT_BASIS, "a", "b"]) == "a"
    assert legal.notice_basis([legal.CONSENT_BASIS]) == legal.CONSENT_BASIS  # the pair has no other
    assert legal.notice_basis([]) is None
