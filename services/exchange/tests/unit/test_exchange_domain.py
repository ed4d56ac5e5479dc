"""The transnational case's state machine, the legal basis and consent rules, and the evidence chain, on the
domain alone (no store, no keys)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from exchange.domain import legal
from exchange.domain.case import Action, Direction, Form, Status, TransnationalCase, status_now
from exchange.domain.errors import DomainError, InvalidTransition
from exchange.domain.evidence import chained, content_digest, verify_chain
from plumbing.errors import Conflict
from services.exchange.tests.unit.fakes import packaged_catalogue

T0 = datetime(2026, 6, 1, 9, 0, tzinfo=UTC)
CONTACT_POINT = {"contact-point"}


def form(form_id: str, form_type: str, direction: Direction, status: Status, **fields: object) -> Form:
    kind = packaged_catalogue().form_type(form_type)
    return Form(
        id=form_id,
        form_type=form_type,
        version=1,
        kind=kind.kind,
        direction=direction,
        counterpart="ME" if direction is Direction.OUT else "XK",
        status=status,
        created_at=T0,
        created_by="someone",
        **fields,  # type: ignore[arg-type]
    )


def xk_case_with_sent_request() -> TransnationalCase:
    case = TransnationalCase("XK-EX-2026-0001", ["XK", "ME"])
    case.forms.append(form("n1", "notification", Direction.OUT, Status.DRAFT))
    case.mark_sent("n1", T0, 5)
    return case


def actions(case: TransnationalCase, form_id: str, roles: set[str], now: datetime = T0) -> set[str]:
    return {str(a.action) for a in case.allowed_actions(case.form(form_id), roles, packaged_catalogue(), now)}


# ------------------------------------------------------------------------------------------ transitions


def test_a_sent_form_cannot_be_sent_again_edited_or_discarded() -> None:
    case = xk_case_with_sent_request()
    with pytest.raises(InvalidTransition) as error:
        case.mark_sent("n1", T0, 5)
    assert error.value.code == "form_not_draft" and isinstance(error.value, Conflict)
    with pytest.raises(InvalidTransition):
        case.discard_draft("n1")
    assert Action.EDIT not in actions(case, "n1", CONTACT_POINT)


def test_receipts_move_the_sender_forward_never_back() -> None:
    case = xk_case_with_sent_request()
    case.apply_receipt("n1", "delivered", "r1", T0)
    assert case.form("n1").status is Status.RECEIVED
    case.apply_receipt("n1", "acknowledged", "r2", T0)
    assert case.form("n1").status is Status.ACKNOWLEDGED
    case.apply_receipt("n1", "delivered", "r1-again", T0)  # a late technical receipt
    assert case.form("n1").status is Status.ACKNOWLEDGED
    assert case.form("n1").receipt_ids == ["r1", "r2", "r1-again"]


def test_an_overdue_reply_is_computed_from_the_deadline_and_offers_a_reminder() -> None:
    case = xk_case_with_sent_request()
    sent = case.form("n1")
    assert sent.deadline == T0 + timedelta(days=5)
    assert sent.status_at(T0 + timedelta(days=5), 5) is Status.SENT
    assert sent.status_at(T0 + timedelta(days=5, seconds=1), 5) is Status.OVERDUE
    assert "remind" not in actions(case, "n1", CONTACT_POINT)
    assert "remind" in actions(case, "n1", CONTACT_POINT, T0 + timedelta(days=6))
    assert sent.status is Status.SENT  # overdue is never stored


def test_only_a_form_received_can_be_answered_and_only_once() -> None:
    case = TransnationalCase("XK-EX-2026-0001", ["XK", "ME"])
    case.forms.append(form("q1", "identity-verification-request", Direction.IN, Status.RECEIVED))
    reply_kind = packaged_catalogue().form_type("identity-verification-reply")
    reply = form("a1", "identity-verification-reply", Direction.OUT, Status.DRAFT, refers_to="q1")
    reply.counterpart = "XK"
    case.add_draft(reply, reply_kind)
    case.mark_sent("a1", T0, None)
    assert case.form("q1").status is Status.ANSWERED and case.form("q1").answered_by == "a1"
    second = form("a2", "identity-verification-reply", Direction.OUT, Status.DRAFT, refers_to="q1")
    second.counterpart = "XK"
    with pytest.raises(InvalidTransition) as error:
        case.add_draft(second, reply_kind)
    assert error.value.code == "form_already_answered"


def test_a_reply_must_refer_to_a_form_it_may_answer() -> None:
    case = xk_case_with_sent_request()
    kind = packaged_catalogue().form_type("identity-verification-reply")
    with pytest.raises(DomainError) as error:
        case.add_draft(
            form("a1", "identity-verification-reply", Direction.OUT, Status.DRAFT, refers_to="n1"), kind
        )
    assert error.value.codes == {("cannot_refer_to_form", "/refers_to")}


def test_withdrawal_shows_on_both_sides_with_its_reason() -> None:
    sender = xk_case_with_sent_request()
    sender.withdraw("n1", "wrong-recipient", T0)
    assert (sender.form("n1").status, sender.form("n1").withdrawal_reason) == (
        Status.WITHDRAWN,
        "wrong-recipient",
    )
    with pytest.raises(InvalidTransition):
        sender.withdraw("n1", "other", T0)
    recipient = TransnationalCase("XK-EX-2026-0001", ["XK", "ME"])
    recipient.forms.append(form("n1", "notification", Direction.IN, Status.RECEIVED))
    recipient.apply_withdrawal("n1", "wrong-recipient", T0)
    assert recipient.form("n1").status is Status.WITHDRAWN
    assert actions(recipient, "n1", CONTACT_POINT) == set()


def test_a_correction_supersedes_the_form_it_corrects_when_sent() -> None:
    case = xk_case_with_sent_request()
    case.begin_correction("n1")
    correction = form("n2", "notification", Direction.OUT, Status.DRAFT, supersedes="n1")
    case.add_draft(correction, packaged_catalogue().form_type("notification"))
    with pytest.raises(InvalidTransition):
        case.begin_correction("n1")  # one correction at a time
    case.mark_sent("n2", T0, 5)
    old = case.form("n1")
    assert (old.status, old.superseded_by, old.withdrawal_reason) == (
        Status.WITHDRAWN,
        "n2",
        "superseded-by-correction",
    )


def test_acknowledging_is_for_forms_received() -> None:
    case = xk_case_with_sent_request()
    with pytest.raises(InvalidTransition) as error:
        case.acknowledge("n1", T0)
    assert error.value.code == "acknowledges_only_forms_received"


def test_next_actions_depend_on_the_callers_roles() -> None:
    case = TransnationalCase("XK-EX-2026-0001", ["XK", "ME"])
    case.forms.append(form("q1", "identity-verification-request", Direction.IN, Status.RECEIVED))
    assert actions(case, "q1", CONTACT_POINT) == {"acknowledge", "answer", "request-clarification"}
    assert actions(case, "q1", {"case-manager"}) == {"answer", "request-clarification"}
    assert actions(case, "q1", {"police-officer"}) == set()
    answer = next(
        a
        for a in case.allowed_actions(case.form("q1"), CONTACT_POINT, packaged_catalogue(), T0)
        if a.action is Action.ANSWER
    )
    assert answer.form_types == ("identity-verification-reply",)


def test_a_closed_case_takes_no_new_form() -> None:
    case = xk_case_with_sent_request()
    case.close()
    with pytest.raises(InvalidTransition) as error:
        case.add_draft(
            form("n9", "notification", Direction.OUT, Status.DRAFT),
            packaged_catalogue().form_type("notification"),
        )
    assert error.value.code == "case_closed"


def test_consent_withdrawn_restricts_only_forms_that_rested_on_consent() -> None:
    case = TransnationalCase("XK-EX-2026-0001", ["XK", "ME"])
    case.forms.append(
        form("c1", "notification", Direction.IN, Status.RECEIVED, legal_basis=legal.CONSENT_BASIS)
    )
    case.forms.append(
        form("v1", "notification", Direction.IN, Status.RECEIVED, legal_basis="protection-of-vital-interests")
    )
    marked = case.withdraw_consent(T0, legal.CONSENT_BASIS)
    assert [f.id for f in marked] == ["c1"]
    assert case.form("c1").restricted and not case.form("v1").restricted
    assert actions(case, "c1", CONTACT_POINT) == set()


# ------------------------------------------------------------------------------------------ legal basis

ADULT = {"age_group": "adult", "consent": {"given": True, "recorded_on": "2026-05-30"}}
VIEWS = {"heard": True, "position": "agrees", "recorded_on": "2026-05-30"}


def test_the_legal_basis_comes_from_the_pairs_catalogue() -> None:
    bases = ["bilateral-cooperation-agreement", legal.CONSENT_BASIS]
    assert legal.basis_problems(bases, "bilateral-cooperation-agreement") == []
    assert {(d.code, d.pointer) for d in legal.basis_problems(bases, "treaty-of-x")} == {
        ("unknown_legal_basis", "/legal_basis")
    }
    assert {(d.code, d.pointer) for d in legal.basis_problems([], "bilateral-cooperation-agreement")} == {
        ("no_legal_basis_for_pair", "/legal_basis")
    }


def codes(problems: list) -> set[tuple[str, str]]:  # type: ignore[type-arg]
    return {(d.code, d.pointer) for d in problems}


def test_an_adult_records_consent_and_consent_as_basis_needs_it_given() -> None:
    assert legal.subject_problems(legal.CONSENT_BASIS, ADULT) == []
    refused = {"age_group": "adult", "consent": {"given": False, "recorded_on": "2026-05-30"}}
    assert codes(legal.subject_problems(legal.CONSENT_BASIS, refused)) == {
        ("consent_not_given", "/subject/consent/given")
    }
    assert legal.subject_problems("protection-of-vital-interests", refused) == []
    assert codes(legal.subject_problems("protection-of-vital-interests", {"age_group": "adult"})) == {
        ("required", "/subject/consent")
    }


def test_a_childs_views_are_recorded_and_consent_is_not_the_basis() -> None:
    child = {"age_group": "child", "child_views": VIEWS}
    assert legal.subject_problems("protection-of-vital-interests", child) == []
    assert codes(legal.subject_problems(legal.CONSENT_BASIS, child)) == {
        ("consent_not_a_basis_for_child", "/legal_basis")
    }
    uncertain = {"age_group": "age-uncertain", "consent": ADULT["consent"]}
    assert codes(legal.subject_problems("protection-of-vital-interests", uncertain)) == {
        ("consent_not_applicable_for_child", "/subject/consent"),
        ("required", "/subject/child_views"),
    }
    assert codes(legal.subject_problems("x", {"age_group": "teen"})) == {
        ("unknown_code", "/subject/age_group")
    }


# ------------------------------------------------------------------------------------------ evidence


def chain(n: int) -> list[dict]:  # type: ignore[type-arg]
    entries: list[dict] = []  # type: ignore[type-arg]
    for i in range(n):
        entries.append(
            chained(
                entries[-1] if entries else None,
                {"envelope_id": f"e{i}", "content_digest": content_digest({"i": i})},
            )
        )
    return entries


def test_the_chain_verifies_and_names_the_first_broken_link() -> None:
    entries = chain(5)
    assert verify_chain(entries).ok and verify_chain(entries).checked == 5
    altered = [dict(e) for e in entries]
    altered[2]["content_digest"] = content_digest({"i": 99})
    report = verify_chain(altered)
    assert (report.ok, report.first_broken_seq, report.reason) == (False, 3, "entry altered")
    removed = entries[:1] + entries[2:]
    assert verify_chain(removed).first_broken_seq == 2
    rehashed = [dict(e) for e in entries]
    rehashed[3] = chained(entries[1], {"envelope_id": "forged", "content_digest": "x"}) | {"seq": 4}
    assert verify_chain(rehashed).first_broken_seq == 4


def test_the_content_digest_is_canonical() -> None:
    assert content_digest({"b": 1, "a": "ë"}) == content_digest({"a": "ë", "b": 1})
    assert content_digest({"a": 1}) != content_digest({"a": 2})


def test_a_notification_is_overdue_until_acknowledged_a_request_until_answered() -> None:
    catalogue = packaged_catalogue()
    late = T0 + timedelta(days=40)
    case = TransnationalCase("XK-EX-2026-0001", ["XK", "ME"])
    case.forms.append(
        form("n1", "notification", Direction.IN, Status.RECEIVED, deadline=T0 + timedelta(days=5))
    )
    case.forms.append(
        form(
            "q1", "family-assessment-request", Direction.IN, Status.RECEIVED, deadline=T0 + timedelta(days=30)
        )
    )
    assert status_now(case.form("n1"), catalogue, late) is Status.OVERDUE
    assert status_now(case.form("q1"), catalogue, late) is Status.OVERDUE
    case.acknowledge("n1", T0)
    case.acknowledge("q1", T0)
    assert (
        status_now(case.form("n1"), catalogue, late) is Status.ACKNOWLEDGED
    )  # nothing answers a notification
    assert status_now(case.form("q1"), catalogue, late) is Status.OVERDUE  # the report is still due


def test_a_correction_of_an_answer_replaces_it() -> None:
    catalogue = packaged_catalogue()
    case = TransnationalCase("XK-EX-2026-0001", ["XK", "ME"])
    case.forms.append(form("q1", "identity-verification-request", Direction.IN, Status.RECEIVED))
    reply = form("a1", "identity-verification-reply", Direction.OUT, Status.DRAFT, refers_to="q1")
    reply.counterpart = "XK"
    case.add_draft(reply, catalogue.form_type("identity-verification-reply"))
    case.mark_sent("a1", T0, None)
    case.begin_correction("a1")
    corrected = form(
        "a2", "identity-verification-reply", Direction.OUT, Status.DRAFT, refers_to="q1", supersedes="a1"
    )
    corrected.counterpart = "XK"
    case.add_draft(corrected, catalogue.form_type("identity-verification-reply"))
    case.mark_sent("a2", T0, None)
    assert (case.form("q1").status, case.form("q1").answered_by) == (Status.ANSWERED, "a2")
    assert case.form("a1").status is Status.WITHDRAWN


def test_control_messages_are_not_withdrawn_and_a_form_is_received_once() -> None:
    case = xk_case_with_sent_request()
    case.forms.append(form("r1", "reminder", Direction.OUT, Status.DRAFT, refers_to="n1"))
    case.mark_sent("r1", T0, None)
    with pytest.raises(InvalidTransition) as error:
        case.withdraw("r1", "other", T0)
    assert error.value.code == "control_message_not_withdrawable"
    assert actions(case, "r1", CONTACT_POINT) == set()
    with pytest.raises(InvalidTransition) as error:
        case.add_received(form("n1", "notification", Direction.IN, Status.RECEIVED), T0, 5)
    assert error.value.code == "form_already_received"
