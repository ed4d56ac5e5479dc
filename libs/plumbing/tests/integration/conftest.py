"""A scratch database per test module on the session's Mongo-wire server."""

import uuid
from types import SimpleNamespace

import pytest

from plumbing import mongo as connections


@pytest.fixture(scope="module")
def database(mongo, request):
    """A fresh database registered under the module's `ALIAS` (its documents name it), dropped afterwards."""
    alias = request.module.ALIAS
    settings = SimpleNamespace(
        mongodb_uri=mongo.env["MONGODB_URI"], mongodb_db=f"plumbing_{uuid.uuid4().hex[:8]}", service="t"
    )
    client = connections.connect(settings, alias=alias)
    yield client[settings.mongodb_db]
    client.drop_database(settings.mongodb_db)
    connections.disconnect(alias)
