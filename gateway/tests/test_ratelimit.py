"""Token buckets per client, with an injectable clock (no sleeps)."""

from __future__ import annotations

from gateway.ratelimit import RateLimiter
from gateway.testing import budgets


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_burst_then_429_with_retry_after() -> None:
    clock = Clock()
    limiter = RateLimiter(budgets(interactive=(60, 3)), clock=clock)
    assert [limiter.take(is_machine=False, key="u1").allowed for _ in range(3)] == [True, True, True]
    denied = limiter.take(is_machine=False, key="u1")
    assert not denied.allowed and denied.retry_after == 1


def test_budget_refills_with_time() -> None:
    clock = Clock()
    limiter = RateLimiter(budgets(interactive=(60, 2)), clock=clock)
    limiter.take(is_machine=False, key="u1")
    limiter.take(is_machine=False, key="u1")
    assert not limiter.take(is_machine=False, key="u1").allowed
    clock.now += 0.5
    assert not limiter.take(is_machine=False, key="u1").allowed
    clock.now += 1.0
    assert limiter.take(is_machine=False, key="u1").allowed
    clock.now += 3600
    assert [limiter.take(is_machine=False, key="u1").allowed for _ in range(3)] == [True, True, False]


def test_retry_after_reflects_a_slow_rate() -> None:
    clock = Clock()
    limiter = RateLimiter(budgets(interactive=(6, 1)), clock=clock)  # one request every 10 s
    limiter.take(is_machine=False, key="u1")
    assert limiter.take(is_machine=False, key="u1").retry_after == 10


def test_one_national_systems_burst_does_not_starve_another() -> None:
    clock = Clock()
    limiter = RateLimiter(budgets(machine=(60, 5)), clock=clock)
    results = [limiter.take(is_machine=True, key="al-national-system").allowed for _ in range(50)]
    assert results.count(True) == 5
    assert all(limiter.take(is_machine=True, key="xk-national-system").allowed for _ in range(5))
    assert limiter.take(is_machine=False, key="some-user").allowed


def test_machine_clients_and_people_have_separate_budgets_and_overrides() -> None:
    clock = Clock()
    limiter = RateLimiter(
        budgets(interactive=(60, 1), machine=(60, 2), clients={"me-national-system": (60, 4)}), clock=clock
    )
    assert [limiter.take(is_machine=False, key="p").allowed for _ in range(2)] == [True, False]
    assert [limiter.take(is_machine=True, key="al-national-system").allowed for _ in range(3)] == [
        True,
        True,
        False,
    ]
    assert [limiter.take(is_machine=True, key="me-national-system").allowed for _ in range(5)] == [
        True
    ] * 4 + [False]


def test_a_user_and_a_client_with_the_same_name_do_not_share_a_bucket() -> None:
    limiter = RateLimiter(budgets(interactive=(60, 1), machine=(60, 1)), clock=Clock())
    assert limiter.take(is_machine=False, key="same").allowed
    assert limiter.take(is_machine=True, key="same").allowed


def test_eviction_keeps_memory_bounded() -> None:
    limiter = RateLimiter(budgets(), clock=Clock(), max_keys=10)
    for n in range(100):
        limiter.take(is_machine=False, key=f"u{n}")
    assert len(limiter._buckets) == 10
