"""The token buckets behind PDP_RATE_LIMIT, on a clock the test moves."""

from __future__ import annotations

import pytest

from pdp.ratelimit import RateLimiter


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_a_client_may_send_its_burst_at_once_and_then_one_request_per_interval() -> None:
    clock = Clock()
    limiter = RateLimiter(2.0, 3, clock=clock)
    assert [limiter.take("a") for _ in range(3)] == [0.0, 0.0, 0.0]
    assert limiter.take("a") == pytest.approx(0.5)
    clock.now += 0.5
    assert limiter.take("a") == 0.0
    assert limiter.take("a") == pytest.approx(0.5)
    assert limiter.refused == 2


def test_an_idle_bucket_refills_to_the_burst_and_no_further() -> None:
    clock = Clock()
    limiter = RateLimiter(1.0, 2, clock=clock)
    limiter.take("a")
    limiter.take("a")
    clock.now += 3600
    assert [limiter.take("a") for _ in range(3)] == [0.0, 0.0, pytest.approx(1.0)]


def test_clients_have_separate_buckets() -> None:
    limiter = RateLimiter(1.0, 1, clock=Clock())
    assert limiter.take("a") == 0.0
    assert limiter.take("a") > 0
    assert limiter.take("b") == 0.0


def test_the_burst_defaults_to_the_rate_rounded_up() -> None:
    assert RateLimiter(2.5).burst == 3
    assert RateLimiter(0.2).burst == 1


def test_buckets_idle_long_enough_to_be_full_are_forgotten() -> None:
    clock = Clock()
    limiter = RateLimiter(10.0, 5, clock=clock)  # full again after 0.5 s
    for i in range(1000):
        limiter.take(f"client-{i}")
    assert len(limiter) == 1000
    clock.now += 1.0
    limiter.take("newcomer")
    assert len(limiter) == 1


def test_memory_is_bounded_even_when_every_client_is_busy() -> None:
    limiter = RateLimiter(1.0, 5, max_clients=100, clock=Clock())
    for i in range(10_000):
        limiter.take(f"client-{i}")
    assert len(limiter) <= 100
