"""The exchange through the service layer, on fakes (tests/unit/fakes.py): drafts and their validation, sends
that happen once, receiving (verified, stored once, receipted), scope, access logging, withdrawal, correction,
consent withdrawn, evidence, and a form type that exists only in test data."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from exchange.adapters.documents import ExchangeCaseDocument
from exchange.adapters.envelope import EnvelopeRefused
from exchange.domain.catalogue import FormCatalogue
from exchange.domain.errors import DomainError, InvalidTransition
from exchange.service_layer import cases, receiving, sending
from exchange.service_layer.evidence import verify_evidence
from plumbing.errors import Conflict, NotFound, OutOfScope
from services.exchange.tests.unit.conftest import ADULT, BASIS, CHILD, notification
from services.exchange.tests.unit.fakes import World, build_world, user
from services.exchange.tests.unit.test_exchange_catalogue import LANGUAGES, ROLES, with_test_form_type

XK, ME, AL = user("xk-contact-point"), user("me-contact-point"), user("al-contact-point")


def notify(world: World, key: str = "k-1", **body: Any) -> tuple[str, str]:
    case_id, form = sending.draft_and_send(world.deps, XK, {**notification(), **body}, idempotency_key=key)
    return case_id, form.id


def me_case_id(world: World, reference: str) -> str:
    return next(c["id"] for c in cases.list_cases(world.deps, ME) if c["reference"] == reference)


def reference(world: World, case_id: str) -> str:
    return str(cases.get_case(world.deps, XK, case_id)["reference"])


def stored_rows(world: World) -> int:
    return len(world.store.rows(ExchangeCaseDocument))


def status(world: World, caller: Any, case_id: str, form_id: str) -> str:
    return next(
        f["status"] for f in cases.get_case(world.deps, caller, case_id)["forms"] if f["id"] == form_id
    )


# ---------------------------------------------------------------------------------------------- drafts


def test_a_draft_breaking_its_schema_is_refused_with_pointers_and_stores_nothing(world: World) -> None:
    body = notification()
    body["content"]["health_narrative"] = {"text": "...", "lang": "sq"}
    body["content"]["category"] = "unknown"
    with pytest.raises(DomainError) as error:
        sending.draft_form(world.deps, XK, body, idempotency_key="k")
    assert error.value.codes == {
        ("not_allowed", "/content/health_narrative"),
        ("unknown_code", "/content/category"),
    }
    assert stored_rows(world) == 0 and world.transport.wire == []


def test_the_legal_basis_consent_and_recipient_are_checked_before_anything_is_stored(world: World) -> None:
    body = notification(recipient="XK", subject={"age_group": "adult"})
    body["legal_basis"] = "consent-of-data-subject"
    with pytest.raises(DomainError) as error:
        sending.draft_form(world.deps, XK, body, idempotency_key="k")
    assert error.value.codes == {("recipient_is_own_country", "/recipient"), ("required", "/subject/consent")}
    child_on_consent = {**notification(), "legal_basis": "consent-of-data-subject"}
    with pytest.raises(DomainError) as error:
        sending.draft_form(world.deps, XK, child_on_consent, idempotency_key="k")
    assert error.value.codes == {("consent_not_a_basis_for_child", "/legal_basis")}
    assert stored_rows(world) == 0


def test_roles_come_from_the_catalogue(world: World) -> None:
    case_id, form_id = sending.draft_form(
        world.deps, user("xk-case-manager"), notification(), idempotency_key="k"
    )
    with pytest.raises(OutOfScope):
        sending.send_form(world.deps, user("xk-case-manager"), case_id, form_id, idempotency_key="s")
    with pytest.raises(OutOfScope):
        sending.draft_form(world.deps, user("xk-police"), notification(), idempotency_key="k2")
    sending.send_form(world.deps, XK, case_id, form_id, idempotency_key="s")
    assert world.transport.queue


# ---------------------------------------------------------------------------------------------- exactly once


def test_a_retried_draft_or_send_never_makes_a_second_form(world: World) -> None:
    first = sending.draft_form(world.deps, XK, notification(), idempotency_key="d-1")
    assert sending.draft_form(world.deps, XK, notification(), idempotency_key="d-1") == first
    with pytest.raises(Conflict):
        sending.draft_form(world.deps, XK, notification(recipient="AL"), idempotency_key="d-1")
    case_id, form_id = first
    sent = sending.send_form(world.deps, XK, case_id, form_id, idempotency_key="s-1")
    again = sending.send_form(world.deps, XK, case_id, form_id, idempotency_key="s-1")
    assert again.envelope_id == sent.envelope_id
    assert len(world.transport.queue) == 1 and stored_rows(world) == 1
    with pytest.raises(InvalidTransition):
        sending.send_form(world.deps, XK, case_id, form_id, idempotency_key="s-2")


def test_a_redelivered_or_replayed_envelope_stores_nothing_new(world: World) -> None:
    notify(world)
    token = world.transport.queue[0][2]
    assert [o.result for o in world.pump()] == [
        receiving.STORED,
        receiving.STORED,
    ]  # the form, then its receipt
    me_rows = {
        k: dict(v) for k, v in world.store.rows(ExchangeCaseDocument).items() if v["owner_country"] == "ME"
    }
    me_log = world.message_log.entries("ME")
    outcome = receiving.receive_envelope(world.deps, "ME", token)
    assert outcome.result == receiving.DUPLICATE
    assert {k: v["version"] for k, v in me_rows.items()} == {
        k: v["version"]
        for k, v in world.store.rows(ExchangeCaseDocument).items()
        if v["owner_country"] == "ME"
    }
    assert world.message_log.entries("ME") == me_log and world.transport.queue == []


def test_an_envelope_that_could_not_be_delivered_waits_in_the_senders_record(world: World) -> None:
    world.transport.down = True
    case_id, _ = notify(world)
    doc = world.store.load(ExchangeCaseDocument, world.store.raw(ExchangeCaseDocument, case_id))
    assert len(doc.outgoing) == 1 and world.transport.queue == []
    world.transport.down = False
    from exchange.service_layer.outgoing import deliver

    deliver(world.deps, XK, doc)
    assert len(world.transport.queue) == 1
    assert world.store.raw(ExchangeCaseDocument, case_id)["outgoing"] == []
    assert len([e for e in world.message_log.entries("XK") if e["direction"] == "sent"]) == 1


# ---------------------------------------------------------------------------------------------- receiving


def test_receiving_stores_once_sends_a_signed_receipt_and_starts_the_deadline(world: World) -> None:
    case_id, form_id = notify(world)
    world.pump()
    me_case = me_case_id(world, reference(world, case_id))
    received = next(f for f in cases.get_case(world.deps, ME, me_case)["forms"] if f["id"] == form_id)
    assert received["status"] == "received" and received["deadline"] == "2026-06-06T09:30:00.000Z"
    assert status(world, XK, case_id, form_id) == "received"  # the receipt came back
    sending.acknowledge_form(world.deps, ME, me_case, form_id, idempotency_key="a-1")
    world.pump()
    assert status(world, XK, case_id, form_id) == "acknowledged"
    assert status(world, ME, me_case, form_id) == "acknowledged"


def test_forged_or_re_addressed_envelopes_store_nothing(world: World) -> None:
    notify(world)
    _, _, token = world.transport.queue.pop()
    rows = stored_rows(world)
    with pytest.raises(EnvelopeRefused) as error:
        receiving.receive_envelope(world.deps, "AL", token)
    assert error.value.reason == "not-addressed-to-us"
    parts = token.split(".")
    with pytest.raises(EnvelopeRefused) as error:
        receiving.receive_envelope(world.deps, "ME", ".".join([*parts[:3], parts[3][::-1], parts[4]]))
    assert error.value.reason == "undecryptable"
    assert stored_rows(world) == rows and world.message_log.entries("ME") == []


def test_a_signed_form_that_breaks_its_schema_is_refused_by_the_receiver(world: World) -> None:
    message = {
        "case": {"reference": "XK-EX-2026-0009", "participants": ["XK", "ME"]},
        "form": {"id": "f", "form_type": "notification", "version": 1, "kind": "form", "content_digest": "x"},
        "body": {
            "content": {"person": {"surnames": ["x"], "given_names": ["y"]}, "perpetrator": "z"},
            "attachments": [],
        },
    }
    token = world.deps.envelopes.seal(message, sender="XK", recipient="ME", envelope_id="e-bad").token
    with pytest.raises(EnvelopeRefused) as error:
        receiving.receive_envelope(world.deps, "ME", token)
    assert error.value.reason == "invalid-content" and stored_rows(world) == 0


# ---------------------------------------------------------------------------------------------- scope


def test_a_third_country_sees_nothing_of_what_two_others_exchanged(world: World) -> None:
    case_id, form_id = notify(world)
    world.pump()
    me_case = me_case_id(world, reference(world, case_id))
    for caller in (AL, user("al-coordinator"), user("al-case-manager"), user("al-auditor")):
        assert cases.list_cases(world.deps, caller) == []
        for some_case in (case_id, me_case):
            with pytest.raises(NotFound):
                cases.get_case(world.deps, caller, some_case)
            with pytest.raises(NotFound):
                cases.read_form(world.deps, caller, some_case, form_id)
            with pytest.raises(NotFound):
                sending.acknowledge_form(world.deps, caller, some_case, form_id, idempotency_key="x")
    with pytest.raises(NotFound):
        cases.get_case(world.deps, ME, case_id)  # ME sees its own record, never XK's
    assert world.reads.entries == []


def test_every_read_of_content_is_access_logged(world: World) -> None:
    case_id, form_id = notify(world)
    world.pump()
    me_case = me_case_id(world, reference(world, case_id))
    read = cases.read_form(world.deps, ME, me_case, form_id)
    assert read["content"]["person"]["surnames"] == ["Krasniqi"]
    cases.get_case(world.deps, ME, me_case)  # metadata only: not a content read
    assert world.reads.entries == [("ME", "sub-me-contact-point", "exchange-form", (form_id,))]


def test_the_link_to_the_own_identification_case_stays_home(world: World) -> None:
    case_id, _ = notify(world)
    cases.link_identification_case(world.deps, XK, case_id, "xk-identification-case-1")
    sending.draft_and_send(
        world.deps,
        XK,
        {
            "form_type": "case-closure",
            "recipient": "ME",
            "case_id": case_id,
            "legal_basis": BASIS,
            "subject": CHILD,
            "content": {"reason": "transferred"},
        },
        idempotency_key="c",
    )
    world.pump()
    assert cases.get_case(world.deps, XK, case_id)["identification_case_id"] == "xk-identification-case-1"
    me_case = cases.get_case(world.deps, ME, me_case_id(world, reference(world, case_id)))
    assert me_case["identification_case_id"] is None and me_case["status"] == "closed"
    assert not any("xk-identification-case-1" in token for token in world.transport.wire)


# ---------------------------------------------------------------------------------------------- withdrawal, correction


def test_a_withdrawn_form_shows_as_withdrawn_with_its_reason_on_the_other_side(world: World) -> None:
    case_id, form_id = notify(world)
    world.pump()
    sending.withdraw_form(world.deps, XK, case_id, form_id, "sent-in-error", idempotency_key="w")
    sending.withdraw_form(world.deps, XK, case_id, form_id, "sent-in-error", idempotency_key="w")  # a retry
    world.pump()
    me_view = next(
        f
        for f in cases.get_case(world.deps, ME, me_case_id(world, reference(world, case_id)))["forms"]
        if f["id"] == form_id
    )
    assert (me_view["status"], me_view["withdrawal_reason"]) == ("withdrawn", "sent-in-error")
    assert me_view["allowed_actions"] == []
    withdrawals = [
        f for f in cases.get_case(world.deps, XK, case_id)["forms"] if f["form_type"] == "withdrawal"
    ]
    assert len(withdrawals) == 1


def test_a_correction_supersedes_the_sent_form_on_both_sides(world: World) -> None:
    case_id, form_id = notify(world)
    world.pump()
    corrected = {**notification()["content"], "placement": "foster-family"}
    _, correction_id = sending.correct_form(
        world.deps, XK, case_id, form_id, corrected, idempotency_key="c-1"
    )
    sending.send_form(world.deps, XK, case_id, correction_id, idempotency_key="c-1")
    world.pump()
    me_case = me_case_id(world, reference(world, case_id))
    for caller, record in ((XK, case_id), (ME, me_case)):
        old = next(f for f in cases.get_case(world.deps, caller, record)["forms"] if f["id"] == form_id)
        assert (old["status"], old["superseded_by"]) == ("withdrawn", correction_id)
    assert cases.read_form(world.deps, ME, me_case, correction_id)["content"]["placement"] == "foster-family"


def test_a_reminder_only_for_an_overdue_reply(world: World) -> None:
    case_id, form_id = notify(world)
    world.pump()
    with pytest.raises(InvalidTransition):
        sending.send_reminder(world.deps, XK, case_id, form_id, idempotency_key="r")
    world.clock.advance(days=6)
    sending.send_reminder(world.deps, XK, case_id, form_id, idempotency_key="r")
    world.pump()
    me_forms = cases.get_case(world.deps, ME, me_case_id(world, reference(world, case_id)))["forms"]
    assert [f["form_type"] for f in me_forms if f["form_type"] == "reminder"] == ["reminder"]
    assert next(f for f in me_forms if f["id"] == form_id)["status"] == "overdue"


# ---------------------------------------------------------------------------------------------- consent withdrawn


def test_consent_withdrawn_reaches_every_country_that_received_the_persons_data(world: World) -> None:
    adult = {**notification(subject=ADULT), "legal_basis": "consent-of-data-subject"}
    case_id, form_id = notify(world, **adult)
    sending.draft_and_send(
        world.deps, XK, {**adult, "recipient": "AL", "case_id": case_id}, idempotency_key="k-al"
    )
    world.pump()
    notices = sending.notify_consent_withdrawn(
        world.deps,
        XK,
        case_id,
        scope="cross-border-exchange",
        effective_on="2026-06-01",
        legal_basis=BASIS,
        idempotency_key="cw",
    )
    assert sorted(n.counterpart for n in notices) == ["AL", "ME"]
    world.pump()
    me_case = me_case_id(world, reference(world, case_id))
    assert cases.get_case(world.deps, ME, me_case)["consent_withdrawn_at"] is not None
    with pytest.raises(InvalidTransition) as error:
        cases.read_form(world.deps, ME, me_case, form_id)
    assert error.value.code == "consent_withdrawn"
    with pytest.raises(InvalidTransition):
        sending.draft_form(world.deps, XK, {**adult, "case_id": case_id}, idempotency_key="again")
    # a basis that does not rest on consent still allows what it allows
    sending.draft_form(
        world.deps, XK, {**notification(subject=ADULT), "case_id": case_id}, idempotency_key="vital"
    )


# ---------------------------------------------------------------------------------------------- evidence


def test_altering_a_stored_forms_bytes_is_detected(world: World) -> None:
    case_id, form_id = notify(world)
    world.pump()
    me_case = me_case_id(world, reference(world, case_id))
    assert verify_evidence(world.deps, "ME").ok
    row = world.store.rows(ExchangeCaseDocument)[me_case]
    sealed = row["contents"][form_id]
    row["contents"][form_id] = sealed[:-6] + ("AAAAAA" if not sealed.endswith("AAAAAA") else "BBBBBB")
    report = verify_evidence(world.deps, "ME")
    assert not report.ok and report.altered_forms == [form_id] and report.chain.ok
    world.message_log.chains["XK"][0]["sent_at"] = "2026-01-01T00:00:00.000Z"
    assert verify_evidence(world.deps, "XK").chain.first_broken_seq == 1


# ---------------------------------------------------------------------------------------------- catalogue as data


def test_a_form_type_that_exists_only_in_test_data_goes_through_unchanged_code(tmp_path: Path) -> None:
    catalogue = FormCatalogue.load(with_test_form_type(tmp_path), languages=LANGUAGES, roles=ROLES)
    world = build_world(catalogue=catalogue)
    case_id, note_id = notify(world)
    world.pump()
    query = {
        "form_type": "shelter-capacity-query",
        "recipient": "ME",
        "case_id": case_id,
        "refers_to": note_id,
        "legal_basis": BASIS,
        "subject": CHILD,
        "content": {"places_needed": 2},
    }
    _, form = sending.draft_and_send(world.deps, XK, query, idempotency_key="q")
    world.pump()
    me_case = me_case_id(world, reference(world, case_id))
    assert cases.read_form(world.deps, ME, me_case, form.id)["content"] == {"places_needed": 2}
    assert status(world, XK, case_id, form.id) == "received"


# ---------------------------------------------------------------------------------------------- attachments, transit


def verification_request(case_id: str, note_id: str, attachments: Any) -> dict[str, Any]:
    return {
        "form_type": "identity-verification-request",
        "recipient": "ME",
        "case_id": case_id,
        "refers_to": note_id,
        "legal_basis": BASIS,
        "subject": CHILD,
        "content": {"person": {"given_names": ["Arta"], "surnames": ["Hoxha"]}, "checks": ["identity"]},
        "attachments": attachments,
    }


def test_attachments_only_where_the_form_type_allows_them_within_its_caps(world: World) -> None:
    import base64

    case_id, note_id = notify(world)
    with pytest.raises(DomainError) as error:
        sending.draft_form(world.deps, XK, {**notification(), "attachments": [{}]}, idempotency_key="n2")
    assert error.value.codes == {("attachments_not_allowed", "/attachments")}
    scan = {
        "filename": "birth-certificate.pdf",
        "media_type": "application/pdf",
        "data": base64.b64encode(b"%PDF-1.7").decode(),
    }
    too_big = {**scan, "data": base64.b64encode(b"0" * 2_000_001).decode()}
    wrong_type = {**scan, "media_type": "application/zip"}
    with pytest.raises(DomainError) as error:
        sending.draft_form(
            world.deps,
            XK,
            verification_request(case_id, note_id, [scan, too_big, wrong_type]),
            idempotency_key="v",
        )
    assert error.value.codes == {
        ("too_large", "/attachments/1/data"),
        ("media_type_not_allowed", "/attachments/2/media_type"),
    }
    _, form = sending.draft_and_send(
        world.deps, XK, verification_request(case_id, note_id, [scan]), idempotency_key="v"
    )
    world.pump()
    read = cases.read_form(world.deps, ME, me_case_id(world, reference(world, case_id)), form.id)
    assert read["attachments"] == [scan]


def test_a_country_sees_only_the_forms_addressed_to_it_in_a_case_with_three_countries(world: World) -> None:
    case_id, to_me = notify(world)
    _, to_al = sending.draft_and_send(
        world.deps, XK, {**notification(recipient="AL"), "case_id": case_id}, idempotency_key="al"
    )
    world.pump()
    ref = reference(world, case_id)
    me_forms = {f["id"] for f in cases.get_case(world.deps, ME, me_case_id(world, ref))["forms"]}
    (al_case,) = cases.list_cases(world.deps, AL)
    al_forms = {f["id"] for f in al_case["forms"]}
    assert to_me in me_forms and to_al.id not in me_forms
    assert to_al.id in al_forms and to_me not in al_forms
    assert al_case["reference"] == ref and sorted(al_case["participants"]) == ["AL", "ME", "XK"]
    with pytest.raises(NotFound):
        cases.read_form(world.deps, AL, al_case["id"], to_me)


def test_a_signed_message_without_an_agreed_legal_basis_is_refused(world: World) -> None:
    notify(world)
    world.pump()
    body = {"content": {"stage": "delivered"}, "attachments": []}
    message = {
        "case": {"reference": "XK-EX-2026-0001", "participants": ["XK", "ME"]},
        "form": {
            "id": "x",
            "form_type": "receipt",
            "version": 1,
            "kind": "control",
            "refers_to": "y",
            "legal_basis": "a-private-arrangement",
        },
        "body": body,
    }
    from exchange.domain.evidence import content_digest

    message["form"]["content_digest"] = content_digest(body)
    token = world.deps.envelopes.seal(message, sender="XK", recipient="ME", envelope_id="e-basis").token
    with pytest.raises(EnvelopeRefused) as error:
        receiving.receive_envelope(world.deps, "ME", token)
    assert error.value.reason == "invalid-content"


def test_correcting_an_answer_replaces_it_on_both_sides(world: World) -> None:
    case_id, note_id = notify(world)
    _, request = sending.draft_and_send(
        world.deps, XK, verification_request(case_id, note_id, []), idempotency_key="v"
    )
    world.pump()
    me_case = me_case_id(world, reference(world, case_id))
    reply = {
        "form_type": "identity-verification-reply",
        "recipient": "XK",
        "case_id": me_case,
        "refers_to": request.id,
        "legal_basis": BASIS,
        "subject": CHILD,
        "content": {"result": "not-found"},
    }
    _, answer = sending.draft_and_send(world.deps, ME, reply, idempotency_key="r")
    world.pump()
    _, fixed = sending.correct_form(
        world.deps, ME, me_case, answer.id, {"result": "confirmed"}, idempotency_key="fix"
    )
    sending.send_form(world.deps, ME, me_case, fixed, idempotency_key="fix")
    world.pump()
    xk_view = {f["id"]: f for f in cases.get_case(world.deps, XK, case_id)["forms"]}
    assert xk_view[request.id]["answered_by"] == fixed and xk_view[answer.id]["status"] == "withdrawn"
    assert cases.read_form(world.deps, XK, case_id, fixed)["content"] == {"result": "confirmed"}


def test_validating_a_draft_stores_nothing_and_opens_no_case(world: World) -> None:
    sending.validate_form(world.deps, XK, notification())
    assert stored_rows(world) == 0 and world.deps.next_sequence.calls == []  # type: ignore[attr-defined]
    with pytest.raises(DomainError) as error:
        sending.validate_form(world.deps, XK, {**notification(), "content": {}})
    assert ("required", "/content/person") in error.value.codes and stored_rows(world) == 0


def test_a_draft_cannot_supersede_a_form_of_another_type_or_one_not_sent(world: World) -> None:
    case_id, note_id = notify(world)
    closure = {
        "form_type": "case-closure",
        "recipient": "ME",
        "case_id": case_id,
        "legal_basis": BASIS,
        "subject": CHILD,
        "content": {"reason": "other"},
    }
    with pytest.raises(DomainError) as error:
        sending.draft_form(world.deps, XK, {**closure, "supersedes": note_id}, idempotency_key="c")
    assert error.value.codes == {("correction_of_another_type", "/supersedes")}
    with pytest.raises(DomainError) as error:
        sending.draft_form(world.deps, XK, {**closure, "supersedes": "no-such-form"}, idempotency_key="c")
    assert error.value.codes == {("cannot_supersede_form", "/supersedes")}


# ---------------------------------------------------------------------------------------------- races


def test_a_command_losing_a_race_to_the_inbox_is_run_again_from_the_record_as_it_is(world: World) -> None:
    case_id, form_id = notify(world)
    world.pump()
    me_case = me_case_id(world, reference(world, case_id))
    make = world.deps.repository
    raced: list[str] = []

    def racing(document_class: type, caller: Any) -> Any:
        repository = make(document_class, caller)
        update = repository.update

        def update_after_a_receipt(doc: Any, **kwargs: Any) -> Any:
            if not raced:  # another writer (the inbox) stores the record first, once
                raced.append(doc.id)
                with world.store.lock:
                    world.store.rows(ExchangeCaseDocument)[doc.id]["version"] += 1
            return update(doc, **kwargs)

        repository.update = update_after_a_receipt
        return repository

    world.deps.repository = racing
    receipt = sending.acknowledge_form(world.deps, ME, me_case, form_id, idempotency_key="ack")
    assert raced == [me_case] and receipt.refers_to == form_id
    assert status(world, ME, me_case, form_id) == "acknowledged"
    assert (
        len([f for f in cases.get_case(world.deps, ME, me_case)["forms"] if f["form_type"] == "receipt"]) == 2
    )
