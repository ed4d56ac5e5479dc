"""Every value a contract's enum allows is accepted end to end, by the real service processes.

For each operation, every enum in its request body (found by walking the contract's schema) and in its query
parameters is tried with each of its values, inside an otherwise complete valid request, against fresh records.
A code list that is narrower further in (an event schema, a domain enum, a database rule) answers 5xx here:
the `needs` codes once did (the event schema knew 11 of the contract's 14). Values that a business rule refuses
in the complete body are listed in REFUSED with the reason; everything else must be a 2xx.
"""

from __future__ import annotations

import copy
import itertools
import json
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.integration.contract_requests import (
    ADULT_LABOUR,
    BODIES,
    FIXED_PATH_VALUES,
    FULL_BODIES,
    PROBE_YEARS,
    QUERIES,
    purpose_for,
    resolve,
    user_for,
)
from tests.integration.platform_helpers import token_claims
from tools.contracts import Operation, all_operations, load_contract

pytestmark = pytest.mark.integration

ITEM = "[]"  # a step into an array's items
# (operationId, pointer, value) -> why a complete body with that value is refused (409/422/403).
REFUSED = {
    ("identification.entrypoints.http.decide_category", "/category", "victim"): (
        "only a role the country's configuration authorises, with a legal reference, identifies a victim"
    ),
    ("identification.entrypoints.http.register_person", "/duplicate_check/outcome", "linked"): (
        "a link names the person linked to"
    ),
    ("identification.entrypoints.http.register_person", "/age_determinations/0/result", "adult"): (
        "the complete body's assessed birth range is a child's: an adult result contradicts it"
    ),
    ("identification.entrypoints.http.close_case", "/reason", "duplicate_record"): (
        "a duplicate record names the person it duplicates"
    ),
    ("identification.entrypoints.http.publish_indicator_set", "/kind", "national"): (
        "national additions name their country and base set"
    ),
}


# The case manager (the referrer) probes every action on a requested referral: the provider's answers are not
# hers (403) and a revocation follows an acceptance (409); cancelling is hers (2xx).
REFUSED.update(
    {
        ("referral.entrypoints.http.transition_referral", "/action", action): why
        for action, why in {
            "accept": "the provider answers a referral, not the referrer",
            "decline": "the provider answers a referral, not the referrer",
            "start": "the provider starts the service it accepted",
            "complete": "a referral is completed once it is in progress",
            "revoke": "a referral is revoked after it was accepted (before that it is cancelled)",
        }.items()
    }
)

# Return: every action is probed on a new, requested case with the complete body's reason (`other`, a stop
# reason): only a stop takes one there; the other actions either come later in a case or take no reason.
_TRANSITION_CASE = "voluntary_return.entrypoints.http.transition_case"
REFUSED.update(
    {
        (
            _TRANSITION_CASE,
            "/action",
            action,
        ): "a requested case can only start its assessment (without a reason) or stop"
        for action in (
            "start_assessment",
            "record_decision",
            "record_departure",
            "record_reception",
            "record_reintegration_plan",
            "record_follow_up",
            "close",
        )
    }
)
REFUSED[("voluntary_return.entrypoints.http.record_determination", "/decision", "other_durable_solution")] = (
    "the complete body names a return solution (return_to_family), which another durable solution is not"
)

# The complete exchange draft is about a child (the child's views recorded); an adult's form records consent
# instead, which the child's body does not hold.
REFUSED.update(
    {
        (
            f"exchange.entrypoints.http.{name}",
            "/subject/age_group",
            "adult",
        ): "an adult's form records consent"
        for name in ("draft_form", "validate_form")
    }
)

# An indicator list's id spells its age group and form (`A-LAB`), an indicator's id its element (`A-LAB-DR-01`):
# the complete body's ids fit one value of each; the consistency rules refuse the others (indicator_set_invalid).
_PUBLISH = "identification.entrypoints.http.publish_indicator_set"
_IDS_SPELL_IT = (
    "the list's and the indicator's ids spell the age group, form and element of the complete body"
)
REFUSED.update({(_PUBLISH, "/lists/0/age_group", "child"): _IDS_SPELL_IT})
REFUSED.update(
    {
        (_PUBLISH, "/lists/0/form", form): _IDS_SPELL_IT
        for form in (
            "sexual",
            "forced_begging",
            "forced_criminality",
            "forced_marriage",
            "domestic_servitude",
            "other",
        )
    }
)
REFUSED.update(
    {
        (_PUBLISH, "/lists/0/indicators/0/element", element): _IDS_SPELL_IT
        for element in (
            "coercive_recruitment",
            "recruitment_abuse_of_vulnerability",
            "exploitative_conditions",
            "coercion_at_destination",
            "abuse_of_vulnerability_at_destination",
        )
    }
)


