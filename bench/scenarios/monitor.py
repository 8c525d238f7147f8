"""Scenario 7: what the conformance monitor costs. The reference server is measured directly
and through the monitor (`python -m monitor` in front of it), in the same run, alternating.

HTTP: GET job status (AUVY) over keep-alive connections, closed loop (each connection sends its
next request when the previous answer is complete), `rounds` times each way; the figures are the
median per-round ratio of throughput (via monitor / direct) and the median added p50 and p99
latency. The load runs as fast as the two allow, not at a fixed rate: the issue's "at 1,000
requests/s" is not what is measured, so these are reported figures, not goals.

SSE: `streams` event streams on long jobs, read directly and then through the monitor, each for
`window_s`; an entry's delivery latency is its arrival time less its id's ms (as in scenario 2).
The added p99 is judged against the issue's goal (SSE events forwarded within 5 ms).
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from conformance.server import ReferenceServer

from ..load import request_text
from ..servers import (
    AUTH,
    BACKFILL,
    SUMMARISE,
    UvicornSettings,
    client,
    create_job,
    port_of,
    reference_server,
    rss_kb,
    run_load,
)
from ..stats import median, ratio


@dataclass(frozen=True)
class Sizes:
    connections: int = 10
    count: int = 2000
    warmup: int = 200
    rounds: int = 4
    streams: int = 50
    per_job: int = 10
    settle_s: float = 1.0
    window_s: float = 3.0

    @classmethod
    def quick(cls) -> Sizes:
        return cls(count=1000, warmup=100, rounds=1, window_s=2.0)


@contextmanager
def monitored(upstream: ReferenceServer, report_dir: Path) -> Iterator[ReferenceServer]:
    """The monitor in front of `upstream`, on its own pre-bound port; always stopped."""
    monitor = ReferenceServer(
        extra_args=("--upstream", upstream.url, "--report-dir", str(report_dir)),
        module="monitor",
    )
    try:
        monitor.start()  # ready when /_mock/health answers through it
        yield monitor
    finally:
        monitor.stop()


def run(settings: UvicornSettings, sizes: Sizes) -> dict[str, Any]:
    with (
        reference_server("fanout", settings) as server,
        tempfile.TemporaryDirectory() as tmp,
        monitored(server, Path(tmp)) as monitor,
    ):
        with client(server) as http:
            job = create_job(http, SUMMARISE)
            http.post(f"/_mock/auvy/jobs/{job}/outcome", json={"outcome": "complete"})
            long_jobs = [
                create_job(http, BACKFILL) for _ in range(max(1, sizes.streams // sizes.per_job))
            ]
        request = request_text("GET", f"/auvy/v1/jobs/{job}/status", AUTH)
        runs: dict[str, list[dict[str, Any]]] = {"direct": [], "monitor": []}
        for _ in range(sizes.rounds):
            for side, target in (("direct", server), ("monitor", monitor)):
                plan = {
                    "kind": "http",
                    "port": port_of(target),
                    "requests": [request],
                    "connections": sizes.connections,
                    "count": sizes.count,
                    "warmup": sizes.warmup,
                    "time_limit_s": 60,
                }
                runs[side].append(run_load(plan, timeout_s=90))
        sse: dict[str, Any] = {}
        for side, target in (("direct", server), ("monitor", monitor)):
            plan = {
                "kind": "sse",
                "port": port_of(target),
                "paths": [
                    f"/auvy/v1/jobs/{long_jobs[i % len(long_jobs)]}/stream"
                    for i in range(sizes.streams)
                ],
                "headers": AUTH,
                "settle_s": sizes.settle_s,
                "window_s": sizes.window_s,
                "time_limit_s": 60,
            }
            result = run_load(plan, timeout_s=120)
            sse[side] = {
                k: result.get(k) for k in ("opened", "failed", "events_in_window", "latency")
            }
        monitor_rss = rss_kb(monitor.pid) if monitor.pid is not None else None
        status = httpx.get(f"{monitor.url}/_monitor/status", timeout=10).json()
    return {
        "load": {
            "connections": sizes.connections,
            "requests_per_run": sizes.count,
            "warmup_per_run": sizes.warmup,
            "rounds": sizes.rounds,
            "streams": sizes.streams,
            "window_s": sizes.window_s,
        },
        "get_job_status": summarise(runs["direct"], runs["monitor"]),
        "sse": {**sse, "added_p99_ms": added(sse, "p99_ms"), "added_p50_ms": added(sse, "p50_ms")},
        "monitor": {
            "rss_kb": monitor_rss,
            "exchanges": status.get("exchanges"),
            "violations": sum(r["violations"] for r in status.get("requirements", [])),
        },
    }


def added(sse: dict[str, Any], key: str) -> float | None:
    try:
        delta = float(sse["monitor"]["latency"][key]) - float(sse["direct"]["latency"][key])
    except (KeyError, TypeError):
        return None
    return round(delta, 3)


def summarise(direct: list[dict[str, Any]], via: list[dict[str, Any]]) -> dict[str, Any]:
    ratios = [ratio(m["rps"], d["rps"]) for d, m in zip(direct, via, strict=True)]
    valid = [r for r in ratios if r is not None]

    def added_at(key: str) -> float | None:
        deltas = [
            m["latency"][key] - d["latency"][key]
            for d, m in zip(direct, via, strict=True)
            if d.get("latency") and m.get("latency")
        ]
        return round(median(deltas), 3) if deltas else None

    return {
        "direct_rps": [d["rps"] for d in direct],
        "monitor_rps": [m["rps"] for m in via],
        "round_ratios": [round(r, 3) if r is not None else None for r in ratios],
        "ratio": round(median(valid), 3) if valid else None,
        "added_p50_ms": added_at("p50_ms"),
        "added_p99_ms": added_at("p99_ms"),
        "direct_latency": direct[-1].get("latency"),
        "monitor_latency": via[-1].get("latency"),
        "statuses": {"direct": direct[-1].get("statuses"), "monitor": via[-1].get("statuses")},
    }


def render(data: dict[str, Any]) -> list[str]:
    """The section of bench.md."""
    get = data["get_job_status"]
    sse = data["sse"]
    mon = data["monitor"]
    return [
        f"GET job status (AUVY), {data['load']['connections']} connections, closed loop, "
        f"{data['load']['rounds']} round(s): throughput via monitor / direct "
        f"{json.dumps(get['ratio'])} (rounds {get['round_ratios']}; direct "
        f"{get['direct_rps']} req/s, via monitor {get['monitor_rps']} req/s); added latency "
        f"p50 {get['added_p50_ms']} ms, p99 {get['added_p99_ms']} ms.",
        "",
        f"SSE, {data['load']['streams']} streams for {data['load']['window_s']} s: delivery "
        f"p50 / p99 direct {_lat(sse.get('direct'))}, via monitor {_lat(sse.get('monitor'))}; "
        f"added p99 {sse['added_p99_ms']} ms.",
        "",
        f"The monitor: {mon['exchanges']} exchanges checked, {mon['violations']} violation(s), "
        f"resident memory {mon['rss_kb']} KiB at the end.",
        "",
    ]


def _lat(side: Any) -> str:
    latency = side.get("latency") if isinstance(side, dict) else None
    if not latency:
        return "n/a"
    return f"{latency['p50_ms']:.1f} / {latency['p99_ms']:.1f} ms"
