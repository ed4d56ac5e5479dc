"""The gateway end to end in-process: every rejection answers with a problem and never reaches the service."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable

import httpx
import pytest

from gateway.app import Gateway
from gateway.testing import ALL_AUDIENCES, RecordingUpstream, SigningKeys, budgets, build_gateway

PERSONS = "/v1/identification/persons"
PERSON = "/v1/identification/persons/0b0e8e0c-7a52-4c55-9c59-0c4f2a7f5e11"
REFERRAL = "/v1/referral/received-events"
PURPOSE = {"X-Purpose": "case-management"}

Call = Callable[..., httpx.Response]


@pytest.fixture
def gateway(keys: SigningKeys, upstream: RecordingUpstream) -> Gateway:
    return build_gateway(keys, upstream=upstream, cors_origins=["https://app.example"], max_body_bytes=1000)


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def assert_problem(response: httpx.Response, status: int, slug: str) -> dict:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    body = response.json()
    assert body["status"] == status and body["type"].endswith("/" + slug)
    assert body["instance"] == response.headers["x-request-id"]
    return body


# -- routing ----------------------------------------------------------------------------------------------------
def test_undeclared_path_is_404_and_never_forwarded(
    call: Call, gateway: Gateway, keys: SigningKeys, upstream: RecordingUpstream
) -> None:
    for path in ("/v1/identification/secrets", "/v1/unknown/x", "/v2/identification/persons", "/admin"):
        assert_problem(call(gateway, "GET", path, headers=bearer(keys.token())), 404, "not-found")
    assert upstream.requests == []


def test_undeclared_method_is_405_with_allow(
    call: Call, gateway: Gateway, keys: SigningKeys, upstream: RecordingUpstream
) -> None:
    response = call(gateway, "DELETE", PERSONS, headers=bearer(keys.token()))
    assert_problem(response, 405, "method-not-allowed")
    assert response.headers["allow"] == "GET, POST"
    assert upstream.requests == []


@pytest.mark.parametrize(
    "path",
    [
        "/v1/identification/persons/..",
        "/v1/identification/persons/%2e%2e",
        "/v1/identification/persons/a%2Fb",
        "/v1/identification//persons",
    ],
)
def test_ambiguous_paths_are_refused(
    call: Call, gateway: Gateway, keys: SigningKeys, upstream: RecordingUpstream, path: str
) -> None:
    assert_problem(call(gateway, "GET", path, headers=bearer(keys.token())), 404, "not-found")
    assert upstream.requests == []


# -- authentication and authorisation ---------------------------------------------------------------------------
def test_no_token_is_401(call: Call, gateway: Gateway, upstream: RecordingUpstream) -> None:
    response = call(gateway, "GET", PERSONS, headers=PURPOSE)
    assert_problem(response, 401, "unauthorized")
    assert response.headers["www-authenticate"].startswith("Bearer")
    assert upstream.requests == []


def test_tampered_expired_and_foreign_tokens_are_401(
    call: Call, gateway: Gateway, keys: SigningKeys, upstream: RecordingUpstream
) -> None:
    good = keys.token()
    header, payload, signature = good.split(".")
    tampered = f"{header}.{payload[:-4]}AAAA.{signature}"
    other_keys = SigningKeys(kid=keys.kid)
    for token in (
        tampered,
        keys.token(lifetime=-120),
        other_keys.token(),
        keys.token(iss="https://evil.example/realms/thb"),
        keys.token(azp="unknown-client"),
        keys.token(country=["AL", "XK"]),
        "not-a-jwt",
    ):
        assert_problem(
            call(gateway, "GET", PERSONS, headers={**PURPOSE, **bearer(token)}), 401, "unauthorized"
        )
    assert_problem(
        call(gateway, "GET", PERSONS, headers={"Authorization": "Basic dXNlcjpwYXNz"}), 401, "unauthorized"
    )
    assert upstream.requests == []


def test_token_without_the_target_audience_is_403(
    call: Call, gateway: Gateway, keys: SigningKeys, upstream: RecordingUpstream
) -> None:
    shelter = keys.token(roles=["case-manager"], audiences=["referral-api"])
    assert_problem(call(gateway, "GET", PERSONS, headers={**PURPOSE, **bearer(shelter)}), 403, "forbidden")
    assert upstream.requests == []
    assert call(gateway, "GET", REFERRAL, headers=bearer(shelter)).status_code == 200
    assert [r.path for r in upstream.requests] == [REFERRAL]


def test_role_outside_x_roles_is_403(
    call: Call, gateway: Gateway, keys: SigningKeys, upstream: RecordingUpstream
) -> None:
    for roles in (["analyst"], ["auditor"], [], ["police-officer"]):
        token = keys.token(roles=roles)
        assert_problem(call(gateway, "GET", REFERRAL, headers=bearer(token)), 403, "forbidden")
    assert upstream.requests == []


# -- forwarding ------------------------------------------------------------------------------------------------
def test_valid_request_is_forwarded_with_the_token_unchanged_and_identity_stripped(
    call: Call, gateway: Gateway, keys: SigningKeys, upstream: RecordingUpstream
) -> None:
    token = keys.token(roles=["police-officer"])
    traceparent = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
    response = call(
        gateway,
        "GET",
        PERSON + "?limit=5",
        headers={
            **bearer(token),
            **PURPOSE,
            "X-User-Id": "admin",
            "X-Country": "XK",
            "X-Agency": "state-police",
            "X-Roles": "coordinator",
            "X-Forwarded-User": "someone",
            "X-Auth-Request-Email": "a@b",
            "X-Acting-User": "officer-17",
            "X-Request-Id": "req-123456",
            "traceparent": traceparent,
        },
    )
    assert response.status_code == 200
    (seen,) = upstream.requests
    assert seen.header("authorization") == f"Bearer {token}"
    assert seen.path == PERSON and seen.query == b"limit=5"
    assert seen.header("x-purpose") == "case-management"
    assert seen.header("x-acting-user") == "officer-17"
    assert (
        not {"x-user-id", "x-country", "x-agency", "x-roles", "x-forwarded-user", "x-auth-request-email"}
        & seen.header_names()
    )
    assert seen.header("x-request-id") == "req-123456" == response.headers["x-request-id"]
    assert seen.header("traceparent") == traceparent
    assert seen.header("x-forwarded-for") == "203.0.113.7"


def test_a_new_trace_is_started_when_none_comes_in(
    call: Call, gateway: Gateway, keys: SigningKeys, upstream: RecordingUpstream
) -> None:
    call(gateway, "GET", REFERRAL, headers=bearer(keys.token()))
    traceparent = upstream.requests[0].header("traceparent")
    assert traceparent is not None and len(traceparent.split("-")[1]) == 32


def test_post_body_is_forwarded_unchanged(
    call: Call, gateway: Gateway, keys: SigningKeys, upstream: RecordingUpstream
) -> None:
    body = json.dumps({"given_names": ["Ana"]}).encode()
    response = call(
        gateway,
        "POST",
        PERSONS,
        content=body,
        headers={**bearer(keys.token()), **PURPOSE, "Content-Type": "application/json; charset=utf-8"},
    )
    assert response.status_code == 200
    assert upstream.requests[0].body == body


def test_upstream_status_and_body_pass_through(call: Call, keys: SigningKeys) -> None:
    upstream = RecordingUpstream(status=409, body=b'{"type":"x"}')
    gateway = build_gateway(keys, upstream=upstream)
    response = call(gateway, "GET", REFERRAL, headers=bearer(keys.token()))
    assert response.status_code == 409 and response.content == b'{"type":"x"}'


# -- body checks -----------------------------------------------------------------------------------------------
def test_body_over_the_limit_is_413(
    call: Call, gateway: Gateway, keys: SigningKeys, upstream: RecordingUpstream
) -> None:
    headers = {**bearer(keys.token()), **PURPOSE, "Content-Type": "application/json"}
    assert_problem(
        call(gateway, "POST", PERSONS, content=b"[" + b"1," * 600 + b"1]", headers=headers),
        413,
        "payload-too-large",
    )

    async def chunks():
        for _ in range(20):
            yield b"x" * 100

    assert_problem(
        call(gateway, "POST", PERSONS, content=chunks(), headers=headers), 413, "payload-too-large"
    )
    assert upstream.requests == []


@pytest.mark.parametrize(
    "content_type", [None, "text/plain", "application/xml", "application/x-www-form-urlencoded"]
)
def test_undeclared_content_type_is_415(
    call: Call, gateway: Gateway, keys: SigningKeys, upstream: RecordingUpstream, content_type: str | None
) -> None:
    headers = {**bearer(keys.token()), **PURPOSE}
    if content_type:
        headers["Content-Type"] = content_type
    assert_problem(
        call(gateway, "POST", PERSONS, content=b"{}", headers=headers), 415, "unsupported-media-type"
    )
    assert upstream.requests == []


def test_body_on_an_operation_without_one_is_415(
    call: Call, gateway: Gateway, keys: SigningKeys, upstream: RecordingUpstream
) -> None:
    headers = {**bearer(keys.token()), "Content-Type": "application/json"}
    assert_problem(
        call(gateway, "GET", REFERRAL, content=b"{}", headers=headers), 415, "unsupported-media-type"
    )
    assert upstream.requests == []


def test_unauthenticated_oversized_body_is_401_not_read(
    call: Call, gateway: Gateway, upstream: RecordingUpstream
) -> None:
    response = call(gateway, "POST", PERSONS, content=b"x" * 5000, headers={"Content-Type": "text/plain"})
    assert_problem(response, 401, "unauthorized")


# -- rate budgets ----------------------------------------------------------------------------------------------
def test_429_with_retry_after_and_other_clients_unaffected(
    call: Call, keys: SigningKeys, upstream: RecordingUpstream
) -> None:
    now = [100.0]
    gateway = build_gateway(
        keys, upstream=upstream, rate_budgets=budgets(machine=(60, 2)), monotonic=lambda: now[0]
    )
    al = keys.token(azp="al-national-system", machine=True)
    xk = keys.token(azp="xk-national-system", machine=True)
    statuses = [call(gateway, "GET", REFERRAL, headers=bearer(al)).status_code for _ in range(3)]
    assert statuses == [200, 200, 429]
    limited = call(gateway, "GET", REFERRAL, headers=bearer(al))
    assert_problem(limited, 429, "rate-limited")
    assert limited.headers["retry-after"] == "1"
    # the headers common.yaml declares for 429: the budget per minute, nothing left, when one request fits
    assert limited.headers["ratelimit-limit"] == "60"
    assert limited.headers["ratelimit-remaining"] == "0"
    assert limited.headers["ratelimit-reset"] == limited.headers["retry-after"]
    assert call(gateway, "GET", REFERRAL, headers=bearer(xk)).status_code == 200
    # another token of the same national system shares its budget (keyed by azp, not by token or sub)
    assert (
        call(
            gateway, "GET", REFERRAL, headers=bearer(keys.token(azp="al-national-system", machine=True))
        ).status_code
        == 429
    )
    now[0] += 1.0
    assert call(gateway, "GET", REFERRAL, headers=bearer(al)).status_code == 200
    assert len(upstream.requests) == 4


def test_people_are_limited_per_person(call: Call, keys: SigningKeys, upstream: RecordingUpstream) -> None:
    gateway = build_gateway(
        keys, upstream=upstream, rate_budgets=budgets(interactive=(60, 1)), monotonic=lambda: 5.0
    )
    ana, ben = keys.token(sub="ana"), keys.token(sub="ben")
    assert call(gateway, "GET", REFERRAL, headers=bearer(ana)).status_code == 200
    assert call(gateway, "GET", REFERRAL, headers=bearer(keys.token(sub="ana"))).status_code == 429
    assert call(gateway, "GET", REFERRAL, headers=bearer(ben)).status_code == 200


# -- unavailable service ---------------------------------------------------------------------------------------
def test_unreachable_service_is_503_with_retry_after(call: Call, keys: SigningKeys) -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    gateway = build_gateway(keys, transport=httpx.MockTransport(refuse))
    response = call(gateway, "GET", REFERRAL, headers=bearer(keys.token()))
    assert_problem(response, 503, "service-unavailable")
    assert int(response.headers["retry-after"]) > 0


def test_status_reports_each_service(call: Call, keys: SigningKeys, upstream: RecordingUpstream) -> None:
    def answer(request: httpx.Request) -> httpx.Response:
        if request.url.host.startswith("exchange"):
            raise httpx.ConnectError("down", request=request)
        if request.url.host.startswith("return"):
            return httpx.Response(503, json={"status": "unready"})
        return httpx.Response(200, json={"status": "ready", "secret": "details"})

    gateway = build_gateway(keys, transport=httpx.MockTransport(answer))
    body = call(gateway, "GET", "/v1/status").json()
    assert body["status"] == "degraded"
    assert body["services"]["identification"] == {"status": "ready", "http_status": 200}
    assert body["services"]["exchange"]["status"] == "unreachable"
    assert body["services"]["return"]["status"] == "unready"
    assert "secret" not in json.dumps(body)


def test_health_and_readiness_are_the_gateways_own(call: Call, keys: SigningKeys) -> None:
    ready = [False]
    gateway = build_gateway(keys, upstream=RecordingUpstream(), ready=lambda: ready[0])
    assert call(gateway, "GET", "/healthz").status_code == 200
    assert call(gateway, "GET", "/readyz").status_code == 503
    ready[0] = True
    assert call(gateway, "GET", "/readyz").status_code == 200


# -- documents, browser ---------------------------------------------------------------------------------------
def test_combined_document_and_docs_are_served_without_a_cdn(call: Call, gateway: Gateway) -> None:
    doc = call(gateway, "GET", "/v1/openapi.json").json()
    assert PERSONS in doc["paths"] and REFERRAL in doc["paths"]
    page = call(gateway, "GET", "/docs/")
    assert page.status_code == 200 and "static/swagger-ui-bundle.js" in page.text
    assert "http" not in page.text.replace("http-equiv", "")
    init = call(gateway, "GET", "/docs/init.js").text
    assert '"clientId": "api-docs"' in init and '"usePkceWithAuthorizationCodeGrant": true' in init
    bundle = call(gateway, "GET", "/docs/static/swagger-ui-bundle.js")
    assert bundle.status_code == 200 and len(bundle.content) > 100_000
    assert "script-src 'self'" in page.headers["content-security-policy"]
    assert call(gateway, "GET", "/docs/oauth2-redirect.html").status_code == 200
    assert call(gateway, "GET", "/docs/static/index.j2").status_code == 404
    assert call(gateway, "GET", "/docs").status_code == 308


def test_security_headers_and_cors_for_a_configured_origin(
    call: Call, gateway: Gateway, keys: SigningKeys
) -> None:
    response = call(
        gateway, "GET", REFERRAL, headers={**bearer(keys.token()), "Origin": "https://app.example"}
    )
    assert response.headers["access-control-allow-origin"] == "https://app.example"
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["x-frame-options"] == "DENY"
    assert "frame-ancestors 'none'" in response.headers["content-security-policy"]
    other = call(gateway, "GET", REFERRAL, headers={**bearer(keys.token()), "Origin": "https://evil.example"})
    assert "access-control-allow-origin" not in other.headers


def test_cors_preflight(call: Call, gateway: Gateway, upstream: RecordingUpstream) -> None:
    pre = {
        "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "authorization, content-type",
    }
    ok = call(gateway, "OPTIONS", PERSONS, headers={**pre, "Origin": "https://app.example"})
    assert ok.status_code == 204
    assert ok.headers["access-control-allow-origin"] == "https://app.example"
    assert "POST" in ok.headers["access-control-allow-methods"]
    assert "authorization" in ok.headers["access-control-allow-headers"]
    assert (
        call(gateway, "OPTIONS", PERSONS, headers={**pre, "Origin": "https://evil.example"}).status_code
        == 403
    )
    assert upstream.requests == []


def test_access_log_has_the_template_and_no_personal_data(
    call: Call, gateway: Gateway, keys: SigningKeys, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="gateway.access")
    call(
        gateway, "GET", PERSON + "?name=Ana+Hoxha", headers={**bearer(keys.token(sub="subject-1")), **PURPOSE}
    )
    (line,) = [r.getMessage() for r in caplog.records if r.name == "gateway.access"]
    entry = json.loads(line)
    assert entry["route"] == "/v1/identification/persons/{person_id}"
    assert entry["status"] == 200 and entry["azp"] == "thb-test" and entry["trace_id"]
    assert "Ana" not in line and "0b0e8e0c" not in line and "subject-1" not in line and "name=" not in line


def test_problem_language_follows_accept_language(call: Call, gateway: Gateway) -> None:
    english = call(gateway, "GET", PERSONS).json()
    albanian = call(gateway, "GET", PERSONS, headers={"Accept-Language": "sq"})
    assert albanian.headers["content-language"] == "sq"
    assert albanian.json()["type"] == english["type"] and albanian.json()["title"] != english["title"]


def test_validated_tokens_are_remembered_only_until_they_expire(
    keys: SigningKeys, call: Call, upstream: RecordingUpstream
) -> None:
    now = [time.time()]
    gateway = build_gateway(keys, upstream=upstream, clock=lambda: now[0])
    token = keys.token(lifetime=60, now=now[0], audiences=ALL_AUDIENCES)
    assert call(gateway, "GET", REFERRAL, headers=bearer(token)).status_code == 200
    now[0] += 61 + 30  # past exp and the validator's leeway
    assert call(gateway, "GET", REFERRAL, headers=bearer(token)).status_code == 401


def test_a_body_cut_off_before_its_end_is_never_forwarded(
    gateway: Gateway, keys: SigningKeys, upstream: RecordingUpstream
) -> None:
    # The connection ends mid-body (the client left, or the server's body timeout fired): what arrived is not
    # the request the client meant, so nothing reaches the service.
    import asyncio

    messages = [
        {"type": "http.request", "body": b'{"surnames": ["Ho', "more_body": True},
        {"type": "http.disconnect"},
    ]
    sent: list[dict] = []

    async def receive() -> dict:
        return messages.pop(0) if messages else {"type": "http.disconnect"}

    async def send(message: dict) -> None:
        sent.append(message)

    scope = {
        "type": "http",
        "method": "POST",
        "path": PERSONS,
        "raw_path": PERSONS.encode(),
        "query_string": b"",
        "headers": [
            (b"authorization", f"Bearer {keys.token()}".encode()),
            (b"content-type", b"application/json"),
            (b"content-length", b"40"),
            (b"x-purpose", b"case-management"),
        ],
        "client": ("127.0.0.1", 5000),
        "scheme": "http",
    }
    asyncio.run(gateway(scope, receive, send))
    assert sent[0]["status"] == 408
    assert upstream.requests == []
