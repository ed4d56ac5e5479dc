"""Indicator set versions published through the API, and the catalogue every API process screens with.

Published versions are reference data shared by the partner countries (no personal data, no owner scope): one
document per version, `_id` = `<set_id>@<version>`, never updated or deleted, so a screening that recorded a
version can always be re-read with exactly its indicators. The unique `_id` makes two concurrent publications
of the same version one success and one 409.

Each API process keeps the catalogue in memory and checks, on every use, whether the stored ids changed (one
`_id`-only query over a handful of documents), so a version published through one process is usable through
every other at once.
"""

from __future__ import annotations

import json
import threading
from datetime import datetime
from typing import Any, ClassVar

from mongoengine import DateTimeField, Document, StringField
from mongoengine.errors import NotUniqueError

from identification.domain.indicators import (
    IndicatorCatalogue,
    IndicatorSet,
    indicator_set_from_data,
    packaged_sets,
)
from plumbing.errors import Conflict


class PublishedIndicatorSet(Document):
    meta: ClassVar[dict[str, Any]] = {"collection": "indicator_sets"}

    id = StringField(primary_key=True)  # "<set_id>@<version>"
    # The version as published (JSON text): Mongo keys cannot hold every label tag and text safely as fields.
    content = StringField(required=True)
    published_at = DateTimeField(required=True)
    published_by = StringField(required=True)
    publisher_country = StringField(required=True)


class CatalogueSource:
    """The packaged versions plus the published ones, reloaded when the stored set of versions changed."""

    def __init__(self) -> None:
        self._packaged = packaged_sets()
        self._catalogue = IndicatorCatalogue(self._packaged)
        self._stored_ids: list[str] = []
        self._lock = threading.Lock()

    def current(self) -> IndicatorCatalogue:
        ids = sorted(str(d["_id"]) for d in PublishedIndicatorSet._get_collection().find({}, {"_id": 1}))
        with self._lock:
            if ids != self._stored_ids:
                stored = [
                    indicator_set_from_data(json.loads(doc.content))
                    for doc in PublishedIndicatorSet.objects(id__in=ids)
                ]
                self._catalogue = IndicatorCatalogue([*self._packaged, *stored])
                self._stored_ids = ids
            return self._catalogue

    def publish(
        self, item: IndicatorSet, raw: dict[str, Any], *, at: datetime, by: str, country: str
    ) -> IndicatorSet:
        """Store a new version (already checked against the current catalogue); 409 if it exists."""
        doc = PublishedIndicatorSet(
            id=f"{item.set_id}@{item.version}",
            content=json.dumps(raw, ensure_ascii=False, sort_keys=True),
            published_at=at,
            published_by=by,
            publisher_country=country,
        )
        try:
            doc.save(force_insert=True)
        except NotUniqueError:
            raise Conflict("this indicator set version is published already") from None
        return item
