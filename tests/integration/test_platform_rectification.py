"""Rectification of data already sent, on the real platform (GDPR Art. 16 and 19; docs/exchange.md
"Rectification"): a correction of a person in identification marks the notification Albania sent about her, and
the coordinator produces the correction form from identification on her own behalf; sending it replaces the
wrong data in Montenegro's record.

Albania registers an adult and sends Montenegro a notification about her, its record linked to her
identification case. Her surname is corrected in identification. The event (ids and the names of the changed
members, never values) marks the sent form with the pointer it concerns; Montenegro's record is not marked (its
copy is corrected by the form it receives). The coordinator drafts the correction from identification (her token
exchanged: identification logs her as the reader), which carries the new surname and the rest as sent; sending it
withdraws the old form on both sides and Montenegro reads the corrected surname.
"""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest
from pymongo import MongoClient

from tests.integration.platform_helpers import adult_notification, poll
from tests.integration.test_exchange_api import Api

AL_CONTACT, AL_COORDINATOR, ME_CONTACT = "al-contact-point", "al-coordinator", "me-contact-point"
IDENTIFICATION = "/v1/identification"

pytestmark = pytest.mark.integration


@pytest.fixture
def exchange(running_platform: Any) -> Api:
    return Api(running_platform)


def _identification(api: Api, method: str, path: str, body: Any = None, **headers: str) -> httpx.Response:
    sent = {
        "Authorization": f"Bearer {api.platform.token('al-case-manager')}",
        "X-Purpose": "identification",
        "Idempotency-Key": f"test-{uuid.uuid4()}",
        **headers,
    }
    return httpx.request(
        method, api.platform.gateway + IDENTIFICATION + path, headers=sent, json=body, timeout=60
    )


def _form(record: dict[str, Any], form_id: str) -> dict[str, Any]:
    return next(form for form in record["forms"] if form["id"] == form_id)


def test_a_correction_in_identification_reaches_the_form_already_sent_through_a_correction_form(
    exchange: Api,
) -> None:
    api = exchange
    person = {"given_names": ["Mirela"], "surnames": ["Dushaj"], "date_of_birth": "1993", "sex": "female"}
    registered = _identification(api, "POST", "/persons", person)
    assert registered.status_code == 201, registered.text
    person_id, case_id = registered.json()["id"], registered.json()["case_id"]

    drafted = api.ok(AL_CONTACT, "POST", "/drafts", adult_notification(person))
    record, form = drafted.json()["id"], drafted.headers["location"].rsplit("/", 1)[1]
    api.ok(AL_CONTACT, "PUT", f"/cases/{record}/identification-case", {"identification_case_id": case_id})
    api.ok(AL_CONTACT, "POST", f"/cases/{record}/forms/{form}/send")
    reference = api.case(AL_CONTACT, record)["reference"]
    me_record = api.arrived(ME_CONTACT, reference, form)

    current = _identification(api, "GET", f"/persons/{person_id}")
    corrected = _identification(
        api,
        "PATCH",
        f"/persons/{person_id}",
        {"surnames": ["Dushaj-Kola"], "reason": "document_seen"},
        **{"If-Match": current.headers["ETag"]},
    )
    assert corrected.status_code == 200, corrected.text
    correction_id = corrected.json()["corrections"][-1]["id"]

    def marked() -> dict[str, Any] | None:
        due = _form(api.case(AL_CONTACT, record), form).get("correction_due")
        return due if due else None

    due = poll(marked, 60, "the correction to mark the form sent about her")
    assert (due["fields"], due["correction_id"]) == (["/person/surnames"], correction_id)
    assert "correct" in {a["action"] for a in _form(api.case(AL_CONTACT, record), form)["allowed_actions"]}
    assert not _form(api.case(ME_CONTACT, me_record), form).get("correction_due")

    # The contact point may not read identification; the coordinator may, and drafts the correction from it.
    path = f"/cases/{record}/forms/{form}/corrections"
    refused = api(AL_CONTACT, "POST", path, {"refresh_from_identification": True})
    assert refused.status_code == 403, refused.text
    produced = api.ok(AL_COORDINATOR, "POST", path, {"refresh_from_identification": True})
    correction = produced.headers["location"].rsplit("/", 1)[1]
    draft = api.ok(AL_COORDINATOR, "GET", f"/cases/{record}/forms/{correction}").json()
    assert draft["content"]["person"] == {**person, "surnames": ["Dushaj-Kola"]}
    assert draft["content"]["category"] == "victim"
    with MongoClient(api.platform.env["MONGODB_URI"], tz_aware=True) as client:
        reads = list(client["thb_identification"]["access_log"].find({"ids": case_id, "azp": "exchange-api"}))
    assert reads and all("coordinator" in entry["roles"] for entry in reads), reads

    api.ok(AL_COORDINATOR, "POST", f"/cases/{record}/forms/{correction}/send")
    old = _form(api.case(AL_CONTACT, record), form)
    assert old["status"] == "withdrawn" and not old.get("correction_due")
    api.arrived(ME_CONTACT, reference, correction)

    def withdrawn_in_montenegro() -> dict[str, Any] | None:
        theirs = _form(api.case(ME_CONTACT, me_record), form)
        return theirs if theirs["status"] == "withdrawn" else None

    poll(withdrawn_in_montenegro, 60, "the superseded form to show as withdrawn in Montenegro")
    received = api.ok(ME_CONTACT, "GET", f"/cases/{me_record}/forms/{correction}").json()
    assert received["content"]["person"]["surnames"] == ["Dushaj-Kola"]
