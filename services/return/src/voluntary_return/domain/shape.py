"""Strict reading of request bodies: every object accepts exactly its known members, every code comes from a
catalogue list, and every problem is collected (code + JSON pointer) so that a client fixes a form in one round
trip. Submitted values are never echoed: a pointer names where, a code names what.

Strictness is the minimisation rule in code: a member the shape does not know (a diagnosis in a return plan, a
narrative in a consent record) is refused as `not_allowed` at its own pointer, never silently stored.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any, TypeVar

from plumbing.clock import as_utc
from voluntary_return.domain.errors import DomainError, ErrorDetail, raise_all

# BCP 47 as the platform uses it: language, optional script, optional region (en, sq, sr-Latn, cnr-Cyrl, mk).
LANGUAGE_TAG = re.compile(r"^[a-z]{2,3}(-[A-Z][a-z]{3})?(-([A-Z]{2}|[0-9]{3}))?$")
# ISO 639-3: the spoken language of a person (Romani rom, Arabic ara, Farsi fas, Pashto pus, Albanian sqi).
SPOKEN_LANGUAGE = re.compile(r"^[a-z]{3}$")
# Agency codes as the directory and the token's `agency` claim spell them.
AGENCY = re.compile(r"^[a-z0-9][a-z0-9-]{1,62}$")
COUNTRY = re.compile(r"^[A-Z]{2}$")
MAX_TEXT = 10_000
MAX_ID = 200
T = TypeVar("T")


def escape(part: object) -> str:
    """One JSON pointer reference token (RFC 6901)."""
    return str(part).replace("~", "~0").replace("/", "~1")


@dataclass(frozen=True)
class LanguageText:
    """Free text with the language it is written in (BCP 47), so a reader knows whether to ask for a
    translation."""

    language: str
    text: str


@dataclass
class Reader:
    """Collects problems while reading; `errors` is handed to `raise_all` once the whole body has been read."""

    errors: list[ErrorDetail]

    def problem(self, code: str, where: str) -> None:
        self.errors.append(ErrorDetail(code, where))

    # --------------------------------------------------------------------------------------------- objects

    def obj(
        self, raw: Any, where: str, allowed: Collection[str], *, required: bool = True
    ) -> Mapping[str, Any] | None:
        """`raw` as an object with only `allowed` members (each other member: `not_allowed` at its pointer)."""
        if raw is None:
            if required:
                self.problem("required", where)
            return None
        if not isinstance(raw, Mapping):
            self.problem("wrong_type", where)
            return None
        for key in raw:
            if key not in allowed:
                self.problem("not_allowed", f"{where}/{escape(key)}")
        return raw

    def member(self, obj: Mapping[str, Any], key: str, where: str, *, required: bool = True) -> Any:
        value = obj.get(key)
        if value is None and required:
            self.problem("required", f"{where}/{key}")
        return value

    # ---------------------------------------------------------------------------------------------- values

    def code(
        self, obj: Mapping[str, Any], key: str, where: str, known: Collection[str], *, required: bool = True
    ) -> str | None:
        """A code from `known` (`unknown_code` otherwise)."""
        value = self.member(obj, key, where, required=required)
        if value is None:
            return None
        if not isinstance(value, str):
            self.problem("wrong_type", f"{where}/{key}")
            return None
        if value not in known:
            self.problem("unknown_code", f"{where}/{key}")
            return None
        return value

    def codes(
        self,
        obj: Mapping[str, Any],
        key: str,
        where: str,
        known: Collection[str],
        *,
        min_items: int = 0,
        required: bool = True,
    ) -> tuple[str, ...]:
        """A list of distinct codes from `known`; fewer than `min_items` is `too_few` at the list."""
        value = self.member(obj, key, where, required=required)
        if value is None:
            return ()
        if not isinstance(value, list):
            self.problem("wrong_type", f"{where}/{key}")
            return ()
        out: list[str] = []
        for i, item in enumerate(value):
            if not isinstance(item, str):
                self.problem("wrong_type", f"{where}/{key}/{i}")
            elif item not in known:
                self.problem("unknown_code", f"{where}/{key}/{i}")
            elif item in out:
                self.problem("duplicate", f"{where}/{key}/{i}")
            else:
                out.append(item)
        if len(value) < min_items:
            self.problem("too_few", f"{where}/{key}")
        return tuple(out)

    def boolean(self, obj: Mapping[str, Any], key: str, where: str) -> bool | None:
        value = self.member(obj, key, where)
        if value is None:
            return None
        if not isinstance(value, bool):
            self.problem("wrong_type", f"{where}/{key}")
            return None
        return value

    def pattern(
        self, obj: Mapping[str, Any], key: str, where: str, regex: re.Pattern[str], *, required: bool = True
    ) -> str | None:
        value = self.member(obj, key, where, required=required)
        if value is None:
            return None
        if not isinstance(value, str):
            self.problem("wrong_type", f"{where}/{key}")
            return None
        if not regex.match(value):
            self.problem("bad_format", f"{where}/{key}")
            return None
        return value

    def text(self, obj: Mapping[str, Any], key: str, where: str, *, max_length: int = MAX_TEXT) -> str | None:
        """Non-blank text, normalised to NFC (names and narratives arrive composed and decomposed)."""
        value = self.member(obj, key, where)
        if value is None:
            return None
        if not isinstance(value, str):
            self.problem("wrong_type", f"{where}/{key}")
            return None
        value = unicodedata.normalize("NFC", value.strip())
        if not value:
            self.problem("required", f"{where}/{key}")
            return None
        if len(value) > max_length:
            self.problem("too_long", f"{where}/{key}")
            return None
        return value

    def language_text(self, obj: Mapping[str, Any], key: str, where: str) -> LanguageText | None:
        """`{language, text}`: free text tagged with its BCP 47 language."""
        raw = self.obj(self.member(obj, key, where), f"{where}/{key}", ("language", "text"), required=False)
        if raw is None:
            return None
        language = self.pattern(raw, "language", f"{where}/{key}", LANGUAGE_TAG)
        text = self.text(raw, "text", f"{where}/{key}")
        return LanguageText(language, text) if language and text else None

    def day(
        self, obj: Mapping[str, Any], key: str, where: str, *, not_after: date | None = None
    ) -> date | None:
        """A calendar date (`YYYY-MM-DD`); with `not_after`, a later date is `date_in_future`."""
        value = self.member(obj, key, where)
        if value is None:
            return None
        parsed = parse_day(value)
        if parsed is None:
            self.problem("date_invalid", f"{where}/{key}")
            return None
        if not_after is not None and parsed > not_after:
            self.problem("date_in_future", f"{where}/{key}")
        return parsed


def parse_day(value: Any) -> date | None:
    """A `date`, or an ISO `YYYY-MM-DD` string, or None. A datetime is not a date: it is refused, so an instant
    never passes for a calendar day by accident."""
    if isinstance(value, datetime):
        return None
    if isinstance(value, date):
        return value
    if isinstance(value, str) and re.fullmatch(r"\d{4}-\d{2}-\d{2}", value):
        try:
            return date.fromisoformat(value)
        except ValueError:
            return None
    return None


# A calendar date has no time zone, and a body does not say where it was written. A date counts as in the future
# only if it is in the future everywhere (UTC+14): a case manager in Tirana recording just after midnight local
# time is never refused by a UTC calendar. A date counts as past once it is before UTC's today: the partner
# countries' clocks run at or ahead of UTC, so their local today is never earlier than UTC's.
def latest_today(now: datetime) -> date:
    return (as_utc(now) + timedelta(hours=14)).date()


def earliest_today(now: datetime) -> date:
    return as_utc(now).date()


def checked(found: T | None, errors: list[ErrorDetail], message: str, pointer: str) -> T:
    """`found`, or a 422 carrying every problem collected while reading it."""
    raise_all(errors, message)
    if found is None:  # unreachable: every missing part was reported; never pass silently
        raise DomainError("required", message, pointer=pointer)
    return found
