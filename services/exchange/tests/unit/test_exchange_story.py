"""The Kosovo–Montenegro story at service-layer level: XK identifies two Montenegrin children and notifies ME;
ME acknowledges and verifies identity; a family assessment; XK asks for clarification and gets the answer; a
risk assessment goes each way; the case is closed on both sides. Every step is acknowledged, and both
countries' timelines and message logs agree."""

from __future__ import annotations

from typing import Any

from exchange.service_layer import cases, sending
from exchange.service_layer.evidence import verify_evidence
from services.exchange.tests.unit.conftest import BASIS, CHILD, notification
from services.exchange.tests.unit.fakes import World, user

XK, ME = user("xk-contact-point"), user("me-contact-point")
AGREED_FIELDS = (
    "envelope_id",
    "form_id",
    "form_type",
    "version",
    "case_reference",
    "sender",
    "recipient",
    "refers_to",
    "sent_at",
    "content_digest",
    "signature_id",
)


def send(world: World, caller: Any, key: str, **body: Any) -> tuple[str, str]:
    body.setdefault("legal_basis", BASIS)
    case_id, form = sending.draft_and_send(world.deps, caller, body, idempotency_key=key)
    world.pump()
    return case_id, form.id


def record_of(world: World, caller: Any, reference: str) -> dict[str, Any]:
    found = [c for c in cases.list_cases(world.deps, caller) if c["reference"] == reference]
    assert len(found) == 1
    return found[0]


def statuses(record: dict[str, Any]) -> dict[str, str]:
    return {f["id"]: f["status"] for f in record["forms"] if f["form_type"] != "receipt"}


def acknowledge(world: World, caller: Any, case_id: str, form_id: str, key: str) -> None:
    sending.acknowledge_form(world.deps, caller, case_id, form_id, idempotency_key=key)
    world.pump()


def one_child(world: World, given: str) -> dict[str, Any]:
    """The whole exchange for one child; returns both records at the end."""
    body = notification()
    body["content"]["person"] = {"given_names": [given], "surnames": ["Hoxha"], "nationalities": ["ME"]}
    xk_case, note = send(world, XK, f"{given}-1", **body)
    reference = cases.get_case(world.deps, XK, xk_case)["reference"]
    me_case = record_of(world, ME, reference)["id"]
    acknowledge(world, ME, me_case, note, f"{given}-ack-1")

    ivr = {
        "person": {"given_names": [given], "surnames": ["Hodža"]},
        "checks": ["identity", "nationality", "parents"],
    }
    _, request = send(
        world,
        XK,
        f"{given}-2",
        form_type="identity-verification-request",
        recipient="ME",
        case_id=xk_case,
        refers_to=note,
        subject=CHILD,
        content=ivr,
    )
    acknowledge(world, ME, me_case, request, f"{given}-ack-2")
    _, reply = send(
        world,
        ME,
        f"{given}-3",
        form_type="identity-verification-reply",
        recipient="XK",
        case_id=me_case,
        refers_to=request,
        subject=CHILD,
        content={"result": "confirmed", "confirmed": ["identity", "nationality", "parents"]},
    )
    acknowledge(world, XK, xk_case, reply, f"{given}-ack-3")

    _, far = send(
        world,
        XK,
        f"{given}-4",
        form_type="family-assessment-request",
        recipient="ME",
        case_id=xk_case,
        refers_to=reply,
        subject=CHILD,
        content={
            "requested": ["trace-family", "assess-protection-capacity"],
            "known_relatives": [{"relationship": "mother", "surname": "Hoxha"}],
        },
    )
    acknowledge(world, ME, me_case, far, f"{given}-ack-4")
    report = {
        "family_traced": True,
        "family_willing": "yes",
        "protection_capacity": "limited",
        "risk_factors": ["relative-suspected", "child-marriage-risk"],
        "recommendation": "return-to-alternative-care",
    }
    _, fam = send(
        world,
        ME,
        f"{given}-5",
        form_type="family-assessment-report",
        recipient="XK",
        case_id=me_case,
        refers_to=far,
        subject=CHILD,
        content=report,
    )
    acknowledge(world, XK, xk_case, fam, f"{given}-ack-5")

    question = {
        "questions": [
            {
                "field": "/protection_capacity",
                "question": {"text": "Çfarë e kufizon aftësinë për mbrojtje?", "lang": "sq"},
            }
        ]
    }
    _, clar = send(
        world,
        XK,
        f"{given}-6",
        form_type="clarification-request",
        recipient="ME",
        case_id=xk_case,
        refers_to=fam,
        content=question,
    )
    acknowledge(world, ME, me_case, clar, f"{given}-ack-6")
    answer = {
        "answers": [
            {
                "field": "/protection_capacity",
                "answer": {"text": "Majka radi van mjesta prebivališta.", "lang": "cnr-Latn"},
            }
        ]
    }
    _, clar_answer = send(
        world,
        ME,
        f"{given}-7",
        form_type="clarification-answer",
        recipient="XK",
        case_id=me_case,
        refers_to=clar,
        content=answer,
    )

    # A risk assessment each way: XK asks ME, and ME asks XK.
    _, rar_xk = send(
        world,
        XK,
        f"{given}-8",
        form_type="risk-assessment-request",
        recipient="ME",
        case_id=xk_case,
        refers_to=fam,
        subject=CHILD,
        content={"scope": ["return-risk", "safety-of-family"]},
    )
    acknowledge(world, ME, me_case, rar_xk, f"{given}-ack-8")
    _, rep_me = send(
        world,
        ME,
        f"{given}-9",
        form_type="risk-assessment-report",
        recipient="XK",
        case_id=me_case,
        refers_to=rar_xk,
        subject=CHILD,
        content={
            "risk_level": "medium",
            "risk_factors": ["relative-suspected"],
            "police_case_reference": "ME-PU-2026/114",
            "recommendation": "return-with-safeguards",
        },
    )
    _, rar_me = send(
        world,
        ME,
        f"{given}-10",
        form_type="risk-assessment-request",
        recipient="XK",
        case_id=me_case,
        refers_to=fam,
        subject=CHILD,
        content={"scope": ["re-trafficking-risk"]},
    )
    acknowledge(world, XK, xk_case, rar_me, f"{given}-ack-10")
    _, rep_xk = send(
        world,
        XK,
        f"{given}-11",
        form_type="risk-assessment-report",
        recipient="ME",
        case_id=xk_case,
        refers_to=rar_me,
        subject=CHILD,
        content={
            "risk_level": "low",
            "protective_factors": ["access-to-services"],
            "recommendation": "return-possible",
        },
    )

    _, closure = send(
        world,
        XK,
        f"{given}-12",
        form_type="case-closure",
        recipient="ME",
        case_id=xk_case,
        subject=CHILD,
        content={"reason": "returned-and-handed-over"},
    )
    acknowledge(world, ME, me_case, closure, f"{given}-ack-12")

    xk_record, me_record = cases.get_case(world.deps, XK, xk_case), cases.get_case(world.deps, ME, me_case)
    # Every request is answered on both sides; every answer and report acknowledged or answered.
    for record in (xk_record, me_record):
        by_id = statuses(record)
        for request_id in (note, request, far, clar, rar_xk, rar_me):
            assert by_id[request_id] in ("answered", "acknowledged"), request_id
        for answered in (request, far, clar, rar_xk, rar_me):
            assert by_id[answered] == "answered"
        assert record["status"] == "closed"
    assert {f["id"] for f in xk_record["forms"] if f["form_type"] != "receipt"} == {
        f["id"] for f in me_record["forms"] if f["form_type"] != "receipt"
    }
    assert clar_answer and rep_me and rep_xk
    return {"xk": xk_record, "me": me_record}


