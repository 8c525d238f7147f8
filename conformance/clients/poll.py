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
    """Poll `read` until its status is one of `statuses`; fail naming the last status seen.

    A status in `final` never changes again, so reaching one that was not asked for ends the wait
    at once instead of at the deadline."""
    deadline = time.monotonic() + timeout_s
    last: dict[str, Any] = {}
    while time.monotonic() < deadline:
        last = read()
        if last["status"] in statuses:
            return last
        if last["status"] in final:
            break
        time.sleep(interval_s)
    detail = f"last status {last.get('status')!r}"
    if describe is not None and last:
        detail += f" ({describe(last)})"
    raise ConformanceFailure(f"{what} did not reach {'/'.join(sorted(statuses))}", detail)
