"""429 RATE_LIMIT: carries Retry-After and the envelope; the request succeeds after waiting.

Rate limiting is off by default on the reference server; the profile names a key that has a
small limit of its own (`auvy.keys.rate_limited`, `auvy.rate_limit`).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

import pytest

from conformance.checks import ConformanceFailure, auvy_error_envelope, status_is
from conformance.clients.auvy import AuvyClient
from conformance.profile import TargetProfile

req = pytest.mark.req


def retry_after_s(raw: str) -> float:
    """Retry-After is delay-seconds or an HTTP-date (RFC 9110 section 10.2.3); both are fine."""
    if raw.strip().isdigit():
        return float(raw.strip())
    try:
        when = parsedate_to_datetime(raw)
    except (TypeError, ValueError):
        raise ConformanceFailure(
            f"Retry-After is neither seconds nor an HTTP-date: {raw!r}"
        ) from None
    if when.tzinfo is None:
        raise ConformanceFailure(f"Retry-After's HTTP-date has no zone (GMT): {raw!r}")
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


@req("auvy.errors.rate-limit")
def test_429_carries_retry_after_and_succeeds_after_it(
    auvy_as: Callable[[str | None], AuvyClient], profile: TargetProfile
) -> None:
    requests = int(profile.need("auvy.rate_limit.requests"))
    client = auvy_as("rate_limited")
    client.api.retry_429 = 0  # see the 429 itself rather than the helper's retry
    limited = None
    for _ in range(requests * 3 + 5):
        response = client.list_jobs(params={"limit": 1})
        if response.status_code == 429:
            limited = response
            break
        status_is(response, 200)
    if limited is None:
        raise ConformanceFailure(
            f"no 429 after {requests * 3 + 5} requests over a limit of {requests}"
        )
    auvy_error_envelope(limited, 429, "RATE_LIMIT")
    raw = limited.headers.get("retry-after")
    assert raw is not None, "a 429 without Retry-After"
    time.sleep(retry_after_s(raw) + 0.2)
    status_is(client.list_jobs(params={"limit": 1}), 200)
    # The suite's own client helpers wait out a 429 after Retry-After (and retry nothing else),
    # so a burst over the limit still succeeds through them. One test owns this key, so no
    # parallel test eats its window.
    client.api.retry_429 = 3
    statuses = [client.list_jobs(params={"limit": 1}).status_code for _ in range(requests + 2)]
    assert statuses == [200] * len(statuses), statuses
