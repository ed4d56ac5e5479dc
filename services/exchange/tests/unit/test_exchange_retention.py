"""The exchange's retention (service_layer/retention.py on plumbing.retention), on fakes: a record closed more
than five years ago loses its forms' content, attachments, drafts and subjects in one write logged once, keeping
the message log, digests, signatures and statistics; an open record with a recent form is left and looked at
again five years after that form; the views, the evidence check and the inbox behave for an anonymised record."""

from __future__ import annotations

import base64
import io
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from exchange.adapters.documents import ExchangeCaseDocument
from exchange.adapters.envelope import EnvelopeRefused
from exchange.domain import statistics
from exchange.domain.errors import InvalidTransition
from exchange.entrypoints import http, scheduler
from exchange.service_layer import cases, deadlines, sending, subject_records
from exchange.service_layer.evidence import verify_evidence
from exchange.service_layer.records import to_case
from exchange.service_layer.retention import REMOVED, record_closed_at, retained
from exchange.service_layer.statistics import exchange_statistics
from plumbing.auth import Caller
from plumbing.clock import FixedClock, as_utc
from plumbing.crypto import RequestFingerprinter, ResponseSealer
from plumbing.documents import OwnedDocument
from plumbing.retention import ACTOR, DUE, PURPOSE, RetentionJob
from plumbing.scheduler import Claimed
from services.exchange.tests.unit import test_exchange_http as http_tests
from services.exchange.tests.unit.conftest import BASIS, CHILD, notification
from services.exchange.tests.unit.fakes import World, build_world, runtime_over, user

XK, ME = user("xk-contact-point"), user("me-contact-point")
NOTIFIED = datetime(2026, 6, 1, 9, 30, tzinfo=UTC)  # fakes.NOW: the notification is sent then
CLOSED = datetime(2026, 6, 11, 9, 30, tzinfo=UTC)  # ten days later, the case-closure
DUE_AFTER_CLOSURE = datetime(2031, 6, 11, 9, 30, tzinfo=UTC)  # + P5Y (config/platform.yaml exchange-message)
HER_CASE = "6f1d2c3b-4a5e-4f60-8b71-92a3b4c5d6e7"  # XK's own identification case of her
CANARIES = ("Krasniqi", "Arta", "Canary-remark-8231", "Q2FuYXJ5LXNjYW4", "sub-xk-case-manager")


class Actions:
    """The `log_action` the job is given: what it did, to which record."""

    def __init__(self) -> None:
        self.done: list[tuple[str, str, str]] = []

    def __call__(self, doc: OwnedDocument, action: str) -> None:
        self.done.append((str(doc.id), str(doc.owner_country), action))


def job(world: World, actions: Actions) -> RetentionJob:
    (case_records,) = retained(world.deps)
    return RetentionJob(
        case_records,
        records=world.store.system_repositories(world.clock),
        config=world.deps.config,
        clock=world.clock,
        log_action=actions,
    )


def raw(world: World, record: str) -> dict[str, Any]:
    return world.store.raw(ExchangeCaseDocument, record)


def load(world: World, record: str) -> ExchangeCaseDocument:
    return world.store.load(ExchangeCaseDocument, world.store.rows(ExchangeCaseDocument)[record])


def received(world: World, caller: Caller, reference: str) -> str:
    return next(c["id"] for c in cases.list_cases(world.deps, caller) if c["reference"] == reference)


