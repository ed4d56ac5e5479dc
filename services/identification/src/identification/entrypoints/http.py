"""HTTP handlers (thin): caller and purpose from the request context, a command of the service layer, the access
log before any personal data leaves, the view. `app` is the ASGI app gunicorn serves
(`gunicorn -c python:plumbing.gunicorn_conf identification.entrypoints.http:app`)."""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar

import thb_contracts
from identification.bootstrap import SERVICE, Runtime, build_runtime
from identification.domain.errors import DomainError
from identification.service_layer import cases, duplicates, indicator_sets, persons, statistics
from plumbing import request_context
from plumbing.access_log import AccessLog, record_for_request
from plumbing.app import create_app
from plumbing.auth import Caller, JwksCache, TokenValidator
from plumbing.clock import Clock
from plumbing.pagination import parse_updated_since
from plumbing.problems import FieldError, Problem

SPEC = Path(str(thb_contracts.contract("identification")))  # found by package, not by the checkout's layout
F = TypeVar("F", bound=Callable[..., Any])


class _State:
    runtime: Runtime | None = None
    access_log: AccessLog | None = None


STATE = _State()


def _runtime() -> Runtime:
    if STATE.runtime is None:
        raise RuntimeError("the identification app was not built")
    return STATE.runtime


def _caller() -> Caller:
    caller: Caller = request_context.current_caller()
    return caller


def _record_read(resource_type: str, ids: Sequence[str]) -> None:
    """One access-log entry per request, written durably before the body is sent (503 if impossible)."""
    assert STATE.access_log is not None
    record_for_request(STATE.access_log, resource_type, ids)


def domain_errors(function: F) -> F:
    """DomainError (bad input or a rule broken) -> 422 with every {pointer, code}; the values are never echoed."""

    @functools.wraps(function)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return function(*args, **kwargs)
        except DomainError as error:
            pointers = [
                FieldError("/body" + d.pointer if d.pointer else "/body", d.code) for d in error.details
            ]
            raise Problem("validation-failed", errors=pointers) from None

    return wrapper  # type: ignore[return-value]


def _page(items: list[dict[str, Any]], next_cursor: str | None) -> dict[str, Any]:
    return {"items": items, "next_cursor": next_cursor}


# ---------------------------------------------------------------------------------------------- persons


@domain_errors
def register_person(body: dict[str, Any]) -> Any:
    view, created = persons.register_person(_runtime().deps, _caller(), body)
    _record_read("person", [view["id"]])
    return view, 201 if created else 200


def list_persons(limit: int | None = None, cursor: str | None = None, updated_since: Any = None) -> Any:
    items, next_cursor = persons.list_persons(
        _runtime().deps, _caller(), limit=limit, cursor=cursor, updated_since=_instant(updated_since)
    )
    _record_read("person", [item["id"] for item in items])
    return _page(items, next_cursor)


def get_person(person_id: str) -> Any:
    view = persons.get_person(_runtime().deps, _caller(), person_id)
    _record_read("person", [view["id"]])
    return view


# ------------------------------------------------------------------------------------------------ cases


def create_case(body: dict[str, Any]) -> Any:
    case = cases.open_case(_runtime().deps, _caller(), body["person_id"])
    _record_read("case", [case.id, case.person_id])
    return cases.case_view(case), 201


def list_cases(limit: int | None = None, cursor: str | None = None, updated_since: Any = None) -> Any:
    page = cases.list_cases(
        _runtime().deps, _caller(), limit=limit, cursor=cursor, updated_since=_instant(updated_since)
    )
    _record_read("case", [doc.id for doc in page.items])
    return _page([cases.case_view(doc) for doc in page.items], page.next_cursor)


def get_case(case_id: str) -> Any:
    case = cases.get_case(_runtime().deps, _caller(), case_id)
    _record_read("case", [case.id, case.person_id])
    return cases.case_view(case)


@domain_errors
def decide_category(case_id: str, body: dict[str, Any]) -> Any:
    case = cases.decide_category(_runtime().deps, _caller(), case_id, body)
    _record_read("case", [case.id, case.person_id])
    return cases.case_view(case)


@domain_errors
def record_needs(case_id: str, body: dict[str, Any]) -> Any:
    case = cases.record_needs(_runtime().deps, _caller(), case_id, body)
    _record_read("case", [case.id, case.person_id])
    return cases.case_view(case)


