"""`OutdatedKeys` (adapters/person_keys.py): every duplicate search asks whether some person's keys are of an
older scheme; the database is asked at most once a minute, and a change is seen within that minute."""

from __future__ import annotations

from identification.adapters.person_keys import OutdatedKeys, PersonKeys
from plumbing.clock import FixedClock


class Keys(PersonKeys):
    def __init__(self) -> None:
        super().__init__(3, ["AL"], FixedClock())
        self.stale_left, self.asked = True, 0

    def any_stale(self) -> bool:
        self.asked += 1
        return self.stale_left


def test_the_database_is_asked_once_a_minute_and_its_change_seen_within_it() -> None:
    now = [0.0]
    keys = Keys()
    outdated = OutdatedKeys(keys, every_s=60, monotonic=lambda: now[0])

    assert [outdated() for _ in range(100)] == [True] * 100
    assert keys.asked == 1
    keys.stale_left = False  # the walk reached the present
    now[0] = 59.0
    assert outdated() is True
    now[0] = 60.0
    assert outdated() is False and keys.asked == 2
