"""The sliding-window limiter on a manual clock."""

from __future__ import annotations

from mock_server.clock import ManualClock
from mock_server.ratelimit import RateLimiter


def test_allows_the_limit_then_says_how_long_to_wait() -> None:
    clock = ManualClock(start_ms=10_000)
    limiter = RateLimiter(clock)
    assert [limiter.hit("k", 3, 1_000) for _ in range(3)] == [None, None, None]
    assert limiter.hit("k", 3, 1_000) == 1_000
    clock.advance(400)
    assert limiter.hit("k", 3, 1_000) == 600
    clock.advance(600)
    assert limiter.hit("k", 3, 1_000) is None


def test_keys_are_independent_and_clear_forgets() -> None:
    clock = ManualClock()
    limiter = RateLimiter(clock)
    assert limiter.hit("a", 1, 1_000) is None
    assert limiter.hit("a", 1, 1_000) is not None
    assert limiter.hit("b", 1, 1_000) is None
    limiter.clear()
    assert limiter.hit("a", 1, 1_000) is None


def test_refused_requests_do_not_extend_the_window() -> None:
    clock = ManualClock()
    limiter = RateLimiter(clock)
    limiter.hit("k", 1, 1_000)
    for _ in range(10):
        clock.advance(50)
        assert limiter.hit("k", 1, 1_000) is not None
    clock.advance(500)
    assert limiter.hit("k", 1, 1_000) is None
