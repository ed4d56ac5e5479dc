"""The app factory against the demo contract (tests/fixtures/demo.yaml) with a fake token validator."""

from __future__ import annotations

import io
import json
import sys
from pathlib import Path

import pytest
import yaml

sys.path.insert(0, str(Path(__file__).parents[1] / "fixtures"))

from app_support import CANARY, DEMO_SPEC, FakeDatabase, FakeJwks, bearer, build_demo_app  # noqa: E402

from plumbing.logging import configure_logging  # noqa: E402
from plumbing.security import ContractError  # noqa: E402

PROBLEM = "/problems/"  # the catalogue's default base (THB_PROBLEM_BASE unset)
PURPOSE = {"X-Purpose": "case-management"}


@pytest.fixture(scope="module")
def demo_client():
    app, _ = build_demo_app()
    with app.test_client() as client:
        yield client


@pytest.fixture
def demo(demo_client):
    # Logging is process-wide and every app built reconfigures it: give each test a fresh stream to read.
    logs = io.StringIO()
    configure_logging("demo", stream=logs)
    return demo_client, logs


def _spec_without(tmp_path: Path, mutate) -> Path:
    spec = yaml.safe_load(DEMO_SPEC.read_text())
    mutate(spec)
    path = tmp_path / "broken.yaml"
    path.write_text(yaml.safe_dump(spec))
    return path


def test_operation_without_x_roles_refuses_to_build(tmp_path):
    path = _spec_without(tmp_path, lambda s: s["paths"]["/v1/demo/things"]["post"].pop("x-roles"))
    with pytest.raises(ContractError, match="x-roles"):
        build_demo_app(spec=path)


def test_unknown_role_refuses_to_build(tmp_path):
    path = _spec_without(
        tmp_path, lambda s: s["paths"]["/v1/demo/things"]["post"].update({"x-roles": ["case_manager"]})
    )
    with pytest.raises(ContractError, match="unknown roles"):
        build_demo_app(spec=path)


def test_personal_data_without_purpose_header_refuses_to_build(tmp_path):
    def drop_purpose(spec):
        op = spec["paths"]["/v1/demo/things/{thing_id}"]["get"]
        op["parameters"] = [p for p in op["parameters"] if "$ref" not in p]

    with pytest.raises(ContractError, match="X-Purpose"):
        build_demo_app(spec=_spec_without(tmp_path, drop_purpose))


def test_personal_data_for_analysts_refuses_to_build(tmp_path):
    path = _spec_without(
        tmp_path, lambda s: s["paths"]["/v1/demo/things"]["get"]["x-roles"].append("analyst")
    )
    with pytest.raises(ContractError, match="analyst"):
        build_demo_app(spec=path)


def test_public_operation_refuses_to_build(tmp_path):
    path = _spec_without(tmp_path, lambda s: s["paths"]["/v1/demo/things"]["post"].update({"security": []}))
    with pytest.raises(ContractError, match="not secured"):
        build_demo_app(spec=path)


def _assert_problem(response, status: int, slug: str) -> dict:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    body = response.json()
    assert body["type"] == PROBLEM + slug
    assert body["status"] == status
    assert body["instance"] == response.headers["x-request-id"]
    return body


def test_no_token_is_401(demo):
    client, _ = demo
    response = client.get("/v1/demo/things", headers=PURPOSE)
    _assert_problem(response, 401, "unauthorized")
    assert response.headers["www-authenticate"] == "Bearer"


def test_invalid_token_is_401(demo):
    client, _ = demo
    _assert_problem(client.get("/v1/demo/things", headers=bearer("forged", **PURPOSE)), 401, "unauthorized")


def test_wrong_role_is_403(demo):
    client, _ = demo
    # The analyst is authenticated but x-roles of the list operation names case-manager and coordinator only.
    _assert_problem(client.get("/v1/demo/things", headers=bearer("analyst", **PURPOSE)), 403, "forbidden")
    # coordinator may list but not create
    response = client.post(
        "/v1/demo/things", json={"name": "a", "kind": "small"}, headers=bearer("coordinator")
    )
    _assert_problem(response, 403, "forbidden")


