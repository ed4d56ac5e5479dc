"""Retention on the real platform (plumbing.retention, docs/data-protection.md "Retention"): each service's
scheduler anonymises what has passed its period, records it in its access log, and the statistics stay the same.

An adult identified in Albania is screened, decided a victim and her case closed; she is known to every service.
Each service's scheduler is then run once as of eleven years later (`--retention --as-of`, the drill). Her details
are gone from every answer, which still answer (with `anonymised_at`), the decision statistics are unchanged, the
auditors find the job's entry for her records (actor `system:retention-job`, purpose `retention`), and every
access log still verifies (return's from the checkpoint its pruning left).

Disruptive: as of eleven years later every closed record of the session is past its period (and every entry of
return's access log but the last is removed), so this runs after the tests that read them.
"""

from __future__ import annotations

import subprocess
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from devstack.demo import Gateway
from tests.integration.platform_helpers import RETURN_CONSENT, adult_notification, known_to_every_service
from tests.integration.test_referral_api import Api, shelter

# Every record of the session is looked at by the drill (the closed ones anonymised): minutes, not seconds.
pytestmark = [pytest.mark.integration, pytest.mark.disruptive, pytest.mark.timeout(1200)]

GIVEN, SURNAME = "Retained", "Kelmendi"
ADULT_LABOUR = [
    {"list_id": "A-LAB", "indicator_id": "A-LAB-DR-01"},
    {"list_id": "A-LAB", "indicator_id": "A-LAB-EX-01"},
    {"list_id": "A-LAB", "indicator_id": "A-LAB-CD-01"},
]


def _get(platform: Any, user: str, path: str, x_purpose: str | None = None, **params: Any) -> httpx.Response:
    headers = {
        "Authorization": f"Bearer {platform.token(user)}",
        **({"X-Purpose": x_purpose} if x_purpose else {}),
    }
    return httpx.get(platform.gateway + path, headers=headers, params=params or None, timeout=60)


