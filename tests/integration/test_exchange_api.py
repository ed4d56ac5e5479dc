"""The exchange service through the gateway with real tokens of two countries, on the running platform (the
Kafka transport, each country's inbox, the relay): the Kosovo–Montenegro story for two Montenegrin children
identified in Kosovo (notification, identity verification, family assessment, clarification, a risk assessment
each way, closure, every step acknowledged), both records and both message logs agreeing; a third country that
sees nothing of it; a field outside a form's schema refused with its pointer; a withdrawal seen on the other
side."""

from __future__ import annotations

import time
import uuid
from typing import Any

import httpx
import pytest
from pymongo import MongoClient

from tests.integration.platform_helpers import CHILD, header, notification, poll, read_topic

pytestmark = pytest.mark.integration

BASE = "/v1/exchange"
XK, ME, AL = "xk-contact-point", "me-contact-point", "al-coordinator"
BASIS = "protection-of-vital-interests"


class Api:
    def __init__(self, platform: Any) -> None:
        self.platform = platform

    def __call__(self, user: str, method: str, path: str, body: Any = None, **params: Any) -> httpx.Response:
        headers = {
            "Authorization": f"Bearer {self.platform.token(user)}",
            "X-Purpose": "cross-border-exchange",
        }
        if method == "POST":
            headers["Idempotency-Key"] = f"test-{uuid.uuid4()}"
        return httpx.request(
            method,
            self.platform.gateway + BASE + path,
            headers=headers,
            json=body,
            params=params or None,
            timeout=60,
        )

    def ok(self, user: str, method: str, path: str, body: Any = None, **params: Any) -> httpx.Response:
        response = self(user, method, path, body, **params)
        assert 200 <= response.status_code < 300, (method, path, response.status_code, response.text)
        return response

    def send(self, user: str, body: dict[str, Any]) -> tuple[str, str]:
        """Draft and send one form; (case record id, form id)."""
        body = {"legal_basis": BASIS, **body}
        drafted = self.ok(user, "POST", "/drafts", body)
        case_id = drafted.json()["id"]
        form_id = drafted.headers["location"].rsplit("/", 1)[1]
        self.ok(user, "POST", f"/cases/{case_id}/forms/{form_id}/send")
        return case_id, form_id

    def case(self, user: str, case_id: str) -> dict[str, Any]:
        return dict(self.ok(user, "GET", f"/cases/{case_id}").json())

    def arrived(self, user: str, reference: str, form_id: str) -> str:
        """The id of `user`'s country's record of the case once the form is in it (delivery is asynchronous)."""
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            for case in self.ok(user, "GET", "/cases", limit=200).json()["items"]:
                if case["reference"] == reference and form_id in {f["id"] for f in case["forms"]}:
                    return str(case["id"])
            time.sleep(0.3)
        raise AssertionError(f"form {form_id} of {reference} never reached {user}'s country")

    def acknowledge(self, user: str, case_id: str, form_id: str) -> None:
        self.ok(user, "POST", f"/cases/{case_id}/forms/{form_id}/acknowledge")


@pytest.fixture
def api(running_platform: Any) -> Api:
    return Api(running_platform)


def access_log_entries(api: Api, **query: Any) -> list[dict[str, Any]]:
    """Entries of the exchange service's own access log (its database on the platform's server)."""
    with MongoClient(api.platform.env["MONGODB_URI"], tz_aware=True) as client:
        return list(client["thb_exchange"]["access_log"].find(query))


