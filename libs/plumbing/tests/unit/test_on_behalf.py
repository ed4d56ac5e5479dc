"""Calls on behalf of the user (plumbing.on_behalf) against an httpx.MockTransport standing in for Keycloak's
token endpoint and another service's API: the exchange request, caching, header forwarding, error mapping, and
that no credential or answer ever reaches a log line or an exception message."""

from __future__ import annotations

import io
import json
import logging
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import httpx
import pytest

from plumbing import request_context
from plumbing.auth import AuthError, Caller
from plumbing.clock import FixedClock
from plumbing.config import Settings
from plumbing.errors import ConfigError, DependencyUnavailable, NotFound, NotPermitted
from plumbing.logging import JsonFormatter
from plumbing.on_behalf import (
    ExchangedTokenCache,
    OnBehalfClient,
    OnBehalfConfigurationError,
    UnexpectedAnswer,
)

ISSUER = "http://keycloak.test/realms/thb"
TOKEN_URL = f"{ISSUER}/protocol/openid-connect/token"
IDENTIFICATION = "http://identification.test:8101"
REFERRAL = "http://referral.test:8102"
SECRET = "exchange-api-Secret-Canary-4411"
USER_TOKEN = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ1c2VyLTEifQ.user-signature-Canary-9921"
PERSONAL = "Zelda-Canary-7731"  # stands for a name in an answer: must never be logged

CALLER = Caller(
    sub="user-1",
    azp="thb-test",
    country="AL",
    agency="coordinator-office",
    roles=frozenset({"contact-point"}),
    acting_user=None,
    is_machine=False,
    token=USER_TOKEN,
)


def jwt_shaped(label: str) -> str:
    return f"eyJhbGciOiJSUzI1NiJ9.{label}.sig"


@dataclass
class Net:
    """Keycloak and the services behind one MockTransport. `keycloak` and `service` answer a request; every
    request is kept, and the exchanged tokens are numbered so tests can tell them apart."""

    keycloak: Callable[[httpx.Request], httpx.Response] | None = None
    service: Callable[[httpx.Request], httpx.Response] | None = None
    requests: list[httpx.Request] = field(default_factory=list)
    issued: int = 0
    expires_in: int = 300

    def handle(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        if str(request.url) == TOKEN_URL:
            return (self.keycloak or self.grant)(request)
        return (self.service or self.ok)(request)

    def grant(self, request: httpx.Request) -> httpx.Response:
        self.issued += 1
        audience = form(request)["audience"]
        return httpx.Response(
            200,
            json={
                "access_token": jwt_shaped(f"{audience}-{self.issued}"),
                "expires_in": self.expires_in,
                "token_type": "Bearer",
                "issued_token_type": "urn:ietf:params:oauth:token-type:access_token",
            },
        )

    @staticmethod
    def ok(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json={"id": "case-1", "name": PERSONAL})

    @property
    def exchanges(self) -> list[httpx.Request]:
        return [r for r in self.requests if str(r.url) == TOKEN_URL]

    @property
    def calls(self) -> list[httpx.Request]:
        return [r for r in self.requests if str(r.url) != TOKEN_URL]


def form(request: httpx.Request) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(request.content.decode()).items()}


def settings(**env: str) -> Settings:
    values = {
        "THB_MODE": "local",
        "OIDC_ISSUER": ISSUER,
        "OIDC_CLIENT_SECRET": SECRET,
        "THB_UPSTREAM_IDENTIFICATION": IDENTIFICATION,
        "THB_UPSTREAM_REFERRAL": REFERRAL,
        **env,
    }
    return Settings.from_env("exchange", {k: v for k, v in values.items() if v})


@pytest.fixture
def net() -> Net:
    return Net()


@pytest.fixture
def clock() -> FixedClock:
    return FixedClock()


@pytest.fixture
def client(net: Net, clock: FixedClock) -> Iterator[OnBehalfClient]:
    made = OnBehalfClient.from_settings(
        settings(),
        targets=("identification", "referral"),
        clock=clock,
        transport=httpx.MockTransport(net.handle),
    )
    yield made
    made.close()


@pytest.fixture
def in_request() -> Iterator[request_context.RequestContext]:
    context = request_context.RequestContext(request_id="req-0001-abcdef", purpose="case-management")
    context.caller = CALLER
    token = request_context.set_current(context)
    yield context
    request_context.reset(token)


