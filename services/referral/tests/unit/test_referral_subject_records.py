"""Right of access, referral's part (service_layer/subject_records) on fakes: by person or case, with the copy."""

from __future__ import annotations

from typing import Any

from referral.service_layer import subject_records
from services.referral.tests.unit.conftest import CASE_ID, PERSON_ID, propose, send
from services.referral.tests.unit.fakes import World, user


def test_a_persons_referrals_come_with_the_case_fields_copied_into_them(
    world: World, shelter: dict[str, Any]
) -> None:
    sent = send(world, shelter["id"], field_sets=["identity"])
    other = propose(world, case_id="c0ffee00-0000-4000-8000-000000000001", person_id=None)
    found = subject_records.records_about(world.deps, user("al-dpo"), PERSON_ID, [])
    assert [(r.type, r.id) for r in found] == [("referral", sent["id"])]
    assert found[0].content["case_fields"]["surnames"] == ["Krasniqi"]
    by_case = subject_records.records_about(
        world.deps, user("al-dpo"), PERSON_ID, [CASE_ID, other["case_id"]]
    )
    assert {r.id for r in by_case} == {sent["id"], other["id"]}


def test_another_countrys_officer_and_other_roles_find_nothing(world: World, shelter: dict[str, Any]) -> None:
    send(world, shelter["id"], field_sets=["identity"])
    assert subject_records.records_about(world.deps, user("xk-dpo"), PERSON_ID, [CASE_ID]) == []
    assert subject_records.records_about(world.deps, user("al-auditor"), PERSON_ID, [CASE_ID]) == []