def test_role_is_checked_before_validation(demo):
    client, _ = demo
    response = client.post("/v1/demo/things", json={"nope": CANARY}, headers=bearer("coordinator"))
    body = _assert_problem(response, 403, "forbidden")
    assert "errors" not in body


def test_identity_headers_are_ignored(demo):
    client, _ = demo
    spoof = {
        "X-Roles": "case-manager",
        "X-User": "u-manager",
        "X-Forwarded-User": "u-manager",
        "X-Country": "ME",
    }
    _assert_problem(client.get("/v1/demo/things", headers={**PURPOSE, **spoof}), 401, "unauthorized")
    response = client.get("/v1/demo/things", headers=bearer("analyst", **PURPOSE, **spoof))
    _assert_problem(response, 403, "forbidden")


def test_missing_and_invalid_purpose_are_422(demo):
    client, _ = demo
    body = _assert_problem(client.get("/v1/demo/things", headers=bearer("manager")), 422, "validation-failed")
    assert body["errors"] == [{"pointer": "/header/X-Purpose", "code": "required"}]
    response = client.get("/v1/demo/things", headers=bearer("manager", **{"X-Purpose": CANARY}))
    body = _assert_problem(response, 422, "validation-failed")
    assert body["errors"] == [{"pointer": "/header/X-Purpose", "code": "enum"}]
    assert CANARY not in response.text


def test_validation_error_has_pointer_and_code_and_never_the_value(demo):
    client, logs = demo
    payload = {"name": CANARY * 2, "kind": CANARY, "tags": ["ok", CANARY], CANARY: CANARY}
    response = client.post("/v1/demo/things", json=payload, headers=bearer("manager"))
    body = _assert_problem(response, 422, "validation-failed")
    assert {(e["pointer"], e["code"]) for e in body["errors"]} == {
        ("/body", "additionalProperties"),
        ("/body/kind", "enum"),
        ("/body/name", "maxLength"),
        ("/body/tags/1", "maxLength"),
    }
    assert CANARY not in response.text
    assert CANARY not in json.dumps(dict(response.headers))
    assert CANARY not in logs.getvalue()


def test_an_unknown_member_with_a_field_like_name_is_named_in_the_pointer(demo):
    """A misspelt field is found at once; a name that could be data typed in the wrong place is not echoed
    (plumbing.validation `_ECHOABLE_NAME`, docs/problems.md)."""
    client, logs = demo
    payload = {"name": "x", "kind": "small", "colour": "blue", CANARY: "y", "Hoxha Ëngjëll": "z"}
    response = client.post("/v1/demo/things", json=payload, headers=bearer("manager"))
    body = _assert_problem(response, 422, "validation-failed")
    assert body["errors"] == [
        {"pointer": "/body/colour", "code": "additionalProperties"},
        {"pointer": "/body", "code": "additionalProperties"},
    ]
    assert "blue" not in response.text and CANARY not in response.text and "Hoxha" not in response.text
    assert "colour" not in logs.getvalue()  # pointers are answered, never logged


def test_an_unknown_query_parameter_with_a_field_like_name_is_named(demo):
    client, _ = demo
    response = client.get(f"/v1/demo/things?colour=blue&{CANARY}=1", headers=bearer("manager", **PURPOSE))
    body = _assert_problem(response, 422, "validation-failed")
    assert body["errors"] == [
        {"pointer": "/query/colour", "code": "unknown-parameter"},
        {"pointer": "/query", "code": "unknown-parameter"},
    ]
    assert "blue" not in response.text and CANARY not in response.text


def test_missing_required_member_points_at_it(demo):
    client, _ = demo
    response = client.post("/v1/demo/things", json={"kind": "small"}, headers=bearer("manager"))
    body = _assert_problem(response, 422, "validation-failed")
    assert body["errors"] == [{"pointer": "/body/name", "code": "required"}]


def test_query_parameter_violation_is_422(demo):
    client, _ = demo
    response = client.get("/v1/demo/things?limit=500", headers=bearer("manager", **PURPOSE))
    body = _assert_problem(response, 422, "validation-failed")
    assert body["errors"] == [{"pointer": "/query/limit", "code": "maximum"}]


