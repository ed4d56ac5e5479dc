"""The exchange API as a client meets it: the real app (contract, roles, X-Purpose, Idempotency-Key, problem
mapping, response validation) over the service layer on fakes (tests/unit/fakes.py). What the service layer
already proves (every rule, receiving, evidence) is not repeated; here: the status codes, headers and pointers a
client sees, and that the contract lets through what the catalogue allows."""

from __future__ import annotations

import copy
import io
from collections.abc import Iterator
from typing import Any

import pytest
from pymongo.errors import DuplicateKeyError

from exchange.adapters.documents import ExchangeCaseDocument
from exchange.entrypoints import http
from plumbing.auth import AuthError, Caller
from plumbing.config import Settings
from plumbing.crypto import RequestFingerprinter, ResponseSealer
from plumbing.errors import NotPermitted as PlumbingNotPermitted
from services.exchange.tests.unit.conftest import notification
from services.exchange.tests.unit.fakes import (
    USERS,
    World,
    build_world,
    packaged_catalogue,
    runtime_over,
    user,
)
from services.exchange.tests.unit.test_exchange_prefill import CASE, PERSON, FakeIdentification
from tools.contracts import operations

BASE = "/v1/exchange"
PURPOSE = {"X-Purpose": "cross-border-exchange"}
XK_AUDITOR = Caller(
    sub="sub-xk-auditor",
    azp="thb-test",
    country="XK",
    agency="coordinator-office",
    roles=frozenset({"auditor"}),
    acting_user=None,
    is_machine=False,
    token="not-a-token",
)
CALLERS = {**{name: user(name) for name in USERS}, "xk-auditor": XK_AUDITOR}


class TokenValidator:
    """A test token is the user's name (fakes.USERS); anything else is refused like a bad signature."""

    def validate(self, token: str) -> Caller:
        if token in CALLERS:
            return CALLERS[token]
        raise AuthError("bad_signature", "signature does not verify")


class IdempotencyCollection:
    """What plumbing.idempotency.IdempotencyStore asks of its collection (equality filters only), in memory."""

    def __init__(self) -> None:
        self.docs: dict[str, dict[str, Any]] = {}

    def _find(self, where: dict[str, Any]) -> dict[str, Any] | None:
        return next((d for d in self.docs.values() if all(d.get(k) == v for k, v in where.items())), None)

    def create_index(self, *args: Any, **kwargs: Any) -> None:
        return None

    def insert_one(self, doc: dict[str, Any]) -> None:
        if doc["_id"] in self.docs:
            raise DuplicateKeyError("duplicate key")
        self.docs[doc["_id"]] = copy.deepcopy(doc)

    def find_one(self, where: dict[str, Any]) -> dict[str, Any] | None:
        return copy.deepcopy(self._find(where))

    def delete_one(self, where: dict[str, Any]) -> None:
        found = self._find(where)
        if found is not None:
            del self.docs[found["_id"]]

    def update_one(self, where: dict[str, Any], update: dict[str, Any]) -> None:
        found = self._find(where)
        if found is not None:
            found.update(copy.deepcopy(update.get("$set", {})))
            for name in update.get("$unset", {}):
                found.pop(name, None)

    def find_one_and_update(self, where: dict[str, Any], update: dict[str, Any], **_: Any) -> Any:
        self.update_one(where, update)
        return self.find_one({"_id": where["_id"]})


class Database:
    def __init__(self) -> None:
        self.collection = IdempotencyCollection()

    def __getitem__(self, name: str) -> IdempotencyCollection:
        return self.collection

    def command(self, name: str) -> dict[str, int]:
        return {"ok": 1}


class Api:
    """One test's deployment: the world of fakes and a client speaking for its users."""

    def __init__(self, world: World, client: Any) -> None:
        self.world, self.client = world, client

    def call(
        self, method: str, path: str, who: str, *, key: str | None = None, json: Any = None, **headers: str
    ) -> Any:
        sent = {"Authorization": f"Bearer {who}", **PURPOSE, **headers}
        if key is not None:
            sent["Idempotency-Key"] = key
        return self.client.request(method, BASE + path, headers=sent, json=json)

    def draft(self, who: str = "xk-contact-point", key: str = "draft-0001", **body: Any) -> Any:
        return self.call("POST", "/drafts", who, key=key, json={**notification(), **body})

    def stored(self) -> int:
        return len(self.world.store.rows(ExchangeCaseDocument))


