"""Right of access, exchange's part (service_layer/subject_records) on fakes: found by the country's own link."""

from __future__ import annotations

from exchange.service_layer import cases, subject_records
from services.exchange.tests.unit.fakes import World, user
from services.exchange.tests.unit.test_exchange_service import XK, me_case_id, notify, reference

XK_DPO, ME_DPO = user("xk-dpo"), user("me-dpo")
LINK = "b6a1d2e3-4f50-4a6b-9c7d-8e9f0a1b2c3d"


def test_the_forms_about_a_person_come_with_their_content_and_where_they_went(world: World) -> None:
    case_id, form_id = notify(world)
    assert subject_records.records_about(world.deps, XK_DPO, [LINK]) == ([], set())  # not linked yet
    cases.link_identification_case(world.deps, XK, case_id, LINK)
    found, sent_to = subject_records.records_about(world.deps, XK_DPO, [LINK])
    assert [(record.type, record.id) for record in found] == [("exchange-case", case_id)]
    (content,) = found[0].content["form_contents"].values()
    assert content["content"]["person"]["surnames"] == ["Krasniqi"]
    assert [form["id"] for form in found[0].content["forms"]] == [form_id]
    assert sent_to == {"ME"}


def test_another_countrys_officer_finds_nothing_by_the_same_link(world: World) -> None:
    case_id, _ = notify(world)
    cases.link_identification_case(world.deps, XK, case_id, LINK)
    world.pump()
    assert me_case_id(world, reference(world, case_id))  # ME holds its own received copy, not linked
    assert subject_records.records_about(world.deps, ME_DPO, [LINK]) == ([], set())
