"""Retention of referrals (service_layer/retention.py on plumbing.retention): a referral ended more than five years
ago (config/platform.yaml `retention.referral`: P5Y from its end, anonymise) loses its sealed copy of the case fields
and any free text, keeps its codes, ids and dates (the statistics stay the same) and says when; an open one is
looked at again a period later, an ended one on the day its period ends."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from typing import Any

import pytest
from connexion.json_schema import Draft4ResponseValidator, resolve_refs
from jsonschema import Draft4Validator

from plumbing.clock import as_utc, rfc3339
from plumbing.documents import OwnedDocument
from plumbing.retention import RetentionJob
from plumbing.scheduler import Claimed
from referral.adapters.documents import ConsentWithdrawalDocument, ProviderDocument, ReferralDocument
from referral.service_layer import deadlines as deadline_jobs
from referral.service_layer import referrals
from referral.service_layer.retention import TIMELINE_MEMBERS, referral_closed_at, retained
from referral.service_layer.statistics import referral_statistics, statistics_report
from referral.service_layer.subject_records import records_about
from services.referral.tests.unit.conftest import CASE_ID, PERSON, PERSON_ID, propose, send
from services.referral.tests.unit.fakes import World, user
from tools.contracts import load_contract

FIELD_SETS = ["identity", "placement_needs", "health_for_placement"]
CASE_FIELDS = {**PERSON, "accompanied_by": "her sister Drita, phone +355 69 000 0000", "fit_to_travel": True}
# The members the job may change; every other member of the stored referral stays exactly as it was.
CHANGED_BY_ANONYMISING = frozenset(
    {"sealed_fields", "timeline", "anonymised_at", "retention_due_at", "version", "updated_at", "updated_by"}
)
Logged = list[tuple[str, str | None, str]]


def retention_job(world: World, logged: Logged) -> RetentionJob:
    """The service's one retained class, as the scheduler runs it (entrypoints/scheduler.py), on the world's
    FixedClock, logging each action into `logged` as (record id, country, action)."""
    [referral] = retained(world.deps)
    return RetentionJob(
        referral,
        records=world.deps.system_repository,
        config=world.deps.config,
        clock=world.clock,
        log_action=lambda doc, action: logged.append((str(doc.id), doc.owner_country, action)),
    )


def act(world: World, logged: Logged, referral_id: str) -> bool:
    return retention_job(world, logged).act(Claimed(referral_id, "AL"))


def row(world: World, referral_id: str) -> dict[str, Any]:
    return world.store.raw(ReferralDocument, referral_id)


def due(world: World, referral_id: str) -> datetime | None:
    value = row(world, referral_id).get("retention_due_at")
    return as_utc(value) if value is not None else None


def sent_with_free_text(world: World, provider_id: str) -> dict[str, Any]:
    return send(world, provider_id, field_sets=FIELD_SETS, case_fields=CASE_FIELDS)


# ---------------------------------------------------------------------------------- how the statuses are reached


def _proposed(world: World, provider_id: str) -> str:
    return str(propose(world, service_type="shelter")["id"])


def _requested(world: World, provider_id: str) -> str:
    return str(sent_with_free_text(world, provider_id)["id"])


def _accepted(world: World, provider_id: str) -> str:
    rid = _requested(world, provider_id)
    world.clock.advance(hours=1)
    referrals.accept(world.deps, user("al-shelter"), rid)
    return rid


def _in_progress(world: World, provider_id: str) -> str:
    rid = _accepted(world, provider_id)
    world.clock.advance(hours=1)
    referrals.start(world.deps, user("al-shelter"), rid)
    return rid


def _completed(world: World, provider_id: str) -> str:
    rid = _in_progress(world, provider_id)
    world.clock.advance(days=20)
    referrals.complete(world.deps, user("al-shelter"), rid, {"reason": "service_delivered"})
    return rid


def _declined(world: World, provider_id: str) -> str:
    rid = _requested(world, provider_id)
    world.clock.advance(hours=1)
    referrals.decline(world.deps, user("al-shelter"), rid, {"reason": "no_capacity"})
    return rid


def _cancelled(world: World, provider_id: str) -> str:
    rid = _requested(world, provider_id)
    world.clock.advance(hours=1)
    referrals.cancel(world.deps, user("al-case-manager"), rid, {"reason": "need_met_elsewhere"})
    return rid


def _revoked(world: World, provider_id: str) -> str:
    rid = _accepted(world, provider_id)
    world.clock.advance(hours=1)
    referrals.revoke(world.deps, user("al-case-manager"), rid, {"reason": "person_declined"})
    return rid


def _expired(world: World, provider_id: str) -> str:
    rid = _requested(world, provider_id)
    world.clock.advance(hours=30)  # the urgent profile expires an unanswered referral after 28 hours
    assert deadline_jobs.run_due_actions(world.deps, rid) == ["expiry"]
    return rid


OPEN: dict[str, Callable[[World, str], str]] = {
    "proposed": _proposed,
    "requested": _requested,
    "accepted": _accepted,
    "in_progress": _in_progress,
}
ENDED: dict[str, Callable[[World, str], str]] = {
    "completed": _completed,
    "declined": _declined,
    "cancelled": _cancelled,
    "revoked": _revoked,
    "expired": _expired,
}


# ------------------------------------------------------------------------------------------------- the decision


def test_referrals_are_the_one_retained_class_and_their_rule_is_five_years_from_the_end(world: World) -> None:
    [referral] = retained(world.deps)
    assert referral.document_class is ReferralDocument
    assert referral.closed_at is not None and referral.anonymise is not None
    rule = world.deps.config.retention_for("referral")
    assert (rule.starts, rule.action) == ("closed", "anonymise")
    assert rule.due_at(datetime(2026, 6, 1, 10, 30, tzinfo=UTC)) == datetime(2031, 6, 1, 10, 30, tzinfo=UTC)
    # Consent withdrawals hold ids only; the directory has no decided rule: neither is retained by the job.
    classes: set[type[OwnedDocument]] = {r.document_class for r in retained(world.deps)}
    assert ConsentWithdrawalDocument not in classes and ProviderDocument not in classes


def test_a_new_referral_is_first_looked_at_five_years_after_it_was_created(
    world: World, shelter: dict[str, Any]
) -> None:
    rid = _proposed(world, shelter["id"])
    assert due(world, rid) == datetime(2031, 6, 1, 9, 30, tzinfo=UTC)  # NOW + P5Y


@pytest.mark.parametrize("status", sorted(ENDED))
def test_closed_at_is_the_instant_of_the_end(world: World, shelter: dict[str, Any], status: str) -> None:
    rid = ENDED[status](world, shelter["id"])
    end = world.clock.now()
    world.clock.advance(days=3)
    doc = world.store.load(ReferralDocument, row(world, rid))
    assert doc.status == status
    assert referral_closed_at(doc) == end


def test_closed_at_reads_the_entry_that_ended_it_else_ended_at() -> None:
    """Instants come back from MongoDB naive (UTC); an entry after the end does not move it."""
    end, later = datetime(2027, 3, 4, 5, 6, 7), datetime(2027, 9, 1, 0, 0, 0)
    doc = ReferralDocument(
        status="revoked",
        ended_at=datetime(2027, 3, 4, 5, 6, 8),
        timeline=[
            {"at": datetime(2027, 1, 1), "action": "request", "from": "proposed", "to": "requested"},
            {"at": end, "action": "revoke", "from": "accepted", "to": "revoked"},
            {"at": later, "action": "case_fields_outdated", "fields": ["surnames"]},
        ],
    )
    assert referral_closed_at(doc) == end.replace(tzinfo=UTC)
    doc.timeline = doc.timeline[:1]  # a record without its end on the timeline: its `ended_at`
    assert referral_closed_at(doc) == datetime(2027, 3, 4, 5, 6, 8, tzinfo=UTC)


@pytest.mark.parametrize("status", sorted(OPEN))
def test_an_open_referral_has_no_end(world: World, shelter: dict[str, Any], status: str) -> None:
    rid = OPEN[status](world, shelter["id"])
    doc = world.store.load(ReferralDocument, row(world, rid))
    assert doc.status == status
    assert referral_closed_at(doc) is None


# ---------------------------------------------------------------------------------------------------- the job


def test_an_ended_referral_past_five_years_is_anonymised(world: World, shelter: dict[str, Any]) -> None:
    rid = _completed(world, shelter["id"])
    end = world.clock.now()
    assert referrals.read_fields(world.deps, user("al-shelter"), rid)["fields"]["surnames"] == ["Krasniqi"]
    before = row(world, rid)
    assert before["sealed_fields"]
    assert end == datetime(2026, 6, 21, 11, 30, tzinfo=UTC)
    world.clock.set(datetime(2031, 6, 21, 12, 30, tzinfo=UTC))  # the end + P5Y (2031-06-21 11:30) + 1 hour

    logged: Logged = []
    assert act(world, logged, rid) is True

    after = row(world, rid)
    # Removed: the sealed copy (names, birth, documents, the free text of special needs and who accompanies her)
    assert "sealed_fields" not in after or after["sealed_fields"] is None
    assert referrals.read_fields(world.deps, user("al-shelter"), rid)["fields"] == {}
    # Marked: when, and nothing left to look at
    assert as_utc(after["anonymised_at"]) == datetime(2031, 6, 21, 12, 30, tzinfo=UTC)
    assert after.get("retention_due_at") is None
    assert after["version"] == before["version"] + 1 and after["updated_by"] == "system:retention-job"
    # Kept: every code, id and date, the timeline (codes only today) included
    assert after["timeline"] == before["timeline"]
    assert [e["action"] for e in after["timeline"]] == ["propose", "request", "accept", "start", "complete"]
    kept = {k: v for k, v in before.items() if k not in CHANGED_BY_ANONYMISING}
    assert {k: v for k, v in after.items() if k not in CHANGED_BY_ANONYMISING} == kept
    assert (after["status"], after["reason"], after["service_type"], after["provider_kind"]) == (
        "completed",
        "service_delivered",
        "shelter",
        "ngo",
    )
    assert (after["case_id"], after["person_id"]) == (CASE_ID, PERSON_ID)
    assert after["field_sets"] == FIELD_SETS and "special_needs" in after["granted_fields"]
    assert as_utc(after["requested_at"]) == datetime(2026, 6, 1, 9, 30, tzinfo=UTC)
    assert as_utc(after["ended_at"]) == end
    # One action logged, in the owner's country
    assert logged == [(rid, "AL", "anonymised")]
    # Done once: the record is not anonymised again
    assert act(world, logged, rid) is False
    assert logged == [(rid, "AL", "anonymised")] and row(world, rid)["version"] == after["version"]


def test_anonymising_removes_free_text_and_copied_contacts_from_the_timeline(
    world: World, shelter: dict[str, Any]
) -> None:
    rid = _declined(world, shelter["id"])
    with world.store.lock:  # an entry holding more than codes (an older shape, or a future note)
        rows = world.store.rows(ReferralDocument)
        stored = rows[rid]
        timeline = [dict(e) for e in stored["timeline"]]
        timeline[-1] |= {
            "note": "She said her cousin in Durrës can take her in",
            "provider_contacts": [{"name": "Duty officer", "phone": "+355 4 000 000"}],
        }
        rows[rid] = {**stored, "timeline": timeline}
    codes_only = [{k: v for k, v in e.items() if k not in ("note", "provider_contacts")} for e in timeline]
    world.clock.set(datetime(2031, 6, 1, 10, 30, tzinfo=UTC))  # the end + P5Y, exactly

    assert act(world, [], rid) is True

    after = row(world, rid)["timeline"]
    assert after == codes_only
    assert after[-1] == {
        "at": after[-1]["at"],
        "by": "sub-al-shelter",
        "agency": "shelter-ura-e-re",
        "action": "decline",
        "from": "requested",
        "to": "declined",
        "reason": "no_capacity",
    }
    assert all(set(entry) <= TIMELINE_MEMBERS for entry in after)


@pytest.mark.parametrize("status", sorted(OPEN))
def test_an_open_referral_is_not_touched_and_looked_at_again_five_years_on(
    world: World, shelter: dict[str, Any], status: str
) -> None:
    rid = OPEN[status](world, shelter["id"])
    before = row(world, rid)
    world.clock.set(datetime(2032, 1, 15, 8, 0, tzinfo=UTC))  # past its first look (created + P5Y)

    logged: Logged = []
    assert act(world, logged, rid) is False

    after = row(world, rid)
    assert due(world, rid) == datetime(2037, 1, 15, 8, 0, tzinfo=UTC)  # now + P5Y
    assert {k: v for k, v in after.items() if k != "retention_due_at"} == {
        k: v for k, v in before.items() if k != "retention_due_at"
    }
    assert after.get("anonymised_at") is None and after["version"] == before["version"]
    assert logged == []


@pytest.mark.parametrize("status", sorted(ENDED))
def test_an_ended_referral_not_yet_due_is_looked_at_again_when_its_period_ends(
    world: World, shelter: dict[str, Any], status: str
) -> None:
    rid = ENDED[status](world, shelter["id"])
    end = world.clock.now()
    five_years_on = end.replace(year=end.year + 5)
    world.clock.set(end + timedelta(days=2 * 365))

    logged: Logged = []
    assert act(world, logged, rid) is False
    assert due(world, rid) == five_years_on
    assert row(world, rid).get("anonymised_at") is None and row(world, rid)["sealed_fields"]

    world.clock.set(five_years_on - timedelta(milliseconds=1))
    assert act(world, logged, rid) is False and logged == []
    world.clock.set(five_years_on)
    assert act(world, logged, rid) is True
    assert logged == [(rid, "AL", "anonymised")]
    assert as_utc(row(world, rid)["anonymised_at"]) == five_years_on


def test_a_changed_referral_keeps_its_change_and_is_not_rescheduled(
    world: World, shelter: dict[str, Any]
) -> None:
    """The job decides from the referral as it read it: a reschedule guarded by an older version does nothing."""
    rid = _requested(world, shelter["id"])
    first_look = due(world, rid)
    records = world.deps.system_repository(ReferralDocument, "system:retention-job")
    stale = records.get(rid)
    world.clock.advance(hours=1)
    referrals.decline(world.deps, user("al-shelter"), rid, {"reason": "no_capacity"})
    assert (
        records.reschedule(rid, stale.version, "retention_due_at", datetime(2040, 1, 1, tzinfo=UTC)) is False
    )
    assert due(world, rid) == first_look


# ---------------------------------------------------------------------------------------------- statistics


def _identity(labels: Sequence[str], counts: Sequence[int]) -> tuple[int, ...]:
    return tuple(counts)


def _grid(rows: Sequence[str], columns: Sequence[str], counts: Sequence[Sequence[int]]) -> list[list[int]]:
    return [list(r) for r in counts]


def published(report: dict[str, Any], series: str) -> dict[str, Any]:
    return dict(zip(report[series]["labels"], report[series]["cells"], strict=True))


def test_the_statistics_are_the_same_before_and_after_anonymisation(
    world: World, shelter: dict[str, Any]
) -> None:
    ended = [_declined(world, shelter["id"]) for _ in range(5)]
    ended += [
        _completed(world, shelter["id"]),
        _cancelled(world, shelter["id"]),
        _revoked(world, shelter["id"]),
    ]
    ended.append(_expired(world, shelter["id"]))
    still_open = [_requested(world, shelter["id"]), _proposed(world, shelter["id"])]
    analyst = user("al-analyst")

    def raw() -> dict[str, Any]:
        return referral_statistics(world.deps, analyst, suppress_series=_identity, suppress_table=_grid)

    rows_before = sorted(world.deps.statistics_source("AL"), key=repr)
    raw_before = raw()
    published_before = statistics_report(world.deps, analyst, period="2026")
    by_type = published(published_before, "by_service_type")
    assert by_type["shelter"] == 10  # every sent referral (the proposal was never sent)
    declined = published(published_before, "declined_by_reason")
    assert declined["no_capacity"] == 5
    answer = raw_before["time_to_answer"]
    shelter_at = answer.labels.index("shelter")
    assert (answer.n[shelter_at], answer.medians[shelter_at]) == (
        7,
        1.0,
    )  # declined, completed, revoked: 1 h each

    world.clock.set(datetime(2032, 1, 1, tzinfo=UTC))
    logged: Logged = []
    acted = {rid: act(world, logged, rid) for rid in [*ended, *still_open]}
    assert [rid for rid, done in acted.items() if done] == ended
    assert all(row(world, rid).get("sealed_fields") is None for rid in ended)
    assert len(logged) == len(ended) == 9

    assert sorted(world.deps.statistics_source("AL"), key=repr) == rows_before
    assert raw() == raw_before
    assert statistics_report(world.deps, analyst, period="2026") == published_before


# ----------------------------------------------------------------------------------------------------- views


def contract_errors(body: dict[str, Any], schema: str = "Referral") -> list[str]:
    """What in an answer breaks its schema in openapi/referral.yaml (`additionalProperties: false` included)."""
    resolved = resolve_refs(load_contract("referral"))["components"]["schemas"][schema]
    validator = Draft4ResponseValidator(resolved, format_checker=Draft4Validator.FORMAT_CHECKER)
    return [f"{list(e.absolute_path)}: {e.message}" for e in validator.iter_errors(body)]


def test_the_contract_check_finds_an_undeclared_member() -> None:
    assert contract_errors({"id": "x", "not_declared": 1}) != []


def test_the_views_of_an_anonymised_referral_work_and_say_when(world: World, shelter: dict[str, Any]) -> None:
    rid = _declined(world, shelter["id"])
    referrer, provider = user("al-case-manager"), user("al-shelter")
    before = referrals.get_referral(world.deps, referrer, rid)
    assert "anonymised_at" not in before and contract_errors(before) == []
    world.clock.set(datetime(2031, 7, 1, 12, 0, 0, 250000, tzinfo=UTC))

    assert act(world, [], rid) is True

    view = referrals.get_referral(world.deps, referrer, rid)
    assert view["anonymised_at"] == "2031-07-01T12:00:00.250Z" == rfc3339(world.clock.now())
    assert contract_errors(view) == []
    assert {k: v for k, v in view.items() if k != "anonymised_at"} == before
    assert view["status"] == "declined" and view["reason"] == "no_capacity" and view["consent_given"] is True
    provider_view = referrals.get_referral(world.deps, provider, rid)
    assert (
        provider_view["anonymised_at"] == "2031-07-01T12:00:00.250Z" and contract_errors(provider_view) == []
    )
    [listed] = referrals.list_referrals(world.deps, referrer)["items"]
    assert listed["anonymised_at"] == "2031-07-01T12:00:00.250Z"
    fields = referrals.read_fields(world.deps, provider, rid)
    assert (
        fields == {"referral_id": rid, "fields": {}} and contract_errors(fields, "ReferralCaseFields") == []
    )
    [record] = records_about(world.deps, user("al-dpo"), PERSON_ID, [CASE_ID])
    assert (
        record.content["case_fields"] == {} and record.content["anonymised_at"] == "2031-07-01T12:00:00.250Z"
    )


def test_the_informed_units_view_of_an_anonymised_child_referral_says_when(
    world: World, child_shelter: dict[str, Any]
) -> None:
    child = {"age_group": "child", "sex": "female", "legal_basis": "child-protection-duty"}
    rid = send(world, child_shelter["id"], service_type="child_shelter", subject=child)["id"]
    world.clock.advance(hours=1)
    referrals.decline(world.deps, user("al-other-shelter"), rid, {"reason": "no_capacity"})
    world.clock.set(datetime(2031, 6, 1, 10, 30, tzinfo=UTC))
    assert act(world, [], rid) is True
    seen = referrals.get_referral(world.deps, user("al-child-protection"), rid)
    assert seen["informed"] is True and seen["anonymised_at"] == "2031-06-01T10:30:00.000Z"
    assert contract_errors(seen) == []


# ----------------------------------------------------------------------------------------------- the wiring


class RecordedAccessLog:
    """The access log's `record_read`, as `plumbing.retention.access_log_action` calls it."""

    def __init__(self) -> None:
        self.entries: list[tuple[Any, ...]] = []

    def record_read(
        self, caller: Any, purpose: str, operation: str, resource: str, ids: Any, *rest: Any
    ) -> None:
        self.entries.append((caller.sub, caller.country, purpose, operation, resource, list(ids), *rest))


def test_the_scheduler_runs_the_deadlines_and_the_retention_logged_in_the_access_log(
    world: World, shelter: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    from referral.entrypoints import scheduler

    access_log = RecordedAccessLog()
    startup = SimpleNamespace(
        service="referral", settings=None, config=world.deps.config, clock=world.clock, access_log=access_log
    )
    runtime = SimpleNamespace(startup=startup, deps=world.deps)
    monkeypatch.setattr(scheduler, "build_runtime", lambda clock=None: runtime)
    rid = _declined(world, shelter["id"])
    world.clock.set(datetime(2031, 6, 1, 10, 30, tzinfo=UTC))

    parts = scheduler.build(world.clock)

    assert [job.name for job in parts.deadlines()] == ["referral-deadlines"]
    [job] = parts.retention.jobs()
    assert (job.name, job.document_class, job.due_field) == (
        "retention-referral-ReferralDocument",
        ReferralDocument,
        "retention_due_at",
    )
    assert job.act(Claimed(rid, "AL")) is True
    assert access_log.entries == [
        (
            "system:retention-job",
            "AL",
            "retention",
            "retention.anonymise",
            "referral",
            [rid],
            "anonymised",
            None,
            None,
        )
    ]
