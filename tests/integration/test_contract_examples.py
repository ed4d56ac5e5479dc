"""Every operation's example request, as the docs UI's "Try it out" sends it, is accepted by the running platform.

For each operation of every contract: the example of every parameter and of the request body, sent through the
gateway by a demo user holding one of the operation's `x-roles` and the service's audience. An example that
names a record uses the documented placeholder id (tests/contract/test_contract_completeness.py checks it is
documented): sent as it is, the answer is 404; with the ids of records made by the earlier examples in its place
(and a fresh Idempotency-Key), 2xx. Every other example is 2xx as it is. A 2xx body must match the operation's
response schema and carry the declared headers (X-Request-Id; Location where the contract declares it).

The operations run as one story (ORDER): register a person, correct it, search for duplicates, ask for access to
the person's case from another agency (whose search answers it as a restricted match) and grant it, merge the
person into a second registration of the same child and undo the merge, screen the
first-contact case, decide, record needs, start the recovery period, acknowledge the notification, close the case;
then register a shelter in the directory, state its places, ask for suggestions, propose a referral, send it with
the granted fields, read them, cancel it and end the person's referrals on a consent withdrawal.
A new operation fails the test until it has a place in ORDER.

Mass assignment, on the same story: before each write is sent as the example has it, it is sent once more with
members a client must never set (another country as owner, an agency, a status, a category, an id, timestamps,
a version) added to its body, each one the operation's body does not declare. Every such attempt answers 422
naming each added member, and changes nothing: the example sent next is accepted as if it had not happened.
"""

from __future__ import annotations

import copy
import dataclasses
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
from openapi_schema_validator import OAS30Validator

from tests.integration.contract_requests import PATH_KINDS, ROLE_USERS, path_kinds
from tests.integration.platform_helpers import token_claims
from tools.contracts import Operation, all_operations, load_contract
from tools.problem_types import resolve

pytestmark = pytest.mark.integration

PLACEHOLDER_ID = "00000000-0000-4000-8000-000000000000"
P = "identification.entrypoints.http."
R = "referral.entrypoints.http."
X = "exchange.entrypoints.http."
V = "voluntary_return.entrypoints.http."
ORDER = [
    f"{P}list_indicator_sets",
    f"{P}get_indicator_set",
    f"{P}publish_indicator_set",
    f"{P}register_person",
    f"{P}list_persons",
    f"{P}get_person",
    f"{P}correct_person",
    f"{P}create_duplicate_search",
    f"{P}create_access_request",
    f"{P}list_access_requests",
    f"{P}decide_access_request",
    f"{P}merge_person",
    f"{P}unmerge_person",
    f"{P}create_case",
    f"{P}list_cases",
    f"{P}get_case",
    f"{P}create_screening",
    f"{P}get_screening",
    f"{P}decide_category",
    f"{P}record_needs",
    f"{P}start_recovery_period",
    f"{P}list_notifications",
    f"{P}acknowledge_notification",
    f"{P}get_statistics",
    f"{P}close_case",
    f"{P}get_subject_access",
    f"{P}get_subject_access_report",
    f"{P}list_access_log",
    f"{P}verify_access_log",
    f"{R}list_service_types",
    f"{R}register_provider",
    f"{R}list_providers",
    f"{R}get_provider",
    f"{R}set_capacity",
    f"{R}suggest_providers",
    f"{R}create_referral",
    f"{R}list_referrals",
    f"{R}get_referral",
    f"{R}request_referral",
    f"{R}get_case_fields",
    f"{R}refresh_case_fields",
    f"{R}transition_referral",
    f"{R}withdraw_consent",
    f"{R}get_statistics",
    "referral.entrypoints.http.list_received_events",
    f"{R}get_subject_access",
    f"{R}list_access_log",
    f"{R}verify_access_log",
    f"{X}list_form_types",
    f"{X}prefill_form",
    f"{X}validate_form",
    f"{X}draft_form",
    f"{X}list_cases",
    f"{X}get_case",
    f"{X}link_identification_case",
    f"{X}read_form",
    f"{X}send_form",
    f"{X}acknowledge_form",
    f"{X}correct_form",
    f"{X}discard_draft",
    f"{X}send_reminder",
    f"{X}withdraw_form",
    f"{X}notify_consent_withdrawn",
    f"{X}list_message_log",
    f"{X}verify_message_log",
    f"{X}get_statistics",
    f"{X}list_received_events",
    f"{X}get_subject_access",
    f"{X}list_access_log",
    f"{X}verify_access_log",
    f"{V}open_case",
    f"{V}list_cases",
    f"{V}get_case",
    f"{V}record_consent",
    f"{V}withdraw_consent",
    f"{V}record_family_assessment",
    f"{V}record_best_interests_assessment",
    f"{V}assign_panel_member",
    f"{V}record_determination",
    f"{V}transition_case",
    f"{V}approve_plan",
    f"{V}get_statistics",
    f"{V}list_received_events",
    f"{V}get_subject_access",
    f"{V}list_access_log",
    f"{V}verify_access_log",
    f"{P}withdraw_consent",  # last: it ends what rested on her consent in every service
    f"{P}restrict_processing",  # the adult's processing restricted, then the restriction lifted
    f"{P}lift_restriction",
]
# Query parameters that name a record, and which.
QUERY_KINDS = {"identification_case_id": "case"}
# Body members that name a record, and which.
BODY_KINDS = {
    **PATH_KINDS,
    "duplicate_of_person_id": "person",
    "linked_person_id": "person",
    "search_id": "search",
    "into_person_id": "kept_person",
}


