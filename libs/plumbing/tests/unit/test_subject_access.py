"""The right-of-access report (plumbing.subject_access): one document from the sections, and its readable page."""

from datetime import UTC, datetime

from plumbing.clock import FixedClock
from plumbing.subject_access import as_html, report

CLOCK = FixedClock(datetime(2026, 12, 6, 12, 0, tzinfo=UTC))


def section(service, records, sent_to=(), entries=()):
    return {
        "service": service,
        "person_id": "p-1",
        "generated_at": "2026-12-06T12:00:00.000Z",
        "records": records,
        "access_log": list(entries),
        "sent_to": list(sent_to),
    }


def test_the_report_gathers_where_the_data_went_from_every_section() -> None:
    answer = report(
        "p-1",
        CLOCK,
        [section("identification", []), section("exchange", [], ["ME"]), section("other", [], ["AL", "ME"])],
        not_deployed=["return"],
    )
    assert answer["sent_to"] == ["AL", "ME"] and answer["not_deployed"] == ["return"]
    assert [s["service"] for s in answer["sections"]] == ["identification", "exchange", "other"]
    assert answer["generated_at"] == "2026-12-06T12:00:00.000Z"


def test_the_page_shows_every_value_as_written_and_never_as_markup() -> None:
    record = {
        "type": "person",
        "id": "p-1",
        "content": {"given_names": ["<b>Arta</b>"], "notes": {"free_text": "a & b"}, "gone": None},
    }
    entry = {
        "time": "t",
        "actor": "officer-7",
        "agency": "police",
        "purpose": "identification",
        "operation": "op",
    }
    page = as_html(report("p-1", CLOCK, [section("identification", [record], entries=[entry])]))
    assert "&lt;b&gt;Arta&lt;/b&gt;" in page and "<b>Arta</b>" not in page
    assert "a &amp; b" in page and "officer-7" in page and "no other country" in page
