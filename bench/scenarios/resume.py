"""Scenario 3: the cost of resuming (`after`) on a long stream against a short one.

In process: `EventStream.read_after` just before the end of a stream of 1,000 and of 100,000
entries, so every read returns the same few entries and only the search differs (bisect: O(log n)).
Over HTTP: `GET /v1/jobs/{id}/stream?after=...` near the end of two finished jobs whose streams hold
about 1,000 and 100,000 entries, with the load generator (a finished job's stream ends after its
terminal entry, so each resume is one bounded request).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import httpx

from mock_server.model.stream import EventStream
from mock_server.model.stream_id import StreamId

from ..load import request_text
from ..servers import AUTH, BACKFILL, client, create_job, port_of, reference_server, run_load
from ..servers import UvicornSettings as Settings
from ..stats import median, ratio

TAIL = 10  # entries each resume returns


@dataclass(frozen=True)
class Sizes:
    small: int = 1_000
    large: int = 100_000
    reads: int = 2_000  # per timed batch, in process
    batches: int = 7
    http_count: int = 1_000
    http_warmup: int = 100
    http_rounds: int = 3
    connections: int = 4

    @classmethod
    def quick(cls) -> Sizes:
        return cls(reads=500, batches=3, http_count=300, http_warmup=30, http_rounds=1)


def run(settings: Settings, sizes: Sizes) -> dict[str, Any]:
    return {
        "tail": TAIL,
        "sizes": [sizes.small, sizes.large],
        "in_process": in_process(sizes),
        "http": over_http(settings, sizes),
    }


def in_process(sizes: Sizes) -> dict[str, Any]:
    per_read: dict[int, float] = {}
    for n in (sizes.small, sizes.large):
        stream = EventStream(0, maxlen=None, ttl_ms=None)
        for i in range(n):
            # Two entries per ms, like a job's token + state_update at each step.
            stream.append({"type": "token", "content": f"t{i}"}, 1_000 + i // 2)
        after = stream.read_after(None, 0).entries[-TAIL - 1].id
        assert len(stream.read_after(after, 0).entries) == TAIL
        timings = []
        for _ in range(sizes.batches):
            start = time.perf_counter()
            for _ in range(sizes.reads):
                stream.read_after(after, 0)
            timings.append((time.perf_counter() - start) / sizes.reads)
        per_read[n] = min(timings)  # the least disturbed batch
    growth = ratio(per_read[sizes.large], per_read[sizes.small])
    return {
        "per_read_us": {str(n): round(t * 1e6, 3) for n, t in per_read.items()},
        "ratio": round(growth, 3) if growth is not None else None,
    }


def over_http(settings: Settings, sizes: Sizes) -> dict[str, Any]:
    with reference_server("resume", settings) as server, client(server) as http:
        small, large = create_job(http, BACKFILL), create_job(http, BACKFILL)
        # A step appends 2 entries (a token and a state_update); the first tick adds 1.
        advance(http, sizes.small // 2)
        cancel(http, small)
        advance(http, (sizes.large - sizes.small) // 2)
        cancel(http, large)
        jobs = {sizes.small: small, sizes.large: large}
        replay_s: dict[int, float] = {}
        requests: dict[int, str] = {}
        entries: dict[int, int] = {}
        for n, job in jobs.items():
            start = time.perf_counter()
            ids = stream_ids(http, job)
            replay_s[n] = time.perf_counter() - start
            entries[n] = len(ids)
            path = f"/auvy/v1/jobs/{job}/stream?after={ids[-TAIL - 1].encode()}"
            requests[n] = request_text("GET", path, AUTH)
        runs: dict[int, list[dict[str, Any]]] = {n: [] for n in jobs}
        for _ in range(sizes.http_rounds):
            for n in jobs:
                plan = {
                    "kind": "http",
                    "port": port_of(server),
                    "requests": [requests[n]],
                    "connections": sizes.connections,
                    "count": sizes.http_count,
                    "warmup": sizes.http_warmup,
                    "time_limit_s": 60,
                }
                runs[n].append(run_load(plan, timeout_s=90))
    p50 = {n: median([r["latency"]["p50_ms"] for r in rs]) for n, rs in runs.items()}
    growth = ratio(p50[sizes.large], p50[sizes.small])
    return {
        "entries": {str(n): entries[n] for n in jobs},
        "full_replay_s": {str(n): round(t, 3) for n, t in replay_s.items()},
        "per_read_p50_ms": {str(n): round(t, 3) for n, t in p50.items()},
        "runs": {str(n): [_brief(r) for r in rs] for n, rs in runs.items()},
        "ratio": round(growth, 3) if growth is not None else None,
    }


def _brief(run: dict[str, Any]) -> dict[str, Any]:
    return {"rps": run["rps"], "latency": run["latency"], "statuses": run["statuses"]}


def advance(http: httpx.Client, steps: int) -> None:
    # One step is 1 ms in bench/profiles/resume.toml.
    http.post("/_mock/clock/advance", json={"ms": steps}).raise_for_status()


def cancel(http: httpx.Client, job: str) -> None:
    http.post(f"/auvy/v1/jobs/{job}/cancel", headers=AUTH).raise_for_status()


def stream_ids(http: httpx.Client, job: str) -> list[StreamId]:
    """Every id of a finished job's stream (a full replay, which ends at the terminal entry)."""
    ids = []
    with http.stream("GET", f"/auvy/v1/jobs/{job}/stream", headers=AUTH) as response:
        response.raise_for_status()
        for line in response.iter_lines():
            if line.startswith("id: "):
                ids.append(StreamId.parse(line[4:]))
    return ids
