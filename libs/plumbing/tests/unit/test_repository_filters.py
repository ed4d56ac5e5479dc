"""The filter a repository sends: the scope and the caller's filters as one document wherever they do not repeat
a member (the embedded Mongo-wire server uses no index under `$and`), the same records either way."""

from __future__ import annotations

from plumbing.repository import conjunction


def test_distinct_members_become_one_document():
    scope = {"owner_country": "ME"}
    assert conjunction([scope, {"reference": "XK-EX-2026-0001"}]) == {
        "owner_country": "ME",
        "reference": "XK-EX-2026-0001",
    }
    assert conjunction([scope]) == scope and conjunction([]) == {}


def test_repeated_members_keep_every_condition_under_and():
    scope = {"owner_country": "ME", "$or": [{"owner_agency": "a"}, {"informed": "a"}]}
    keyset = {"$or": [{"updated_at": {"$gt": 1}}, {"updated_at": 1, "_id": {"$gt": "x"}}]}
    found = conjunction([scope, keyset, {"owner_country": "XK"}])
    assert found["$or"] == scope["$or"] and found["owner_country"] == "ME"
    assert found["$and"] == [keyset, {"owner_country": "XK"}]  # a filter never widens the scope
    nested = conjunction([{"$and": [{"a": 1}]}, {"$and": [{"b": 2}]}])
    assert nested == {"$and": [{"a": 1}, {"$and": [{"b": 2}]}]}
