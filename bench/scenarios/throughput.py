"""Scenario 1: requests per second and latency of our routes against a bare Starlette route.

Both servers run side by side with the same uvicorn settings; the bare route of each operation
returns, as its constant body, the reference server's own answer to that request, so both sides
encode and send the same document and the ratio is the cost of everything else (routing, auth,
validation, the model, middleware). The load generator alternates between them, bare first, in
`rounds` short rounds, so each ratio compares figures taken moments apart on a machine whose load
changes; the reported ratio is the median of the per-round ratios. Afterwards py-spy samples the
reference server under the same load (a separate run, so sampling never slows a measured one).
"""

from __future__ import annotations

import json
import tempfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from .. import pyspy
from ..load import request_text
from ..servers import (
    AUTH,
    STRAIT_AUTH,
    STRAIT_COMPLETES,
    SUMMARISE,
    UvicornSettings,
    bare_server,
    client,
    create_job,
    port_of,
    reference_server,
    run_load,
    trigger_run,
)
from ..stats import median, ratio


@dataclass(frozen=True)
class Sizes:
    connections: int = 10
    count: int = 2000
    warmup: int = 200
    rounds: int = 6
    profile_s: float = 4.0

    @classmethod
    def quick(cls) -> Sizes:
        return cls(count=1000, warmup=100, rounds=1, profile_s=2.0)


@dataclass(frozen=True)
class Operation:
    title: str
    ours: str  # the request to the reference server
    answer: Any  # its JSON answer, which the baseline returns as its constant body
    body: bytes = b""  # a POST's body, which the baseline reads too

    def bare(self, name: str) -> str:
        if self.body:
            headers = {"Content-Type": "application/json"}
            return request_text("POST", f"/bare/{name}", headers, self.body)
        return request_text("GET", f"/bare/{name}")


def answer(
    http: httpx.Client, method: str, path: str, headers: dict[str, str], body: bytes = b""
) -> Any:
    r = http.request(method, path, headers=headers, content=body or None)
    r.raise_for_status()
    return r.json()


def run(settings: UvicornSettings, sizes: Sizes) -> dict[str, Any]:
    body = json.dumps({"pathway_id": SUMMARISE, "input": {"topic": "bench"}}).encode()
    post_headers = {**AUTH, "Content-Type": "application/json"}
    with reference_server("throughput", settings) as ours, tempfile.TemporaryDirectory() as tmp:
        with client(ours) as http:
            job = create_job(http, SUMMARISE)
            http.post(f"/_mock/auvy/jobs/{job}/outcome", json={"outcome": "complete"})
            run_id = trigger_run(http, STRAIT_COMPLETES)
            operations = {
                "get_job_status": Operation(
                    "GET job status (AUVY)",
                    request_text("GET", f"/auvy/v1/jobs/{job}/status", AUTH),
                    answer(http, "GET", f"/auvy/v1/jobs/{job}/status", AUTH),
                ),
                "get_run": Operation(
                    "GET run (Strait)",
                    request_text("GET", f"/strait/v1/runs/{run_id}", STRAIT_AUTH),
                    answer(http, "GET", f"/strait/v1/runs/{run_id}", STRAIT_AUTH),
                ),
                "create_job": Operation(
                    "POST create job (AUVY)",
                    request_text("POST", "/auvy/v1/jobs", post_headers, body),
                    answer(http, "POST", "/auvy/v1/jobs", post_headers, body),
                    body,
                ),
            }
        bodies = {op: Path(tmp) / f"{op}.json" for op in operations}
        for op, path in bodies.items():
            path.write_text(json.dumps(operations[op].answer), encoding="utf-8")
        with bare_server(settings, bodies) as bare:
            runs: dict[str, dict[str, list[dict[str, Any]]]] = {
                op: {"ours": [], "bare": []} for op in operations
            }
            for _ in range(sizes.rounds):
                for op, spec in operations.items():
                    for side in ("bare", "ours"):
                        plan = {
                            "kind": "http",
                            "port": port_of(ours if side == "ours" else bare),
                            "requests": [spec.ours if side == "ours" else spec.bare(op)],
                            "connections": sizes.connections,
                            "count": sizes.count,
                            "warmup": sizes.warmup,
                            "time_limit_s": 60,
                        }
                        runs[op][side].append(run_load(plan, timeout_s=90))
        profiles = {
            op: profile_under_load(ours.pid, port_of(ours), spec.ours, sizes)
            for op, spec in operations.items()
        }
    return {
        "load": {
            "connections": sizes.connections,
            "requests_per_run": sizes.count,
            "warmup_per_run": sizes.warmup,
            "rounds": sizes.rounds,
        },
        "operations": {
            op: summarise(spec.title, runs[op]["ours"], runs[op]["bare"])
            for op, spec in operations.items()
        },
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