@dataclass
class Request:
    method: str
    template: str
    query: dict[str, str] = field(default_factory=dict)
    headers: dict[str, str] = field(default_factory=dict)
    body: Any = None
    placeholders: list[str] = field(default_factory=list)  # kinds of the records the example names
    path_values: dict[str, str] = field(default_factory=dict)
    path_kinds: dict[str, str] = field(default_factory=dict)  # the record kind each path parameter names

    @property
    def path(self) -> str:
        path = self.template
        for name, value in self.path_values.items():
            path = path.replace("{" + name + "}", value)
        return path


def example_request(op: Operation) -> Request:
    document = load_contract(op.service)
    item = document["paths"][op.path]
    spec = item[op.method]
    request = Request(op.method.upper(), op.path, path_kinds=path_kinds(op.operation_id, op.service, op.path))
    for parameter in [
        resolve(document, p) for p in [*item.get("parameters", []), *spec.get("parameters", [])]
    ]:
        value = parameter["example"]
        text = ("true" if value else "false") if isinstance(value, bool) else str(value)
        if parameter["in"] == "path":
            request.path_values[parameter["name"]] = text
            if value == PLACEHOLDER_ID:
                request.placeholders.append(request.path_kinds[parameter["name"]])
        elif parameter["in"] == "query":
            request.query[parameter["name"]] = text
            if value == PLACEHOLDER_ID:
                request.placeholders.append(QUERY_KINDS[parameter["name"]])
        elif parameter["in"] == "header":
            request.headers[parameter["name"]] = text
    body = resolve(document, spec.get("requestBody"))
    if body:
        media = body["content"]["application/json"]
        request.body = (
            media["example"] if "example" in media else next(iter(media["examples"].values()))["value"]
        )
        request.placeholders += [BODY_KINDS[name] for name in _placeholder_members(request.body)]
    return request


def _placeholder_members(body: Any) -> list[str]:
    if isinstance(body, Mapping):
        found = [name for name, value in body.items() if value == PLACEHOLDER_ID]
        return found + [n for value in body.values() for n in _placeholder_members(value)]
    if isinstance(body, list):
        return [n for item in body for n in _placeholder_members(item)]
    return []


def substituted(request: Request, records: Mapping[str, str]) -> Request:
    """The request with the records of the story in place of the placeholder ids, and a fresh key."""
    missing = sorted({kind for kind in request.placeholders if kind not in records})
    assert not missing, f"no {missing} made by an earlier example"

    def fill(node: Any) -> Any:
        if isinstance(node, dict):
            return {k: (records[BODY_KINDS[k]] if v == PLACEHOLDER_ID else fill(v)) for k, v in node.items()}
        if isinstance(node, list):
            return [fill(item) for item in node]
        return node

    changed = copy.deepcopy(request)
    changed.path_values = {
        name: records[request.path_kinds[name]] if value == PLACEHOLDER_ID else value
        for name, value in request.path_values.items()
    }
    changed.body = fill(changed.body)
    changed.query = {
        name: records[QUERY_KINDS[name]] if value == PLACEHOLDER_ID else value
        for name, value in request.query.items()
    }
    changed.placeholders = []
    if "Idempotency-Key" in changed.headers:
        changed.headers["Idempotency-Key"] = f"example-{uuid.uuid4()}"
    return changed