def one_child(api: Api, given: str) -> dict[str, Any]:
    """The whole exchange for one child, through the gateway; both records at the end."""
    xk_case, note = api.send(XK, notification(given))
    reference = api.case(XK, xk_case)["reference"]
    me_case = api.arrived(ME, reference, note)
    api.acknowledge(ME, me_case, note)

    def xk_to_me(form_type: str, refers_to: str | None, content: Any, subject: Any = CHILD) -> str:
        body = {"form_type": form_type, "recipient": "ME", "case_id": xk_case, "content": content}
        body |= {"refers_to": refers_to} if refers_to else {}
        body |= {"subject": subject} if subject else {}
        _, form = api.send(XK, body)
        api.arrived(ME, reference, form)
        return form

    def me_to_xk(form_type: str, refers_to: str | None, content: Any, subject: Any = CHILD) -> str:
        body = {"form_type": form_type, "recipient": "XK", "case_id": me_case, "content": content}
        body |= {"refers_to": refers_to} if refers_to else {}
        body |= {"subject": subject} if subject else {}
        _, form = api.send(ME, body)
        api.arrived(XK, reference, form)
        return form

    checks = {"person": {"given_names": [given], "surnames": ["Hodža"]}, "checks": ["identity", "parents"]}
    request = xk_to_me("identity-verification-request", note, checks)
    api.acknowledge(ME, me_case, request)
    reply = me_to_xk(
        "identity-verification-reply", request, {"result": "confirmed", "confirmed": ["identity"]}
    )
    api.acknowledge(XK, xk_case, reply)

    family = {
        "requested": ["trace-family"],
        "known_relatives": [{"relationship": "mother", "surname": "Hoxha"}],
    }
    far = xk_to_me("family-assessment-request", reply, family)
    api.acknowledge(ME, me_case, far)
    report = {
        "family_traced": True,
        "family_willing": "yes",
        "protection_capacity": "limited",
        "risk_factors": ["relative-suspected"],
        "recommendation": "return-to-alternative-care",
    }
    fam = me_to_xk("family-assessment-report", far, report)
    api.acknowledge(XK, xk_case, fam)

    question = {"questions": [{"field": "/protection_capacity", "question": {"text": "Pse?", "lang": "sq"}}]}
    clar = xk_to_me("clarification-request", fam, question, subject=None)
    api.acknowledge(ME, me_case, clar)
    answer = {
        "answers": [{"field": "/protection_capacity", "answer": {"text": "Majka radi.", "lang": "cnr-Latn"}}]
    }
    me_to_xk("clarification-answer", clar, answer, subject=None)

    rar_xk = xk_to_me("risk-assessment-request", fam, {"scope": ["return-risk"]})
    api.acknowledge(ME, me_case, rar_xk)
    me_to_xk(
        "risk-assessment-report", rar_xk, {"risk_level": "medium", "recommendation": "return-with-safeguards"}
    )
    rar_me = me_to_xk("risk-assessment-request", fam, {"scope": ["re-trafficking-risk"]})
    api.acknowledge(XK, xk_case, rar_me)
    xk_to_me("risk-assessment-report", rar_me, {"risk_level": "low", "recommendation": "return-possible"})

    closure = xk_to_me("case-closure", None, {"reason": "returned-and-handed-over"})
    api.acknowledge(ME, me_case, closure)

    def agreeing() -> dict[str, Any] | None:
        records = {"xk": api.case(XK, xk_case), "me": api.case(ME, me_case)}
        return records if forms(records["xk"]) == forms(records["me"]) else None

    # Montenegro's receipt of the closure reaches Kosovo's record asynchronously, like every delivery.
    records = poll(agreeing, 60, "Kosovo's and Montenegro's records of the case to agree")
    for side, record in records.items():
        by_id = {f["id"]: f["status"] for f in record["forms"]}
        for answered in (request, far, clar, rar_xk, rar_me):
            assert by_id[answered] == "answered", (side, answered, record)
        assert by_id[note] in ("acknowledged", "answered"), (side, record)
        assert record["status"] == "closed", (side, record)
    return {"reference": reference, "xk_case": xk_case, "me_case": me_case, **records}


def forms(record: dict[str, Any]) -> list[tuple[str, str, str]]:
    return [(f["id"], f["form_type"], f["status"]) for f in record["forms"] if f["form_type"] != "receipt"]