def enum_leaves(schema: dict[str, Any], path: tuple[str, ...] = ()) -> Iterator[tuple[tuple[str, ...], list]]:
    if "enum" in schema:
        yield path, list(schema["enum"])
    for name, sub in (schema.get("properties") or {}).items():
        yield from enum_leaves(sub, (*path, name))
    if isinstance(schema.get("items"), dict):
        yield from enum_leaves(schema["items"], (*path, ITEM))


def pointer(path: tuple[str, ...]) -> str:
    return "/" + "/".join("0" if step == ITEM else step for step in path)


def with_value(body: Any, path: tuple[str, ...], value: Any) -> Any:
    """A copy of `body` with `value` at `path` (an enum of array items adds the value to the array); raises
    LookupError when the body has no place there."""
    changed = copy.deepcopy(body)
    *parents, last = path
    target = changed
    for step in parents:
        target = target[0] if step == ITEM else target[step]
    if last == ITEM:
        # Added to the complete body's own items (a need for an interpreter stays beside the languages).
        target[:] = list(dict.fromkeys([*target, value]))
    else:
        target[last] = value  # the parents exist in the complete body, or the lookups above raised
    return changed


class Api:
    def __init__(self, platform: Any, service: str) -> None:
        self.platform = platform

    def call(
        self, user: str, method: str, path: str, headers: dict[str, str] | None = None, **kwargs: Any
    ) -> httpx.Response:
        headers = {
            "Authorization": f"Bearer {self.platform.token(user)}",
            "X-Purpose": purpose_for(path),
            **({"Idempotency-Key": f"enum-{uuid.uuid4()}"} if method == "POST" else {}),
            **(headers or {}),
        }
        base = self.platform.urls[path.split("/")[2]]  # /v1/<service>/...: straight to that service
        return httpx.request(method, base + path, headers=headers, timeout=30, **kwargs)

    def fresh_records(self, user: str) -> dict[str, str]:
        """A new person with its first-contact case and a screening, owned by `user`'s agency."""
        person = self.call(
            user,
            "POST",
            "/v1/identification/persons",
            json={"surnames": ["Enumtest"], "date_of_birth": "1990", "sex": "female"},
        )
        assert person.status_code == 201, person.text
        ids = {"person_id": person.json()["id"], "case_id": person.json()["case_id"]}
        screening = self.call(
            user,
            "POST",
            "/v1/identification/screenings",
            json={"case_id": ids["case_id"], "indicator_set_version": "2026.1", "answers": ADULT_LABOUR},
        )
        assert screening.status_code == 201, screening.text
        return {**ids, "screening_id": screening.json()["id"], "unique": uuid.uuid4().hex[:3]}


# An access request is asked by an officer of another agency than the record's (the case manager's), from her
# duplicate search that answered the case as a restricted match; the case manager decides it.
ASKING_USER = "al-police"
_ASK = "identification.entrypoints.http.create_access_request"
_DECIDE = "identification.entrypoints.http.decide_access_request"
_MERGE = "identification.entrypoints.http.merge_person"
_UNMERGE = "identification.entrypoints.http.unmerge_person"


def access_records(api: Api, with_request: bool) -> dict[str, str]:
    """A case manager's new person (a surname of its own) and a police search answering its case as a restricted
    match; with a pending access request of the police officer when `with_request`."""
    surname = "Enum" + "".join(chr(ord("a") + int(c, 16)) for c in uuid.uuid4().hex[:8])
    person = api.call(
        "al-case-manager",
        "POST",
        "/v1/identification/persons",
        json={"surnames": [surname], "date_of_birth": "1990", "sex": "female"},
    )
    assert person.status_code == 201, person.text
    search = api.call(
        ASKING_USER,
        "POST",
        "/v1/identification/duplicate-searches",
        json={"surnames": [surname], "date_of_birth": "1990"},
    )
    assert search.status_code == 201, search.text
    case_id = person.json()["case_id"]
    assert [match["case_id"] for match in search.json()["restricted_candidates"]] == [case_id], search.text
    ids = {"search_id": search.json()["id"], "restricted_case_id": case_id}
    if with_request:
        asked = api.call(
            ASKING_USER,
            "POST",
            "/v1/identification/access-requests",
            json={"search_id": ids["search_id"], "case_id": case_id, "reason": "same_person_suspected"},
        )
        assert asked.status_code == 201, asked.text
        ids["request_id"] = asked.json()["id"]
    return ids