@pytest.fixture
def logs() -> Iterator[io.StringIO]:
    """The module's log lines as the services write them (JSON, with their fields)."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter("exchange"))
    logger = logging.getLogger("plumbing.on_behalf")
    logger.addHandler(handler)
    previous = logger.level
    logger.setLevel(logging.DEBUG)
    yield stream
    logger.removeHandler(handler)
    logger.setLevel(previous)


def assert_nothing_sensitive(text: str, net: Net) -> None:
    for secret in (SECRET, USER_TOKEN, PERSONAL, *(jwt_shaped(f"identification-api-{n}") for n in (1, 2, 3))):
        assert secret not in text
    assert "user-1" not in text  # not even the subject: the caller's request line already names who asked


# ----------------------------------------------------------------------------------------- the happy path


def test_exchanges_the_users_token_for_the_target_audience_and_calls_with_the_new_one(
    client: OnBehalfClient, net: Net, in_request: Any
) -> None:
    answer = client.get("identification", "/v1/identification/cases/case-1")
    assert answer == {"id": "case-1", "name": PERSONAL}
    (exchange,) = net.exchanges
    assert exchange.method == "POST"
    assert exchange.headers["content-type"] == "application/x-www-form-urlencoded"
    assert form(exchange) == {
        "grant_type": "urn:ietf:params:oauth:grant-type:token-exchange",
        "client_id": "exchange-api",
        "client_secret": SECRET,
        "subject_token": USER_TOKEN,
        "subject_token_type": "urn:ietf:params:oauth:token-type:access_token",
        "requested_token_type": "urn:ietf:params:oauth:token-type:access_token",
        "audience": "identification-api",
    }
    (call,) = net.calls
    assert str(call.url) == f"{IDENTIFICATION}/v1/identification/cases/case-1"
    # the exchanged token, never the caller's own; the request's id and purpose go along
    assert call.headers["authorization"] == f"Bearer {jwt_shaped('identification-api-1')}"
    assert USER_TOKEN not in str(call.headers)
    assert call.headers["x-request-id"] == "req-0001-abcdef"
    assert call.headers["x-purpose"] == "case-management"
    assert call.headers["accept"] == "application/json"


def test_timeouts_are_bounded_for_keycloak_and_the_target(
    client: OnBehalfClient, net: Net, in_request: Any
) -> None:
    client.get("identification", "/v1/identification/cases/case-1")
    for request in net.requests:
        timeout = request.extensions["timeout"]
        assert all(value is not None and 0 < value <= 10 for value in timeout.values()), timeout
        assert timeout["connect"] <= 2


def test_explicit_caller_purpose_and_post_body(client: OnBehalfClient, net: Net) -> None:
    """Outside a request (or for another purpose) the caller and purpose are given; a search is a POST."""
    other = replace(CALLER, token="eyJ.other-user.sig")
    answer = client.post(
        "identification",
        "/v1/identification/people/search",
        json={"name": PERSONAL},
        caller=other,
        purpose="identification",
        idempotency_key="key-1",
    )
    assert answer["id"] == "case-1"
    (call,) = net.calls
    assert call.method == "POST" and json.loads(call.content) == {"name": PERSONAL}
    assert call.headers["x-purpose"] == "identification" and call.headers["idempotency-key"] == "key-1"
    assert "x-request-id" not in call.headers  # no request context: nothing invented
    assert form(net.exchanges[0])["subject_token"] == "eyJ.other-user.sig"


def test_no_content_is_none(client: OnBehalfClient, net: Net, in_request: Any) -> None:
    net.service = lambda request: httpx.Response(204)
    assert client.get("identification", "/v1/identification/cases/case-1") is None


# ------------------------------------------------------------------------------------------------ caching


def test_the_exchanged_token_is_reused_until_shortly_before_it_expires(
    client: OnBehalfClient, net: Net, clock: FixedClock, in_request: Any
) -> None:
    for _ in range(3):
        client.get("identification", "/v1/identification/cases/case-1")
    assert len(net.exchanges) == 1 and len(net.calls) == 3
    clock.advance(seconds=269)  # 300 s token, 30 s margin
    client.get("identification", "/v1/identification/cases/case-1")
    assert len(net.exchanges) == 1
    clock.advance(seconds=2)
    client.get("identification", "/v1/identification/cases/case-1")
    assert len(net.exchanges) == 2
    assert net.calls[-1].headers["authorization"] == f"Bearer {jwt_shaped('identification-api-2')}"


def test_one_exchange_per_caller_token_and_audience(
    client: OnBehalfClient, net: Net, in_request: Any
) -> None:
    client.get("identification", "/v1/identification/cases/case-1")
    client.get("referral", "/v1/referral/referrals/r-1")
    client.get("identification", "/v1/identification/cases/case-1", caller=replace(CALLER, token="eyJ.b.c"))
    client.get("referral", "/v1/referral/referrals/r-1")
    assert [form(r)["audience"] for r in net.exchanges] == [
        "identification-api",
        "referral-api",
        "identification-api",
    ]
    assert str(net.calls[1].url).startswith(REFERRAL)


def test_a_short_lived_token_is_kept_for_half_its_life(clock: FixedClock) -> None:
    cache = ExchangedTokenCache(clock)
    cache.put(USER_TOKEN, "identification-api", "exchanged", expires_in=20)
    clock.advance(seconds=9)
    assert cache.get(USER_TOKEN, "identification-api") == "exchanged"
    clock.advance(seconds=2)
    assert cache.get(USER_TOKEN, "identification-api") is None
    cache.put(USER_TOKEN, "identification-api", "exchanged", expires_in=0)
    assert cache.get(USER_TOKEN, "identification-api") is None


def test_the_cache_keeps_digests_not_tokens_and_stays_bounded(clock: FixedClock) -> None:
    cache = ExchangedTokenCache(clock, max_entries=3)
    for n in range(5):
        cache.put(f"{USER_TOKEN}-{n}", "identification-api", f"exchanged-{n}", expires_in=300)
    assert len(cache) == 3
    assert cache.get(f"{USER_TOKEN}-0", "identification-api") is None  # the oldest went first
    assert cache.get(f"{USER_TOKEN}-4", "identification-api") == "exchanged-4"
    assert all(USER_TOKEN not in digest and len(digest) == 64 for digest, _ in cache._entries)


def test_expired_entries_make_room_before_live_ones(clock: FixedClock) -> None:
    cache = ExchangedTokenCache(clock, max_entries=2)
    cache.put("old", "identification-api", "t-old", expires_in=20)
    cache.put("live", "identification-api", "t-live", expires_in=300)
    clock.advance(seconds=15)
    cache.put("new", "identification-api", "t-new", expires_in=300)
    assert cache.get("live", "identification-api") == "t-live"
    assert cache.get("new", "identification-api") == "t-new"


# ----------------------------------------------------------------------------------- Keycloak's refusals


def keycloak_answers(status: int, body: Any) -> Callable[[httpx.Request], httpx.Response]:
    def answer(request: httpx.Request) -> httpx.Response:
        if isinstance(body, str):
            return httpx.Response(status, text=body)
        return httpx.Response(status, json=body)

    return answer


@pytest.mark.parametrize(
    ("status", "body"),
    [
        # the user holds no access role of the target, or the pair is not declared in the realm
        (
            400,
            {
                "error": "invalid_request",
                "error_description": "Requested audience not available: identification-api",
            },
        ),
        # the caller's token does not name this service in aud
        (403, {"error": "access_denied", "error_description": "Client is not within the token audience"}),
        # anything else Keycloak refuses: fail closed
        (400, {"error": "invalid_scope", "error_description": "Invalid scopes: x"}),
        (400, "not json"),
    ],
)
def test_keycloak_refusing_the_exchange_is_403_and_nothing_is_called(
    client: OnBehalfClient, net: Net, in_request: Any, logs: io.StringIO, status: int, body: Any
) -> None:
    net.keycloak = keycloak_answers(status, body)
    with pytest.raises(NotPermitted) as caught:
        client.get("identification", "/v1/identification/cases/case-1")
    assert caught.value.code == "on_behalf_exchange_refused"
    assert net.calls == []
    assert "token exchange refused" in logs.getvalue()
    assert_nothing_sensitive(logs.getvalue() + str(caught.value), net)


def test_a_token_keycloak_no_longer_accepts_is_401(client: OnBehalfClient, net: Net, in_request: Any) -> None:
    net.keycloak = keycloak_answers(400, {"error": "invalid_request", "error_description": "Invalid token"})
    with pytest.raises(AuthError) as caught:
        client.get("identification", "/v1/identification/cases/case-1")
    assert (caught.value.code, caught.value.status) == ("token_rejected_by_issuer", 401)
    assert net.calls == []


def test_keycloak_refusing_our_own_credentials_is_a_configuration_error(
    client: OnBehalfClient, net: Net, in_request: Any, logs: io.StringIO
) -> None:
    net.keycloak = keycloak_answers(
        401,
        {"error": "unauthorized_client", "error_description": "Invalid client or Invalid client credentials"},
    )
    with pytest.raises(OnBehalfConfigurationError) as caught:
        client.get("identification", "/v1/identification/cases/case-1")
    line = json.loads(logs.getvalue().splitlines()[-1])
    assert line["level"] == "error" and line["oauth_error"] == "unauthorized_client"
    assert line["client_id"] == "exchange-api"
    assert_nothing_sensitive(logs.getvalue() + str(caught.value) + repr(client), net)


@pytest.mark.parametrize(
    "failure",
    [
        keycloak_answers(503, "Service Unavailable"),
        keycloak_answers(500, {"error": "unknown_error"}),
        keycloak_answers(200, "<html>proxy error</html>"),
        keycloak_answers(200, {"token_type": "Bearer"}),
    ],
)
def test_keycloak_failing_is_503(
    client: OnBehalfClient, net: Net, in_request: Any, failure: Callable[[httpx.Request], httpx.Response]
) -> None:
    net.keycloak = failure
    with pytest.raises(DependencyUnavailable) as caught:
        client.get("identification", "/v1/identification/cases/case-1")
    assert caught.value.dependency == "keycloak"
    assert net.calls == []


@pytest.mark.parametrize("error", [httpx.ConnectError, httpx.ConnectTimeout, httpx.ReadTimeout])
def test_keycloak_unreachable_or_slow_is_503(
    client: OnBehalfClient, net: Net, in_request: Any, logs: io.StringIO, error: type[httpx.TransportError]
) -> None:
    def fail(request: httpx.Request) -> httpx.Response:
        raise error("boom", request=request)

    net.keycloak = fail
    with pytest.raises(DependencyUnavailable) as caught:
        client.get("identification", "/v1/identification/cases/case-1")
    assert caught.value.dependency == "keycloak"
    assert error.__name__ in logs.getvalue()
    assert_nothing_sensitive(logs.getvalue(), net)


def test_a_refused_exchange_is_not_cached(client: OnBehalfClient, net: Net, in_request: Any) -> None:
    net.keycloak = keycloak_answers(503, "down")
    with pytest.raises(DependencyUnavailable):
        client.get("identification", "/v1/identification/cases/case-1")
    net.keycloak = None
    assert client.get("identification", "/v1/identification/cases/case-1")["id"] == "case-1"
    assert len(net.exchanges) == 2


# -------------------------------------------------------------------------------- the target's answers


def service_answers(status: int, body: Any = None) -> Callable[[httpx.Request], httpx.Response]:
    def answer(request: httpx.Request) -> httpx.Response:
        if body is None:
            return httpx.Response(status)
        return httpx.Response(status, json=body, headers={"content-type": "application/problem+json"})

    return answer


def problem(slug: str, status: int) -> dict[str, Any]:
    return {"type": f"/problems/{slug}", "title": "x", "status": status, "detail": PERSONAL}


def test_the_targets_404_is_not_found(client: OnBehalfClient, net: Net, in_request: Any) -> None:
    net.service = service_answers(404, problem("not-found", 404))
    with pytest.raises(NotFound):
        client.get("identification", "/v1/identification/cases/case-1")


def test_the_targets_403_is_not_permitted(client: OnBehalfClient, net: Net, in_request: Any) -> None:
    net.service = service_answers(403, problem("forbidden", 403))
    with pytest.raises(NotPermitted) as caught:
        client.get("identification", "/v1/identification/cases/case-1")
    assert caught.value.code == "on_behalf_forbidden"


@pytest.mark.parametrize("status", [500, 502, 503, 504, 429])
def test_the_target_failing_is_503(
    client: OnBehalfClient, net: Net, in_request: Any, logs: io.StringIO, status: int
) -> None:
    net.service = service_answers(status, problem("service-unavailable", status))
    with pytest.raises(DependencyUnavailable) as caught:
        client.get("identification", "/v1/identification/cases/case-1")
    assert caught.value.dependency == "identification"
    assert_nothing_sensitive(logs.getvalue() + str(caught.value), net)


@pytest.mark.parametrize("error", [httpx.ConnectError, httpx.ReadTimeout, httpx.RemoteProtocolError])
def test_the_target_unreachable_or_slow_is_503(
    client: OnBehalfClient, net: Net, in_request: Any, error: type[httpx.TransportError]
) -> None:
    def fail(request: httpx.Request) -> httpx.Response:
        raise error("boom", request=request)

    net.service = fail
    with pytest.raises(DependencyUnavailable) as caught:
        client.get("identification", "/v1/identification/cases/case-1")
    assert caught.value.dependency == "identification"


def test_other_answers_name_status_and_problem_but_keep_no_body(
    client: OnBehalfClient, net: Net, in_request: Any
) -> None:
    net.service = service_answers(
        422, {**problem("validation-failed", 422), "errors": [{"pointer": "/body"}]}
    )
    with pytest.raises(UnexpectedAnswer) as caught:
        client.post("identification", "/v1/identification/people/search", json={})
    assert (caught.value.status, caught.value.problem) == (422, "validation-failed")
    assert PERSONAL not in str(caught.value)


def test_a_rejected_token_is_exchanged_once_more_then_reported_as_configuration(
    client: OnBehalfClient, net: Net, in_request: Any, logs: io.StringIO
) -> None:
    statuses = iter([401, 200])
    net.service = lambda request: (
        httpx.Response(401) if next(statuses) == 401 else httpx.Response(200, json={"id": "case-1"})
    )
    assert client.get("identification", "/v1/identification/cases/case-1") == {"id": "case-1"}
    assert len(net.exchanges) == 2  # the cached token was dropped and a fresh one used
    assert net.calls[1].headers["authorization"] == f"Bearer {jwt_shaped('identification-api-2')}"

    net.service = service_answers(401)
    net.requests.clear()
    with pytest.raises(OnBehalfConfigurationError):
        client.get("identification", "/v1/identification/cases/case-2")
    # the cached token, then one fresh exchange; a token the target refuses is not kept either
    assert len(net.calls) == 2 and len(net.exchanges) == 1
    assert len(client.exchanger.cache) == 0
    assert "THB_ALLOWED_AZP" in logs.getvalue()


# ------------------------------------------------------------------------------------ what is refused


def test_a_machine_caller_is_refused_without_any_request(client: OnBehalfClient, net: Net) -> None:
    machine = replace(CALLER, azp="al-national-system", agency="national-system", is_machine=True)
    with pytest.raises(NotPermitted) as caught:
        client.get("identification", "/v1/identification/cases/case-1", caller=machine)
    assert caught.value.code == "on_behalf_machine_caller"
    assert net.requests == []


@pytest.mark.parametrize(
    ("target", "path"),
    [
        ("identification", "/v1/referral/referrals/r-1"),  # another service's path
        ("identification", "/v1/identification/cases?name=x"),  # criteria never in a URL
        ("identification", "/v1/identification/../../admin"),
        ("identification", "http://elsewhere/v1/identification/cases/1"),
        ("return", "/v1/return/returns/1"),  # not a target of this client
    ],
)
def test_only_paths_below_the_targets_own_prefix(
    client: OnBehalfClient, net: Net, in_request: Any, target: str, path: str
) -> None:
    with pytest.raises(ValueError):
        client.get(target, path)
    assert net.requests == []


def test_outside_a_request_a_caller_must_be_given(client: OnBehalfClient) -> None:
    with pytest.raises(RuntimeError):
        client.get("identification", "/v1/identification/cases/case-1")


# --------------------------------------------------------------------------------------- configuration


def test_start_up_names_every_missing_variable() -> None:
    with pytest.raises(ConfigError) as caught:
        OnBehalfClient.from_settings(
            settings(OIDC_CLIENT_SECRET="", THB_UPSTREAM_REFERRAL=""), targets=("identification", "referral")
        )
    assert "OIDC_CLIENT_SECRET" in str(caught.value) and "THB_UPSTREAM_REFERRAL" in str(caught.value)
    assert "THB_UPSTREAM_IDENTIFICATION" not in str(caught.value)


def test_the_secret_never_shows_in_reprs(client: OnBehalfClient) -> None:
    text = repr(client) + repr(client.exchanger) + repr(settings()) + str(vars(client.exchanger))
    assert SECRET not in text
    assert client.exchanger.token_endpoint == TOKEN_URL


# ------------------------------------------------------------------------------------- through the app


@pytest.fixture
def demo(net: Net, clock: FixedClock) -> Iterator[tuple[Any, io.StringIO, OnBehalfClient]]:
    sys.path.insert(0, str(Path(__file__).parents[1] / "fixtures"))
    import demo_handlers
    from app_support import build_demo_app

    remote = OnBehalfClient.from_settings(
        settings(), targets=("identification",), clock=clock, transport=httpx.MockTransport(net.handle)
    )
    demo_handlers.REMOTE["client"] = remote
    app, logs = build_demo_app()
    yield app, logs, remote
    demo_handlers.REMOTE.clear()
    remote.close()


def test_through_the_app_purpose_and_request_id_are_forwarded_and_errors_become_problems(
    demo: tuple[Any, io.StringIO, OnBehalfClient], net: Net
) -> None:
    from app_support import bearer

    app, logs, remote = demo
    headers = bearer("manager", **{"X-Purpose": "case-management", "X-Request-Id": "req-from-gateway-42"})
    with app.test_client() as http:
        ok = http.get("/v1/demo/things/remote-1", headers=headers)
        assert ok.status_code == 200 and ok.json()["name"] == PERSONAL
        (call,) = net.calls
        assert (call.headers["x-purpose"], call.headers["x-request-id"]) == (
            "case-management",
            "req-from-gateway-42",
        )
        assert call.headers["traceparent"]  # the trace continues in the other service

        net.keycloak = keycloak_answers(
            400, {"error": "invalid_request", "error_description": "Requested audience not available: x"}
        )
        net.requests.clear()
        remote.exchanger.cache.clear()  # every demo caller has the same token: start each case afresh
        refused = http.get("/v1/demo/things/remote-2", headers=headers)
        assert refused.status_code == 403
        assert refused.json()["errors"] == [{"pointer": "/body", "code": "on_behalf_exchange_refused"}]

        net.keycloak = keycloak_answers(503, "down")
        remote.exchanger.cache.clear()
        down = http.get("/v1/demo/things/remote-3", headers=headers)
        assert down.status_code == 503 and down.headers["Retry-After"]
        assert down.json()["type"].endswith("/service-unavailable") and "errors" not in down.json()

        net.keycloak = None
        net.service = service_answers(404, problem("not-found", 404))
        missing = http.get("/v1/demo/things/remote-4", headers=headers)
        assert missing.status_code == 404

        machine = http.get(
            "/v1/demo/things/remote-5", headers=bearer("machine", **{"X-Purpose": "case-management"})
        )
        assert machine.status_code == 403
        assert machine.json()["errors"] == [{"pointer": "/body", "code": "on_behalf_machine_caller"}]
    assert PERSONAL not in logs.getvalue() and SECRET not in logs.getvalue()
    assert "unhandled exception" not in logs.getvalue()


# ------------------------------------------------------------------------------- identification records


def test_identification_records_read_the_case_then_its_person_on_the_users_behalf(
    client: OnBehalfClient, net: Net, in_request: Any
) -> None:
    from plumbing.identification_records import IdentificationRecords

    def answer(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/cases/case-1"):
            return httpx.Response(200, json={"id": "case-1", "person_id": "person-1"})
        return httpx.Response(200, json={"id": "person-1", "child": True})

    net.service = answer
    records = IdentificationRecords(client).case_and_person("case-1")
    assert records == {
        "case": {"id": "case-1", "person_id": "person-1"},
        "person": {"id": "person-1", "child": True},
    }
    assert [r.url.path for r in net.calls] == [
        "/v1/identification/cases/case-1",
        "/v1/identification/persons/person-1",
    ]
    assert all(r.headers["X-Purpose"] == "case-management" for r in net.calls)


def test_identification_records_exist_only_where_identification_is_deployed() -> None:
    from plumbing.identification_records import IdentificationRecords

    assert IdentificationRecords.where_deployed(settings(THB_UPSTREAM_IDENTIFICATION="")) is None
    deployed = IdentificationRecords.where_deployed(settings())
    assert deployed is not None
    deployed.close()
