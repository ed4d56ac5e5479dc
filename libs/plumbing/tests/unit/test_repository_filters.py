"""The filter a repository sends: the scope and the caller's filters as one document wherever they do not repeat
a member (the embedded Mongo-wire server uses no index under `$and`), the same records either way."""

from __future__ import annotations

import re

from plumbing.repository import alternatives, conjunction


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


def test_two_conditions_on_one_field_become_one_set_of_operators():
    since, keyset_branch = {"updated_at": {"$gte": 5}}, {"updated_at": 7, "_id": {"$gt": "x"}}
    assert conjunction([since, keyset_branch]) == {"updated_at": {"$gte": 5, "$eq": 7}, "_id": {"$gt": "x"}}
    # What one document cannot say stays under $and: the same operator twice, a pattern, an embedded document.
    assert conjunction([{"a": {"$gt": 1}}, {"a": {"$gt": 2}}]) == {
        "a": {"$gt": 1},
        "$and": [{"a": {"$gt": 2}}],
    }
    pattern = re.compile("^Ar")
    assert conjunction([{"a": pattern}, {"a": {"$ne": "x"}}])["$and"] == [{"a": {"$ne": "x"}}]


def test_an_agency_scope_becomes_one_lookup_per_branch_the_callers_id_first():
    scope = {"owner_country": "ME", "$or": [{"owner_agency": "a"}, {"assigned_to": "u"}]}
    found = alternatives([{"_id": "r1"}, scope])
    assert found == [
        {"_id": "r1", "owner_country": "ME", "owner_agency": "a"},
        {"_id": "r1", "owner_country": "ME", "assigned_to": "u"},
    ]
    assert all(next(iter(f)) == "_id" and not any(k.startswith("$") for k in f) for f in found)


def test_a_keyset_page_of_an_agency_scope_is_every_combination_of_the_branches():
    scope = {"owner_country": "ME", "$or": [{"owner_agency": "a"}, {"assigned_to": "u"}]}
    keyset = {"$or": [{"updated_at": {"$gt": 1}}, {"updated_at": 1, "_id": {"$gt": "x"}}]}
    found = alternatives([{"status": "open"}, {"$and": [{"updated_at": {"$gte": 0}}, keyset]}, scope])
    assert len(found) == 4 and all(f["status"] == "open" and f["owner_country"] == "ME" for f in found)
    assert {"updated_at": {"$gte": 0, "$gt": 1}, "owner_agency": "a"}.items() <= found[0].items()
    assert not any(k.startswith("$") for f in found for k in f)


def test_too_many_combinations_are_sent_as_one_filter():
    many = [{"$or": [{"a": 1}, {"b": 1}, {"c": 1}]}, {"$or": [{"d": 1}, {"e": 1}, {"f": 1}]}]
    assert alternatives(many) == [conjunction(many)]
