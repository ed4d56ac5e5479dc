"""A scratch database on the session's Mongo-wire server, with the exchange's documents switched to it."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from types import SimpleNamespace
from typing import Any

import pytest

from exchange.adapters.documents import ExchangeCaseDocument
from plumbing import mongo as connections

ALIAS = "exchange-integration-tests"


@pytest.fixture(scope="module")
def database(mongo: Any) -> Iterator[Any]:
    settings = SimpleNamespace(
        mongodb_uri=mongo.env["MONGODB_URI"],
        mongodb_db=f"exchange_{uuid.uuid4().hex[:8]}",
        service="exchange",
    )
    client = connections.connect(settings, alias=ALIAS)
    yield client[settings.mongodb_db]
    client.drop_database(settings.mongodb_db)
    connections.disconnect(ALIAS)


@pytest.fixture
def case_documents(database: Any, monkeypatch: pytest.MonkeyPatch) -> Iterator[type[ExchangeCaseDocument]]:
    """`ExchangeCaseDocument` reading and writing the scratch database for the duration of one test (what
    mongoengine's `switch_db` does, without needing a default connection to switch from)."""
    monkeypatch.setitem(ExchangeCaseDocument._meta, "db_alias", ALIAS)
    monkeypatch.setattr(ExchangeCaseDocument, "_collection", None)
    ExchangeCaseDocument.ensure_indexes()
    yield ExchangeCaseDocument
    ExchangeCaseDocument._get_collection().delete_many({})
    ExchangeCaseDocument._collection = None
