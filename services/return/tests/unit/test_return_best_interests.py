"""Best interests of the child: the panel's determination with its members and roles (a data-driven panel rule),
decision, reasons, the child's views and alternatives; the family assessment from the origin country; and what
a determination must rest on. Every problem of a body is reported at once, with its pointer."""

from __future__ import annotations

from datetime import date
from typing import Any

import pytest

from voluntary_return.domain.best_interests import (
    BestInterestsAssessment,
    Decision,
    FamilyAssessment,
    check_basis,
    parse_assessment,
    parse_determination,
    parse_family_assessment,
)
from voluntary_return.domain.errors import DomainError, Refused


def determination_codes(build: Any, body: dict[str, Any], catalogue: Any = None) -> set[tuple[str, str]]:
    with pytest.raises(DomainError) as error:
        parse_determination(body, recorded_by="u", now=build.now, catalogue=catalogue or build.catalogue)
    return error.value.codes


def test_a_determination_records_the_panel_the_decision_and_the_childs_views(build: Any) -> None:
    determination = build.determination()
    assert determination.decision is Decision.RETURN and determination.in_favour_of_return
    assert [m.role for m in determination.members] == ["legal_guardian", "social_worker", "psychologist"]
    assert determination.members[2].agency is None
    assert determination.child_views.method == "interview_with_guardian"
    assert determination.child_views.language == "sq"
    assert determination.reasons.language == "en"
    assert determination.alternatives_considered == ("return_to_family", "local_integration")
    refusing = build.refusing_determination()
    assert not refusing.in_favour_of_return and refusing.solution == "local_integration"


def test_every_problem_of_a_determination_is_reported_at_once(build: Any) -> None:
    body = build.determination_body(
        decided_on="2026-13-01",
        members=[{"role": "social_worker"}, {"role": "astrologer"}],
        decision="other_durable_solution",
        solution=None,
        reasons={"text": "Safer here."},
        child_views={"method": "guesswork", "language": "sq", "text": " "},
        alternatives_considered=[],
        minutes_of_the_meeting="...",
    )
    assert determination_codes(build, body) == {
        ("date_invalid", "/decided_on"),
        ("unknown_code", "/members/1/role"),
        ("panel_too_small", "/members"),
        ("panel_lacks_required_role", "/members"),
        ("required", "/solution"),
        ("required", "/reasons/language"),
        ("unknown_code", "/child_views/method"),
        ("required", "/child_views/text"),
        ("too_few", "/alternatives_considered"),
        ("not_allowed", "/minutes_of_the_meeting"),
    }


def test_the_solution_matches_the_decision(build: Any) -> None:
    other = build.determination_body(decision="other_durable_solution", solution="return_to_family")
    assert determination_codes(build, other) == {("solution_is_a_return", "/solution")}
    back = build.determination_body(decision="return", solution="third_country_resettlement")
    assert determination_codes(build, back) == {("solution_is_not_a_return", "/solution")}
    assert build.determination(solution=None).solution is None  # which return is optional


def test_three_members_without_a_guardian_or_child_protection_are_not_a_panel(build: Any) -> None:
    members = [{"role": "social_worker"}, {"role": "psychologist"}, {"role": "lawyer"}]
    assert determination_codes(build, build.determination_body(members=members)) == {
        ("panel_lacks_required_role", "/members")
    }
    with_protection = [*members[:2], {"role": "child_protection_officer", "agency": "me-csw-podgorica"}]
    assert build.determination(members=with_protection).members[2].role == "child_protection_officer"


def test_the_panel_rule_is_data(build: Any) -> None:
    documents = build.documents()
    documents["best-interests"]["panel_rule"] = {"min_members": 2, "at_least_one_of": ["psychologist"]}
    catalogue = build.load(documents)
    two = [{"role": "psychologist"}, {"role": "lawyer"}]
    body = build.determination_body(members=two)
    assert parse_determination(body, recorded_by="u", now=build.now, catalogue=catalogue).members[0].role == (
        "psychologist"
    )
    assert determination_codes(build, body) == {
        ("panel_too_small", "/members"),
        ("panel_lacks_required_role", "/members"),
    }


def test_the_family_assessment_comes_from_the_origin_country(build: Any) -> None:
    body = {
        "received_on": "2026-05-20",
        "outcome": "family_can_care_with_support",
        "from_country": "ME",
        "agency": "me-csw-podgorica",
    }
    found = parse_family_assessment(body, now=build.now, catalogue=build.catalogue, origin_country="ME")
    assert found == FamilyAssessment(
        date(2026, 5, 20), "family_can_care_with_support", "ME", "me-csw-podgorica"
    )
    with pytest.raises(DomainError) as error:
        parse_family_assessment(body, now=build.now, catalogue=build.catalogue, origin_country="AL")
    assert error.value.codes == {("not_the_origin_country", "/from_country")}
    wrong = {**body, "from_country": "DE", "outcome": "fine", "received_on": None}
    with pytest.raises(DomainError) as error:
        parse_family_assessment(wrong, now=build.now, catalogue=build.catalogue, pointer="/family_assessment")
    assert error.value.codes == {
        ("not_a_partner_country", "/family_assessment/from_country"),
        ("unknown_code", "/family_assessment/outcome"),
        ("required", "/family_assessment/received_on"),
    }


def test_a_best_interests_assessment_says_when_and_by_whom(build: Any) -> None:
    body = {"assessed_on": "2026-05-25", "assessed_by": "Social worker on duty", "agency": "xk-csw-prizren"}
    assert parse_assessment(body, now=build.now) == BestInterestsAssessment(
        date(2026, 5, 25), "Social worker on duty", "xk-csw-prizren"
    )
    with pytest.raises(DomainError) as error:
        parse_assessment({"assessed_on": "2026-05-25", "agency": "XK CSW"}, now=build.now)
    assert error.value.codes == {("required", "/assessed_by"), ("bad_format", "/agency")}


def test_a_determination_rests_on_an_assessment_and_for_return_on_the_family_assessment(build: Any) -> None:
    assessment = BestInterestsAssessment(date(2026, 5, 25), "sw", "xk-csw-prizren")
    family = FamilyAssessment(date(2026, 5, 20), "family_can_care", "ME", "me-csw-podgorica")
    with pytest.raises(Refused) as error:
        check_basis(build.determination(), assessment=None, family_assessment=family)
    assert error.value.code == "best_interests_assessment_required"
    with pytest.raises(Refused) as error:
        check_basis(build.determination(), assessment=assessment, family_assessment=None)
    assert error.value.code == "family_assessment_required"
    with pytest.raises(DomainError) as refused:
        check_basis(
            build.determination(decided_on="2026-05-24"), assessment=assessment, family_assessment=family
        )
    assert refused.value.codes == {("determination_before_assessment", "/decided_on")}
    # Another durable solution may be decided without the family assessment (the family may not be traced).
    check_basis(build.refusing_determination(), assessment=assessment, family_assessment=None)
    check_basis(build.determination(), assessment=assessment, family_assessment=family)
