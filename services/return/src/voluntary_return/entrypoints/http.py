"""HTTP handlers (thin): caller from the request context, a command of the service layer, the view. Domain errors
need no handling here: the app factory answers a DomainError 422 with every {pointer, code}, InvalidTransition
and Refused 409 and NotPermitted 403, each with its stable code. `app` is the app gunicorn serves
(`gunicorn -c python:plumbing.gunicorn_conf voluntary_return.entrypoints.http:app`), built on first access inside
the worker."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import thb_contracts
from plumbing import audit, request_context, subject_access
from plumbing.app import AppRuntime, app_on_first_access, create_service_app
from plumbing.clock import Clock
from plumbing.identification_records import IdentificationRecords
from plumbing.inbox import country_listing
from voluntary_return.adapters import received_events
from voluntary_return.bootstrap import SERVICE, Runtime, build_runtime
from voluntary_return.service_layer import cases, statistics, subject_records
from voluntary_return.service_layer.deps import Deps

SPEC = Path(str(thb_contracts.contract("return")))  # found by package, not by the checkout's layout
BASE = "/v1/return"


STATE: AppRuntime[Runtime] = AppRuntime(SERVICE)
_caller = request_context.current_caller


def _deps() -> Deps:
    return STATE.get().deps


def open_case(body: dict[str, Any]) -> Any:
    view = cases.open_case(_deps(), _caller(), body)
    return view, 201, {"Location": f"{BASE}/cases/{view['id']}"}


def list_cases(status: str | None = None, limit: int | None = None, cursor: str | None = None) -> Any:
    return cases.list_cases(_deps(), _caller(), status=status, limit=limit, cursor=cursor)


def get_case(case_id: str) -> Any:
    return cases.get_case(_deps(), _caller(), case_id)


def record_consent(case_id: str, body: dict[str, Any]) -> Any:
    return cases.record_consent(_deps(), _caller(), case_id, body)


def withdraw_consent(case_id: str) -> Any:
    return cases.withdraw_consent(_deps(), _caller(), case_id)


def record_family_assessment(case_id: str, body: dict[str, Any]) -> Any:
    return cases.record_family_assessment(_deps(), _caller(), case_id, body)


def record_best_interests_assessment(case_id: str, body: dict[str, Any]) -> Any:
    return cases.record_best_interests_assessment(_deps(), _caller(), case_id, body)


def assign_panel_member(case_id: str, body: dict[str, Any]) -> Any:
    return cases.assign_panel_member(_deps(), _caller(), case_id, body["member"])


def record_determination(case_id: str, body: dict[str, Any]) -> Any:
    return cases.record_determination(_deps(), _caller(), case_id, body)


def approve_plan(case_id: str, body: dict[str, Any]) -> Any:
    return cases.approve_plan(_deps(), _caller(), case_id, body)


def transition_case(case_id: str, body: dict[str, Any]) -> Any:
    return cases.transition(_deps(), _caller(), case_id, body)


def get_statistics(period: str, scope: str = "country") -> Any:
    return statistics.statistics_report(_deps(), _caller(), period=period, scope=scope)


# GET /received-events: the caller's country's records of the service's inbox (plumbing.inbox).
list_received_events = country_listing(received_events.inbox)


# ---------------------------------------------------------------------------------------- right of access


def get_subject_access(person_id: str, case_id: list[str] | None = None) -> Any:
    caller, deps = _caller(), _deps()
    found = subject_records.records_about(deps, caller, person_id, case_id or [])
    return subject_access.answer(
        SERVICE, STATE.get().startup.access_log, deps.clock, caller, person_id, case_id or [], found
    )


# ----------------------------------------------------------------------------------------------- audit

# GET /access-log and /access-log/verification: the same two operations in every service (plumbing.audit).
list_access_log, verify_access_log = audit.handlers(lambda: STATE.get().startup.access_log)


def create_http_app(
    environ: Mapping[str, str] | None = None, *, clock: Clock | None = None, validate_responses: bool = False
) -> Any:
    runtime = build_runtime(environ, clock)
    # Only the API acts for a user: it alone reads identification on her behalf, where the deployment has it.
    runtime.deps.identification = IdentificationRecords.where_deployed(runtime.startup.settings)
    STATE.runtime = runtime
    return create_service_app(SPEC, runtime.startup, validate_responses=validate_responses)


__getattr__ = app_on_first_access(create_http_app)