def test_unknown_query_parameter_is_rejected_without_echo(demo):
    client, _ = demo
    response = client.get(f"/v1/demo/things?{CANARY}=1", headers=bearer("manager", **PURPOSE))
    body = _assert_problem(response, 422, "validation-failed")
    assert body["errors"] == [{"pointer": "/query", "code": "unknown-parameter"}]
    assert CANARY not in response.text


def test_malformed_json_is_400(demo):
    client, _ = demo
    response = client.post(
        "/v1/demo/things",
        content=b'{"name": "' + CANARY.encode(),
        headers=bearer("manager", **{"Content-Type": "application/json"}),
    )
    body = _assert_problem(response, 400, "bad-request")
    assert body["errors"] == [{"pointer": "/body", "code": "json"}]
    assert CANARY not in response.text


def test_unknown_path_is_404(demo):
    client, _ = demo
    _assert_problem(client.get("/v1/demo/unknown", headers=bearer("manager")), 404, "not-found")


def test_wrong_method_is_405_with_allow(demo):
    client, _ = demo
    response = client.delete("/v1/demo/things", headers=bearer("manager"))
    _assert_problem(response, 405, "method-not-allowed")
    assert response.headers["allow"] == "GET, HEAD, POST"


def test_oversized_body_is_413():
    app, _ = build_demo_app(max_body_bytes=64)
    with app.test_client() as client:
        payload = {"name": "x", "kind": "small", "tags": ["a"] * 40}
        response = client.post("/v1/demo/things", json=payload, headers=bearer("manager"))
        _assert_problem(response, 413, "payload-too-large")


def test_body_limit_counts_streamed_bytes():
    # connexion treats a body without Content-Length as absent, so the counting path is exercised directly.
    import asyncio

    from plumbing.middleware import BodyLimitMiddleware
    from plumbing.problems import Problem

    async def app(scope, receive, send):
        while (await receive()).get("more_body"):
            pass

    chunks = [{"type": "http.request", "body": b"x" * 40, "more_body": True}] * 3

    async def receive():
        return chunks.pop()

    with pytest.raises(Problem) as raised:
        asyncio.run(BodyLimitMiddleware(app, max_body=64)({"type": "http", "headers": []}, receive, None))
    assert raised.value.slug == "payload-too-large"


def test_wrong_content_type_is_415(demo):
    client, _ = demo
    response = client.post(
        "/v1/demo/things", content=b"name=x", headers=bearer("manager", **{"Content-Type": "text/plain"})
    )
    _assert_problem(response, 415, "unsupported-media-type")


def test_accept_language_translates_title_not_type(demo):
    client, _ = demo
    english = client.get("/v1/demo/things", headers=PURPOSE).json()
    albanian = client.get("/v1/demo/things", headers={**PURPOSE, "Accept-Language": "sq-AL, en;q=0.5"})
    assert albanian.headers["content-language"] == "sq"
    body = albanian.json()
    assert body["type"] == english["type"]
    assert body["title"] == "Kërkohet autentifikimi" != english["title"]
    cyrillic = client.get("/v1/demo/things", headers={**PURPOSE, "Accept-Language": "sr-Cyrl-RS"}).json()
    assert cyrillic["title"] == "Потребна је аутентификација"


def test_not_found_and_conflict_from_handlers(demo):
    client, _ = demo
    _assert_problem(
        client.get("/v1/demo/things/nope", headers=bearer("manager", **PURPOSE)), 404, "not-found"
    )
    response = client.post(
        "/v1/demo/things", json={"name": "conflict", "kind": "small"}, headers=bearer("manager")
    )
    _assert_problem(response, 409, "conflict")


def test_access_log_failure_is_503_with_retry_after(demo):
    client, _ = demo
    response = client.get("/v1/demo/things/auditfail", headers=bearer("manager", **PURPOSE))
    _assert_problem(response, 503, "access-log-unavailable")
    assert response.headers["retry-after"]


