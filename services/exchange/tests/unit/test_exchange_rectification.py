"""Rectification of person data already sent (GDPR Art. 16 and 19), on fakes: identification's
`identification.person.corrected.v1` marks the forms Albania sent about her that are in force and carry a changed
member (service_layer/rectification.py), once; the correction drafted from identification on the officer's behalf
carries the new values and the old content otherwise, supersedes the old form and, once sent, clears the mark and
withdraws the old form on the recipient's side; the body takes exactly one of `content` and
`refresh_from_identification`; the HTTP answer shows the mark as the contract says."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

import pytest
from pymongo import MongoClient

from exchange.adapters.documents import ExchangeCaseDocument
from exchange.domain import legal
from exchange.domain.errors import DomainError, InvalidTransition
from exchange.entrypoints import consumer
from exchange.service_layer import cases, rectification, sending
from plumbing.events import new_event
from plumbing.inbox import Inbox
from services.exchange.tests.unit.conftest import ADULT, notification, notification_content
from services.exchange.tests.unit.fakes import NOW, World, user
from services.exchange.tests.unit.test_exchange_http import (  # noqa: F401 (the app and api fixtures)
    Api,
    api,
    app,
    form_path,
)
from services.exchange.tests.unit.test_exchange_prefill import FakeIdentification

AL, ME, XK = user("al-contact-point"), user("me-contact-point"), user("xk-contact-point")
AL_CASE_MANAGER = user("al-case-manager")
HER_CASE, HER_OTHER_CASE, SOMEONE_ELSES_CASE = (str(uuid.uuid4()) for _ in range(3))
HER = str(uuid.uuid4())
SINCE = "2026-06-01T09:30:00.000Z"  # fakes.NOW as the marks store it


def corrected(
    fields: list[str],
    *,
    case_ids: list[str] | None = None,
    correction_id: str | None = None,
    country: str = "AL",
) -> dict[str, Any]:
    """The event as identification publishes it (validated against its schema: ids and codes only)."""
    data: dict[str, Any] = {
        "person_id": HER,
        "correction_id": correction_id or str(uuid.uuid4()),
        "owner_country": country,
        "owner_agency": "state-police",
        "reason": "document_seen",
        "fields": fields,
        "age_group": "child",
    }
    if case_ids is not None:
        data["case_ids"] = case_ids
    return new_event(rectification.PERSON_CORRECTED, HER, data, "/identification")


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
    return consumer.handlers(database, deps=lambda: world.deps)[rectification.PERSON_CORRECTED]


def send(
    world: World, caller: Any, body: dict[str, Any], key: str, case_id: str | None = None
) -> tuple[str, str]:
    record, form = sending.draft_and_send(
        world.deps, caller, {**body, **({"case_id": case_id} if case_id else {})}, idempotency_key=key
    )
    return record, form.id


def her_record(world: World) -> dict[str, str]:
    """Albania's record of her, linked to her identification case: a notification to ME (received there), one to
    XK withdrawn since, and a draft to XK."""
    record, to_me = send(world, AL, notification(), "n-me")
    _, to_xk = send(world, AL, notification(recipient="XK"), "n-xk", record)
    world.pump()
    sending.withdraw_form(world.deps, AL, record, to_xk, "sent-in-error", idempotency_key="w-xk")
    _, draft = sending.draft_form(
        world.deps, AL, {**notification(recipient="XK"), "case_id": record}, idempotency_key="d-xk"
    )
    cases.link_identification_case(world.deps, AL, record, HER_CASE)
    world.pump()
    return {"record": record, "to_me": to_me, "to_xk": to_xk, "draft": draft}


def form(world: World, caller: Any, record: str, form_id: str) -> dict[str, Any]:
    return next(f for f in cases.get_case(world.deps, caller, record)["forms"] if f["id"] == form_id)


def version(world: World, record: str) -> int:
    return int(world.store.rows(ExchangeCaseDocument)[record]["version"])


def received_record(world: World, caller: Any, reference: str) -> str:
    return next(c["id"] for c in cases.list_cases(world.deps, caller) if c["reference"] == reference)


def identification_with(surnames: list[str], **person: Any) -> FakeIdentification:
    """What identification answers the officer now: her case (another category and needs than the form says)
    and her person as corrected (given names, birth, sex and nationalities as the form already says)."""
    current = notification_content()["person"]
    return FakeIdentification(
        {HER_CASE: {"id": HER_CASE, "person_id": HER, "category": "victim", "needs": ["medical_care"]}},
        {HER: {"id": HER, **current, "surnames": surnames, **person}},
    )


# ---------------------------------------------------------------------------------------------- marking


def test_a_corrected_surname_marks_only_the_sent_form_in_force_about_her(world: World, handle: Any) -> None:
    hers = her_record(world)
    someone_else = {**notification(), "content": notification_content(given="Drita")}
    other, about_someone_else = send(world, AL, someone_else, "n-other")
    cases.link_identification_case(world.deps, AL, other, SOMEONE_ELSES_CASE)
    world.pump()
    before_other = version(world, other)
    event = corrected(["surnames"], case_ids=[HER_OTHER_CASE, HER_CASE])
    correction_id = event["data"]["correction_id"]

    assert handle(event) is True

    marked = form(world, AL, hers["record"], hers["to_me"])
    assert marked["correction_due"] == {
        "correction_id": correction_id,
        "correction_ids": [correction_id],
        "fields": ["/person/surnames"],
        "since": SINCE,
        "updated_at": SINCE,
    }
    assert [a["action"] for a in marked["allowed_actions"]] == ["withdraw", "correct"]
    # Withdrawn, a draft, a form about another person: untouched.
    for form_id in (hers["to_xk"], hers["draft"]):
        assert "correction_due" not in form(world, AL, hers["record"], form_id)
    assert "correction_due" not in form(world, AL, other, about_someone_else)
    assert version(world, other) == before_other
    # One timeline entry on the record, ids and codes only.
    assert cases.get_case(world.deps, AL, hers["record"])["rectifications"] == [
        {
            "action": "correction_due",
            "correction_id": correction_id,
            "at": SINCE,
            "by": "system:exchange-consumer",
            "forms": [hers["to_me"]],
            "fields": ["surnames"],
        }
    ]
    # A case manager, who may draft the correction but not send it, is offered `correct` while it is marked.
    as_case_manager = form(world, AL_CASE_MANAGER, hers["record"], hers["to_me"])
    assert [a["action"] for a in as_case_manager["allowed_actions"]] == ["correct"]
    # Nothing crossed the border, and Montenegro's copy shows no mark.
    assert world.transport.queue == []
    reference = cases.get_case(world.deps, AL, hers["record"])["reference"]
    me_record = received_record(world, ME, reference)
    assert "correction_due" not in form(world, ME, me_record, hers["to_me"])
    assert cases.get_case(world.deps, ME, me_record)["rectifications"] == []


def test_a_redelivery_changes_nothing(world: World, handle: Any) -> None:
    hers = her_record(world)
    event = corrected(["surnames", "date_of_birth"], case_ids=[HER_CASE])
    assert handle(event) is True
    stored = version(world, hers["record"])
    assert handle(event) is False  # the inbox knew it
    # Applied again after a crash before the inbox record (the same event, a new inbox): still nothing.
    assert rectification.mark_corrections_due(world.deps, event) == []
    assert version(world, hers["record"]) == stored
    assert form(world, AL, hers["record"], hers["to_me"])["correction_due"]["correction_ids"] == [
        event["data"]["correction_id"]
    ]
    assert len(cases.get_case(world.deps, AL, hers["record"])["rectifications"]) == 1


def test_a_second_correction_adds_to_the_mark(world: World, handle: Any) -> None:
    hers = her_record(world)
    first, second = corrected(["surnames"], case_ids=[HER_CASE]), corrected(["sex"], case_ids=[HER_CASE])
    handle(first)
    world.clock.advance(timedelta(hours=1))
    handle(second)
    due = form(world, AL, hers["record"], hers["to_me"])["correction_due"]
    ids = [first["data"]["correction_id"], second["data"]["correction_id"]]
    assert due == {
        "correction_id": ids[1],
        "correction_ids": ids,
        "fields": ["/person/sex", "/person/surnames"],
        "since": SINCE,
        "updated_at": "2026-06-01T10:30:00.000Z",
    }


def test_a_correction_of_what_the_form_does_not_carry_marks_nothing(world: World, handle: Any) -> None:
    hers = her_record(world)
    # Documents and languages are not among what the notification takes from the person.
    stored = version(world, hers["record"])
    assert (
        rectification.mark_corrections_due(
            world.deps, corrected(["documents", "languages"], case_ids=[HER_CASE])
        )
        == []
    )
    # A date of birth the sent content does not hold.
    content = notification_content()
    del content["person"]["date_of_birth"]
    record, without_birth = send(world, AL, {**notification(), "content": content}, "n-no-birth")
    cases.link_identification_case(world.deps, AL, record, HER_OTHER_CASE)
    handle(corrected(["date_of_birth"], case_ids=[HER_CASE, HER_OTHER_CASE]))
    assert "correction_due" not in form(world, AL, record, without_birth)
    assert cases.get_case(world.deps, AL, record)["rectifications"] == []
    # ... while the form that holds one is marked for it.
    assert form(world, AL, hers["record"], hers["to_me"])["correction_due"]["fields"] == [
        "/person/date_of_birth"
    ]
    assert version(world, hers["record"]) == stored + 1


def test_records_not_linked_anonymised_restricted_or_of_another_country_are_left_alone(
    world: World, handle: Any
) -> None:
    unlinked, unlinked_form = send(world, AL, notification(), "n-unlinked")
    on_consent = {**notification(subject=ADULT), "legal_basis": legal.CONSENT_BASIS}
    restricted, restricted_form = send(world, AL, on_consent, "n-consent")
    cases.link_identification_case(world.deps, AL, restricted, HER_CASE)
    sending.withdraw_consent_by_system(
        world.deps, AL, restricted, effective_on="2026-05-31", idempotency_key="consent-withdrawal:w"
    )
    anonymised, _ = send(world, AL, notification(), "n-anonymised")
    cases.link_identification_case(world.deps, AL, anonymised, HER_CASE)
    rows = world.store.rows(ExchangeCaseDocument)
    rows[anonymised] = {**rows[anonymised], "anonymised_at": NOW}
    kosovar, _ = send(world, XK, notification(), "n-xk-side")
    cases.link_identification_case(
        world.deps, XK, kosovar, HER_CASE
    )  # the same id in another country's record
    before = {r: version(world, r) for r in (unlinked, restricted, anonymised, kosovar)}

    assert rectification.mark_corrections_due(world.deps, corrected(["surnames"], case_ids=[HER_CASE])) == []
    assert (
        rectification.mark_corrections_due(world.deps, corrected(["surnames"])) == []
    )  # an old event: no case ids

    assert {r: version(world, r) for r in before} == before
    assert "correction_due" not in form(world, AL, unlinked, unlinked_form)
    assert form(world, AL, restricted, restricted_form)["restricted"] is True
    assert "correction_due" not in form(world, AL, restricted, restricted_form)


# ---------------------------------------------------------------------------------------------- correcting


def test_the_correction_drafted_from_identification_carries_the_new_surname_and_clears_the_mark_once_sent(
    world: World, handle: Any
) -> None:
    hers = her_record(world)
    sending.discard_draft(world.deps, AL, hers["record"], hers["draft"])
    handle(corrected(["surnames"], case_ids=[HER_CASE]))
    identification = identification_with(["Hoxha"])
    world.deps.identification = identification
    world.clock.advance(timedelta(minutes=5))

    record, correction = rectification.correct_form(
        world.deps,
        AL,
        hers["record"],
        hers["to_me"],
        {"refresh_from_identification": True},
        idempotency_key="fix",
    )

    assert record == hers["record"]
    assert identification.reads == [("case", HER_CASE), ("person", HER)]
    assert (
        world.reads.entries == []
    )  # nothing of hers was returned by the exchange: identification logged her read
    draft = form(world, AL, record, correction)
    assert draft["status"] == "draft" and draft["supersedes"] == hers["to_me"]
    assert draft["refreshed_from_identification"] == {
        "at": "2026-06-01T09:35:00.000Z",
        "copied": [
            "/person/date_of_birth",
            "/person/given_names",
            "/person/nationalities",
            "/person/sex",
            "/person/surnames",
        ],
        "left_out": [],
        "removed": [],
    }
    expected = notification_content()
    expected["person"]["surnames"] = ["Hoxha"]  # the category and needs stay the form's, not the case's now
    assert cases.read_form(world.deps, AL, record, correction)["content"] == expected
    assert "correction_due" in form(
        world, AL, record, hers["to_me"]
    )  # still due until the correction is sent
    # A retry with the same key answers the same draft without reading identification again.
    again = rectification.correct_form(
        world.deps,
        AL,
        hers["record"],
        hers["to_me"],
        {"refresh_from_identification": True},
        idempotency_key="fix",
    )
    assert again == (record, correction) and len(identification.reads) == 2

    sending.send_form(world.deps, AL, record, correction, idempotency_key="send-fix")
    world.pump()

    old, new = form(world, AL, record, hers["to_me"]), form(world, AL, record, correction)
    assert old["status"] == "withdrawn" and old["superseded_by"] == correction
    assert "correction_due" not in old and "correction_due" not in new
    assert new["status"] == "received"
    # Montenegro: the old form withdrawn as superseded, the correction received with the new surname.
    me_record = received_record(world, ME, cases.get_case(world.deps, AL, record)["reference"])
    theirs_old, theirs_new = form(world, ME, me_record, hers["to_me"]), form(world, ME, me_record, correction)
    assert theirs_old["status"] == "withdrawn"
    assert theirs_old["withdrawal_reason"] == "superseded-by-correction"
    assert theirs_old["superseded_by"] == correction
    assert theirs_new["status"] == "received" and theirs_new["supersedes"] == hers["to_me"]
    assert cases.read_form(world.deps, ME, me_record, correction)["content"]["person"]["surnames"] == [
        "Hoxha"
    ]


def test_a_value_the_form_refuses_stays_due_on_the_correction(world: World, handle: Any) -> None:
    hers = her_record(world)
    sending.discard_draft(world.deps, AL, hers["record"], hers["draft"])
    handle(corrected(["surnames", "date_of_birth"], case_ids=[HER_CASE]))
    # A surname longer than the form takes (left out, the old one stays), a birth now known only as a range.
    world.deps.identification = identification_with(["K" * 101], date_of_birth=None)
    record, correction = rectification.correct_form(
        world.deps,
        AL,
        hers["record"],
        hers["to_me"],
        {"refresh_from_identification": True},
        idempotency_key="fix",
    )
    report = form(world, AL, record, correction)["refreshed_from_identification"]
    assert (report["left_out"], report["removed"]) == (["/person/surnames"], ["/person/date_of_birth"])
    person = cases.read_form(world.deps, AL, record, correction)["content"]["person"]
    assert person["surnames"] == ["Krasniqi"] and "date_of_birth" not in person
    sending.send_form(world.deps, AL, record, correction, idempotency_key="send-fix")
    assert form(world, AL, record, correction)["correction_due"]["fields"] == ["/person/surnames"]
    assert "correction_due" not in form(world, AL, record, hers["to_me"])


def test_a_correction_drafted_before_the_mark_carries_the_mark_over(world: World, handle: Any) -> None:
    hers = her_record(world)
    sending.discard_draft(world.deps, AL, hers["record"], hers["draft"])
    _, early = rectification.correct_form(
        world.deps,
        AL,
        hers["record"],
        hers["to_me"],
        {"content": notification_content()},
        idempotency_key="early",
    )
    world.clock.advance(timedelta(minutes=1))
    handle(corrected(["surnames"], case_ids=[HER_CASE]))
    sending.send_form(world.deps, AL, hers["record"], early, idempotency_key="send-early")
    assert form(world, AL, hers["record"], early)["correction_due"]["fields"] == ["/person/surnames"]
    assert "correction_due" not in form(world, AL, hers["record"], hers["to_me"])


def test_without_a_linked_identification_case_the_refresh_is_409_and_reads_nothing(world: World) -> None:
    record, sent = send(world, AL, notification(), "n-unlinked")
    identification = identification_with(["Hoxha"])
    world.deps.identification = identification
    with pytest.raises(InvalidTransition) as error:
        rectification.correct_form(
            world.deps, AL, record, sent, {"refresh_from_identification": True}, idempotency_key="fix"
        )
    assert error.value.code == "identification_case_not_linked"
    assert identification.reads == [] and len(cases.get_case(world.deps, AL, record)["forms"]) == 1


def test_the_body_takes_exactly_one_of_content_and_refresh(world: World) -> None:
    hers = her_record(world)
    sending.discard_draft(world.deps, AL, hers["record"], hers["draft"])
    identification = identification_with(["Hoxha"])
    world.deps.identification = identification
    stored = version(world, hers["record"])
    bodies = {
        ("not_with_content", "/refresh_from_identification"): {
            "content": notification_content(),
            "refresh_from_identification": True,
        },
        ("content_or_refresh_required", "/content"): {"refresh_from_identification": False},
    }
    for (code, pointer), body in bodies.items():
        with pytest.raises(DomainError) as error:
            rectification.correct_form(
                world.deps, AL, hers["record"], hers["to_me"], body, idempotency_key="k"
            )
        assert error.value.codes == {(code, pointer)}
    assert identification.reads == [] and version(world, hers["record"]) == stored


# ---------------------------------------------------------------------------------------------- over HTTP


def test_over_http_the_mark_shows_and_the_correction_is_drafted_from_identification(
    api: Api,  # noqa: F811 (the fixture imported above)
) -> None:
    world = api.world
    drafted = api.call("POST", "/drafts", "al-contact-point", key="draft-al-0001", json=notification())
    path = form_path(drafted)
    record, form_id = path.split("/")[2], path.split("/")[4]
    assert api.call("POST", path + "/send", "al-contact-point", key="send-al-0001").status_code == 200
    unlinked = api.call(
        "POST",
        path + "/corrections",
        "al-contact-point",
        key="correct-0000",
        json={"refresh_from_identification": True},
    )
    assert unlinked.status_code == 409, unlinked.text
    assert unlinked.json()["errors"] == [{"pointer": "/body", "code": "identification_case_not_linked"}]
    linked = api.call(
        "PUT",
        f"/cases/{record}/identification-case",
        "al-contact-point",
        json={"identification_case_id": HER_CASE},
    )
    assert linked.status_code == 200, linked.text
    event = corrected(["surnames"], case_ids=[HER_CASE])
    assert rectification.mark_corrections_due(world.deps, event) == [record]

    case = api.call(
        "GET", f"/cases/{record}", "al-contact-point"
    )  # the answer is checked against the contract
    assert case.status_code == 200, case.text
    (shown,) = case.json()["forms"]
    assert shown["correction_due"]["fields"] == ["/person/surnames"]
    assert shown["correction_due"]["correction_id"] == event["data"]["correction_id"]
    assert "correct" in [a["action"] for a in shown["allowed_actions"]]
    assert case.json()["rectifications"][0]["forms"] == [form_id]

    both = api.call(
        "POST",
        path + "/corrections",
        "al-contact-point",
        key="correct-0001",
        json={"content": notification_content(), "refresh_from_identification": True},
    )
    assert both.status_code == 422, both.text
    assert both.json()["errors"] == [
        {"pointer": "/body/refresh_from_identification", "code": "not_with_content"}
    ]

    world.deps.identification = identification_with(["Hoxha"])
    refreshed = api.call(
        "POST",
        path + "/corrections",
        "al-contact-point",
        key="correct-0002",
        json={"refresh_from_identification": True},
    )
    assert refreshed.status_code == 201, refreshed.text
    correction = form_path(refreshed).rsplit("/", 1)[1]
    new = next(f for f in refreshed.json()["forms"] if f["id"] == correction)
    assert new["supersedes"] == form_id and new["refreshed_from_identification"]["left_out"] == []
    read = api.call("GET", form_path(refreshed), "al-contact-point")
    assert read.status_code == 200, read.text
    assert read.json()["content"]["person"]["surnames"] == ["Hoxha"]
