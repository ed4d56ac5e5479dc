"""Voluntariness for adults: an informed consent is recorded with what was explained, in which language, with or
without an interpreter, when and by whom; it can be withdrawn at any time, and a withdrawal stops a running
return at once."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from voluntary_return.domain import case as cases
from voluntary_return.domain import lifecycle
from voluntary_return.domain.consent import parse_consent
from voluntary_return.domain.errors import DomainError, InvalidTransition, Refused
from voluntary_return.domain.lifecycle import Action, Status
from voluntary_return.domain.plan import approve_plan

ACTIVE = [s for s in Status if s not in (Status.CLOSED, Status.STOPPED)]


def test_a_consent_records_what_was_explained_and_who_recorded_it(build: Any) -> None:
    consent = parse_consent(
        build.consent_body(language="rom", interpreter=True),
        recorded_by="me-case-manager",
        now=build.now,
        catalogue=build.catalogue,
    )
    assert consent.topics[:2] == ("voluntary_nature", "right_to_withdraw")
    assert (consent.language, consent.interpreter, consent.recorded_by) == ("rom", True, "me-case-manager")
    assert consent.given_on.isoformat() == "2026-05-28"
    assert consent.current


def test_every_problem_of_a_consent_is_reported_at_once(build: Any) -> None:
    body = build.consent_body(
        topics=["voluntary_nature", "how_nice_home_is"],
        language="Albanian",
        given_on="2026-07-01",
        story="narrative of what happened",
    )
    del body["interpreter"]
    with pytest.raises(DomainError) as error:
        parse_consent(body, recorded_by="u", now=build.now, catalogue=build.catalogue)
    assert error.value.codes == {
        ("unknown_code", "/topics/1"),
        ("required_topic_missing", "/topics"),  # right to withdraw, data shared: not informed
        ("bad_format", "/language"),  # ISO 639-3
        ("required", "/interpreter"),
        ("date_in_future", "/given_on"),
        ("not_allowed", "/story"),
    }


def test_a_consent_given_today_local_time_is_not_in_the_future(build: Any) -> None:
    # 23:30 UTC is already tomorrow in Tirana: the case manager writes tomorrow's date.
    late = build.now.replace(hour=23, minute=30)
    tomorrow = (late + timedelta(days=1)).date().isoformat()
    consent = parse_consent(
        build.consent_body(given_on=tomorrow), recorded_by="u", now=late, catalogue=build.catalogue
    )
    assert consent.given_on.isoformat() == tomorrow


@pytest.mark.parametrize("status", ACTIVE)
def test_withdrawal_stops_the_return_at_once_from_every_running_state(build: Any, status: Status) -> None:
    case = build.case(status, build.adult, consent=build.consent())
    withdrawal = cases.withdraw_consent(case, at=build.now, by="xk-case-manager")
    assert not withdrawal.consent.current
    assert withdrawal.consent.withdrawn_at == build.now
    assert withdrawal.transition is not None
    entry = lifecycle.timeline_entry(
        withdrawal.transition, at=build.now, by="xk-case-manager", agency="xk-dp"
    )
    assert (entry["from"], entry["to"], entry["action"], entry["reason"]) == (
        str(status),
        "stopped",
        "stop",
        "consent_withdrawn",
    )


@pytest.mark.parametrize("status", [Status.CLOSED, Status.STOPPED])
def test_withdrawal_after_the_end_is_recorded_but_stops_nothing(build: Any, status: Status) -> None:
    case = build.case(status, build.adult, consent=build.consent())
    withdrawal = cases.withdraw_consent(case, at=build.now, by="xk-case-manager")
    assert not withdrawal.consent.current
    assert withdrawal.transition is None
    with pytest.raises(InvalidTransition) as error:
        cases.step(case, Action.STOP, catalogue=build.catalogue, reason="consent_withdrawn")
    assert error.value.code == f"stop_not_allowed_when_{status}"


def test_withdrawal_is_not_refused_for_a_case_whose_panel_chose_another_solution(build: Any) -> None:
    case = build.case(
        Status.ASSESSING,
        build.looks_adult_age_uncertain,
        consent=build.consent(),
        determination=build.refusing_determination(),
    )
    withdrawal = cases.withdraw_consent(case, at=build.now, by="u")
    assert withdrawal.transition is not None and withdrawal.transition.reason == "consent_withdrawn"


def test_a_consent_is_withdrawn_once_and_only_if_there_is_one(build: Any) -> None:
    case = build.case(Status.ASSESSING, build.adult, consent=build.consent())
    withdrawn = cases.withdraw_consent(case, at=build.now, by="u").consent
    with pytest.raises(Refused) as error:
        cases.withdraw_consent(
            build.case(Status.STOPPED, build.adult, consent=withdrawn), at=build.now, by="u"
        )
    assert error.value.code == "consent_already_withdrawn"
    with pytest.raises(Refused) as error:
        cases.withdraw_consent(build.case(Status.ASSESSING, build.adult), at=build.now, by="u")
    assert error.value.code == "no_consent_recorded"


def test_an_adults_plan_is_not_approved_without_a_current_consent(build: Any) -> None:
    plan = build.plan(child=False, escort=None)
    for consent in (
        None,
        cases.withdraw_consent(
            build.case(Status.DECIDED, build.adult, consent=build.consent()), at=build.now, by="u"
        ).consent,
    ):
        case = build.case(Status.DECIDED, build.adult, consent=consent)
        with pytest.raises(Refused) as error:
            approve_plan(case, plan, roles=build.coordinator, now=build.now, by="c", agency="xk-onatc")
        assert error.value.code == "consent_required"
    approved = approve_plan(
        build.case(Status.DECIDED, build.adult, consent=build.consent()),
        plan,
        roles=build.coordinator,
        now=build.now,
        by="c",
        agency="xk-onatc",
    )
    assert approved.clearance.basis == "consent"
