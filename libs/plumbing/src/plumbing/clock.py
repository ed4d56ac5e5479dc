"""The one injectable clock.

All code reads time through a `Clock` so that tests set and advance time instead of sleeping, and so that
every instant is timezone-aware UTC (naive datetimes are a classic source of off-by-hours bugs across the
three countries' local times).
"""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from typing import Protocol, runtime_checkable


@runtime_checkable
class Clock(Protocol):
    def now(self) -> datetime:
        """The current instant, timezone-aware, in UTC."""
        ...


class SystemClock:
    """Wall-clock time in UTC."""

    def now(self) -> datetime:
        return datetime.now(UTC)


class FixedClock:
    """A clock that only moves when told to (tests, replays). Thread-safe."""

    def __init__(self, start: datetime | None = None) -> None:
        self._lock = threading.Lock()
        self._now = _require_aware(start) if start else datetime(2025, 1, 1, tzinfo=UTC)

    def now(self) -> datetime:
        with self._lock:
            return self._now

    def set(self, instant: datetime) -> None:
        with self._lock:
            self._now = _require_aware(instant)

    def advance(self, delta: timedelta | None = None, **kwargs: float) -> datetime:
        """Move forward by `delta` or by timedelta keyword arguments (`advance(minutes=5)`)."""
        step = delta if delta is not None else timedelta(**kwargs)
        if step < timedelta(0):
            raise ValueError("a clock does not go backwards; use set() to rewind explicitly")
        with self._lock:
            self._now = self._now + step
            return self._now


def _require_aware(instant: datetime) -> datetime:
    if instant.tzinfo is None or instant.utcoffset() is None:
        raise ValueError("instants must be timezone-aware")
    return instant.astimezone(UTC)


def to_millis(instant: datetime) -> datetime:
    """Truncate to milliseconds: BSON dates keep milliseconds, so values compared after a round trip
    through MongoDB (cursors, hashes) must be truncated the same way before they are used."""
    instant = _require_aware(instant)
    return instant.replace(microsecond=instant.microsecond - instant.microsecond % 1000)


def as_utc(instant: datetime) -> datetime:
    """Read a datetime coming back from MongoDB: a client without tz_aware returns naive UTC values."""
    if instant.tzinfo is None:
        return instant.replace(tzinfo=UTC)
    return instant.astimezone(UTC)


def rfc3339(instant: datetime) -> str:
    """RFC 3339 with `Z`, millisecond precision (the precision the database keeps)."""
    return to_millis(as_utc(instant)).isoformat(timespec="milliseconds").replace("+00:00", "Z")