class Gateway:
    def __init__(self, platform: Any) -> None:
        self.platform = platform
        self.tokens: dict[str, str] = {}

    def token(self, user: str) -> str:
        if user not in self.tokens:
            self.tokens[user] = self.platform.token(user)
        return self.tokens[user]

    def user_for(self, op: Operation) -> str:
        """A demo user (AL) holding one of the operation's x-roles whose token may call its service: the realm
        puts `<service>-api` into `aud` by agency (a social-services case manager does not reach exchange)."""
        for role, suffix in ROLE_USERS.items():
            if role in (op.roles or []):
                audience = token_claims(self.token(f"al-{suffix}")).get("aud")
                if f"{op.service}-api" in (audience if isinstance(audience, list) else [audience]):
                    return f"al-{suffix}"
        raise LookupError(f"no demo user may call {op.label}")

    def send(self, user: str, request: Request) -> httpx.Response:
        headers = {"Authorization": f"Bearer {self.token(user)}", **request.headers}
        kwargs: dict[str, Any] = {"params": request.query or None, "headers": headers, "timeout": 30}
        if request.body is not None:
            kwargs["json"] = request.body
        return httpx.request(request.method, self.platform.gateway + request.path, **kwargs)


# What a client may try to set on a record it writes; only members the operation's body does not declare are
# added (a decision that declares `category`, say, takes it as input on purpose).
MASS_ASSIGNMENT = {
    "owner_country": "XK",
    "owner_agency": "coordinator-office",
    "status": "closed",
    "category": "victim",
    "id": "3f0c6a4e-9b1d-4c57-8f0e-2a6d9c1b7e55",
    "created_at": "2020-01-01T00:00:00Z",
    "updated_at": "2020-01-01T00:00:00Z",
    "created_by": "someone-else",
    "version": 99,
}


def mass_assignment(op: Operation, request: Request) -> tuple[Request, list[str]] | None:
    """The request with the undeclared protected members added to its body, and their names; None when the
    operation has no JSON object body."""
    if not isinstance(request.body, dict):
        return None
    document = load_contract(op.service)
    body = resolve(document, document["paths"][op.path][op.method]["requestBody"])
    schema = inline(document, body["content"]["application/json"]["schema"])
    declared = set(schema.get("properties", {}))
    for part in schema.get("allOf", []) + schema.get("oneOf", []) + schema.get("anyOf", []):
        declared |= set(part.get("properties", {}))
    added = {name: value for name, value in MASS_ASSIGNMENT.items() if name not in declared}
    headers = {**request.headers}
    if "Idempotency-Key" in headers:
        headers["Idempotency-Key"] = f"mass-assignment-{uuid.uuid4()}"
    attempt = dataclasses.replace(request, body={**request.body, **added}, headers=headers)
    return attempt, sorted(added)


def refused_members(response: httpx.Response) -> set[str]:
    if response.status_code != 422 or not response.content:
        return set()
    return {str(e.get("pointer", "")).removeprefix("/body/") for e in response.json().get("errors", [])}


def check_answer(op: Operation, response: httpx.Response) -> list[str]:
    """The 2xx answer matches the operation's response schema and declared headers."""
    problems: list[str] = []
    document = load_contract(op.service)
    declared = resolve(
        document, document["paths"][op.path][op.method]["responses"].get(str(response.status_code))
    )
    if declared is None:
        return [f"{response.status_code} is not a documented answer"]
    for name, header in (declared.get("headers") or {}).items():
        if resolve(document, header).get("required") and name.lower() not in response.headers:
            problems.append(f"header {name} missing")
    media = (declared.get("content") or {}).get("application/json")
    if media:
        schema = inline(document, media["schema"])
        errors = [
            f"{'/'.join(str(p) for p in e.absolute_path)}: {e.validator}"
            for e in OAS30Validator(schema).iter_errors(response.json())
        ]
        problems += [f"body does not match the schema at {e}" for e in errors[:10]]
    return problems


def inline(document: Mapping[str, Any], node: Any, depth: int = 0) -> Any:
    assert depth < 50
    node = resolve(document, node)
    if isinstance(node, Mapping):
        return {k: inline(document, v, depth + 1) for k, v in node.items() if not k.startswith("x-")}
    if isinstance(node, list):
        return [inline(document, v, depth + 1) for v in node]
    return node