DATABASE = Database()
SETTINGS = Settings.from_env("exchange", {"THB_MODE": "local"})


@pytest.fixture(scope="module")
def app() -> Any:
    # Built once (the contract is large); each test gives it a fresh world (`api`).
    world = build_world()
    runtime = runtime_over(world, SETTINGS)
    return http.app_for(
        runtime,
        validator=TokenValidator(),
        database=lambda: DATABASE,
        validate_responses=True,  # every answer must match the contract
        response_sealer=ResponseSealer(world.keys),
        request_fingerprinter=RequestFingerprinter(world.keys, "exchange"),
        log_stream=io.StringIO(),
        tracing_exporter="memory",
    )


@pytest.fixture
def api(app: Any) -> Iterator[Api]:
    world = build_world()
    http.STATE.runtime = runtime_over(world, SETTINGS)
    DATABASE.collection.docs.clear()
    with app.test_client() as client:
        yield Api(world, client)


def form_path(response: Any) -> str:
    location = response.headers["Location"]
    assert location.startswith(BASE)
    return str(location[len(BASE) :])


# ---------------------------------------------------------------------------------------------- drafts


def test_a_draft_is_201_with_the_case_and_the_location_of_the_new_form(api: Api) -> None:
    response = api.draft(who="xk-case-manager")
    assert response.status_code == 201, response.text
    case = response.json()
    (form,) = case["forms"]
    assert form_path(response) == f"/cases/{case['id']}/forms/{form['id']}"
    assert case["reference"] == "XK-EX-2026-0001" and case["participants"] == ["XK", "ME"]
    assert form["status"] == "draft" and form["direction"] == "out" and form["counterpart"] == "ME"
    # A case manager drafts; sending is for contact points and coordinators.
    assert [a["action"] for a in form["allowed_actions"]] == ["edit", "discard"]
    read = api.call("GET", form_path(response), "xk-contact-point")
    assert read.status_code == 200, read.text
    assert read.json()["content"]["person"]["surnames"] == ["Krasniqi"]
    assert read.json()["subject"]["age_group"] == "child"
    assert api.world.reads.entries == [("XK", "sub-xk-contact-point", "exchange-form", (form["id"],))]


def test_a_retried_draft_answers_the_first_answer_and_makes_no_second_form(api: Api) -> None:
    first = api.draft(key="draft-retry")
    again = api.draft(key="draft-retry")
    assert again.status_code == 201 and again.headers["Idempotent-Replayed"] == "true"
    assert again.headers["Location"] == first.headers["Location"] and api.stored() == 1
    other_body = api.draft(key="draft-retry", recipient="AL")
    assert other_body.status_code == 409
    assert other_body.json()["type"].endswith("/idempotency-key-reused")


def test_another_users_draft_with_the_same_key_is_a_draft_of_its_own(api: Api) -> None:
    # The service layer looks drafts up by key across the country: the key is narrowed to the user.
    mine = api.draft(who="xk-contact-point", key="same-key-0001")
    theirs = api.draft(who="xk-coordinator", key="same-key-0001")
    assert mine.status_code == theirs.status_code == 201
    assert mine.headers["Location"] != theirs.headers["Location"] and api.stored() == 2


def test_a_field_outside_the_schema_is_422_with_its_pointer_and_nothing_is_stored(api: Api) -> None:
    body = notification()
    body["content"]["health_narrative"] = {"text": "Canary-narrative-4711", "lang": "sq"}
    response = api.call("POST", "/drafts", "xk-contact-point", key="draft-bad", json=body)
    assert response.status_code == 422, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    assert response.json()["errors"] == [{"pointer": "/body/content/health_narrative", "code": "not_allowed"}]
    assert "Canary-narrative-4711" not in response.text
    assert api.stored() == 0


def test_every_broken_rule_of_a_draft_is_answered_at_once(api: Api) -> None:
    body = notification(recipient="XK")
    body["content"]["category"] = "not-a-category"
    response = api.call("POST", "/drafts", "xk-contact-point", key="draft-bad-2", json=body)
    assert response.status_code == 422
    assert {(e["pointer"], e["code"]) for e in response.json()["errors"]} == {
        ("/body/recipient", "recipient_is_own_country"),
        ("/body/content/category", "unknown_code"),
    }