def test_kosovo_montenegro_story_through_the_gateway(api: Api) -> None:
    children = [one_child(api, "Arta"), one_child(api, "Drita")]
    assert children[0]["reference"] != children[1]["reference"]

    for child in children:
        # Both records hold the same forms, in the same order, with the same statuses.
        assert forms(child["xk"]) == forms(child["me"])
        # The content arrived as sent, and reading it is the recipient's own business.
        note = child["me"]["forms"][0]
        content = api.ok(ME, "GET", f"/cases/{child['me_case']}/forms/{note['id']}").json()
        assert content["content"]["person"]["surnames"] == ["Hoxha"], content
        # ... and the read is in ME's access log: who, for what purpose, exactly that form.
        (entry,) = access_log_entries(api, ids=note["id"], country="ME")
        assert (entry["purpose"], entry["resource_type"], entry["outcome"]) == (
            "cross-border-exchange",
            "exchange-form",
            "ok",
        ), entry
        assert entry["operation_id"].endswith("read_form") and "contact-point" in entry["roles"], entry

    # Both message logs hold every envelope of the story, each as sent on one side and received on the other.
    logs = {
        user: api.ok(user, "GET", "/message-log", limit=200).json()["items"]
        for user in ("xk-coordinator", "me-coordinator")
    }
    references = {child["reference"] for child in children}
    sent = {
        side: {
            e["envelope_id"] for e in items if e["case_reference"] in references and e["direction"] == "sent"
        }
        for side, items in logs.items()
    }
    received = {
        side: {
            e["envelope_id"]
            for e in items
            if e["case_reference"] in references and e["direction"] == "received"
        }
        for side, items in logs.items()
    }
    assert sent["xk-coordinator"] and sent["xk-coordinator"] <= received["me-coordinator"]
    assert sent["me-coordinator"] and sent["me-coordinator"] <= received["xk-coordinator"]
    for user in ("xk-coordinator", "me-coordinator"):
        assert api.ok(user, "GET", "/message-log/verification").json()["ok"] is True

    # Albania, in any role that reaches the exchange, sees nothing of it.
    for user in ("al-coordinator", "al-contact-point"):
        listed = api.ok(user, "GET", "/cases", limit=200).json()["items"]
        assert not {c["reference"] for c in listed} & references
        for child in children:
            assert api(user, "GET", f"/cases/{child['xk_case']}").status_code == 404
            note = child["xk"]["forms"][0]["id"]
            assert api(user, "GET", f"/cases/{child['xk_case']}/forms/{note}").status_code == 404
        log = api.ok("al-coordinator", "GET", "/message-log", limit=200).json()["items"]
        assert not {e["case_reference"] for e in log} & references


def test_a_field_outside_the_schema_is_refused_with_its_pointer(api: Api) -> None:
    body = notification("Besa")
    body["content"]["health_narrative"] = "must never cross"
    refused = api(XK, "POST", "/drafts", {"legal_basis": BASIS, **body})
    assert refused.status_code == 422, refused.text
    assert refused.headers["content-type"] == "application/problem+json"
    pointers = {(e["pointer"], e["code"]) for e in refused.json()["errors"]}
    assert ("/body/content/health_narrative", "not_allowed") in pointers, refused.text
    assert "must never cross" not in refused.text


def test_a_withdrawn_form_shows_as_withdrawn_on_the_other_side(api: Api) -> None:
    xk_case, note = api.send(XK, notification("Vesa"))
    reference = api.case(XK, xk_case)["reference"]
    me_case = api.arrived(ME, reference, note)
    api.ok(XK, "POST", f"/cases/{xk_case}/forms/{note}/withdraw", {"reason": "sent-in-error"})
    deadline = time.monotonic() + 60
    status = None
    while time.monotonic() < deadline:
        seen = {f["id"]: f for f in api.case(ME, me_case)["forms"]}[note]
        status = seen["status"]
        if status == "withdrawn":
            break
        time.sleep(0.3)
    assert status == "withdrawn"
    assert seen["withdrawal_reason"] == "sent-in-error"
    assert not seen["allowed_actions"], seen  # nothing more can be done with it on ME's side
    again = api(XK, "POST", f"/cases/{xk_case}/forms/{note}/withdraw", {"reason": "sent-in-error"})
    assert again.status_code == 409, again.text