def closed_story(world: World) -> tuple[str, str, dict[str, str]]:
    """XK notifies ME, asks for an identity verification with a remark and a scan, leaves a draft (by a case
    manager), then closes the case ten days later. Returns XK's record, ME's record and the form ids by type."""
    assert world.clock.now() == NOTIFIED
    xk, note = sending.draft_and_send(world.deps, XK, notification(), idempotency_key="n-1")
    request = {
        "form_type": "identity-verification-request",
        "recipient": "ME",
        "case_id": xk,
        "refers_to": note.id,
        "legal_basis": BASIS,
        "subject": CHILD,
        "content": {
            "person": {"given_names": ["Arta"], "surnames": ["Krasniqi"]},
            "checks": ["identity"],
            "remarks": {"text": "Canary-remark-8231", "lang": "en"},
        },
        "attachments": [
            {
                "filename": "scan.pdf",
                "media_type": "application/pdf",
                "data": base64.b64encode(b"Canary-scan").decode(),
            }
        ],
    }
    _, asked = sending.draft_and_send(world.deps, XK, request, idempotency_key="ivr-1")
    _, draft = sending.draft_form(
        world.deps, user("xk-case-manager"), {**notification(), "case_id": xk}, idempotency_key="draft-1"
    )
    cases.link_identification_case(world.deps, XK, xk, HER_CASE)
    world.pump()
    world.clock.set(CLOSED)
    closure = {
        "form_type": "case-closure",
        "recipient": "ME",
        "case_id": xk,
        "legal_basis": BASIS,
        "subject": CHILD,
        "content": {"reason": "other", "remarks": {"text": "Canary-remark-8231", "lang": "en"}},
    }
    _, closing = sending.draft_and_send(world.deps, XK, closure, idempotency_key="close-1")
    world.pump()
    me = received(world, ME, str(load(world, xk).reference))
    ids = {"notification": note.id, "request": asked.id, "draft": draft, "closure": closing.id}
    return xk, me, ids


def evidence_of(doc: dict[str, Any]) -> list[tuple[Any, ...]]:
    """What each form keeps as evidence of what crossed."""
    return [
        (
            form["id"],
            form["form_type"],
            form["direction"],
            form["status"],
            form["counterpart"],
            form["content_digest"],
            form["envelope_id"],
            form["signature_id"],
            tuple(form["receipt_ids"]),
            form["sent_at"],
            form["received_at"],
            form["acknowledged_at"],
        )
        for form in doc["forms"]
        if form["status"] != "draft"
    ]


def facts(world: World, record: str, own: str) -> list[tuple[str, str, int]]:
    case = to_case(load(world, record))
    found = statistics.form_facts(case, own, world.deps.catalogue, world.clock.now())
    return [(fact.form_type, fact.pair, fact.year) for fact in found]


# ---------------------------------------------------------------------------------------------- when


def test_a_record_counts_from_its_closure_and_an_open_one_from_its_last_form(world: World) -> None:
    closed_at = record_closed_at(world.deps.catalogue)
    xk, me, ids = closed_story(world)
    assert closed_at(load(world, xk)) == CLOSED  # sent by XK
    assert closed_at(load(world, me)) == CLOSED  # received by ME (its own clock)
    # A form after the closure (XK withdraws its request a year later) does not move the closure.
    world.clock.advance(days=365)
    sending.withdraw_form(world.deps, XK, xk, ids["request"], "sent-in-error", idempotency_key="w-1")
    world.pump()
    assert closed_at(load(world, xk)) == CLOSED and closed_at(load(world, me)) == CLOSED

    other, note = sending.draft_and_send(world.deps, XK, notification(), idempotency_key="n-2")
    assert closed_at(load(world, other)) == datetime(2027, 6, 11, 9, 30, tzinfo=UTC)  # open: its last form
    world.clock.advance(days=3)
    world.pump()  # ME's delivery receipt arrives: something happened to the form
    assert closed_at(load(world, other)) == datetime(2027, 6, 14, 9, 30, tzinfo=UTC)

    empty, draft = sending.draft_form(world.deps, XK, notification(), idempotency_key="d-2")
    sending.discard_draft(world.deps, XK, empty, draft)
    assert load(world, empty).forms == [] and closed_at(load(world, empty)) is None


# ---------------------------------------------------------------------------------------------- what


