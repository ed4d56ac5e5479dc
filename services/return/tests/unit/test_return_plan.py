"""The return plan: every problem reported at once with its pointer, the escort mandatory for a child, route
countries, the travel day against the clock, and no health data beyond fitness to travel and coded special
needs - the shape refuses anything else."""

from __future__ import annotations

from datetime import date
from typing import Any

import pytest

from voluntary_return.domain.errors import DomainError, Refused
from voluntary_return.domain.plan import DocumentStatus, Route, parse_plan, require_documents_ready


def codes(build: Any, body: Any, *, child: bool = True, pointer: str = "") -> set[tuple[str, str]]:
    with pytest.raises(DomainError) as error:
        parse_plan(body, child=child, now=build.now, catalogue=build.catalogue, pointer=pointer)
    return error.value.codes


def test_a_valid_plan(build: Any) -> None:
    plan = build.plan()
    assert plan.route == Route("XK", "ME", ())
    assert plan.travel_date == date(2026, 6, 10)
    assert plan.escort is not None and plan.escort.role == "social_worker"
    assert plan.reception.services == ("child_shelter", "psycho_social")
    assert plan.special_needs == ("interpreter_during_travel",) and plan.fit_to_travel
    assert plan.documents_ready


def test_every_problem_is_reported_at_once_with_its_pointer(build: Any) -> None:
    body = build.plan_body(
        travel_documents=[{"type": "passport", "status": "lost"}, {"type": "visa", "status": "ready"}],
        travel_date="2026-05-01",
        route={"origin": "XK", "destination": "DE", "transit": ["RS", "ZZ"]},
        escort=None,
        special_needs=["insulin"],
        fit_to_travel="yes",
        reception={"agency": "me-csw-podgorica", "services": ["spa"]},
    )
    assert codes(build, body, pointer="/plan") == {
        ("unknown_code", "/plan/travel_documents/0/status"),
        ("unknown_code", "/plan/travel_documents/1/type"),
        ("travel_date_in_past", "/plan/travel_date"),
        ("not_a_partner_country", "/plan/route/destination"),
        ("unknown_code", "/plan/route/transit/1"),
        ("escort_required_for_child", "/plan/escort"),
        ("unknown_code", "/plan/special_needs/0"),
        ("wrong_type", "/plan/fit_to_travel"),
        ("unknown_code", "/plan/reception/services/0"),
    }


def test_a_missing_plan_names_each_missing_part(build: Any) -> None:
    assert codes(build, {}, child=False) == {
        ("required", "/travel_documents"),
        ("required", "/travel_date"),
        ("required", "/route"),
        ("required", "/fit_to_travel"),
        ("required", "/reception"),
    }
    assert codes(build, [], child=False) == {("wrong_type", "")}


def test_the_escort_is_mandatory_for_a_child_only(build: Any) -> None:
    assert codes(build, build.plan_body(escort=None), child=True) == {
        ("escort_required_for_child", "/escort")
    }
    body = build.plan_body()
    del body["escort"]
    assert codes(build, body, child=True) == {("escort_required_for_child", "/escort")}
    assert build.plan(child=False, escort=None).escort is None
    # An escort given but incomplete is named where it is wrong, not as missing.
    assert codes(build, build.plan_body(escort={"role": "uncle"}), child=True) == {
        ("unknown_code", "/escort/role"),
        ("required", "/escort/agency"),
    }


@pytest.mark.parametrize(
    ("changes", "pointer"),
    [
        ({"diagnosis": "PTSD"}, "/diagnosis"),
        ({"medical_notes": "insulin twice a day"}, "/medical_notes"),
        ({"health": {"hiv_status": "unknown"}}, "/health"),
        ({"pregnant": True}, "/pregnant"),
        (
            {"escort": {"role": "social_worker", "agency": "xk-csw-prizren", "medication": "x"}},
            "/escort/medication",
        ),
        (
            {"reception": {"agency": "me-csw-podgorica", "services": [], "treatment": "x"}},
            "/reception/treatment",
        ),
        (
            {"route": {"origin": "XK", "destination": "ME", "medical~stop/over": "x"}},
            "/route/medical~0stop~1over",
        ),
    ],
)
def test_no_health_data_beyond_fitness_and_special_needs(
    build: Any, changes: dict[str, Any], pointer: str
) -> None:
    assert codes(build, build.plan_body(**changes)) == {("not_allowed", pointer)}


def test_special_needs_are_codes_never_free_text(build: Any) -> None:
    assert codes(build, build.plan_body(special_needs=["needs insulin"])) == {
        ("unknown_code", "/special_needs/0")
    }
    assert build.plan(special_needs=[]).special_needs == ()


def test_the_route_runs_between_two_partner_countries_through_any_country(build: Any) -> None:
    plan = build.plan(route={"origin": "XK", "destination": "ME", "transit": ["RS", "BA"]})
    assert plan.route.transit == ("RS", "BA")
    assert codes(build, build.plan_body(route={"origin": "ME", "destination": "ME"})) == {
        ("same_country", "/route/destination")
    }
    assert codes(build, build.plan_body(route={"origin": "xk", "destination": "ME"})) == {
        ("bad_format", "/route/origin")
    }
    assert codes(
        build, build.plan_body(route={"origin": "XK", "destination": "ME", "transit": ["RS", "RS"]})
    ) == {("duplicate", "/route/transit/1")}


def test_the_travel_day_is_today_or_later(build: Any) -> None:
    assert build.plan(travel_date=build.today.isoformat()).travel_date == build.today
    assert codes(build, build.plan_body(travel_date="2026-05-31")) == {
        ("travel_date_in_past", "/travel_date")
    }
    assert codes(build, build.plan_body(travel_date="2026-06-10T08:00:00Z")) == {
        ("date_invalid", "/travel_date")
    }


def test_departure_waits_for_every_travel_document(build: Any) -> None:
    pending = build.plan(travel_documents=[{"type": "passport", "status": "pending"}])
    assert pending.travel_documents[0].status is DocumentStatus.PENDING
    with pytest.raises(Refused) as error:
        require_documents_ready(pending)
    assert error.value.code == "travel_documents_pending"
    require_documents_ready(build.plan())