def test_the_contract_refuses_a_body_member_it_does_not_know(api: Api) -> None:
    response = api.call(
        "POST", "/drafts", "xk-contact-point", key="draft-bad-3", json={**notification(), "priority": "high"}
    )
    assert response.status_code == 422
    assert response.json()["errors"] == [{"pointer": "/body/priority", "code": "additionalProperties"}]


def test_a_draft_needs_an_idempotency_key(api: Api) -> None:
    response = api.call("POST", "/drafts", "xk-contact-point", json=notification())
    assert response.status_code == 400
    assert response.json()["type"].endswith("/idempotency-key-required")
    assert api.stored() == 0


def test_a_validation_only_call_is_204_and_stores_nothing(api: Api) -> None:
    response = api.call("POST", "/draft-validations", "xk-case-manager", json=notification())
    assert response.status_code == 204 and api.stored() == 0
    body = notification()
    body["content"]["health_narrative"] = {"text": "x", "lang": "sq"}
    refused = api.call("POST", "/draft-validations", "xk-case-manager", json=body)
    assert refused.status_code == 422
    assert refused.json()["errors"] == [{"pointer": "/body/content/health_narrative", "code": "not_allowed"}]


def test_a_draft_is_discarded_and_a_sent_form_is_not(api: Api) -> None:
    path = form_path(api.draft(key="draft-discard"))
    assert api.call("DELETE", path, "xk-case-manager").status_code == 204
    assert api.call("GET", path, "xk-contact-point").status_code == 404
    sent = form_path(api.draft(key="draft-sent"))
    assert api.call("POST", sent + "/send", "xk-contact-point", key="send-0001").status_code == 200
    refused = api.call("DELETE", sent, "xk-case-manager")
    assert refused.status_code == 409
    assert refused.json()["errors"] == [{"pointer": "/body", "code": "form_not_draft"}]


# ---------------------------------------------------------------------------------------------- sending


def test_a_second_send_is_409_and_a_retry_of_the_first_is_its_answer(api: Api) -> None:
    path = form_path(api.draft())
    sent = api.call("POST", path + "/send", "xk-contact-point", key="send-0001")
    assert sent.status_code == 200, sent.text
    assert sent.json()["forms"][0]["status"] == "sent"
    retried = api.call("POST", path + "/send", "xk-contact-point", key="send-0001")
    assert retried.status_code == 200 and retried.headers["Idempotent-Replayed"] == "true"
    second = api.call("POST", path + "/send", "xk-contact-point", key="send-0002")
    assert second.status_code == 409
    assert second.json()["type"].endswith("/conflict")
    assert second.json()["errors"] == [{"pointer": "/body", "code": "form_not_draft"}]
    assert len(api.world.transport.queue) == 1


def test_sending_is_for_contact_points_and_coordinators(api: Api) -> None:
    path = form_path(api.draft(who="xk-case-manager"))
    refused = api.call("POST", path + "/send", "xk-case-manager", key="send-0001")
    assert refused.status_code == 403 and api.world.transport.queue == []
    assert api.call("POST", "/drafts", "xk-police", key="k-police", json=notification()).status_code == 403


def test_the_recipient_acknowledges_and_the_sender_withdraws(api: Api) -> None:
    path = form_path(api.draft())
    api.call("POST", path + "/send", "xk-contact-point", key="send-0001")
    api.world.pump()
    (me_case,) = api.call("GET", "/cases", "me-contact-point").json()["items"]
    (received,) = [f for f in me_case["forms"] if f["direction"] == "in"]  # beside it, the receipt sent back
    assert received["status"] == "received"
    me_path = f"/cases/{me_case['id']}/forms/{received['id']}"
    acknowledged = api.call("POST", me_path + "/acknowledge", "me-contact-point", key="ack-0001")
    assert acknowledged.status_code == 200, acknowledged.text
    assert (
        next(f for f in acknowledged.json()["forms"] if f["id"] == received["id"])["status"] == "acknowledged"
    )
    withdrawn = api.call(
        "POST", path + "/withdraw", "xk-contact-point", key="withdraw-0001", json={"reason": "sent-in-error"}
    )
    assert withdrawn.status_code == 200, withdrawn.text
    form = withdrawn.json()["forms"][0]
    assert form["status"] == "withdrawn" and form["withdrawal_reason"] == "sent-in-error"
    unknown = api.call(
        "POST", path + "/withdraw", "xk-contact-point", key="withdraw-0002", json={"reason": "bored"}
    )
    assert unknown.status_code == 422
    assert unknown.json()["errors"] == [{"pointer": "/body/reason", "code": "unknown_code"}]


