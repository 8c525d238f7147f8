"""Waiting for a job or run to reach a status, the way every API's client does it: by polling."""

from __future__ import annotations

import time
from collections.abc import Callable, Collection
from typing import Any

from ..checks import ConformanceFailure


def wait_for_status(
    read: Callable[[], dict[str, Any]],
    statuses: Collection[str],
    *,
    final: Collection[str],
    timeout_s: float,
    interval_s: float,
    what: str,
    describe: Callable[[dict[str, Any]], str] | None = None,
) -> dict[str, Any]:
    """Poll `read` until its status is one of `statuses`; fail naming the statuses awaited, the
    deadline and the last status seen.

    A status in `final` never changes again, so reaching one that was not asked for ends the wait
    at once instead of at the deadline."""
    deadline = time.monotonic() + timeout_s
    awaited = "/".join(sorted(statuses))
    while True:
        # At least one read, however short the timeout: a status already reached is an answer.
        last = read()
        status = last.get("status")
        if status in statuses:
            return last
        if status in final:
            detail = f"it reached {status!r}, which never changes"
            break
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            detail = f"awaited within {timeout_s:g} s; last status {status!r}"
            break
        time.sleep(min(interval_s, remaining))
    if describe is not None and last:
        detail += f" ({describe(last)})"
    raise ConformanceFailure(f"{what} did not reach {awaited}", detail)
