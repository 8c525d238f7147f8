"""Scenario 1: requests per second and latency of our routes against a bare Starlette route.

Both servers run side by side with the same uvicorn settings; the load generator alternates
between them, bare first, in `rounds` rounds, so each ratio compares figures taken moments apart.
The reported ratio is the median of the per-round ratios. Afterwards py-spy samples the reference
server under the same load (a separate run, so sampling never slows a measured one).
"""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from .. import pyspy
from ..load import request_text
from ..servers import (
    AUTH,
    SUMMARISE,
    UvicornSettings,
    bare_server,
    client,
    create_job,
    port_of,
    reference_server,
    run_load,
)
from ..stats import median, ratio


@dataclass(frozen=True)
class Sizes:
    connections: int = 10
    count: int = 4000
    warmup: int = 400
    rounds: int = 3
    profile_s: float = 4.0

    @classmethod
    def quick(cls) -> Sizes:
        return cls(count=1000, warmup=100, rounds=1, profile_s=2.0)


NOT_YET = [
    {
        "operation": "GET run (Strait)",
        "reason": "not yet available: the Strait API is not served yet (see the issues)",
    }
]


def run(settings: UvicornSettings, sizes: Sizes) -> dict[str, Any]:
    body = json.dumps({"pathway_id": SUMMARISE, "input": {"topic": "bench"}}).encode()
    post_headers = {**AUTH, "Content-Type": "application/json"}
    with bare_server(settings) as bare, reference_server("throughput", settings) as ours:
        with client(ours) as http:
            job = create_job(http, SUMMARISE)
            http.post(f"/_mock/auvy/jobs/{job}/outcome", json={"outcome": "complete"})
        operations = {
            "get_job_status": {
                "title": "GET job status (AUVY)",
                "ours": (ours, request_text("GET", f"/auvy/v1/jobs/{job}/status", AUTH)),
                "bare": (bare, request_text("GET", "/bare")),
            },
            "create_job": {
                "title": "POST create job (AUVY)",
                "ours": (ours, request_text("POST", "/auvy/v1/jobs", post_headers, body)),
                "bare": (
                    bare,
                    request_text("POST", "/bare", {"Content-Type": "application/json"}, body),
                ),
            },
        }
        runs: dict[str, dict[str, list[dict[str, Any]]]] = {
            op: {"ours": [], "bare": []} for op in operations
        }
        for _ in range(sizes.rounds):
            for op, spec in operations.items():
                for side in ("bare", "ours"):
                    server, request = spec[side]
                    plan = {
                        "kind": "http",
                        "port": port_of(server),
                        "requests": [request],
                        "connections": sizes.connections,
                        "count": sizes.count,
                        "warmup": sizes.warmup,
                        "time_limit_s": 60,
                    }
                    runs[op][side].append(run_load(plan, timeout_s=90))
        profiles = {}
        for op, spec in operations.items():
            server, request = spec["ours"]
            profiles[op] = profile_under_load(server.pid, port_of(server), request, sizes)
    return {
        "load": {
            "connections": sizes.connections,
            "requests_per_run": sizes.count,
            "warmup_per_run": sizes.warmup,
            "rounds": sizes.rounds,
        },
        "operations": {
            op: summarise(str(spec["title"]), runs[op]["ours"], runs[op]["bare"])
            for op, spec in operations.items()
        },
        "not_yet_available": NOT_YET,
        "profiles": profiles,
    }


def summarise(title: str, ours: list[dict[str, Any]], bare: list[dict[str, Any]]) -> dict[str, Any]:
    ratios = [ratio(o["rps"], b["rps"]) for o, b in zip(ours, bare, strict=True)]
    valid = [r for r in ratios if r is not None]
    return {
        "title": title,
        "ours": side_figures(ours),
        "bare": side_figures(bare),
        "round_ratios": [round(r, 3) if r is not None else None for r in ratios],
        "ratio": round(median(valid), 3) if valid else None,
    }


def side_figures(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """The median round's figures (by throughput), plus every round's throughput."""
    ordered = sorted(runs, key=lambda r: r["rps"] or 0)
    mid = ordered[len(ordered) // 2]
    statuses: dict[str, int] = {}
    for r in runs:
        for code, n in r["statuses"].items():
            statuses[code] = statuses.get(code, 0) + n
    return {
        "rps": mid["rps"],
        "latency": mid["latency"],
        "round_rps": [r["rps"] for r in runs],
        "statuses": statuses,
        "errors": sum(r["errors"] for r in runs),
        "timed_out": any(r["timed_out"] for r in runs),
    }


def profile_under_load(pid: int | None, port: int, request: str, sizes: Sizes) -> dict[str, Any]:
    if pid is None:
        return {"error": "the server is not running"}
    if pyspy.available() is None:
        return {"error": "py-spy is not installed (the bench extra installs it)"}
    plan = {
        "kind": "http",
        "port": port,
        "requests": [request],
        "connections": sizes.connections,
        # Enough requests to outlast the sampling window; the time limit ends the run.
        "count": 1_000_000,
        "time_limit_s": sizes.profile_s + 1.5,
    }
    with ThreadPoolExecutor(max_workers=1) as pool:
        sampling = pool.submit(pyspy.record, pid, sizes.profile_s)
        run_load(plan, timeout_s=sizes.profile_s + 30)
        try:
            profile = sampling.result(timeout=sizes.profile_s + 40)
        except RuntimeError as exc:
            return {"error": str(exc)}
    return pyspy.summary(profile, sizes.profile_s)
