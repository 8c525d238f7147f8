"""A sliding-window rate limiter on the engine's clock (deterministic under a manual clock)."""

from __future__ import annotations

from collections import deque

from .clock import Clock


class RateLimiter:
    def __init__(self, clock: Clock) -> None:
        self.clock = clock
        self._hits: dict[str, deque[int]] = {}
        # Counts the calls that changed `_hits`: a GET changes the limiter, and the Redis store,
        # which takes a safe request to change nothing else, asks this whether it did.
        self.changes = 0

    def hit(self, key: str, limit: int, window_ms: int) -> int | None:
        """Count one request; None when allowed, else the ms until the next one would be."""
        now = self.clock.now_ms()
        self.changes += 1
        hits = self._hits.setdefault(key, deque())
        while hits and hits[0] <= now - window_ms:
            hits.popleft()
        if len(hits) >= limit:
            return hits[0] + window_ms - now
        hits.append(now)
        return None

    def clear(self) -> None:
        self.changes += 1
        self._hits.clear()