# Referral: each value gets a provider of its own (a fresh agency) and, for a request or a transition, a fresh
# proposal of the case manager (requested before a transition).
_REGISTER = "referral.entrypoints.http.register_provider"
_REQUEST = "referral.entrypoints.http.request_referral"
_TRANSITION = "referral.entrypoints.http.transition_referral"


def referral_records(api: Api, operation_id: str) -> dict[str, str]:
    ids = {"provider_unique": uuid.uuid4().hex[:12]}
    if operation_id not in (_REQUEST, _TRANSITION):
        return ids
    provider = api.call(
        "al-coordinator", "POST", "/v1/referral/providers", json=_fill(FULL_BODIES[_REGISTER], ids)
    )
    assert provider.status_code == 201, provider.text
    proposal = api.call("al-case-manager", "POST", "/v1/referral/referrals", json={"service_type": "medical"})
    assert proposal.status_code == 201, proposal.text
    ids |= {"enum_provider_id": provider.json()["id"], "referral_id": proposal.json()["id"]}
    if operation_id == _TRANSITION:
        path = f"/v1/referral/referrals/{ids['referral_id']}/request"
        requested = api.call("al-case-manager", "POST", path, json=_fill(FULL_BODIES[_REQUEST], ids))
        assert requested.status_code == 200, requested.text
    return ids


_RET = "voluntary_return.entrypoints.http."


def return_records(api: Api, operation_id: str) -> dict[str, str]:
    """A new child's return case of AL (origin ME) in the state the operation needs: assessed and given to the demo
    panel member for a determination; also determined and decided for a plan."""
    if operation_id == f"{_RET}open_case":
        return {}
    manager = "al-case-manager"

    def post(user: str, path: str, body: Any) -> dict[str, Any]:
        response = api.call(user, "POST", path, json=body)
        assert response.status_code in (200, 201), (path, response.text)
        return dict(response.json())

    case_id = post(manager, "/v1/return/cases", {"origin_country": "ME", "age_group": "child"})["id"]
    base = f"/v1/return/cases/{case_id}"
    if operation_id in (f"{_RET}record_determination", f"{_RET}approve_plan"):
        family = {**BODIES[f"{_RET}record_family_assessment"], "from_country": "ME"}
        post(manager, f"{base}/family-assessment", family)
        post(manager, f"{base}/best-interests-assessment", BODIES[f"{_RET}record_best_interests_assessment"])
        post(
            manager,
            f"{base}/panel-members",
            {"member": str(token_claims(api.platform.token("al-bid-panel"))["sub"])},
        )
    if operation_id == f"{_RET}approve_plan":
        post("al-bid-panel", f"{base}/determination", BODIES[f"{_RET}record_determination"])
        post(manager, f"{base}/transitions", {"action": "start_assessment"})
        post(manager, f"{base}/transitions", {"action": "record_decision"})
    return {"case_id": case_id}


def _fill(value: Any, ids: dict[str, str]) -> Any:
    if isinstance(value, str):
        for name, replacement in ids.items():
            value = value.replace("{" + name + "}", replacement)
        return value
    if isinstance(value, dict):
        return {key: _fill(item, ids) for key, item in value.items()}
    if isinstance(value, list):
        return [_fill(item, ids) for item in value]
    return value


# Counts the values tried, so that each published indicator-set version is new (PROBE_YEARS keeps the suites apart).
_VERSION_NUMBERS = itertools.count(1)


def _body_cases(op: Operation) -> Iterator[tuple[str, Any]]:
    document = load_contract(op.service)
    content = resolve(document, op.spec.get("requestBody") or {}).get("content") or {}
    schema = (content.get("application/json") or {}).get("schema")
    if not schema:
        return
    base = FULL_BODIES.get(op.operation_id, BODIES.get(op.operation_id))
    for path, values in enum_leaves(schema):
        for value in values:
            yield pointer(path), (path, value, base)


