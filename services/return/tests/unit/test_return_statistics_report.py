"""The statistics report through the service layer, on fakes: a country counts its own cases (both sides), the
region each return once, small counts suppressed, and only the coordinator's office and analysts may ask."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from voluntary_return.domain.errors import NotPermitted
from voluntary_return.service_layer import border, cases
from voluntary_return.service_layer.statistics import statistics_report

YEAR = "2026"  # the fixed clock's year


def stopped_return(world: Any, record: str) -> None:
    """A child's return run by XK and stopped, whose request reached ME (so ME holds its origin-side case)."""
    manager = world.user("xk-case-manager")
    case = cases.open_case(
        world.deps,
        manager,
        {"origin_country": "ME", "age_group": "child", "exchange_case_id": str(uuid.uuid4())},
    )
    cases.transition(world.deps, manager, case["id"], {"action": "stop", "reason": "person_left"})
    event = {
        "id": str(uuid.uuid4()),
        "type": border.FORM_RECEIVED,
        "data": {
            "case_id": record,
            "reference": "XK-EX-2026-0001",
            "owner_country": "ME",
            "form_id": str(uuid.uuid4()),
            "form_type": "return-request",
            "version": 1,
            "direction": "in",
            "counterpart": "XK",
        },
    }
    border.follow_exchange(world.deps, event)


def cells(series: dict[str, Any]) -> dict[str, Any]:
    return dict(zip(series["labels"], series["cells"], strict=True))


def test_each_country_counts_its_own_cases_and_the_region_each_return_once(world: Any) -> None:
    for _ in range(6):
        stopped_return(world, str(uuid.uuid4()))
    xk = statistics_report(world.deps, world.user("xk-coordinator"), period=YEAR)
    assert xk["countries"] == ["XK"] and cells(xk["by_pair"])["XK-ME"] == 6
    assert cells(xk["stopped_by_reason"])["person_left"] == 6
    me = statistics_report(world.deps, world.user("me-coordinator"), period=YEAR)
    assert cells(me["by_pair"])["XK-ME"] == 6  # its people coming home: the origin side's cases
    region = statistics_report(world.deps, world.user("al-analyst"), period=YEAR, scope="regional")
    assert cells(region["by_pair"])["XK-ME"] == 6, "each return once, by its host-side case"
    assert region["suppression"] == {"small": "<5", "complementary": "x", "threshold": 5}
    assert statistics_report(world.deps, world.user("xk-coordinator"), period="2025")["by_pair"]["total"] == 0


def test_a_small_count_is_never_shown(world: Any) -> None:
    stopped_return(world, str(uuid.uuid4()))
    xk = statistics_report(world.deps, world.user("xk-coordinator"), period=YEAR)
    assert cells(xk["by_pair"])["XK-ME"] == "<5"
    assert cells(xk["stage_days"]["counts"])["requested"] == "<5"
    assert xk["stage_days"]["median_days"]["requested"] is None


def test_only_the_coordinators_office_and_analysts_may_ask(world: Any) -> None:
    with pytest.raises(NotPermitted):
        statistics_report(world.deps, world.user("xk-case-manager"), period=YEAR)
