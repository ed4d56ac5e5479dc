"""HTTP handlers (thin): caller and purpose from the request context, a command of the service layer, the access
log before any personal data leaves, the view. A DomainError (a plumbing RuleViolation) needs no handling here:
the app factory answers it 422 with every {pointer, code}. `app` is the ASGI app gunicorn serves
(`gunicorn -c python:plumbing.gunicorn_conf identification.entrypoints.http:app`)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import connexion

import thb_contracts
from identification.bootstrap import SERVICE, Runtime, build_runtime
from identification.domain.errors import DomainError
from identification.service_layer import (
    access_requests,
    cases,
    consent,
    duplicates,
    indicator_sets,
    merges,
    persons,
    restriction,
    statistics,
    subject_records,
)
from plumbing import audit, request_context, subject_access
from plumbing.access_log import record_for_request
from plumbing.app import AppRuntime, app_on_first_access, create_service_app
from plumbing.clock import Clock
from plumbing.errors import NotFound
from plumbing.on_behalf import OnBehalfClient
from plumbing.pagination import parse_updated_since
from plumbing.problems import FieldError, Problem

SPEC = Path(str(thb_contracts.contract("identification")))  # found by package, not by the checkout's layout
BASE = "/v1/identification"
SUBJECT_ACCESS_PURPOSE = "data-subject-access"
# Rule codes that mean "your role may not take this decision" (config/platform.yaml `authorisations`): 403, not
# 422, so that a client tells a refusal it cannot fix by changing the request from one it can.
NOT_AUTHORISED = frozenset(
    {
        "formal_identification_not_authorised",
        "age_determination_not_authorised",
        "access_decision_not_authorised",
    }
)
# Rule codes that mean "valid, but it contradicts what is stored": 409 `conflict` with the pointer.
CONTRADICTS_STORED = frozenset({"external_ref_differs"})


class _State(AppRuntime[Runtime]):
    # The services the right-of-access report asks on the user's behalf (those this deployment has) and the rest.
    peers: OnBehalfClient | None = None
    peer_services: tuple[str, ...] = ()
    not_deployed: tuple[str, ...] = ()


STATE = _State(SERVICE)
_runtime = STATE.get
_caller = request_context.current_caller


def _record_read(resource_type: str, ids: Sequence[str]) -> None:
    """One access-log entry per request, written durably before the body is sent (503 if impossible)."""
    record_for_request(_runtime().startup.access_log, resource_type, ids)


@contextlib.contextmanager
def _rules(location: str = "/body") -> Iterator[None]:
    """A DomainError as the contract documents it: a decision the caller's role may not take is 403 `forbidden`
    naming only those rules; any other is 422 with its pointers under `location` (`/body` is the app factory's
    own mapping; statistics read query parameters: `/query/period`)."""
    try:
        yield
    except DomainError as error:
        refused = [d for d in error.details if d.code in NOT_AUTHORISED]
        if refused:
            raise Problem(
                "forbidden", errors=[FieldError(location + d.pointer, d.code) for d in refused]
            ) from None
        contradicting = [d for d in error.details if d.code in CONTRADICTS_STORED]
        if contradicting:
            raise Problem(
                "conflict", errors=[FieldError(location + d.pointer, d.code) for d in contradicting]
            ) from None
        if location != "/body":
            errors = [FieldError(location + d.pointer, d.code) for d in error.details]
            raise Problem("validation-failed", errors=errors) from None
        raise


def _page(items: list[dict[str, Any]], next_cursor: str | None) -> dict[str, Any]:
    return {"items": items, "next_cursor": next_cursor}


# ---------------------------------------------------------------------------------------------- persons


def register_person(body: dict[str, Any]) -> Any:
    with _rules():
        view, created = persons.register_person(_runtime().deps, _caller(), body)
    _record_read("person", [view["id"]])
    if not created:
        return view, 200
    return view, 201, {"Location": f"{BASE}/persons/{view['id']}"}


def list_persons(limit: int | None = None, cursor: str | None = None, updated_since: Any = None) -> Any:
    items, next_cursor = persons.list_persons(
        _runtime().deps, _caller(), limit=limit, cursor=cursor, updated_since=_instant(updated_since)
    )
    _record_read("person", [item["id"] for item in items])
    return _page(items, next_cursor)


def _etag(version: int) -> dict[str, str]:
    return {"ETag": f'"{version}"'}


def get_person(person_id: str) -> Any:
    view = persons.get_person(_runtime().deps, _caller(), person_id)
    _record_read("person", [view["id"]])
    return view, 200, _etag(view["version"])


def correct_person(person_id: str, body: dict[str, Any]) -> Any:
    # The contract requires If-Match as `"<version>"` (400 otherwise, before this runs).
    expected_version = int(connexion.request.headers["If-Match"].strip('"'))
    with _rules():
        view, _doc = persons.correct_person(_runtime().deps, _caller(), person_id, expected_version, body)
    _record_read("person", [view["id"]])
    return view, 200, _etag(view["version"])


def merge_person(person_id: str, body: dict[str, Any]) -> Any:
    with _rules():
        view = merges.merge(_runtime().deps, _caller(), person_id, body)
    _record_read("person", [view["id"], body["into_person_id"]])
    return view


def withdraw_consent(person_id: str, body: dict[str, Any]) -> Any:
    view = consent.withdraw_consent(_runtime().deps, _caller(), person_id, body)
    _record_read("person", [view["id"]])
    return view


def restrict_processing(person_id: str, body: dict[str, Any]) -> Any:
    with _rules():
        view = restriction.restrict(_runtime().deps, _caller(), person_id, body)
    _record_read("person", [view["id"]])
    return view


def lift_restriction(person_id: str) -> Any:
    view = restriction.lift(_runtime().deps, _caller(), person_id)
    _record_read("person", [view["id"]])
    return view


def unmerge_person(person_id: str, body: dict[str, Any]) -> Any:
    view = merges.unmerge(_runtime().deps, _caller(), person_id, body)
    _record_read("person", [view["id"]])
    return view


# ------------------------------------------------------------------------------------------------ cases


def create_case(body: dict[str, Any]) -> Any:
    case = cases.open_case(_runtime().deps, _caller(), body["person_id"])
    _record_read("case", [case.id, case.person_id])
    return cases.case_view(case), 201, {"Location": f"{BASE}/cases/{case.id}"}


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


def decide_category(case_id: str, body: dict[str, Any]) -> Any:
    with _rules():
        case = cases.decide_category(_runtime().deps, _caller(), case_id, body)
    _record_read("case", [case.id, case.person_id])
    return cases.case_view(case)


def record_needs(case_id: str, body: dict[str, Any]) -> Any:
    case = cases.record_needs(_runtime().deps, _caller(), case_id, body)
    _record_read("case", [case.id, case.person_id])
    return cases.case_view(case)


def start_recovery_period(case_id: str, body: dict[str, Any]) -> Any:
    case = cases.start_recovery_period(_runtime().deps, _caller(), case_id, body)
    _record_read("case", [case.id, case.person_id])
    return cases.case_view(case)


def close_case(case_id: str, body: dict[str, Any]) -> Any:
    case = cases.close_case(_runtime().deps, _caller(), case_id, body)
    _record_read("case", [case.id, case.person_id])
    return cases.case_view(case)


# ------------------------------------------------------------------------------------------- screenings


def create_screening(body: dict[str, Any]) -> Any:
    case, item = cases.record_screening(_runtime().deps, _caller(), body)
    _record_read("screening", [item["id"], case.id, case.person_id])
    return cases.screening_view(case, item), 201, {"Location": f"{BASE}/screenings/{item['id']}"}


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


def create_duplicate_search(body: dict[str, Any]) -> Any:
    outcome = duplicates.search(_runtime().deps, _caller(), body)
    _record_read("person", [outcome.view["id"], *outcome.person_ids])
    return outcome.view, 201


# ---------------------------------------------------------------------------------- access requests


def create_access_request(body: dict[str, Any]) -> Any:
    with _rules():
        request, created = access_requests.request_access(_runtime().deps, _caller(), body)
    view = access_requests.access_request_view(request)
    if not created:
        return view, 200
    return view, 201, {"Location": f"{BASE}/access-requests/{request.id}"}


def list_access_requests(
    status: str | None = None, limit: int | None = None, cursor: str | None = None
) -> Any:
    page = access_requests.list_access_requests(
        _runtime().deps, _caller(), status=status, limit=limit, cursor=cursor
    )
    return _page([access_requests.access_request_view(doc) for doc in page.items], page.next_cursor)


def decide_access_request(request_id: str, body: dict[str, Any]) -> Any:
    with _rules():
        request = access_requests.decide_access(_runtime().deps, _caller(), request_id, body)
    return access_requests.access_request_view(request)


# ----------------------------------------------------------------------------------- indicator sets


def list_indicator_sets() -> Any:
    return indicator_sets.index(_runtime().deps)


def publish_indicator_set(body: dict[str, Any]) -> Any:
    summary = indicator_sets.publish(_runtime().deps, _caller(), body)
    location = f"{BASE}/indicator-sets/{summary['set_id']}/versions/{summary['version']}"
    return summary, 201, {"Location": location}


def get_indicator_set(set_id: str, version: str, lang: str | None = None) -> Any:
    view = indicator_sets.view(_runtime().deps, set_id, version, lang or "en")
    return view, 200, {"Content-Language": view["language"]}


# ------------------------------------------------------------------------------------------- statistics


def get_statistics(
    period: str,
    rows: str,
    columns: str | None = None,
    scope: str = "country",
    format: str = "json",  # noqa: A002
) -> Any:
    with _rules("/query"):
        table = statistics.table(
            _runtime().deps, _caller(), period=period, rows=rows, columns=columns, scope=scope
        )
    if format == "csv":
        return statistics.as_csv(table), 200, {"Content-Type": "text/csv"}
    return table


# ---------------------------------------------------------------------------------------- right of access


def get_subject_access(person_id: str, case_id: list[str] | None = None) -> Any:
    runtime, caller = _runtime(), _caller()
    found = subject_records.records_about(runtime.deps, caller, person_id)
    return subject_access.answer(
        SERVICE, runtime.startup.access_log, runtime.deps.clock, caller, person_id, case_id or [], found
    )


def get_subject_access_report(person_id: str, format: str = "json") -> Any:  # noqa: A002
    """The one call of the right of access: identification's section, then each other service's, asked on the
    DPO's behalf (her token exchanged for theirs: they apply her scope and log her as the reader) with her person
    id and the case ids identification holds. A service that cannot answer makes the whole answer 503: never a
    report that silently leaves a service out."""
    runtime, caller = _runtime(), _caller()
    found = subject_records.records_about(runtime.deps, caller, person_id)
    if not any(record.type == "person" for record in found):
        raise NotFound("person not found")
    case_ids = [record.id for record in found if record.type == "case"]
    sections = [
        subject_access.answer(
            SERVICE, runtime.startup.access_log, runtime.deps.clock, caller, person_id, case_ids, found
        )
    ]
    for target in STATE.peer_services:
        assert STATE.peers is not None
        params = {"person_id": person_id, "case_id": case_ids}
        # Asked for the right of access whatever purpose the report was asked with (each service has its own
        # purpose vocabulary; this one is in all of them).
        path = f"/v1/{target}/subject-access"
        sections.append(STATE.peers.get(target, path, params=params, purpose=SUBJECT_ACCESS_PURPOSE))
    answer = subject_access.report(person_id, runtime.deps.clock, sections, STATE.not_deployed)
    # Two media types: connexion needs the one chosen named (exactly as the contract writes it).
    if format == "html":
        return subject_access.as_html(answer), 200, {"Content-Type": "text/html"}
    return answer, 200, {"Content-Type": "application/json"}


# ----------------------------------------------------------------------------------------------- audit

# GET /access-log and /access-log/verification: the same two operations in every service (plumbing.audit).
list_access_log, verify_access_log = audit.handlers(lambda: _runtime().startup.access_log)


# ------------------------------------------------------------------------------------------------- app


def _instant(value: Any) -> Any:
    return parse_updated_since(value)


def create_http_app(
    environ: Mapping[str, str] | None = None, *, clock: Clock | None = None, validate_responses: bool = False
) -> Any:
    runtime = build_runtime(environ, clock)
    STATE.runtime = runtime
    app = create_service_app(SPEC, runtime.startup, validate_responses=validate_responses)
    upstreams = runtime.startup.settings.upstreams
    others = [service.name for service in thb_contracts.services() if service.name != SERVICE]
    STATE.peer_services = tuple(name for name in others if name in upstreams)
    STATE.not_deployed = tuple(name for name in others if name not in upstreams)
    # Only where the deployment has another service (THB_UPSTREAM_<NAME>); then OIDC_CLIENT_SECRET is required.
    STATE.peers = (
        OnBehalfClient.from_settings(runtime.startup.settings, targets=STATE.peer_services)
        if STATE.peer_services
        else None
    )
    return app


# `app` is built on first access (in the gunicorn worker), so importing this module has no side effects.
__getattr__ = app_on_first_access(create_http_app)