def test_the_relay_publishes_each_countrys_exchange_events(api: Api) -> None:
    xk_case, note = api.send(XK, notification("Drita"))
    reference = api.case(XK, xk_case)["reference"]
    me_case = api.arrived(ME, reference, note)
    api.acknowledge(ME, me_case, note)
    bootstrap = api.platform.env["KAFKA_BOOTSTRAP_SERVERS"]

    def published() -> dict[str, list[str]] | None:
        records = read_topic(bootstrap, "exchange.events.v1")
        types = {
            record_id: [
                (header(r, "ce_type") or b"").decode() for r in records if r.key == record_id.encode()
            ]
            for record_id in (xk_case, me_case)
        }
        return types if len(types[xk_case]) >= 2 and len(types[me_case]) >= 2 else None

    types = poll(published, 60, "both countries' exchange events on exchange.events.v1")
    assert types == {
        xk_case: ["exchange.form.sent.v1", "exchange.form.acknowledged.v1"],
        me_case: ["exchange.form.received.v1", "exchange.form.acknowledged.v1"],
    }
    payloads = [r.value for r in read_topic(bootstrap, "exchange.events.v1") if r.key == me_case.encode()]
    assert payloads and not any(b"Drita" in value for value in payloads)  # ids and codes only


def test_a_draft_is_prefilled_from_the_users_own_identification_case_on_her_behalf(api: Api) -> None:
    identification = api.platform.gateway + "/v1/identification"
    registered = httpx.post(
        identification + "/persons",
        headers={
            "Authorization": f"Bearer {api.platform.token('xk-police')}",
            "X-Purpose": "identification",
            "Idempotency-Key": f"test-{uuid.uuid4()}",
        },
        json={"given_names": ["Lule"], "surnames": ["Berisha"], "date_of_birth": "2012", "sex": "female"},
        timeout=60,
    )
    assert registered.status_code == 201, registered.text
    case_id = registered.json()["case_id"]

    # A contact point may draft the form but not read identification cases (identification's own roles decide,
    # since the exchange asks with her token): 403 `on_behalf_forbidden`. A coordinator may do both.
    refused = api(XK, "GET", "/prefills", form_type="notification", identification_case_id=case_id)
    assert refused.status_code == 403 and refused.json()["errors"][0]["code"] == "on_behalf_forbidden"
    answer = api.ok(
        "xk-coordinator", "GET", "/prefills", form_type="notification", identification_case_id=case_id
    ).json()
    assert answer["content"]["person"] == {
        "given_names": ["Lule"],
        "surnames": ["Berisha"],
        "date_of_birth": "2012",
        "sex": "female",
    }, answer
    # Identification read it as the coordinator, through the exchange: its own access log says both.
    with MongoClient(api.platform.env["MONGODB_URI"], tz_aware=True) as client:
        reads = list(client["thb_identification"]["access_log"].find({"ids": case_id, "azp": "exchange-api"}))
    assert reads and all("coordinator" in entry["roles"] for entry in reads), reads
    assert {entry["purpose"] for entry in reads} == {"cross-border-exchange"}
    # The exchange logged its own answer too, and another country's coordinator gets nothing.
    assert access_log_entries(api, ids=[case_id], country="XK", resource_type="identification-case")
    other = api(
        "me-coordinator", "GET", "/prefills", form_type="notification", identification_case_id=case_id
    )
    assert other.status_code == 404, other.text