def test_kosovo_montenegro_story_for_two_children(world: World) -> None:
    first = one_child(world, "Arta")
    second = one_child(world, "Drita")
    assert first["xk"]["reference"] != second["xk"]["reference"]

    # Both timelines agree: the same forms, in the same order, with the same statuses seen from either side.
    for child in (first, second):
        xk_forms = [
            (f["id"], f["form_type"], f["status"])
            for f in child["xk"]["forms"]
            if f["form_type"] != "receipt"
        ]
        me_forms = [
            (f["id"], f["form_type"], f["status"])
            for f in child["me"]["forms"]
            if f["form_type"] != "receipt"
        ]
        assert xk_forms == me_forms

    # Both message logs agree: every envelope XK logged as sent, ME logged as received (and the other way round),
    # with the same metadata; every received form has the id of the receipt sent back.
    xk_log, me_log = world.message_log.entries("XK"), world.message_log.entries("ME")
    for sent_by, received_by in ((xk_log, me_log), (me_log, xk_log)):
        sent = {e["envelope_id"]: e for e in sent_by if e["direction"] == "sent"}
        received = {e["envelope_id"]: e for e in received_by if e["direction"] == "received"}
        assert sent.keys() == received.keys()
        for envelope_id, entry in sent.items():
            assert {k: entry[k] for k in AGREED_FIELDS} == {
                k: received[envelope_id][k] for k in AGREED_FIELDS
            }
            if entry["form_type"] != "receipt":
                assert received[envelope_id]["receipt_id"] in sent_by_other(received_by)
    assert verify_evidence(world.deps, "XK").ok and verify_evidence(world.deps, "ME").ok

    # No form content ever crossed in plain text.
    for token in world.transport.wire:
        for canary in ("Arta", "Drita", "Hoxha", "Hodža", "relative-suspected", "ME-PU-2026/114", "Majka"):
            assert canary not in token


def sent_by_other(entries: list[dict[str, Any]]) -> set[str]:
    return {e["envelope_id"] for e in entries if e["direction"] == "sent"}