@domain_errors
def start_recovery_period(case_id: str, body: dict[str, Any]) -> Any:
    case = cases.start_recovery_period(_runtime().deps, _caller(), case_id, body)
    _record_read("case", [case.id, case.person_id])
    return cases.case_view(case)


@domain_errors
def close_case(case_id: str, body: dict[str, Any]) -> Any:
    case = cases.close_case(_runtime().deps, _caller(), case_id, body)
    _record_read("case", [case.id, case.person_id])
    return cases.case_view(case)


# ------------------------------------------------------------------------------------------- screenings


@domain_errors
def create_screening(body: dict[str, Any]) -> Any:
    case, item = cases.record_screening(_runtime().deps, _caller(), body)
    _record_read("screening", [item["id"], case.id, case.person_id])
    return cases.screening_view(case, item), 201


def get_screening(screening_id: str) -> Any:
    case, item = cases.find_screening(_runtime().deps, _caller(), screening_id)
    _record_read("screening", [item["id"], case.id, case.person_id])
    return cases.screening_view(case, item)


# ---------------------------------------------------------------------------------------- notifications


def list_notifications(
    acknowledged: bool | None = None, limit: int | None = None, cursor: str | None = None
) -> Any:
    page = cases.list_notifications(
        _runtime().deps, _caller(), acknowledged=acknowledged, limit=limit, cursor=cursor
    )
    _record_read("notification", [doc.id for doc in page.items])
    return _page([cases.notification_view(doc) for doc in page.items], page.next_cursor)


def acknowledge_notification(notification_id: str, body: dict[str, Any] | None = None) -> Any:
    doc = cases.acknowledge_notification(_runtime().deps, _caller(), notification_id)
    _record_read("notification", [doc.id])
    return cases.notification_view(doc)


# ----------------------------------------------------------------------------------- duplicate searches


@domain_errors
def create_duplicate_search(body: dict[str, Any]) -> Any:
    view = duplicates.search(_runtime().deps, _caller(), body)
    _record_read("person", [view["id"], *[c["person_id"] for c in view["candidates"]]])
    return view, 201


# ----------------------------------------------------------------------------------- indicator sets


def list_indicator_sets() -> Any:
    return indicator_sets.index(_runtime().deps)


@domain_errors
def publish_indicator_set(body: dict[str, Any]) -> Any:
    return indicator_sets.publish(_runtime().deps, _caller(), body), 201


@domain_errors
def get_indicator_set(set_id: str, version: str, lang: str | None = None) -> Any:
    return indicator_sets.view(_runtime().deps, set_id, version, lang or "en")


# ------------------------------------------------------------------------------------------- statistics


@domain_errors
def get_statistics(
    period: str,
    rows: str,
    columns: str | None = None,
    scope: str = "country",
    format: str = "json",  # noqa: A002
) -> Any:
    table = statistics.table(
        _runtime().deps, _caller(), period=period, rows=rows, columns=columns, scope=scope
    )
    if format == "csv":
        return statistics.as_csv(table), 200, {"Content-Type": "text/csv"}
    return table


# ------------------------------------------------------------------------------------------------- app


def _instant(value: Any) -> Any:
    return parse_updated_since(value)


def create_http_app(
    environ: Mapping[str, str] | None = None, *, clock: Clock | None = None, validate_responses: bool = False
) -> Any:
    runtime = build_runtime(environ, clock)
    settings = runtime.settings
    if not settings.oidc_issuer:
        raise RuntimeError("OIDC_ISSUER is required")
    jwks = JwksCache.for_issuer(settings.oidc_issuer)
    validator = TokenValidator(
        settings.oidc_issuer, f"{SERVICE}-api", runtime.allowed_azp, jwks, runtime.config.country_codes
    )
    access_log = runtime.access_log()
    STATE.runtime, STATE.access_log = runtime, access_log
    from plumbing import mongo

    return create_app(
        SERVICE,
        SPEC,
        settings=settings,
        validator=validator,
        access_log=access_log,
        clock=runtime.deps.clock,
        jwks=jwks,
        database=mongo.get_database,
        validate_responses=validate_responses,
        response_sealer=runtime.response_sealer,
        request_fingerprinter=runtime.request_fingerprinter,
    )


def __getattr__(name: str) -> Any:
    # `app` is built on first access (in the gunicorn worker), so importing this module has no side effects.
    if name == "app":
        built = create_http_app()
        globals()["app"] = built
        return built
    raise AttributeError(name)