def test_a_record_closed_five_years_ago_is_anonymised_keeping_the_evidence_and_the_statistics(
    world: World,
) -> None:
    xk, me, ids = closed_story(world)
    before = {record: raw(world, record) for record in (xk, me)}
    # Four forms' contents (the draft's too); the draft's author is a case manager.
    assert len(before[xk]["contents"]) == 4 and "sub-xk-case-manager" in repr(before[xk])
    logs = {country: world.message_log.entries(country) for country in ("XK", "ME")}
    actions = Actions()
    retention = job(world, actions)

    # A minute before the period has passed: nothing happens, the job looks again when it has.
    world.clock.set(DUE_AFTER_CLOSURE - timedelta(minutes=1))
    assert retention.act(Claimed(xk, "XK")) is False
    assert raw(world, xk)["contents"] == before[xk]["contents"] and actions.done == []
    assert as_utc(raw(world, xk)[DUE]) == DUE_AFTER_CLOSURE
    assert raw(world, xk)["version"] == before[xk]["version"]  # rescheduling is not a change

    world.clock.set(DUE_AFTER_CLOSURE + timedelta(minutes=1))
    year = "2026"
    stats_before = {
        country: exchange_statistics(world.deps, caller, period=year)
        for country, caller in (("XK", XK), ("ME", ME))
    }
    facts_before = {"XK": facts(world, xk, "XK"), "ME": facts(world, me, "ME")}
    assert facts_before["XK"] == [
        ("notification", "XK>ME", 2026),
        ("identity-verification-request", "XK>ME", 2026),
        ("case-closure", "XK>ME", 2026),
    ]
    assert [pair for _, pair, _ in facts_before["ME"]] == ["XK>ME"] * 3  # receipts are control messages
    assert retention.act(Claimed(xk, "XK")) is True
    assert retention.act(Claimed(me, "ME")) is True
    assert retention.act(Claimed(xk, "XK")) is False  # once: anonymised records are never due again
    assert actions.done == [(xk, "XK", "anonymised"), (me, "ME", "anonymised")]

    for record in (xk, me):
        after = raw(world, record)
        assert after["contents"] == {} and after["outgoing"] == [] and after["assigned_to"] == []
        assert as_utc(after["anonymised_at"]) == DUE_AFTER_CLOSURE + timedelta(minutes=1)
        assert after[DUE] is None and after["next_due_at"] is None
        assert after["updated_by"] == ACTOR and after["version"] == before[record]["version"] + 1
        assert not any(canary in repr(after) for canary in CANARIES), record
        assert not any(sealed in repr(after) for sealed in before[record]["contents"].values()), record
        # The evidence of what crossed: every form sent or received, unchanged but for what it said.
        assert evidence_of(after) == evidence_of(before[record])
        assert all(form["subject"] is None and form["send_key"] is None for form in after["forms"])
        assert load(world, record).validate() is None
    xk_after = raw(world, xk)
    assert [f["id"] for f in xk_after["forms"]] == [ids["notification"], ids["request"], ids["closure"]]
    assert ids["draft"] not in repr(xk_after)  # the draft never crossed: gone with its content
    assert {f["created_by"] for f in xk_after["forms"]} == {REMOVED}
    assert {f["created_by"] for f in raw(world, me)["forms"] if f["direction"] == "in"} == {"XK:exchange"}
    assert (xk_after["reference"], xk_after["status"], xk_after["participants"]) == (
        before[xk]["reference"],
        "closed",
        ["XK", "ME"],
    )
    # The message log is not touched and still holds; the statistics are the same.
    assert {country: world.message_log.entries(country) for country in ("XK", "ME")} == logs
    assert world.message_log.verify("XK").ok and world.message_log.verify("ME").checked == len(logs["ME"])
    assert {"XK": facts(world, xk, "XK"), "ME": facts(world, me, "ME")} == facts_before
    for country, caller in (("XK", XK), ("ME", ME)):
        assert exchange_statistics(world.deps, caller, period=year) == stats_before[country]


def test_an_open_record_with_a_recent_form_is_left_and_looked_at_again_five_years_after_it(
    world: World,
) -> None:
    xk, note = sending.draft_and_send(world.deps, XK, notification(), idempotency_key="n-1")
    world.pump()
    assert as_utc(raw(world, xk)[DUE]) == datetime(2031, 6, 1, 9, 30, tzinfo=UTC)  # first look: created + P5Y
    world.clock.advance(days=3 * 365)  # 2029-05-31: XK withdraws the notification
    sending.withdraw_form(world.deps, XK, xk, note.id, "sent-in-error", idempotency_key="w-1")
    world.pump()
    me = received(world, ME, str(load(world, xk).reference))
    world.clock.set(datetime(2031, 6, 1, 9, 31, tzinfo=UTC))  # its first look has come
    before = {record: raw(world, record) for record in (xk, me)}
    actions = Actions()

    assert job(world, actions).act(Claimed(xk, "XK")) is False
    assert job(world, actions).act(Claimed(me, "ME")) is False
    assert actions.done == []
    for record in (xk, me):
        after = raw(world, record)
        assert as_utc(after[DUE]) == datetime(2034, 5, 31, 9, 30, tzinfo=UTC)  # the withdrawal + P5Y
        assert after["anonymised_at"] is None and after["version"] == before[record]["version"]
        assert after["contents"] == before[record]["contents"] and after["forms"] == before[record]["forms"]
    assert cases.read_form(world.deps, ME, me, note.id)["content"]["person"]["surnames"] == ["Krasniqi"]


