"""Contract policies, identity-header stripping and the bearer handler."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parents[1] / "fixtures"))

import yaml  # noqa: E402
from app_support import TOKENS, FakeValidator, bearer, build_demo_app  # noqa: E402
from connexion.spec import Specification  # noqa: E402
from starlette.datastructures import Headers  # noqa: E402

from plumbing import request_context  # noqa: E402
from plumbing.auth import AuthError  # noqa: E402
from plumbing.openapi_bundle import load_bundled  # noqa: E402
from plumbing.problems import Problem  # noqa: E402
from plumbing.security import make_bearer_info, read_policies, strip_identity_headers  # noqa: E402

SPEC = Path(__file__).parents[1] / "fixtures" / "demo.yaml"


def test_policies_from_the_demo_contract():
    policies = read_policies(Specification.load(str(SPEC)).spec)
    listing = policies["demo_handlers.list_things"]
    assert listing.roles == {"case-manager", "coordinator"}
    assert listing.personal_data and listing.purposes == {"case-management", "identification"}
    assert listing.route == "/v1/demo/things" and listing.method == "GET"
    assert not policies["demo_handlers.create_thing"].personal_data


def test_repository_contracts_follow_the_rules():
    contracts = sorted((Path(__file__).parents[4] / "openapi").glob("*.yaml"))
    checked = 0
    for contract in contracts:
        if "openapi" not in yaml.safe_load(contract.read_text(encoding="utf-8")):
            continue  # asyncapi.yaml
        spec = Specification.load(load_bundled(contract)).spec  # as the app factory reads it
        if "paths" in spec:
            read_policies(spec)
            checked += 1
    assert checked or not contracts


def test_identity_headers_are_stripped_but_acting_user_kept():
    scope = {
        "headers": [
            (b"x-user", b"a"),
            (b"X-Roles", b"coordinator"),
            (b"x-forwarded-user", b"b"),
            (b"x-country", b"ME"),
            (b"x-auth-request-user", b"c"),
            (b"remote-user", b"d"),
            (b"x-acting-user", b"officer-7"),
            (b"authorization", b"Bearer t"),
            (b"accept-language", b"sq"),
        ]
    }
    strip_identity_headers(scope)
    assert [name.lower() for name, _ in scope["headers"]] == [
        b"x-acting-user",
        b"authorization",
        b"accept-language",
    ]


class _Request:
    def __init__(self, **headers: str) -> None:
        self.headers = Headers(headers=headers)


def _bearer_info():
    return make_bearer_info(FakeValidator(), (AuthError,))


def test_acting_user_is_recorded_for_machine_clients_only():
    context = request_context.RequestContext(request_id="r-12345678")
    token = request_context.set_current(context)
    try:
        info = _bearer_info()("machine", _Request(**{"x-acting-user": "officer-7"}))
        assert info["caller"].acting_user == "officer-7"
        assert context.caller.acting_user == "officer-7"
        human = _bearer_info()("manager", _Request(**{"x-acting-user": "officer-7"}))
        assert human["caller"].acting_user is None
        assert human["caller"] == TOKENS["manager"]
    finally:
        request_context.reset(token)


def test_rejected_token_is_401_and_logs_only_a_code():
    context = request_context.RequestContext(request_id="r-12345678")
    token = request_context.set_current(context)
    try:
        with pytest.raises(Problem) as raised:
            _bearer_info()("forged", _Request())
        assert raised.value.status == 401
        assert context.extra["auth_error"] == "bad_signature"
    finally:
        request_context.reset(token)


def test_unsafe_acting_user_is_400():
    with pytest.raises(Problem) as raised:
        _bearer_info()("machine", _Request(**{"x-acting-user": "<script>"}))
    assert raised.value.slug == "bad-request"


def test_acting_user_reaches_the_access_log():
    from app_support import RecordingAccessLog

    access_log = RecordingAccessLog()
    app, _ = build_demo_app(access_log=access_log)
    with app.test_client() as client:
        response = client.get(
            "/v1/demo/things/t-01",
            headers=bearer("machine", **{"X-Purpose": "identification", "X-Acting-User": "officer-7"}),
        )
        assert response.status_code == 200
    caller, purpose, operation_id, _, ids, *_ = access_log.entries[0]
    assert (caller.acting_user, purpose, operation_id, ids) == (
        "officer-7",
        "identification",
        "demo_handlers.get_thing",
        ["t-01"],
    )
