"""Voluntariness for adults: informed consent to return, and its withdrawal.

A consent records what was explained (coded topics; the catalogue's required topics must all be there, or the
consent is not informed), in which spoken language (ISO 639-3), whether an interpreter was used, the day it was
given and who recorded it (the caller, from the token, never the body). It carries no narrative.

Consent can be withdrawn at any time, also after the case has closed; while the case is still running, the
withdrawal stops the return at once (`case.withdraw_consent`). An adult's case is decided and their plan approved
only on a current consent (`require_current`, called by the child gate): 409 `consent_required`.

A child's consent is never the basis of a return: for a child (presumed children included) the child gate asks
for a best-interests determination, and the child's views are recorded there.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import date, datetime
from typing import Any

from plumbing.clock import as_utc
from voluntary_return.domain.catalogue import ReturnCatalogue
from voluntary_return.domain.errors import ErrorDetail, Refused
from voluntary_return.domain.shape import SPOKEN_LANGUAGE, Reader, checked, latest_today

CONSENT_FIELDS = ("topics", "language", "interpreter", "given_on")


@dataclass(frozen=True)
class Consent:
    topics: tuple[str, ...]  # consent-topic codes explained to the person
    language: str  # ISO 639-3 spoken language the explanation was given in
    interpreter: bool
    given_on: date
    recorded_by: str
    withdrawn_at: datetime | None = None
    withdrawn_by: str | None = None

    @property
    def current(self) -> bool:
        return self.withdrawn_at is None


def parse_consent(
    body: Any, *, recorded_by: str, now: datetime, catalogue: ReturnCatalogue, pointer: str = ""
) -> Consent:
    """A consent from a request body, or a 422 naming every problem (pointers under `pointer`)."""
    errors: list[ErrorDetail] = []
    read = Reader(errors)
    raw = read.obj(body, pointer, CONSENT_FIELDS)
    consent = _read(read, raw, recorded_by, now, catalogue, pointer) if raw is not None else None
    return checked(consent, errors, "invalid consent", pointer)


def _read(
    read: Reader,
    raw: Mapping[str, Any],
    recorded_by: str,
    now: datetime,
    catalogue: ReturnCatalogue,
    where: str,
) -> Consent | None:
    topics = read.codes(raw, "topics", where, catalogue.consent_topics, min_items=1)
    if "topics" in raw and not catalogue.required_topics <= set(topics):
        # Not informed: one problem for the list, whichever required topics are missing.
        read.problem("required_topic_missing", f"{where}/topics")
    language = read.pattern(raw, "language", where, SPOKEN_LANGUAGE)
    interpreter = read.boolean(raw, "interpreter", where)
    given_on = read.day(raw, "given_on", where, not_after=latest_today(now))
    if language is None or interpreter is None or given_on is None or not topics:
        return None
    return Consent(topics, language, interpreter, given_on, recorded_by)


def withdraw(consent: Consent, *, at: datetime, by: str) -> Consent:
    """The consent, withdrawn at `at` by `by`; 409 `consent_already_withdrawn` when it was."""
    if not consent.current:
        raise Refused("consent_already_withdrawn")
    return replace(consent, withdrawn_at=as_utc(at), withdrawn_by=by)


def require_current(consent: Consent | None) -> Consent:
    """The adult's current consent, or 409 `consent_required` (none recorded, or withdrawn)."""
    if consent is None or not consent.current:
        raise Refused("consent_required")
    return consent