def test_unhandled_exception_is_500_without_details(demo):
    client, logs = demo
    response = client.post(
        "/v1/demo/things", json={"name": "boom", "kind": "small"}, headers=bearer("manager")
    )
    body = _assert_problem(response, 500, "internal-error")
    assert "canary-in-exception" not in response.text
    assert "canary-in-exception" not in logs.getvalue()
    assert "RuntimeError" in logs.getvalue()
    assert set(body) == {"type", "title", "status", "detail", "instance"}


@pytest.mark.parametrize("name", ["database-down", "database-hung"])
def test_a_database_that_does_not_answer_is_503_with_retry_after(demo, name):
    client, logs = demo
    response = client.post("/v1/demo/things", json={"name": name, "kind": "small"}, headers=bearer("manager"))
    _assert_problem(response, 503, "service-unavailable")
    assert int(response.headers["retry-after"]) > 0
    assert "db.internal" not in response.text and "db.internal" not in logs.getvalue()


def test_any_other_database_error_stays_a_500_without_details(demo):
    client, logs = demo
    response = client.post(
        "/v1/demo/things", json={"name": "database-refused", "kind": "small"}, headers=bearer("manager")
    )
    _assert_problem(response, 500, "internal-error")
    assert "canary-in-exception" not in response.text and "canary-in-exception" not in logs.getvalue()


def test_purpose_and_caller_reach_the_handler(demo):
    client, _ = demo
    response = client.get("/v1/demo/things/t-03", headers=bearer("manager", **PURPOSE))
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"


def test_request_id_is_echoed_or_generated(demo):
    client, _ = demo
    given = client.get("/v1/demo/things", headers={**PURPOSE, "X-Request-Id": "req-12345678"})
    assert given.headers["x-request-id"] == "req-12345678"
    unsafe = client.get("/v1/demo/things", headers={**PURPOSE, "X-Request-Id": f"<{CANARY}>"})
    assert unsafe.headers["x-request-id"] != f"<{CANARY}>"
    assert len(unsafe.headers["x-request-id"]) == 36


def test_healthz_needs_no_auth_and_readyz_reports_checks(demo):
    client, _ = demo
    assert client.get("/healthz").status_code == 200
    ready = client.get("/readyz")
    assert ready.status_code == 200
    assert ready.json()["checks"]["mongo"]["ok"] is True


def test_readyz_is_503_when_database_down_or_no_keys():
    app, _ = build_demo_app(database=lambda: FakeDatabase(up=False))
    with app.test_client() as client:
        response = client.get("/readyz")
        body = _assert_problem(response, 503, "not-ready")
        assert body["checks"]["mongo"]["ok"] is False
        assert response.headers["retry-after"]
    app, _ = build_demo_app(jwks=FakeJwks(age=None))
    with app.test_client() as client:
        assert client.get("/readyz").json()["checks"]["keys"]["ok"] is False


def test_kafka_check_never_makes_the_api_unready():
    from plumbing.health import Check

    app, _ = build_demo_app(readiness_checks=[Check("kafka", lambda: False, critical=False)])
    with app.test_client() as client:
        response = client.get("/readyz")
        assert response.status_code == 200
        assert response.json()["checks"]["kafka"] == {"ok": False, "critical": False}


def test_metrics_count_requests_by_operation(demo):
    import plumbing.access_log  # noqa: F401 - registers access_log_write_failures_total, as services do

    client, _ = demo
    client.get("/v1/demo/things", headers=bearer("analyst", **PURPOSE))
    text = client.get("/metrics").text
    assert (
        'http_requests_total{method="GET",operation_id="demo_handlers.list_things",service="demo",status="403"}'
        in text
    )
    assert "jwks_age_seconds" in text
    assert "access_log_write_failures_total" in text


def test_personal_data_post_without_response_sealer_refuses_to_build(tmp_path):
    # Idempotency-Key replays store the response: where a POST returns personal data it must be sealed.
    def make_post_personal(spec):
        post = spec["paths"]["/v1/demo/things"]["post"]
        post["x-personal-data"] = True
        post["parameters"].append(spec["paths"]["/v1/demo/things"]["get"]["parameters"][0])

    path = _spec_without(tmp_path, make_post_personal)
    with pytest.raises(ContractError, match="response_sealer"):
        build_demo_app(spec=path, response_sealer=None)
