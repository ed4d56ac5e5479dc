"""The coded errors every service's domain errors build on (plumbing.errors): what they carry, and that the app
factory answers them exactly as it answers the RuleViolation, Conflict and OutOfScope they are."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parents[1] / "fixtures"))

from app_support import CANARY, bearer, build_demo_app  # noqa: E402

from plumbing.errors import (  # noqa: E402
    CodedConflict,
    CodedForbidden,
    CodedViolation,
    Conflict,
    NotPermitted,
    OutOfScope,
    RuleViolation,
    Violation,
    raise_all,
)


class ServiceError(CodedViolation):
    """What a service's DomainError is."""


# ------------------------------------------------------------------------------------------ what they carry


def test_a_coded_violation_without_details_is_its_one_violation():
    error = CodedViolation("date_invalid", f"{CANARY} is no date", pointer="/date_of_birth")
    assert isinstance(error, RuleViolation)
    assert error.details == (Violation("date_invalid", "/date_of_birth"),)
    assert (error.code, error.pointer, error.message) == (
        "date_invalid",
        "/date_of_birth",
        f"{CANARY} is no date",
    )
    assert error.codes == {("date_invalid", "/date_of_birth")}


def test_a_coded_violation_with_details_reports_every_one_and_its_repr_lists_codes_not_the_message():
    details = [Violation("required", "/name"), Violation("too_long", "/note"), Violation("required", "/name")]
    error = ServiceError("required", f"{CANARY} form", pointer="/name", details=details)
    assert error.details == tuple(details)
    assert error.codes == {("required", "/name"), ("too_long", "/note")}
    assert repr(error) == "ServiceError([('required', '/name'), ('too_long', '/note')])"
    assert CANARY not in repr(error)


def test_raise_all_raises_nothing_for_no_details():
    raise_all([], "nothing wrong")
    ServiceError.raise_all([], "nothing wrong")


def test_raise_all_raises_one_error_carrying_every_detail_in_the_class_it_is_called_on():
    details = [Violation("required", "/name"), Violation("date_invalid", "/date_of_birth")]
    with pytest.raises(ServiceError) as raised:
        ServiceError.raise_all(details, "two rules")
    assert type(raised.value) is ServiceError
    assert raised.value.details == tuple(details)
    assert (raised.value.code, raised.value.pointer) == ("required", "/name")  # the first one
    assert str(raised.value) == "two rules"

    with pytest.raises(CodedViolation) as plain:
        raise_all(details, "two rules")
    assert type(plain.value) is CodedViolation and plain.value.codes == {(d.code, d.pointer) for d in details}


def test_a_coded_conflict_is_a_conflict_named_by_its_code():
    error = CodedConflict("no_free_place")
    assert isinstance(error, Conflict)
    assert (error.code, str(error)) == ("no_free_place", "no_free_place")
    assert str(CodedConflict("no_free_place", "the provider is full")) == "the provider is full"


def test_a_coded_forbidden_is_out_of_scope_named_by_its_code_not_plumbings_not_permitted():
    error = CodedForbidden("not_the_referrer")
    assert isinstance(error, OutOfScope) and not isinstance(error, NotPermitted)
    assert (error.code, str(error)) == ("not_the_referrer", "not_the_referrer")


# ------------------------------------------------------------------------------------------ through the app


class _LegacyConflict(Conflict):
    """A service's InvalidTransition as it was before plumbing had CodedConflict."""

    def __init__(self, code: str) -> None:
        super().__init__(code)
        self.code = code


class _LegacyForbidden(OutOfScope):
    """A service's NotPermitted as it was before plumbing had CodedForbidden."""

    def __init__(self, code: str) -> None:
        super().__init__(code)
        self.code = code


@pytest.fixture
def raising(monkeypatch):
    """A demo app whose create operation raises what the test puts in the list."""
    import demo_handlers

    to_raise: list[Exception] = []

    def create_thing(body: dict):
        raise to_raise[0]

    monkeypatch.setattr(demo_handlers, "create_thing", create_thing)
    app, _ = build_demo_app()

    def answer(error: Exception) -> tuple[int, dict]:
        to_raise[:] = [error]
        with app.test_client() as client:
            response = client.post(
                "/v1/demo/things", json={"name": "x", "kind": "small"}, headers=bearer("manager")
            )
        assert response.headers["content-type"] == "application/problem+json"
        assert CANARY not in response.text
        body = response.json()
        body.pop("instance")  # the request id, another each time
        return response.status_code, body

    return answer


def test_a_coded_violation_is_answered_like_the_rule_violation_it_is(raising):
    details = [Violation("name_reserved", "/name"), Violation("form", "")]
    status, body = raising(ServiceError("name_reserved", CANARY, pointer="/name", details=details))
    assert status == 422 and body["type"].endswith("/validation-failed")
    assert body["errors"] == [
        {"pointer": "/body/name", "code": "name_reserved"},
        {"pointer": "/body", "code": "form"},
    ]
    assert (status, body) == raising(RuleViolation(CANARY, details))


@pytest.mark.parametrize(
    ("coded", "legacy", "status", "slug"),
    [
        (CodedConflict("no_free_place", CANARY), _LegacyConflict("no_free_place"), 409, "conflict"),
        (CodedForbidden("not_the_referrer", CANARY), _LegacyForbidden("not_the_referrer"), 403, "forbidden"),
    ],
)
def test_a_coded_conflict_or_forbidden_names_its_code_as_before(raising, coded, legacy, status, slug):
    answered, body = raising(coded)
    assert answered == status and body["type"].endswith(f"/{slug}")
    assert body["errors"] == [{"pointer": "/body", "code": coded.code}]
    assert (answered, body) == raising(legacy)
