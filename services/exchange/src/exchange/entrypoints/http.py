"""HTTP handlers (thin): caller from the request context, one call of the service layer, the view. Domain errors
need no handling here: the app factory answers a DomainError 422 with every {pointer, code} (pointers under
`/body`, so a form's content keeps `/body/content/...`), an InvalidTransition 409 and a NotPermitted 403, each
with its stable code, and NotFound 404 (also for another country's record). Reading a form's content is
access-logged by the service layer before anything is returned. `app` is the app gunicorn serves
(`gunicorn -c python:plumbing.gunicorn_conf exchange.entrypoints.http:app`), built on first access inside the
worker."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import connexion
from connexion import NoContent

import thb_contracts
from exchange.adapters import received_events
from exchange.bootstrap import SERVICE, Runtime, build_runtime
from exchange.service_layer import (
    cases,
    evidence,
    prefills,
    rectification,
    sending,
    statistics,
    subject_records,
    views,
)
from exchange.service_layer.deps import Deps
from plumbing import audit, request_context, subject_access
from plumbing.app import AppRuntime, app_on_first_access, create_app, create_service_app
from plumbing.clock import Clock
from plumbing.identification_records import IdentificationRecords
from plumbing.inbox import country_listing
from plumbing.pagination import parse_updated_since

SPEC = Path(str(thb_contracts.contract("exchange")))  # found by package, not by the checkout's layout
BASE = "/v1/exchange"


STATE: AppRuntime[Runtime] = AppRuntime(SERVICE)
_runtime = STATE.get
_caller = request_context.current_caller


def _deps() -> Deps:
    return _runtime().deps


def _key(operation: str) -> str:
    """The request's Idempotency-Key (required by the contract) narrowed to the operation and the caller. The
    service layer finds earlier work by key across the country's records; narrowed, another user's key (or the
    same key on another operation) is never taken for a retry of this request. `/` cannot occur in a key."""
    caller = _caller()
    return f"{operation}/{caller.azp}/{caller.sub}/{connexion.request.headers['Idempotency-Key']}"


def _case(case_id: str) -> Any:
    """What every command answers: the case as the caller now sees it (statuses, next allowed actions)."""
    return cases.get_case(_deps(), _caller(), case_id)


def _created(case_id: str, form_id: str) -> Any:
    return _case(case_id), 201, {"Location": f"{BASE}/cases/{case_id}/forms/{form_id}"}


# ---------------------------------------------------------------------------------------------- catalogue


def list_form_types() -> Any:
    return views.catalogue_view(_deps(), _caller())


# ---------------------------------------------------------------------------------------------- drafts


def draft_form(body: dict[str, Any]) -> Any:
    case_id, form_id = sending.draft_form(_deps(), _caller(), body, idempotency_key=_key("draft"))
    return _created(case_id, form_id)


def validate_form(body: dict[str, Any]) -> Any:
    sending.validate_form(_deps(), _caller(), body)  # every check of a draft; stores nothing
    return NoContent, 204


def discard_draft(case_id: str, form_id: str) -> Any:
    sending.discard_draft(_deps(), _caller(), case_id, form_id)
    return NoContent, 204


def correct_form(case_id: str, form_id: str, body: dict[str, Any]) -> Any:
    # `{content}`, or `{refresh_from_identification: true}`: drafted from identification on the caller's behalf
    new_case_id, new_form_id = rectification.correct_form(
        _deps(), _caller(), case_id, form_id, body, idempotency_key=_key("correct")
    )
    return _created(new_case_id, new_form_id)


# ---------------------------------------------------------------------------------------------- messages


def send_form(case_id: str, form_id: str) -> Any:
    sending.send_form(_deps(), _caller(), case_id, form_id, idempotency_key=_key("send"))
    return _case(case_id)


def acknowledge_form(case_id: str, form_id: str) -> Any:
    sending.acknowledge_form(_deps(), _caller(), case_id, form_id, idempotency_key=_key("acknowledge"))
    return _case(case_id)


def withdraw_form(case_id: str, form_id: str, body: dict[str, Any]) -> Any:
    sending.withdraw_form(
        _deps(), _caller(), case_id, form_id, body["reason"], idempotency_key=_key("withdraw")
    )
    return _case(case_id)


def send_reminder(case_id: str, form_id: str) -> Any:
    sending.send_reminder(_deps(), _caller(), case_id, form_id, idempotency_key=_key("remind"))
    return _case(case_id)


def notify_consent_withdrawn(case_id: str, body: dict[str, Any]) -> Any:
    sending.notify_consent_withdrawn(
        _deps(),
        _caller(),
        case_id,
        scope=body["scope"],
        effective_on=body["effective_on"],
        legal_basis=body["legal_basis"],
        idempotency_key=_key("consent-withdrawn"),
    )
    return _case(case_id)


# ---------------------------------------------------------------------------------------------- cases


def list_cases(limit: int | None = None, cursor: str | None = None, updated_since: Any = None) -> Any:
    return cases.page_cases(
        _deps(), _caller(), limit=limit, cursor=cursor, updated_since=parse_updated_since(updated_since)
    )


def get_case(case_id: str) -> Any:
    return _case(case_id)


def read_form(case_id: str, form_id: str) -> Any:
    # The service layer writes the access-log entry (purpose: X-Purpose) before anything is returned.
    return cases.read_form(_deps(), _caller(), case_id, form_id)


def link_identification_case(case_id: str, body: dict[str, Any]) -> Any:
    cases.link_identification_case(_deps(), _caller(), case_id, body["identification_case_id"])
    return _case(case_id)


# ---------------------------------------------------------------------------------------------- evidence


def list_message_log(limit: int | None = None, cursor: str | None = None, updated_since: Any = None) -> Any:
    return evidence.log_page(
        _deps(),
        _caller().country,
        limit=limit,
        cursor=cursor,
        updated_since=parse_updated_since(updated_since),
    )


def verify_message_log() -> Any:
    return evidence.report_view(evidence.verify_evidence(_deps(), _caller().country))


def prefill_form(form_type: str, identification_case_id: str) -> Any:
    return prefills.prefill_form(
        _deps(), _caller(), form_type=form_type, identification_case_id=identification_case_id
    )


def get_statistics(period: str) -> Any:
    return statistics.exchange_statistics(_deps(), _caller(), period=period)


# ------------------------------------------------------------------------------------------ received events


# GET /received-events: the caller's country's records of the service's inbox (plumbing.inbox).
list_received_events = country_listing(received_events.inbox)


# ---------------------------------------------------------------------------------------- right of access


def get_subject_access(person_id: str, case_id: list[str] | None = None) -> Any:
    caller, runtime = _caller(), _runtime()
    found, sent_to = subject_records.records_about(runtime.deps, caller, case_id or [])
    access_log, clock = runtime.startup.access_log, runtime.deps.clock
    return subject_access.answer(SERVICE, access_log, clock, caller, person_id, case_id or [], found, sent_to)


# ----------------------------------------------------------------------------------------------- audit

# GET /access-log and /access-log/verification: the same two operations in every service (plumbing.audit).
list_access_log, verify_access_log = audit.handlers(lambda: _runtime().startup.access_log)


# ------------------------------------------------------------------------------------------------- app


def app_for(runtime: Runtime, **options: Any) -> Any:
    """The app over `runtime` as a test builds it over fakes: `options` go to plumbing's `create_app` (validator,
    database, Idempotency-Key sealer and fingerprinter, ...)."""
    STATE.runtime = runtime
    return create_app(
        SERVICE,
        SPEC,
        settings=runtime.startup.settings,
        clock=runtime.deps.clock,
        config=runtime.startup.config,
        **options,
    )


def create_http_app(
    environ: Mapping[str, str] | None = None, *, clock: Clock | None = None, validate_responses: bool = False
) -> Any:
    runtime = build_runtime(environ, clock)
    # Only the API acts for a user: it alone reads identification on her behalf (refuses to start without its
    # client secret and identification's URL; docs/on-behalf-calls.md).
    runtime.deps.identification = IdentificationRecords.from_settings(runtime.startup.settings)
    STATE.runtime = runtime
    return create_service_app(SPEC, runtime.startup, validate_responses=validate_responses)


__getattr__ = app_on_first_access(create_http_app)