@pytest.mark.parametrize(
    "op", [op for op in all_operations() if op.method in ("post", "patch")], ids=lambda op: op.label
)
def test_every_body_enum_value_is_accepted_end_to_end(running_platform: Any, op: Operation) -> None:
    api = Api(running_platform, op.service)
    user = user_for(op.roles, service=op.service)
    failures: list[str] = []
    tried = 0
    for where, (path, value, base) in _body_cases(op):
        if base is None:
            failures.append(f"{where}: no complete body for {op.operation_id} in contract_requests.py")
            break
        if op.operation_id.startswith("referral."):  # names no identification record
            ids = {"unique": uuid.uuid4().hex[:3]} | referral_records(api, op.operation_id)
        elif op.service == "return":
            ids = return_records(api, op.operation_id)
        elif op.service == "exchange":  # a notification of a new case to a partner country
            ids = {"unique": uuid.uuid4().hex[:3], "partner": "XK"}
        else:
            ids = api.fresh_records("al-case-manager")
        ids |= {"probe_year": PROBE_YEARS["enums"], "unique": str(next(_VERSION_NUMBERS))}
        if op.operation_id in (_MERGE, _UNMERGE):
            ids["other_person_id"] = api.fresh_records("al-case-manager")["person_id"]
            if op.operation_id == _UNMERGE:  # a merge to undo
                merged = api.call(
                    user,
                    "POST",
                    f"/v1/identification/persons/{ids['person_id']}/merge",
                    json={"into_person_id": ids["other_person_id"], "reason": "other"},
                )
                assert merged.status_code == 200, merged.text
        if op.operation_id in (_ASK, _DECIDE):
            ids.update(access_records(api, with_request=op.operation_id == _DECIDE))
            user = ASKING_USER if op.operation_id == _ASK else "al-case-manager"
        try:
            body = _fill(with_value(base, path, value), ids)
        except (LookupError, IndexError, TypeError):
            failures.append(f"{where}: the complete body has no place for this enum (extend FULL_BODIES)")
            continue
        target = op.path
        for name, replacement in {**FIXED_PATH_VALUES, **ids}.items():
            target = target.replace("{" + name + "}", replacement)
        conditions = {}
        if op.method == "patch":  # a change names the version it was read at (If-Match)
            conditions["If-Match"] = api.call(user, "GET", target).headers.get("ETag", '"0"')
        response = api.call(user, op.method.upper(), target, headers=conditions, json=body)
        tried += 1
        refused = REFUSED.get((op.operation_id, where, value))
        if response.status_code >= 500:
            failures.append(f"{where} = {value!r}: {response.status_code} (server error)")
        elif refused is None and not 200 <= response.status_code < 300:
            failures.append(f"{where} = {value!r}: {response.status_code} {_errors(response)}")
        elif refused is not None and response.status_code not in (403, 409, 422):
            failures.append(f"{where} = {value!r}: {response.status_code}, expected a refusal ({refused})")
    assert not failures, f"{op.label}, {tried} values tried:\n" + "\n".join(failures)


def _errors(response: httpx.Response) -> str:
    try:
        return json.dumps(response.json().get("errors") or response.json().get("type"))
    except ValueError:
        return response.text[:200]


def _query_cases() -> Iterator[tuple[Operation, str, Any]]:
    for op in all_operations():
        document = load_contract(op.service)
        for parameter in resolve(document, op.spec.get("parameters") or []):
            enum = (parameter.get("schema") or {}).get("enum")
            if parameter.get("in") == "query" and enum:
                for value in enum:
                    yield op, parameter["name"], value


@pytest.mark.parametrize(
    ("op", "name", "value"), list(_query_cases()), ids=lambda item: getattr(item, "label", str(item))
)
def test_every_query_enum_value_is_answered_without_a_server_error(
    running_platform: Any, op: Operation, name: str, value: Any
) -> None:
    api = Api(running_platform, op.service)
    target = op.path
    for key, replacement in FIXED_PATH_VALUES.items():
        target = target.replace("{" + key + "}", replacement)
    if "{person_id}" in target:  # a person of the country (the demo users asked are Albania's)
        target = target.replace("{person_id}", api.fresh_records("al-case-manager")["person_id"])
    params = {**QUERIES.get(op.operation_id, {}), name: value}
    response = api.call(user_for(op.roles, service=op.service), op.method.upper(), target, params=params)
    assert response.status_code < 500, response.text
    assert response.status_code in (200, 422), (response.status_code, response.text[:300])
