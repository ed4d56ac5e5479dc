"""The in-process scope check (plumbing.matching) answers as the real Mongo-wire server does, for every filter
shape the scopes and restrictions produce, and leaves to the server what it does not understand."""

import itertools
import uuid

import pytest
from pymongo import MongoClient

from plumbing.matching import UNDECIDED, matches

pytestmark = pytest.mark.integration

RECORDS = [
    {"owner_country": "AL", "owner_agency": "state-police", "assigned_to": [], "status": "proposed"},
    {
        "owner_country": "AL",
        "owner_agency": "social-services",
        "assigned_to": ["u-1", "u-2"],
        "person_id": "p-1",
    },
    {"owner_country": "AL", "owner_agency": "state-police", "assigned_to": ["u-1"], "person_id": None},
    {"owner_country": "XK", "owner_agency": "state-police", "status": "accepted", "case_id": "c-1"},
    {"owner_country": "ME", "owner_agency": None, "assigned_to": [None], "version": 3, "flag": True},
]

# What NeedToKnowPolicy, the referral and exchange visibility and the restriction exclusion produce, after
# plumbing.repository.alternatives distributed them, and a few edges of MongoDB's equality.
DECIDED = [
    {"owner_country": "AL"},
    {"owner_country": "AL", "owner_agency": "state-police"},
    {"owner_country": "AL", "assigned_to": "u-1"},
    {"owner_country": "AL", "assigned_to": "u-3"},
    {"owner_country": "AL", "$or": [{"owner_agency": "social-services"}, {"assigned_to": "u-1"}]},
    {"owner_country": "XK", "provider_agency": "state-police", "status": {"$ne": "proposed"}},
    {"status": {"$ne": "proposed"}},
    {"$and": [{"owner_country": "AL"}, {"person_id": {"$nin": ["p-1", "p-2"]}}]},
    {"person_id": {"$nin": ["p-1"]}, "case_id": {"$nin": ["c-1"]}},
    {"person_id": None},
    {"person_id": {"$in": [None, "p-9"]}},
    {"owner_agency": None},
    {"assigned_to": None},
    {"version": 3},
    {"version": "3"},
    {"flag": True},
    {"flag": 1},
    {"status": {"$eq": "accepted"}},
]
UNDECIDABLE = [
    {"version": {"$gt": 2}},
    {"assigned_to": ["u-1"]},
    {"meta.kind": "x"},
    {"$nor": [{"owner_country": "AL"}]},
    {"status": {"$regex": "^pro"}},
    {"version": 3.0},
]


@pytest.fixture(scope="module")
def stored(mongo):
    client = MongoClient(mongo.env["MONGODB_URI"])
    collection = client[f"plumbing_matching_{uuid.uuid4().hex[:8]}"]["records"]
    collection.insert_many([{"_id": f"r-{n}", **record} for n, record in enumerate(RECORDS)])
    yield collection
    client.drop_database(collection.database.name)
    client.close()


@pytest.mark.parametrize("where", DECIDED, ids=str)
def test_the_process_answers_as_the_server_does(stored, where):
    for record in stored.find({}):
        server = stored.count_documents({"_id": record["_id"], **where}) == 1 if "_id" not in where else None
        decided = matches(record, where)
        assert decided is not UNDECIDED, where
        assert decided == server, (record, where)


@pytest.mark.parametrize("where", UNDECIDABLE, ids=str)
def test_what_it_does_not_understand_is_left_to_the_server(stored, where):
    for record, combined in itertools.product(stored.find({}), (where, {"owner_country": "AL", **where})):
        assert matches(record, combined) in (UNDECIDED, False)  # False only through a decided member
        assert matches(record, {"$or": [where, {"owner_country": "nowhere"}]}) is UNDECIDED
