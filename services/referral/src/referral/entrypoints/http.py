"""HTTP handlers (thin): caller from the request context, a command of the service layer, the view. Domain errors
need no handling here: the app factory answers a DomainError 422 with every {pointer, code}, an
InvalidTransition or AlreadyExists 409 and a NotPermitted 403, each with its stable code. `app` is the app
gunicorn serves (`gunicorn -c python:plumbing.gunicorn_conf referral.entrypoints.http:app`), built on first
access inside the worker."""

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
from referral.adapters import received_events
from referral.bootstrap import SERVICE, Runtime, build_runtime
from referral.domain.lifecycle import Action
from referral.service_layer import directory, matching, referrals, statistics, subject_records
from referral.service_layer.catalogue import catalogue_view

SPEC = Path(str(thb_contracts.contract("referral")))  # found by package, not by the checkout's layout
BASE = "/v1/referral"


STATE: AppRuntime[Runtime] = AppRuntime(SERVICE)
_runtime = STATE.get
_caller = request_context.current_caller


# ---------------------------------------------------------------------------------------------- directory


def list_service_types() -> Any:
    return catalogue_view(_runtime().deps.catalogue, _caller().country)


def list_providers(service_type: str | None = None, municipality: str | None = None) -> Any:
    items = directory.list_providers(
        _runtime().deps, _caller(), service_type=service_type, municipality=municipality
    )
    return {"items": items}


def register_provider(body: dict[str, Any]) -> Any:
    view = directory.register_provider(_runtime().deps, _caller(), body)
    return view, 201, {"Location": f"{BASE}/providers/{view['id']}"}


def get_provider(provider_id: str) -> Any:
    return directory.get_provider(_runtime().deps, _caller(), provider_id)


def set_capacity(provider_id: str, body: dict[str, Any]) -> Any:
    return directory.set_capacity(_runtime().deps, _caller(), provider_id, body["places"])


def suggest_providers(body: dict[str, Any]) -> Any:
    return {"items": matching.suggest_providers(_runtime().deps, _caller(), body)}


# ---------------------------------------------------------------------------------------------- referrals


def create_referral(body: dict[str, Any]) -> Any:
    view = referrals.create_referral(_runtime().deps, _caller(), body)
    return view, 201, {"Location": f"{BASE}/referrals/{view['id']}"}


def list_referrals(
    status: str | None = None,
    return_case_id: str | None = None,
    limit: int | None = None,
    cursor: str | None = None,
) -> Any:
    return referrals.list_referrals(
        _runtime().deps,
        _caller(),
        status=status,
        return_case_id=return_case_id,
        limit=limit,
        cursor=cursor,
    )


def get_referral(referral_id: str) -> Any:
    return referrals.get_referral(_runtime().deps, _caller(), referral_id)


def request_referral(referral_id: str, body: dict[str, Any]) -> Any:
    return referrals.request_referral(_runtime().deps, _caller(), referral_id, body)


def transition_referral(referral_id: str, body: dict[str, Any]) -> Any:
    return referrals.act(_runtime().deps, _caller(), referral_id, Action(body["action"]), body)


def get_case_fields(referral_id: str, fields: str | None = None) -> Any:
    # The service layer writes the access-log entry before it opens the sealed fields.
    asked = fields.split(",") if fields else None
    return referrals.read_fields(_runtime().deps, _caller(), referral_id, asked)


def refresh_case_fields(referral_id: str) -> Any:
    return referrals.refresh_fields(_runtime().deps, _caller(), referral_id)


def withdraw_consent(body: dict[str, Any]) -> Any:
    return {"ended": referrals.withdraw_consent(_runtime().deps, _caller(), body)}


# ------------------------------------------------------------------------------------------ received events


def get_statistics(period: str, scope: str = "country") -> Any:
    return statistics.statistics_report(_runtime().deps, _caller(), period=period, scope=scope)


# GET /received-events: the caller's country's records of the service's inbox (plumbing.inbox).
list_received_events = country_listing(received_events.inbox)


# ---------------------------------------------------------------------------------------- right of access


def get_subject_access(person_id: str, case_id: list[str] | None = None) -> Any:
    runtime, caller = _runtime(), _caller()
    found = subject_records.records_about(runtime.deps, caller, person_id, case_id or [])
    return subject_access.answer(
        SERVICE, runtime.startup.access_log, runtime.deps.clock, caller, person_id, case_id or [], found
    )


# ----------------------------------------------------------------------------------------------- audit

# GET /access-log and /access-log/verification: the same two operations in every service (plumbing.audit).
list_access_log, verify_access_log = audit.handlers(lambda: _runtime().startup.access_log)


# ------------------------------------------------------------------------------------------------- app


def create_http_app(
    environ: Mapping[str, str] | None = None, *, clock: Clock | None = None, validate_responses: bool = False
) -> Any:
    runtime = build_runtime(environ, clock)
    # Only the API acts for a user: it alone reads identification on her behalf, where the deployment has it
    # (docs/on-behalf-calls.md); without THB_UPSTREAM_IDENTIFICATION referrers type the case fields in.
    runtime.deps.identification = IdentificationRecords.where_deployed(runtime.startup.settings)
    STATE.runtime = runtime
    return create_service_app(SPEC, runtime.startup, validate_responses=validate_responses)


__getattr__ = app_on_first_access(create_http_app)