# ---------------------------------------------------------------------------------------------- afterwards


def anonymised_story(world: World) -> tuple[str, str, dict[str, str]]:
    """`closed_story`, then XK's record (only) anonymised a day after its period passed."""
    xk, me, ids = closed_story(world)
    world.clock.set(DUE_AFTER_CLOSURE + timedelta(days=1))
    assert job(world, Actions()).act(Claimed(xk, "XK")) is True
    return xk, me, ids


def test_the_views_of_an_anonymised_record_show_when_and_allow_nothing(world: World) -> None:
    xk, me, ids = anonymised_story(world)
    view = cases.get_case(world.deps, XK, xk)
    assert view["anonymised_at"] == "2031-06-12T09:30:00.000Z"
    assert [f["id"] for f in view["forms"]] == [ids["notification"], ids["request"], ids["closure"]]
    assert all(f["allowed_actions"] == [] for f in view["forms"])
    assert "anonymised_at" not in cases.get_case(world.deps, ME, me)  # ME's record was not anonymised

    read = cases.read_form(world.deps, XK, xk, ids["request"])
    assert (read["content"], read["attachments"], read["subject"]) == (None, [], None)
    assert read["anonymised_at"] == "2031-06-12T09:30:00.000Z"
    assert read["form_type"] == "identity-verification-request" and read["status"] == "overdue"
    assert world.reads.entries == []  # nothing of hers was read

    # Her request of access finds the record by her identification case: its metadata, no content left.
    (found,), sent_to = subject_records.records_about(world.deps, XK, [HER_CASE])
    assert found.content["form_contents"] == {} and found.content["anonymised_at"] == view["anonymised_at"]
    assert sent_to == {"ME"}


def test_an_anonymised_record_takes_no_change_and_the_inbox_refuses_what_arrives_for_it(world: World) -> None:
    xk, me, ids = closed_story(world)
    world.clock.set(DUE_AFTER_CLOSURE + timedelta(days=1))
    assert job(world, Actions()).act(Claimed(me, "ME"))  # only ME's record
    stored = raw(world, me)

    # XK withdraws its request: the envelope reaches ME's anonymised record, which stores nothing of it.
    sending.withdraw_form(world.deps, XK, xk, ids["request"], "sent-in-error", idempotency_key="w-1")
    with pytest.raises(EnvelopeRefused) as refused:
        world.pump()
    assert refused.value.reason == "record-anonymised"
    assert raw(world, me) == stored

    for command in (
        lambda: cases.link_identification_case(world.deps, ME, me, "me-identification-case"),
        lambda: sending.draft_form(
            world.deps, ME, {**notification(recipient="XK"), "case_id": me}, idempotency_key="d"
        ),
        lambda: sending.acknowledge_form(world.deps, ME, me, ids["request"], idempotency_key="a"),
        lambda: sending.send_reminder(world.deps, ME, me, ids["request"], idempotency_key="r"),
    ):
        with pytest.raises(InvalidTransition) as error:
            command()
        assert error.value.code == "record_anonymised"
    assert not deadlines.run_due_actions(world.deps, me, "ME")
    assert raw(world, me) == stored


def test_the_evidence_check_counts_anonymised_forms_and_still_catches_a_removed_content(world: World) -> None:
    xk, me, ids = closed_story(world)
    world.clock.set(DUE_AFTER_CLOSURE + timedelta(days=1))
    assert job(world, Actions()).act(Claimed(xk, "XK"))
    report = verify_evidence(world.deps, "XK")
    assert (report.ok, report.altered_forms, report.anonymised_forms) == (True, [], 3)
    # The chain is checked as always: the three forms sent and ME's three receipts.
    assert report.chain.ok and report.chain.checked == len(world.message_log.entries("XK")) == 6

    # ME's record was not anonymised: a content removed from it is an alteration, not an anonymisation.
    del world.store.rows(ExchangeCaseDocument)[me]["contents"][ids["notification"]]
    report = verify_evidence(world.deps, "ME")
    assert (report.ok, report.altered_forms, report.anonymised_forms) == (False, [ids["notification"]], 0)