def test_a_correction_is_a_new_draft_superseding_the_sent_form(api: Api) -> None:
    path = form_path(api.draft())
    api.call("POST", path + "/send", "xk-contact-point", key="send-0001")
    content = notification()["content"]
    corrected = api.call(
        "POST", path + "/corrections", "xk-case-manager", key="fix-0001", json={"content": content}
    )
    assert corrected.status_code == 201, corrected.text
    new_id = form_path(corrected).rsplit("/", 1)[1]
    new = next(f for f in corrected.json()["forms"] if f["id"] == new_id)
    assert new["status"] == "draft" and path.endswith(str(new["supersedes"]))


def test_a_reminder_before_the_deadline_is_409(api: Api) -> None:
    path = form_path(api.draft())
    api.call("POST", path + "/send", "xk-contact-point", key="send-0001")
    early = api.call("POST", path + "/remind", "xk-contact-point", key="remind-0001")
    assert early.status_code == 409
    assert early.json()["errors"] == [{"pointer": "/body", "code": "reply_not_overdue"}]


# ---------------------------------------------------------------------------------------------- reading


def test_reading_a_form_needs_a_purpose_and_is_for_the_countries_that_hold_it(api: Api) -> None:
    path = form_path(api.draft())
    without = api.client.get(BASE + path, headers={"Authorization": "Bearer xk-contact-point"})
    assert without.status_code == 422
    assert without.json()["errors"] == [{"pointer": "/header/X-Purpose", "code": "required"}]
    assert api.call("GET", path, "al-contact-point").status_code == 404
    assert api.call("GET", path, "xk-analyst").status_code == 403
    assert api.world.reads.entries == []


def test_cases_are_listed_in_pages_of_the_callers_country(api: Api) -> None:
    for key in ("draft-000a", "draft-000b"):
        api.draft(key=key)
    first = api.call("GET", "/cases?limit=1", "xk-case-manager").json()
    assert len(first["items"]) == 1 and first["next_cursor"]
    second = api.call("GET", f"/cases?limit=1&cursor={first['next_cursor']}", "xk-case-manager").json()
    assert len(second["items"]) == 1 and second["next_cursor"] is None
    assert first["items"][0]["id"] != second["items"][0]["id"]
    assert api.call("GET", "/cases", "me-case-manager").json() == {"items": [], "next_cursor": None}


def test_the_case_is_linked_to_the_countrys_own_identification_case(api: Api) -> None:
    case_id = api.draft().json()["id"]
    linked = api.call(
        "PUT",
        f"/cases/{case_id}/identification-case",
        "xk-case-manager",
        json={"identification_case_id": "3f0c6a4e-9b1d-4c57-8f0e-2a6d9c1b7e55"},
    )
    assert linked.status_code == 200, linked.text
    assert linked.json()["identification_case_id"] == "3f0c6a4e-9b1d-4c57-8f0e-2a6d9c1b7e55"


def test_the_catalogue_lists_form_types_with_roles_and_labels(api: Api) -> None:
    catalogue = api.call("GET", "/form-types", "xk-case-manager").json()
    notification_type = next(t for t in catalogue["form_types"] if t["code"] == "notification")
    assert notification_type["roles"] == {
        "draft": ["case-manager", "contact-point", "coordinator"],
        "send": ["contact-point", "coordinator"],
    }
    assert notification_type["opens_case"] and notification_type["reviewed"] is False
    assert catalogue["codes"]["withdrawal-reason"]["sent-in-error"]["labels"]["en"]
    assert [pair["recipient"] for pair in catalogue["legal_bases"]] == ["AL", "ME"]


# ---------------------------------------------------------------------------------------------- evidence


def test_auditors_read_the_message_log_and_its_verification_never_content(api: Api) -> None:
    path = form_path(api.draft())
    api.call("POST", path + "/send", "xk-contact-point", key="send-0001")
    log = api.call("GET", "/message-log", "xk-auditor")
    assert log.status_code == 200, log.text
    (entry,) = log.json()["items"]
    assert entry["direction"] == "sent" and entry["form_type"] == "notification" and entry["seq"] == 1
    assert "content" not in entry
    verified = api.call("GET", "/message-log/verification", "xk-auditor").json()
    assert verified == {
        "ok": True,
        "chain": {"ok": True, "checked": 1, "first_broken_seq": None, "reason": None},
        "altered_forms": [],
        "anonymised_forms": 0,
    }
    assert api.call("GET", path, "xk-auditor").status_code == 403


