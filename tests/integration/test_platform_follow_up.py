"""Two-document commands survive a crash between their writes: the identification relay process performs the
follow-up step a dead API process left behind (plumbing.steps, identification/service_layer/follow_up.py).

The crash is reproduced in the database: the second document is removed and the step the command stored with
its first write is put back, exactly as they are when the API dies between the two writes.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from pymongo import MongoClient

from tests.integration.platform_helpers import BASE, Client, poll

pytestmark = pytest.mark.integration


def _db(platform: Any) -> Any:
    client: MongoClient = MongoClient(platform.env["MONGODB_URI"], tz_aware=True)
    return client["thb_identification"]


def _overdue(name: str, **data: Any) -> dict[str, Any]:
    at = datetime.now(UTC) - timedelta(minutes=2)
    return {"id": str(uuid.uuid4()), "name": name, "at": at, "due": at + timedelta(seconds=30), **data}


def test_a_registration_cut_off_before_its_case_still_gets_its_case(running_platform: Any) -> None:
    platform = running_platform
    officer = Client(platform, "al-police")
    person = officer.register()
    db = _db(platform)
    case = db.cases.find_one({"_id": person["case_id"]})
    db.cases.delete_one({"_id": person["case_id"]})
    step = _overdue("open_case", by=case["created_by"], agency=case["owner_agency"], case_id=case["_id"])
    db.persons.update_one({"_id": person["id"]}, {"$push": {"pending_steps": step}})
    assert officer.request("GET", f"{BASE}/cases/{person['case_id']}").status_code == 404

    reopened = poll(
        lambda: db.cases.find_one({"_id": person["case_id"]}), 60, "the relay process to open the case"
    )
    assert (reopened["owner_country"], reopened["owner_agency"]) == ("AL", case["owner_agency"])
    assert reopened["responsible_officer"] == case["responsible_officer"]
    assert reopened["person_id"] == person["id"]
    assert reopened["reference"].startswith(f"AL-{step['at'].year}-")
    poll(
        lambda: not db.persons.find_one({"_id": person["id"]})["pending_steps"] or None,
        30,
        "the step removed",
    )
    # The officer who registered the person reads the case as if nothing had happened.
    response = officer.request("GET", f"{BASE}/cases/{person['case_id']}")
    assert response.status_code == 200, response.text
    assert response.json()["person_id"] == person["id"]
    assert db.cases.count_documents({"person_id": person["id"]}) == 1


def test_a_decision_cut_off_before_its_notification_still_notifies_the_coordinator(
    running_platform: Any,
) -> None:
    platform = running_platform
    manager = Client(platform, "al-case-manager")
    case_id = manager.register()["case_id"]
    response = manager.post(f"/cases/{case_id}/decisions", {"category": "potential_victim"})
    assert response.status_code in (200, 201), response.text
    db = _db(platform)
    notification = db.notifications.find_one({"case_id": case_id})
    db.notifications.delete_one({"_id": notification["_id"]})
    fields = ("case_id", "case_reference", "person_id", "category", "age_group", "cross_border")
    step = _overdue(
        "notify_coordinator",
        by=notification["created_by"],
        agency=notification["owner_agency"],
        notification={"id": notification["_id"], **{name: notification[name] for name in fields}},
    )
    db.cases.update_one({"_id": case_id}, {"$push": {"pending_steps": step}})

    poll(lambda: db.notifications.find_one({"_id": notification["_id"]}), 60, "the notification rewritten")
    coordinator = Client(platform, "al-coordinator")

    def listed() -> list[dict[str, Any]] | None:
        found, params = [], {"limit": 200, "acknowledged": "false"}
        while True:
            page = coordinator.request("GET", f"{BASE}/notifications", params=params).json()
            found += [n for n in page["items"] if n["case_id"] == case_id]
            if not page.get("next_cursor"):
                return found or None
            params = {**params, "cursor": page["next_cursor"]}

    found = poll(listed, 30, "the coordinator to see the notification")
    assert [(n["id"], n["category"]) for n in found] == [(notification["_id"], "potential_victim")]
    assert db.notifications.count_documents({"case_id": case_id}) == 1