# ---------------------------------------------------------------------------------------------- the scheduler


class AccessLog:
    """What the retention asks of the access log: an entry per record acted on, and the pruning task."""

    def __init__(self) -> None:
        self.entries: list[tuple[Any, ...]] = []

    def record_read(
        self, caller: Caller, purpose: str, operation: str, resource: str, ids: Any, *rest: Any
    ) -> None:
        self.entries.append((caller.sub, caller.country, purpose, operation, resource, tuple(ids), rest[0]))

    def prune(self, due: Any) -> int:
        return 0


def test_the_scheduler_runs_the_deadlines_and_the_retention_of_the_case_records(world: World) -> None:
    xk, _me, _ids = closed_story(world)
    access_log = AccessLog()
    runtime = runtime_over(world, http_tests.SETTINGS, access_log)
    parts = scheduler.parts(runtime)
    assert [j.name for j in parts.deadlines()] == ["exchange-deadlines"]
    (retention,) = parts.retention.jobs()
    assert (retention.document_class, retention.due_field) == (ExchangeCaseDocument, DUE)
    world.clock.set(DUE_AFTER_CLOSURE + timedelta(days=1))
    assert retention.act(Claimed(xk, "XK")) is True
    assert access_log.entries == [
        (ACTOR, "XK", PURPOSE, "retention.anonymise", "exchange-message", (xk,), "anonymised")
    ]
    assert [task() for task in parts.retention.tasks()] == [0]


# ---------------------------------------------------------------------------------------------- the API


@pytest.fixture(scope="module")
def app() -> Any:
    world = build_world()
    return http.app_for(
        runtime_over(world, http_tests.SETTINGS),
        validator=http_tests.TokenValidator(),
        database=lambda: http_tests.DATABASE,
        validate_responses=True,  # the answers of an anonymised record must match the contract
        response_sealer=ResponseSealer(world.keys),
        request_fingerprinter=RequestFingerprinter(world.keys, "exchange"),
        log_stream=io.StringIO(),
        tracing_exporter="memory",
    )


@pytest.fixture
def api(app: Any) -> Iterator[http_tests.Api]:
    world = build_world(clock=FixedClock(NOTIFIED))
    http.STATE.runtime = runtime_over(world, http_tests.SETTINGS)
    http_tests.DATABASE.collection.docs.clear()
    with app.test_client() as client:
        yield http_tests.Api(world, client)


def test_the_api_answers_an_anonymised_record_by_its_contract(api: http_tests.Api) -> None:
    xk, _me, ids = anonymised_story(api.world)
    case = api.call("GET", f"/cases/{xk}", "xk-contact-point")
    assert case.status_code == 200, case.text
    assert case.json()["anonymised_at"] == "2031-06-12T09:30:00.000Z"
    form = api.call("GET", f"/cases/{xk}/forms/{ids['request']}", "xk-contact-point")
    assert form.status_code == 200, form.text
    body = form.json()
    assert (body["content"], body["attachments"], body["subject"]) == (None, [], None)
    assert body["anonymised_at"] == "2031-06-12T09:30:00.000Z" and body["allowed_actions"] == []
    listed = api.call("GET", "/cases", "xk-contact-point")
    assert listed.status_code == 200 and listed.json()["items"][0]["anonymised_at"] == body["anonymised_at"]
    verified = api.call("GET", "/message-log/verification", "xk-auditor")
    assert verified.status_code == 200, verified.text
    assert (verified.json()["ok"], verified.json()["anonymised_forms"]) == (True, 3)
    withdraw = api.call(
        "POST",
        f"/cases/{xk}/forms/{ids['request']}/withdraw",
        "xk-contact-point",
        key="withdraw-0001",
        json={"reason": "sent-in-error"},
    )
    assert withdraw.status_code == 409, withdraw.text
    assert "record_anonymised" in withdraw.text
