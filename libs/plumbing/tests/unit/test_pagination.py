"""Cursor pagination: opaque cursors, stable (updated_at, id) order, limits, Link header."""

from __future__ import annotations

import base64
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parents[1] / "fixtures"))

from app_support import bearer, build_demo_app  # noqa: E402

from plumbing.pagination import MAX_LIMIT, PageRequest, build_page, decode_cursor, encode_cursor  # noqa: E402
from plumbing.problems import Problem  # noqa: E402

T0 = datetime(2025, 3, 1, 12, 0, 0, 123000, tzinfo=UTC)


def test_cursor_round_trip_and_opaque():
    cursor = encode_cursor(T0, "a1b2")
    assert "a1b2" not in cursor and "2025" not in cursor
    decoded = decode_cursor(cursor)
    assert (decoded.updated_at, decoded.id) == (T0, "a1b2")


@pytest.mark.parametrize("bad", ["not-base64!!", "e30", encode_cursor(T0, "x")[:-3] + "zzz", "W10"])
def test_bad_cursor_is_400_without_echo(bad):
    with pytest.raises(Problem) as raised:
        decode_cursor(bad)
    assert raised.value.slug == "bad-request"
    assert [e.as_dict() for e in raised.value.errors] == [{"pointer": "/query/cursor", "code": "cursor"}]


def test_limit_default_and_bounds():
    assert PageRequest.parse().limit == 50
    assert PageRequest.parse(MAX_LIMIT).limit == 200
    for bad in (0, 201):
        with pytest.raises(Problem):
            PageRequest.parse(bad)


def test_walk_all_pages_without_gaps_or_repeats():
    rows = sorted(
        [{"id": f"id-{i:03d}", "updated_at": T0 + timedelta(seconds=i // 3)} for i in range(23)],
        key=lambda r: (r["updated_at"], r["id"]),
    )
    seen: list[str] = []
    cursor = None
    while True:
        request = PageRequest.parse(5, cursor)
        remaining = [
            r
            for r in rows
            if not request.after or (r["updated_at"], r["id"]) > (request.after.updated_at, request.after.id)
        ]
        page = build_page(remaining[: request.fetch], request, key=lambda r: (r["updated_at"], r["id"]))
        seen.extend(r["id"] for r in page.items)
        cursor = page.next_cursor
        if cursor is None:
            break
    assert seen == [r["id"] for r in rows]


def test_mongo_filter_is_strictly_after_the_cursor():
    after_cursor = {"$or": [{"updated_at": {"$gt": T0}}, {"updated_at": T0, "_id": {"$gt": "k"}}]}
    # The cursor is at or after updated_since: it implies updated_since, so it alone is the bound.
    request = PageRequest.parse(10, encode_cursor(T0, "k"), "2025-01-01T00:00:00Z")
    assert T0 >= datetime(2025, 1, 1, tzinfo=UTC)
    assert request.mongo_filter() == after_cursor
    assert PageRequest.parse(10, encode_cursor(T0, "k")).mongo_filter() == after_cursor
    assert PageRequest.parse(10, encode_cursor(T0, "k"), T0.isoformat()).mongo_filter() == after_cursor
    # updated_since after the cursor: every record from it on is after the cursor too.
    later = T0 + timedelta(milliseconds=1)
    assert PageRequest.parse(10, encode_cursor(T0, "k"), later.isoformat()).mongo_filter() == {
        "updated_at": {"$gte": later}
    }
    assert PageRequest.parse(10).mongo_filter() == {}
    assert PageRequest.mongo_sort() == [("updated_at", 1), ("_id", 1)]
    with pytest.raises(Problem):
        PageRequest.parse(10, None, "2025-01-01T00:00:00")  # no offset: ambiguous instant


def test_cursor_round_trip_through_the_app():
    app, _ = build_demo_app()
    headers = bearer("manager", **{"X-Purpose": "case-management"})
    with app.test_client() as client:
        first = client.get("/v1/demo/things?limit=3", headers=headers)
        assert first.status_code == 200
        body = first.json()
        assert [t["id"] for t in body["items"]] == ["t-00", "t-01", "t-02"]
        assert body["next_cursor"]
        link = first.headers["link"]
        assert link.startswith("</v1/demo/things?limit=3&cursor=") and link.endswith('>; rel="next"')
        ids = [t["id"] for t in body["items"]]
        cursor = body["next_cursor"]
        while cursor:
            page = client.get(f"/v1/demo/things?limit=3&cursor={cursor}", headers=headers).json()
            ids.extend(t["id"] for t in page["items"])
            cursor = page["next_cursor"]
        assert ids == [f"t-{i:02d}" for i in range(7)]
        last = client.get("/v1/demo/things?limit=50", headers=headers)
        assert last.json()["next_cursor"] is None and "link" not in last.headers


@pytest.mark.parametrize(
    "cursor",
    [
        # Well-formed, but the instant cannot exist: before year 1 or after 9999 once made UTC.
        base64.urlsafe_b64encode(b'["0001-01-01T00:00:00+14:00","x"]').decode().rstrip("="),
        base64.urlsafe_b64encode(b'["9999-12-31T23:59:59-14:00","x"]').decode().rstrip("="),
    ],
)
def test_a_cursor_whose_instant_overflows_is_400(cursor):
    with pytest.raises(Problem) as raised:
        decode_cursor(cursor)
    assert raised.value.slug == "bad-request"


@pytest.mark.parametrize("since", ["0001-01-01T00:00:00+14:00", "9999-12-31T23:59:59-14:00"])
def test_an_updated_since_that_overflows_in_utc_is_400(since):
    with pytest.raises(Problem) as raised:
        PageRequest.parse(updated_since=since)
    assert raised.value.slug == "bad-request"
    assert [e.as_dict() for e in raised.value.errors] == [
        {"pointer": "/query/updated_since", "code": "range"}
    ]


@pytest.mark.parametrize(
    "raw",
    [
        b'[99999999999999999,"x"]',  # after year 9999
        b'[-99999999999999999,"x"]',  # before year 1
        b'[true,"x"]',  # a boolean is not a count of milliseconds
        b'[1.5,"x"]',  # nor is a float
        b'[0,""]',  # an empty id
        b'[0,"x",3]',  # a third element
    ],
)
def test_a_cursor_in_the_issued_format_that_we_could_not_have_issued_is_400(raw):
    cursor = base64.urlsafe_b64encode(raw).decode().rstrip("=")
    with pytest.raises(Problem) as raised:
        decode_cursor(cursor)
    assert raised.value.slug == "bad-request"
    assert [e.as_dict() for e in raised.value.errors] == [{"pointer": "/query/cursor", "code": "cursor"}]


def test_the_cursor_keeps_milliseconds_exactly():
    # Integer milliseconds: .123 never comes back as .122999 (which would repeat or skip a record).
    for millis in (0, 1, 123, 999):
        instant = T0.replace(microsecond=millis * 1000)
        assert decode_cursor(encode_cursor(instant, "k")).updated_at == instant
    assert decode_cursor(encode_cursor(T0.replace(microsecond=123456), "k")).updated_at == T0


def test_one_cursor_format_for_plain_collections_and_the_repository():
    # ScopedRepository.list_page decodes with plumbing.pagination: its InvalidCursor is this module's 400 problem.
    from plumbing.errors import InvalidCursor
    from plumbing.repository import decode_cursor as repository_decode

    assert repository_decode is decode_cursor
    with pytest.raises(InvalidCursor) as raised:
        decode_cursor("not-a-cursor")
    assert isinstance(raised.value, Problem) and raised.value.status == 400
