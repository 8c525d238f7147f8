"""Timestamps: every instant a `date-time` can name renders as RFC 3339 and reads back."""

from __future__ import annotations

import re
from datetime import UTC, datetime

from hypothesis import given
from hypothesis import strategies as st

from mock_server.clock import SkewedClock, iso, parse_iso

RFC3339_MS = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z")
FIRST = int(datetime(1, 1, 1, tzinfo=UTC).timestamp() * 1000)
LAST = int(datetime(9999, 12, 31, 23, 59, 59, 999000, tzinfo=UTC).timestamp() * 1000)


@given(st.integers(min_value=FIRST, max_value=LAST))
def test_every_instant_renders_as_rfc3339_and_reads_back(ms: int) -> None:
    text = iso(ms)
    assert text is not None and RFC3339_MS.fullmatch(text), text
    assert parse_iso(text) == ms


def test_years_below_1000_keep_four_digits() -> None:
    ms = int(datetime(763, 10, 10, 4, 14, 14, tzinfo=UTC).timestamp() * 1000)
    assert iso(ms) == "0763-10-10T04:14:14.000Z"
    assert iso(FIRST) == "0001-01-01T00:00:00.000Z"


def test_a_skewed_clock_follows_its_reference_and_ignores_round_trip_noise() -> None:
    clock = SkewedClock()
    local = clock.now_ms()
    clock.observe(local + 60_000, local)  # this host runs a minute behind the reference
    assert clock.skew_ms == 60_000
    assert abs(clock.now_ms() - (local + 60_000)) < 1_000
    clock.observe(local + 60_001, local)  # a millisecond is how long the round trip took
    assert clock.skew_ms == 60_000
    clock.observe(local - 5_000, local)  # the reference itself moved (or this host's clock)
    assert clock.skew_ms == -5_000
    # The controllable offset (advance) still adds on top, and is what a snapshot shares.
    clock.advance(1_000)
    assert abs(clock.now_ms() - (local - 4_000)) < 1_000
