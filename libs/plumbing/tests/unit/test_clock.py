from datetime import UTC, datetime, timedelta, timezone

import pytest

from plumbing.clock import Clock, FixedClock, SystemClock, rfc3339, to_millis


def test_system_clock_is_aware_utc():
    now = SystemClock().now()
    assert now.tzinfo is not None and now.utcoffset() == timedelta(0)
    assert isinstance(SystemClock(), Clock)


def test_fixed_clock_only_moves_when_told():
    clock = FixedClock(datetime(2025, 3, 1, 12, 0, tzinfo=UTC))
    assert clock.now() == clock.now() == datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
    assert clock.advance(minutes=5) == datetime(2025, 3, 1, 12, 5, tzinfo=UTC)
    clock.advance(timedelta(days=1))
    assert clock.now() == datetime(2025, 3, 2, 12, 5, tzinfo=UTC)
    clock.set(datetime(2025, 1, 1, 1, 0, tzinfo=timezone(timedelta(hours=1))))
    assert clock.now() == datetime(2025, 1, 1, 0, 0, tzinfo=UTC)
    assert clock.now().tzinfo == UTC


def test_fixed_clock_rejects_naive_and_backwards():
    with pytest.raises(ValueError):
        FixedClock(datetime(2025, 1, 1))
    with pytest.raises(ValueError):
        FixedClock().advance(seconds=-1)


def test_rfc3339_uses_z_and_milliseconds():
    instant = datetime(2025, 5, 6, 7, 8, 9, 123456, tzinfo=UTC)
    assert rfc3339(instant) == "2025-05-06T07:08:09.123Z"
    assert to_millis(instant).microsecond == 123000
