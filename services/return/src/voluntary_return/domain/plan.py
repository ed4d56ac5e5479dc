"""The return plan, and its approval.

A plan holds travel documents (coded type, ready or pending), the travel day, the route (origin and destination
are partner countries; transit countries any ISO 3166-1 code), the escort (mandatory for a child), special needs
(coded) and fitness to travel (yes/no), and the reception arrangements (receiving agency, services requested as
referral service-type codes). Nothing else: the shape is read strictly, so a diagnosis, a medical note or any
other health detail beyond `fit_to_travel` and `special_needs` is refused (422 `not_allowed` at its pointer) -
health information crosses a border only as what return logistics need.

`parse_plan` reports every problem at once (422). `approve_plan` is the only maker of an `ApprovedPlan` and the
only way a case reaches `planned`; in order it checks the coordinator's role (403
`coordinator_approval_required`), the child gate (409 `no_determination_in_favour_of_return` /
`consent_required`, whatever the state), the state (409), the plan against the person as they are now treated (422 `escort_required_for_child`,
`travel_date_in_past`) and fitness to travel (409 `not_fit_to_travel`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from enum import StrEnum
from typing import Any

from plumbing.clock import as_utc
from voluntary_return.domain import child_gate, lifecycle
from voluntary_return.domain.case import ReturnCase
from voluntary_return.domain.catalogue import ReturnCatalogue
from voluntary_return.domain.child_gate import Clearance
from voluntary_return.domain.errors import ErrorDetail, NotPermitted, Refused, raise_all
from voluntary_return.domain.lifecycle import Action, Transition
from voluntary_return.domain.shape import AGENCY, COUNTRY, Reader, checked, earliest_today

COORDINATOR = "coordinator"  # the realm role that approves a return plan

PLAN_FIELDS = (
    "travel_documents",
    "travel_date",
    "route",
    "escort",
    "special_needs",
    "fit_to_travel",
    "reception",
)
DOCUMENT_FIELDS = ("type", "status")
ROUTE_FIELDS = ("origin", "destination", "transit")
ESCORT_FIELDS = ("role", "agency")
RECEPTION_FIELDS = ("agency", "services")


class DocumentStatus(StrEnum):
    READY = "ready"
    PENDING = "pending"


@dataclass(frozen=True)
class TravelDocument:
    type: str  # document-type code
    status: DocumentStatus


@dataclass(frozen=True)
class Route:
    origin: str  # the partner country the person leaves
    destination: str  # the partner country the person returns to
    transit: tuple[str, ...] = ()


@dataclass(frozen=True)
class Escort:
    role: str  # escort-role code
    agency: str


@dataclass(frozen=True)
class Reception:
    agency: str  # the receiving agency in the destination country
    services: tuple[str, ...] = ()  # referral service-type codes requested on arrival


@dataclass(frozen=True)
class ReturnPlan:
    travel_documents: tuple[TravelDocument, ...]
    travel_date: date
    route: Route
    escort: Escort | None
    special_needs: tuple[str, ...]
    fit_to_travel: bool
    reception: Reception

    @property
    def documents_ready(self) -> bool:
        return all(d.status is DocumentStatus.READY for d in self.travel_documents)


_APPROVAL = object()  # only approve_plan can make an ApprovedPlan


@dataclass(frozen=True)
class ApprovedPlan:
    plan: ReturnPlan
    clearance: Clearance  # what the child gate cleared it on
    transition: Transition  # decided -> planned, for the timeline
    approved_at: datetime
    approved_by: str
    agency: str
    _token: object = field(default=None, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self._token is not _APPROVAL:
            raise TypeError("only plan.approve_plan makes an ApprovedPlan")


# -------------------------------------------------------------------------------------------------- parsing


def parse_plan(
    body: Any, *, child: bool, now: datetime, catalogue: ReturnCatalogue, pointer: str = ""
) -> ReturnPlan:
    """A return plan from a request body, for a person treated as a child (`child`) or not, or a 422 naming every
    problem (pointers under `pointer`)."""
    errors: list[ErrorDetail] = []
    read = Reader(errors)
    raw = read.obj(body, pointer, PLAN_FIELDS)
    found = _plan(read, raw, child, now, catalogue, pointer) if raw is not None else None
    return checked(found, errors, "invalid return plan", pointer)


def _plan(
    read: Reader, raw: Mapping[str, Any], child: bool, now: datetime, catalogue: ReturnCatalogue, where: str
) -> ReturnPlan | None:
    documents = _documents(read, raw, catalogue, where)
    travel_date = read.day(raw, "travel_date", where)
    if travel_date is not None and travel_date < earliest_today(now):
        read.problem("travel_date_in_past", f"{where}/travel_date")
    route = _route(read, raw, catalogue, where)
    escort = _escort(read, raw, catalogue, where)
    if child and raw.get("escort") is None:  # an escort given but invalid is reported by _escort
        read.problem("escort_required_for_child", f"{where}/escort")
    special_needs = read.codes(raw, "special_needs", where, catalogue.special_needs, required=False)
    fit_to_travel = read.boolean(raw, "fit_to_travel", where)
    reception = _reception(read, raw, catalogue, where)
    if (
        documents is None
        or travel_date is None
        or route is None
        or fit_to_travel is None
        or reception is None
    ):
        return None
    if child and escort is None:
        return None
    return ReturnPlan(documents, travel_date, route, escort, special_needs, fit_to_travel, reception)


def _documents(
    read: Reader, raw: Mapping[str, Any], catalogue: ReturnCatalogue, where: str
) -> tuple[TravelDocument, ...] | None:
    value = read.member(raw, "travel_documents", where)
    if value is None:
        return None
    if not isinstance(value, list):
        read.problem("wrong_type", f"{where}/travel_documents")
        return None
    if not value:
        read.problem("too_few", f"{where}/travel_documents")
        return None
    documents: list[TravelDocument] = []
    for i, item in enumerate(value):
        at = f"{where}/travel_documents/{i}"
        document = read.obj(item, at, DOCUMENT_FIELDS)
        if document is None:
            continue
        kind = read.code(document, "type", at, catalogue.document_types)
        status = read.code(document, "status", at, tuple(DocumentStatus))
        if kind is not None and status is not None:
            documents.append(TravelDocument(kind, DocumentStatus(status)))
    return tuple(documents) if len(documents) == len(value) else None


def _route(read: Reader, raw: Mapping[str, Any], catalogue: ReturnCatalogue, where: str) -> Route | None:
    at = f"{where}/route"
    route = read.obj(read.member(raw, "route", where), at, ROUTE_FIELDS, required=False)
    if route is None:
        return None
    ends: list[str | None] = []
    for key in ("origin", "destination"):
        country = read.pattern(route, key, at, COUNTRY)
        if country is not None and country not in catalogue.partners:
            read.problem("not_a_partner_country", f"{at}/{key}")
            country = None
        ends.append(country)
    origin, destination = ends
    if origin is not None and origin == destination:
        read.problem("same_country", f"{at}/destination")
    transit = read.codes(route, "transit", at, catalogue.countries, required=False)
    if origin is None or destination is None or origin == destination:
        return None
    if len(transit) != len(route.get("transit") or ()):
        return None
    return Route(origin, destination, transit)


def _escort(read: Reader, raw: Mapping[str, Any], catalogue: ReturnCatalogue, where: str) -> Escort | None:
    at = f"{where}/escort"
    escort = read.obj(raw.get("escort"), at, ESCORT_FIELDS, required=False)
    if escort is None:
        return None
    role = read.code(escort, "role", at, catalogue.escort_roles)
    agency = read.pattern(escort, "agency", at, AGENCY)
    return Escort(role, agency) if role and agency else None


def _reception(
    read: Reader, raw: Mapping[str, Any], catalogue: ReturnCatalogue, where: str
) -> Reception | None:
    at = f"{where}/reception"
    reception = read.obj(read.member(raw, "reception", where), at, RECEPTION_FIELDS, required=False)
    if reception is None:
        return None
    agency = read.pattern(reception, "agency", at, AGENCY)
    services = read.codes(reception, "services", at, catalogue.reception_services, required=False)
    if agency is None or len(services) != len(reception.get("services") or ()):
        return None
    return Reception(agency, services)


# ------------------------------------------------------------------------------------------------- approval


def approve_plan(
    case: ReturnCase,
    plan: ReturnPlan,
    *,
    roles: frozenset[str],
    now: datetime,
    by: str,
    agency: str,
) -> ApprovedPlan:
    """The coordinator's approval of `plan` for `case`: the only way to an approved plan and to `planned`.
    Refusals, first found first: 403 role, 409 child gate or consent, 409 state, 422 plan, 409 fitness."""
    if COORDINATOR not in roles:
        raise NotPermitted("coordinator_approval_required")
    # The gate before the state: a child's plan without a determination for return is refused with the gate's
    # own code in every state, so that no client learns to read a state conflict as the child rule.
    clearance = child_gate.require_clearance(
        case.subject, determination=case.determination, consent=case.consent
    )
    lifecycle.target(case.status, Action.APPROVE_PLAN, case.side)
    # Re-judged against the person as treated today: a plan drafted when the person was taken for an adult
    # gets no escort-free approval once their age is in doubt, and a plan left lying does not travel yesterday.
    problems: list[ErrorDetail] = []
    if case.subject.treated_as_child and plan.escort is None:
        problems.append(ErrorDetail("escort_required_for_child", "/escort"))
    if plan.travel_date < earliest_today(now):
        problems.append(ErrorDetail("travel_date_in_past", "/travel_date"))
    raise_all(problems, "the plan cannot be approved as it stands")
    if not plan.fit_to_travel:
        raise Refused("not_fit_to_travel")
    transition = lifecycle.plan(case.status, Action.APPROVE_PLAN, clearance=clearance, side=case.side)
    return ApprovedPlan(plan, clearance, transition, as_utc(now), by, agency, _token=_APPROVAL)


def require_documents_ready(plan: ReturnPlan) -> None:
    """Before departure is recorded: every travel document ready (409 `travel_documents_pending`)."""
    if not plan.documents_ready:
        raise Refused("travel_documents_pending")