def test_the_message_log_pages_by_its_chain(api: Api) -> None:
    for number in (1, 2, 3):
        path = form_path(api.draft(key=f"draft-000{number}"))
        api.call("POST", path + "/send", "xk-contact-point", key=f"send-000{number}")
    first = api.call("GET", "/message-log?limit=2", "xk-coordinator").json()
    rest = api.call("GET", f"/message-log?limit=2&cursor={first['next_cursor']}", "xk-coordinator").json()
    assert [e["seq"] for e in first["items"] + rest["items"]] == [1, 2, 3] and rest["next_cursor"] is None


def test_the_message_log_starts_at_the_first_entry_logged_since(api: Api) -> None:
    since = api.world.clock.now()
    for number in (1, 2, 3):
        path = form_path(api.draft(key=f"draft-000{number}"))
        api.call("POST", path + "/send", "xk-contact-point", key=f"send-000{number}")
        api.world.clock.advance(minutes=10)
        if number == 1:
            since = api.world.clock.now()  # after the first send, before the second
    later = since.isoformat().replace("+00:00", "Z")
    page = api.call("GET", f"/message-log?updated_since={later}", "xk-coordinator")
    assert page.status_code == 200, page.text
    assert [e["seq"] for e in page.json()["items"]] == [2, 3]


def test_a_prefill_answers_the_listed_fields_and_a_refused_exchange_is_403(api: Api) -> None:
    identification = FakeIdentification(
        {CASE["id"]: {**CASE, "person_id": PERSON["id"]}}, {PERSON["id"]: PERSON}
    )
    api.world.deps.identification = identification
    path = f"/prefills?form_type=notification&identification_case_id={CASE['id']}"
    answer = api.call("GET", path, "xk-contact-point")
    assert answer.status_code == 200, answer.text
    assert (
        answer.json()["content"]["category"] == "potential-victim"
        and "/person/sex" in answer.json()["copied"]
    )
    assert api.call("GET", path, "xk-contact-point", **{"X-Purpose": ""}).status_code in (400, 422)

    def refused(case_id: str) -> dict:
        raise PlumbingNotPermitted("on_behalf_exchange_refused")

    identification.case = refused  # type: ignore[method-assign]
    denied = api.call("GET", path, "xk-contact-point")
    assert denied.status_code == 403 and denied.json()["errors"][0]["code"] == "on_behalf_exchange_refused"


def test_statistics_for_the_coordinators_office_a_year_at_a_time(api: Api) -> None:
    path = form_path(api.draft())
    api.call("POST", path + "/send", "xk-contact-point", key="send-0001")
    year = api.world.clock.now().year
    report = api.call("GET", f"/statistics?period={year}", "xk-coordinator")
    assert report.status_code == 200, report.text
    body = report.json()
    assert body["forms_by_type"]["total"] == "<5" and "XK>ME" in body["type_by_direction"]["column_labels"]
    assert api.call("GET", f"/statistics?period={year}", "xk-contact-point").status_code == 403
    refused = api.call("GET", "/statistics?period=2026-Q1", "xk-coordinator")
    assert refused.status_code in (400, 422) and refused.headers["content-type"] == "application/problem+json"


# ---------------------------------------------------------------------------------------------- the contract


def test_the_contract_lets_through_every_role_the_catalogue_gives_a_step() -> None:
    """x-roles is the outer gate (gateway and service): it must not shut out a role a form type allows."""
    roles = {op.operation_id.rsplit(".", 1)[1]: set(op.roles or ()) for op in operations("exchange")}
    kinds = packaged_catalogue().types.values()
    drafting = set().union(*(kind.draft_roles for kind in kinds))
    sending_roles = set().union(*(kind.send_roles for kind in kinds))
    for name in ("draft_form", "validate_form", "discard_draft", "correct_form"):
        assert drafting <= roles[name], name
    for name in (
        "send_form",
        "acknowledge_form",
        "withdraw_form",
        "send_reminder",
        "notify_consent_withdrawn",
    ):
        assert sending_roles <= roles[name], name
