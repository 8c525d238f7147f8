"""Scenario 2: N concurrent event streams on running jobs; delivery latency and server memory.

Each job is watched by `per_job` streams (several tabs or clients on one job: fan-out) and appends
a token and a state_update every `step_ms`. The load generator opens every stream, waits until all
have answered, then for `window_s` compares each entry's arrival with its id's ms. That ms is the
time the step was due (the scheduler passes a timer its due time), so the figure also includes any
lateness of the server in running the step: an upper bound on append -> delivery.
"""

from __future__ import annotations

import time
import tomllib
from dataclasses import dataclass
from typing import Any

import httpx

from ..servers import (
    AUTH,
    BACKFILL,
    PROFILES,
    UvicornSettings,
    client,
    create_job,
    port_of,
    reference_server,
    rss_kb,
    run_load,
)


@dataclass(frozen=True)
class Sizes:
    streams: tuple[int, ...] = (100, 1000)
    per_job: int = 10
    settle_s: float = 1.0
    window_s: float = 5.0

    @classmethod
    def quick(cls) -> Sizes:
        return cls(streams=(100, 1000), window_s=2.0)


def run(settings: UvicornSettings, sizes: Sizes) -> dict[str, Any]:
    step_ms = tomllib.loads((PROFILES / "fanout.toml").read_text())["auvy"]["step_ms"]
    return {
        "per_job": sizes.per_job,
        "step_ms": step_ms,
        "entries_per_step": 2,
        "window_s": sizes.window_s,
        "runs": {str(n): run_one(settings, n, sizes, step_ms) for n in sizes.streams},
    }


def start_spread(http: httpx.Client, count: int, step_ms: int) -> list[str]:
    """Start `count` jobs at evenly spread moments of one step, so their steps (and so their
    appends) are spread over time as independent clients' jobs would be, not all in one burst."""
    start = time.monotonic()
    jobs = []
    for i in range(count):
        delay = start + i * step_ms / 1000 / count - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        jobs.append(create_job(http, BACKFILL))
    return jobs


def run_one(settings: UvicornSettings, streams: int, sizes: Sizes, step_ms: int) -> dict[str, Any]:
    jobs_count = max(1, streams // sizes.per_job)
    with reference_server("fanout", settings) as server:
        pid = server.pid
        assert pid is not None
        with client(server) as http:
            jobs = start_spread(http, jobs_count, step_ms)
        idle_kb = rss_kb(pid)
        peak = [idle_kb or 0]

        def sample() -> None:
            now = rss_kb(pid)
            if now is not None and now > peak[0]:
                peak[0] = now

        plan = {
            "kind": "sse",
            "port": port_of(server),
            "paths": [f"/auvy/v1/jobs/{jobs[i % jobs_count]}/stream" for i in range(streams)],
            "headers": AUTH,
            "settle_s": sizes.settle_s,
            "window_s": sizes.window_s,
            "time_limit_s": 60,
        }
        result = run_load(plan, timeout_s=120, during=sample)
        sample()
    # Entries the window should have seen: every job appends 2 per step, each to `per_job` readers.
    expected = jobs_count * 2 * (sizes.window_s * 1000 / step_ms) * sizes.per_job
    per_stream = None
    if idle_kb is not None and peak[0] > idle_kb:
        per_stream = round((peak[0] - idle_kb) * 1024 / streams)
    return {
        "streams": streams,
        "jobs": jobs_count,
        "opened": result["opened"],
        "failed": result["failed"],
        "open_s": result["open_s"],
        "events_in_window": result["events_in_window"],
        "events_expected": round(expected),
        "events_per_s": result["events_per_s"],
        "latency": result["latency"],
        "rss_idle_kb": idle_kb,
        "rss_peak_kb": peak[0],
        "rss_per_stream_bytes": per_stream,
    }