def _drill(platform: Any, service: str, as_of: datetime, *extra: str) -> str:
    """The service's scheduler run once as of `as_of` (the drill), with the platform's environment."""
    template = platform.processes[f"{service}-scheduler"].process
    done = subprocess.run(
        [*template.argv, "--retention", "--as-of", as_of.isoformat(), *extra],
        env={k: v for k, v in template.env.items() if k != "THB_WORKER_PORT"},
        cwd=template.cwd,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


def _identified_closed_and_known_everywhere(platform: Any) -> dict[str, str]:
    gw = Gateway(platform.gateway, platform.issuer)
    person = {"given_names": [GIVEN], "surnames": [SURNAME], "date_of_birth": "1991", "sex": "female"}
    form = adult_notification(person)
    ids = known_to_every_service(gw, "AL", person, form, send=True)
    # The referral requested from a shelter (its case fields copied), then cancelled: ended.
    request = {
        "provider_id": shelter(Api(platform), places=1)["id"],
        "age_group": "adult",
        "sex": "female",
        "consent": {"given": True},
        "field_sets": ["identity"],
    }
    referral = f"/v1/referral/referrals/{ids['referral']}"
    gw.call("al-case-manager", "POST", f"{referral}/request", request, purpose="referral")
    cancel = {"action": "cancel", "reason": "other"}
    gw.call("al-case-manager", "POST", f"{referral}/transitions", cancel, purpose="referral")
    # The return case with her consent recorded, then stopped: ended.
    returning = f"/v1/return/cases/{ids['return']}"
    gw.call("al-case-manager", "POST", f"{returning}/consent", RETURN_CONSENT, purpose="return")
    gw.call(
        "al-case-manager",
        "POST",
        f"{returning}/transitions",
        {"action": "stop", "reason": "other"},
        purpose="return",
    )
    case = ids["case"]
    screening = {"case_id": case, "indicator_set_version": "2026.1", "answers": ADULT_LABOUR}
    gw.call("al-case-manager", "POST", "/v1/identification/screenings", screening, purpose="identification")
    decision = {"category": "victim", "legal_reference": "decision 12/2026"}
    gw.call(
        "al-case-manager",
        "POST",
        f"/v1/identification/cases/{case}/decisions",
        decision,
        purpose="identification",
    )
    closure = {"reason": "returned_to_origin"}
    gw.call(
        "al-case-manager",
        "POST",
        f"/v1/identification/cases/{case}/closure",
        closure,
        purpose="identification",
    )
    return ids


def _statistics(platform: Any) -> dict[str, Any]:
    year = str(datetime.now(UTC).year)
    answer = _get(
        platform, "al-analyst", "/v1/identification/statistics", period=year, rows="category", columns="sex"
    )
    assert answer.status_code == 200, answer.text[:300]
    return dict(answer.json())


def _retention_entries(platform: Any, service: str, record_id: str) -> list[dict[str, Any]]:
    answer = _get(
        platform, "al-auditor", f"/v1/{service}/access-log", record_id=record_id, purpose="retention"
    )
    assert answer.status_code == 200, answer.text[:300]
    return list(answer.json()["items"])


def _verified(platform: Any, service: str) -> dict[str, Any]:
    answer = _get(platform, "al-auditor", f"/v1/{service}/access-log/verification")
    assert answer.status_code == 200, answer.text[:300]
    return dict(answer.json())


def test_the_retention_drill_anonymises_every_service_s_closed_records_and_logs_it(
    running_platform: Any,
) -> None:
    platform = running_platform
    ids = _identified_closed_and_known_everywhere(platform)
    before = _statistics(platform)
    person_path = f"/v1/identification/persons/{ids['person']}"
    assert _get(platform, "al-case-manager", person_path, "case-management").json()["surnames"] == [SURNAME]

    as_of = datetime.now(UTC) + timedelta(days=11 * 366)
    for service in ("identification", "referral", "exchange"):
        assert "record(s) anonymised or deleted" in _drill(platform, service, as_of)
    # The access log's old entries too, in one service (every entry of the session is past ten years by then):
    # removed from the start of the chain, which verifies from the checkpoint left.
    pruned = _drill(platform, "return", as_of, "--prune-access-log")
    assert " 0 access-log entries removed" not in pruned, pruned

    # Identification: her details are gone, the codes and the decision stay.
    person = _get(platform, "al-case-manager", person_path, "case-management")
    assert person.status_code == 200, person.text[:300]
    assert (person.json()["given_names"], person.json()["surnames"]) == ([], [])
    assert "date_of_birth" not in person.json() and "anonymised_at" in person.json()
    assert SURNAME not in person.text and GIVEN not in person.text
    case = _get(
        platform, "al-case-manager", f"/v1/identification/cases/{ids['case']}", "case-management"
    ).json()
    assert (case["category"], case["closure"]["reason"], case["responsible_officer"]) == (
        "victim",
        "returned_to_origin",
        "[removed]",
    )
    # Referral: the copy of her case fields is gone, the status and reason stay.
    referral = _get(
        platform, "al-case-manager", f"/v1/referral/referrals/{ids['referral']}", "case-management"
    )
    assert referral.status_code == 200, referral.text[:300]
    assert (referral.json()["status"], "anonymised_at" in referral.json()) == ("cancelled", True)
    # Return: the sealed records (her consent) are gone, the status stays.
    returned = _get(platform, "al-case-manager", f"/v1/return/cases/{ids['return']}", "case-management")
    assert returned.status_code == 200, returned.text[:300]
    assert (returned.json()["status"], returned.json()["consent"]) == ("stopped", None)
    assert "anonymised_at" in returned.json()
    # Exchange: the form's content is gone on both sides, its metadata and digest stay.
    form_path = f"/v1/exchange/cases/{ids['exchange']}/forms/{ids['form']}"
    form = _get(platform, "al-contact-point", form_path, "cross-border-exchange")
    assert form.status_code == 200, form.text[:300]
    assert (form.json()["content"], form.json()["status"] != "draft") == (None, True)
    assert SURNAME not in form.text
    assert _statistics(platform) == before

    for service, record in (
        ("identification", ids["person"]),
        ("identification", ids["case"]),
        ("referral", ids["referral"]),
        ("return", ids["return"]),
        ("exchange", ids["exchange"]),
    ):
        [entry] = _retention_entries(platform, service, record)
        assert (entry["actor"], entry["purpose"], entry["outcome"]) == (
            "system:retention-job",
            "retention",
            "anonymised",
        ), service
    for service in ("identification", "referral", "return", "exchange"):
        assert _verified(platform, service)["ok"] is True, service
