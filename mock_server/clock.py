"""The only place that knows real time.

Everything time-dependent (step pacing, schedules, TTLs, timeouts) asks an injected `Clock`, so
tests drive time with `ManualClock.advance()` instead of sleeping.
"""

from __future__ import annotations

import functools
import time
from datetime import UTC, datetime, timedelta
from typing import Protocol


class Clock(Protocol):
    def now_ms(self) -> int:
        """Milliseconds since the Unix epoch."""
        ...

    @property
    def manual(self) -> bool:
        """True when time only moves when told to (the server then never sleeps on it)."""
        ...

    def advance(self, ms: int) -> int:
        """Move time forward by `ms`; returns the new now."""
        ...


class SystemClock:
    """Real time, plus an offset so a frontend developer can still skip ahead (advance)."""

    manual = False

    def __init__(self) -> None:
        self._offset = 0

    def now_ms(self) -> int:
        return time.time_ns() // 1_000_000 + self._offset

    def advance(self, ms: int) -> int:
        if ms < 0:
            raise ValueError("the clock only moves forward")
        self._offset += ms
        return self.now_ms()


class SkewedClock(SystemClock):
    """Real time as one reference host reads it: this host's clock plus a measured skew. The
    Redis store measures it against Redis's TIME on every round trip that loads the world, so
    the workers of one shared world agree on now whichever host each runs on."""

    def __init__(self) -> None:
        super().__init__()
        self.skew_ms = 0

    def now_ms(self) -> int:
        return time.time_ns() // 1_000_000 + self.skew_ms + self._offset

    def observe(self, reference_ms: int, local_ms: int) -> None:
        """The reference read `reference_ms` when this host read `local_ms`. A change of the
        skew under SKEW_TOLERANCE_MS is noise (how long the round trip took), and following it
        would only make now jitter."""
        skew = reference_ms - local_ms
        if abs(skew - self.skew_ms) >= SKEW_TOLERANCE_MS:
            self.skew_ms = skew


SKEW_TOLERANCE_MS = 2


class ManualClock:
    manual = True

    def __init__(self, start_ms: int = 1_767_225_600_000) -> None:
        # Default start is 2026-01-01T00:00:00Z: a fixed, realistic epoch keeps ids reproducible.
        self._now = start_ms

    def now_ms(self) -> int:
        return self._now

    def advance(self, ms: int) -> int:
        if ms < 0:
            raise ValueError("a manual clock only moves forward")
        self._now += ms
        return self._now

    def set(self, now_ms: int) -> None:
        """Jump to any time, backwards included: stream ids must stay monotonic regardless."""
        self._now = now_ms


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MS = timedelta(milliseconds=1)


def iso(ms: int | None) -> str | None:
    """RFC 3339 with milliseconds and a Z, as every API here renders timestamps."""
    if ms is None:
        return None
    return _iso_ms(ms)


@functools.lru_cache(maxsize=4096, typed=True)
def _iso_ms(ms: int) -> str:
    # Cached whole: a job's or a run's timestamps are rendered again on every read of it, and
    # even with the seconds cached the formatting was 5% of a status read.
    return f"{_iso_seconds(ms // 1000)}.{ms % 1000:03d}Z"


@functools.lru_cache(maxsize=4096)
def _iso_seconds(seconds: int) -> str:
    # Cached: a job's timestamps are rendered on every status read, and formatting a datetime
    # was a tenth of a status request's time.
    # Not strftime("%Y"): it does not pad years below 1000 ("763-10-10"), which RFC 3339's
    # four-digit date-fullyear forbids.
    t = datetime.fromtimestamp(seconds, tz=UTC)
    return f"{t.year:04d}-{t.month:02d}-{t.day:02d}T{t.hour:02d}:{t.minute:02d}:{t.second:02d}"


def parse_iso(text: str) -> int:
    """Milliseconds since the epoch for an RFC 3339 date-time; a naive time is taken as UTC."""
    dt = datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    # Integer arithmetic: timestamp() * 1000 is a float and loses a millisecond (8.123 s).
    return (dt - _EPOCH) // _MS