def remember(op: Operation, response: httpx.Response, records: dict[str, str], api: Gateway) -> None:
    """The records an answer made, for the examples that name a record."""
    name = op.operation_id.removeprefix(P)
    body = response.json() if response.headers.get("content-type", "").startswith("application/json") else {}
    if name == "register_person":
        records["person"], records["case"] = body["id"], body["case_id"]
    elif name == "create_screening":
        records["screening"] = body["id"]
    elif name == "create_access_request":
        records["access_request"] = body["id"]
    elif op.operation_id == f"{R}register_provider":
        records["provider"] = body["id"]
    elif (
        op.operation_id == f"{V}open_case"
    ):  # a child's: consent is refused, the adult's kind is the same case
        records["return_case"] = records["return_adult_case"] = body["id"]
    elif op.operation_id == f"{R}create_referral":  # requested by the next examples, then refreshed
        records["referral"] = records["referral_sent"] = body["id"]
    elif op.operation_id == f"{X}draft_form":
        records["exchange_case"] = records["exchange_draft_case"] = body["id"]
        records["exchange_form"] = records["exchange_draft"] = response.headers["location"].rsplit("/", 1)[1]
    elif op.operation_id == f"{X}correct_form":  # the correction is a draft: the discard example takes it
        records["exchange_spare_case"] = body["id"]
        records["exchange_spare"] = response.headers["location"].rsplit("/", 1)[1]
    elif name == "decide_category":
        listed = api.send(
            "al-coordinator",
            Request(
                "GET", "/v1/identification/notifications", {"limit": "200"}, {"X-Purpose": "identification"}
            ),
        )
        assert listed.status_code == 200, listed.text
        mine = [n for n in listed.json()["items"] if n["case_id"] == records["case"]]
        assert mine, "the decision notified the coordinator's office"
        records["notification"] = mine[-1]["id"]


def unpublished_version(api: Gateway, user: str) -> str:
    """A regional version nobody published yet in this database (the example's is published once)."""
    index = api.send(user, Request("GET", "/v1/identification/indicator-sets"))
    taken = {item["version"] for item in index.json()["items"] if item["set_id"] == "regional"}
    return next(f"2998.{n}" for n in range(1, 1000) if f"2998.{n}" not in taken)


# An access request is asked by an officer of another agency, whose duplicate search answers the story's case as a
# restricted match (the registering case manager's own search sees the person in full).
OTHER_AGENCY_USER = "al-police"


def restricted_search(api: Gateway, records: Mapping[str, str]) -> str:
    """The id of a duplicate search by OTHER_AGENCY_USER, sent as the search operation's example, that answers
    the story's case as a restricted match."""
    operation = next(op for op in all_operations() if op.operation_id == f"{P}create_duplicate_search")
    request = example_request(operation)
    request.headers["Idempotency-Key"] = f"example-{uuid.uuid4()}"
    response = api.send(OTHER_AGENCY_USER, request)
    assert response.status_code == 201, response.text
    restricted = [match["case_id"] for match in response.json().get("restricted_candidates", [])]
    assert records["case"] in restricted, f"the story's case is not a restricted match: {response.text[:500]}"
    return str(response.json()["id"])


def second_registration(api: Gateway, **changes: Any) -> str:
    """The story's child registered a second time (the record a merge keeps), with `changes` to the example."""
    operation = next(op for op in all_operations() if op.operation_id == f"{P}register_person")
    request = example_request(operation)
    request.headers["Idempotency-Key"] = f"example-{uuid.uuid4()}"
    request.body = {k: v for k, v in request.body.items() if k != "external_ref"} | changes
    response = api.send("al-case-manager", request)
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


# The exchange examples send AL's notification to ME (the recipient of the draft example); ME's officer acknowledges
# it in ME's own record of the case, once the transport and ME's inbox have delivered it.
RECIPIENT_USER = "me-contact-point"
# Examples that a client sends correctly and the service refuses for a reason of state, with that answer.
REFUSED_AS_EXPECTED = {
    # a reminder is for an overdue reply; the story's notification was sent a moment ago
    f"{X}send_reminder": (409, "reply_not_overdue"),
    # the story's referral names no identification case (its fields were typed in): nothing to copy again
    # (tests/integration/test_referral_case_fields.py refreshes one that does)
    f"{R}refresh_case_fields": (409, "refresh_needs_identification_case"),
    # the story's return case is a child's: a child's consent clears nothing, and there is none to withdraw
    f"{V}record_consent": (409, "consent_does_not_clear_a_child"),
    f"{V}withdraw_consent": (409, "no_consent_recorded"),
}
# The demo panel member the story's case is given to (her user id replaces the example's) and who determines it.
PANEL_MEMBER = "al-bid-panel"


def received_copy(api: Gateway, records: dict[str, str]) -> None:
    """ME's record of the story's case, as its inbox stored it (polled: delivery is asynchronous)."""
    sent = api.send("al-coordinator", Request("GET", f"/v1/exchange/cases/{records['exchange_case']}"))
    assert sent.status_code == 200, sent.text
    reference = sent.json()["reference"]
    deadline = time.monotonic() + 60
    while True:
        listed = api.send(RECIPIENT_USER, Request("GET", "/v1/exchange/cases", {"limit": "200"}))
        assert listed.status_code == 200, listed.text
        arrived = [case for case in listed.json()["items"] if case["reference"] == reference]
        if arrived or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    assert arrived, f"the notification {reference} never reached ME"
    records["exchange_received_case"] = arrived[0]["id"]
    records["exchange_received"] = records["exchange_form"]


def decided(api: Gateway, records: Mapping[str, str]) -> None:
    """The story's return case decided (its determination for return was recorded), so the plan can be approved."""
    request = Request(
        "POST",
        f"/v1/return/cases/{records['return_case']}/transitions",
        headers={"X-Purpose": "return", "Idempotency-Key": f"example-{uuid.uuid4()}"},
        body={"action": "record_decision"},
    )
    response = api.send("al-case-manager", request)
    assert response.status_code == 200, response.text


def test_every_example_request_is_accepted(running_platform: Any) -> None:
    operations = {op.operation_id: op for op in all_operations()}
    assert set(ORDER) == set(operations), (
        f"give every operation a place in ORDER: {set(operations) ^ set(ORDER)}"
    )
    api = Gateway(running_platform)
    records: dict[str, str] = {}
    failures: list[str] = []
    tried = 0  # writes sent once more with members a client must never set
    for operation_id in ORDER:
        op = operations[operation_id]
        user = api.user_for(op)
        request = example_request(op)
        if operation_id == f"{P}merge_person":
            records["kept_person"] = second_registration(api)
        if (
            operation_id == f"{P}withdraw_consent"
        ):  # the story's person is a child: an adult withdraws consent
            records["person"] = second_registration(api, date_of_birth="1990-04")
        if operation_id == f"{P}create_access_request":
            user = OTHER_AGENCY_USER
            records["search"] = restricted_search(api, records)
        if operation_id == f"{P}publish_indicator_set":
            # A version is published once: the example's own version would be 409 the second time.
            request.body = {**request.body, "version": unpublished_version(api, user)}
            request.headers["Idempotency-Key"] = f"example-{uuid.uuid4()}"
        if operation_id == f"{V}assign_panel_member":
            request.body = {"member": token_claims(api.token(PANEL_MEMBER))["sub"]}
        if operation_id == f"{V}approve_plan":  # the transition example started the assessment: decide
            decided(api, records)
        if operation_id == f"{X}acknowledge_form":
            user = RECIPIENT_USER
            received_copy(api, records)
        if request.placeholders:
            as_is = api.send(user, request)
            if as_is.status_code != 404 or as_is.headers.get("content-type") != "application/problem+json":
                failures.append(
                    f"{op.label} as in the example: {as_is.status_code}, expected 404 (placeholder)"
                )
            elif as_is.json().get("instance") != as_is.headers.get("x-request-id"):
                failures.append(f"{op.label}: the problem's instance is not the X-Request-Id")
            elif "content-language" not in as_is.headers:
                failures.append(f"{op.label}: the problem has no Content-Language")
            request = substituted(request, records)
        if (attempt := mass_assignment(op, request)) is not None:
            injected, names = attempt
            tried += 1
            answer = api.send(user, injected)
            if not set(names) <= refused_members(answer):
                failures.append(
                    f"{op.label} with {names} added: {answer.status_code} {answer.text[:300]}, expected 422 "
                    "naming each"
                )
        response = api.send(user, request)
        if operation_id in REFUSED_AS_EXPECTED:
            status, code = REFUSED_AS_EXPECTED[operation_id]
            codes = [e.get("code") for e in response.json().get("errors", [])] if response.content else []
            if response.status_code != status or code not in codes:
                failures.append(
                    f"{op.label}: {response.status_code} {response.text[:300]}, expected {status} {code}"
                )
            continue
        if not 200 <= response.status_code < 300:
            failures.append(f"{op.label}: {response.status_code} {response.text[:300]}")
            continue
        failures += [f"{op.label}: {problem}" for problem in check_answer(op, response)]
        remember(op, response, records, api)
    assert not failures, "\n".join(failures)
    assert tried >= 36, f"only {tried} writes were tried with added members"
