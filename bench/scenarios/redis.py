"""Scenario 6: the Redis store (`--store redis://`) beside the in-memory store, in one run.

One throwaway redis-server on a free loopback port serves the whole scenario and is always
stopped. Three servers take turns: (a) the in-memory store with 1 worker, the baseline, (b) the
Redis store with 1 worker, (c) the Redis store with 2 workers. Each starts fresh, on a flushed
database, so none begins with another's jobs or its change feed.

Throughput: GET job status (AUVY), a listing of one workspace's jobs with creations in another
in turn, and POST create job (AUVY) against each, in `rounds` rounds of a, b, c; each ratio
(b/a, c/a, c/b) is the median of the per-round ratios, so it compares figures taken moments
apart on a machine whose load changes. The GETs run before POST, so they read a world that holds
the seed and one job in the workspace they read, not the POST run's thousands.

A request *waited on another* when its commit was refused, its read was found stale and it ran
again, or it waited for the turn (see store/shared.py). With 2 workers, creating in two
workspaces in turn, and listing one while creating in another, none may wait: every such
request touches another partition.

SSE delivery: `streams` readers over `streams / per_job` running jobs, measured as the fan-out
scenario does (arrival minus the entry id's ms). With 2 workers the kernel spreads the readers'
connections over both, while each step runs in exactly one of them, so some readers sit on the
worker that did not append and are woken through the store's change feed.
"""

from __future__ import annotations

import importlib.util
import json
import tomllib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import httpx

from ..cpu import metered
from ..load import request_text
from ..servers import (
    AUTH,
    GLOBEX_AUTH,
    GLOBEX_SUMMARISE,
    PROFILES,
    SUMMARISE,
    UvicornSettings,
    client,
    create_job,
    port_of,
    reference_server,
    run_load,
)
from ..stats import median, ratio
from .fanout import start_spread
from .throughput import side_figures


@dataclass(frozen=True)
class Sizes:
    connections: int = 10
    # Each run measures for `run_s` after its warm-up (`count` only caps it): every server is
    # measured over the same time, however fast. Runs of a fixed count (1,000) lasted from 0.07
    # to 0.5 s, and one round's ratio moved by a tenth either way on a shared machine.
    run_s: float = 2.0
    count: int = 200_000
    warmup: int = 200
    rounds: int = 5
    streams: int = 1000  # issue 16's goal: p99 delivery under 50 ms at 1,000 streams
    per_job: int = 10
    settle_s: float = 1.0
    window_s: float = 5.0

    @classmethod
    def quick(cls) -> Sizes:
        return cls(run_s=0.5, warmup=30, rounds=1, streams=100, window_s=2.0)


@dataclass(frozen=True)
class Setup:
    title: str
    workers: int
    redis: bool

    def args(self, url: str) -> tuple[str, ...]:
        return ("--store", url, "--workers", str(self.workers)) if self.redis else ()


SETUPS = {
    "memory": Setup("in memory, 1 worker", 1, redis=False),
    "redis_1": Setup("Redis, 1 worker", 1, redis=True),
    "redis_2": Setup("Redis, 2 workers", 2, redis=True),
}
# (numerator, denominator): the Redis store's cost, and what a second worker buys back.
RATIOS = (("redis_1", "memory"), ("redis_2", "memory"), ("redis_2", "redis_1"))
OPERATIONS = {
    "get_job_status": "GET job status (AUVY)",
    "list_jobs": "GET list jobs (AUVY) of one workspace, another's created in turn",
    "create_job": "POST create job (AUVY)",
}


def ratio_key(numerator: str, denominator: str) -> str:
    return f"{numerator}/{denominator}"


def skip_reason(has_redis_py: bool, binary: str | None) -> str | None:
    """Why the scenario cannot run here, or None when it can."""
    if not has_redis_py:
        return "redis-py is not installed (the redis extra: pip install -e '.[bench,redis]')"
    if binary is None:
        from ..redis_server import MISSING

        return MISSING
    return None


def locate_binary() -> str | None:
    # Imported here: bench.redis_server needs redis-py, which the skip check runs without.
    from ..redis_server import redis_server_binary

    return redis_server_binary()


def run(settings: UvicornSettings, sizes: Sizes) -> dict[str, Any]:
    has_redis_py = importlib.util.find_spec("redis") is not None
    binary = locate_binary() if has_redis_py else None
    reason = skip_reason(has_redis_py, binary)
    if reason is not None:
        return {"skipped": reason}
    assert binary is not None
    from ..redis_server import RedisServer

    with RedisServer(binary) as redis_server:
        url = redis_server.url
        rounds = [
            {
                key: measure_throughput(settings, setup, url, sizes, redis_server.pid)
                for key, setup in SETUPS.items()
            }
            for _ in range(sizes.rounds)
        ]
        sse = {key: sse_or_error(settings, setup, url, sizes) for key, setup in SETUPS.items()}
        version = redis_version(url)
    step_ms = fanout_step_ms()
    jobs = max(1, sizes.streams // sizes.per_job)
    return {
        "redis_version": version,
        "setups": {
            key: {"title": s.title, "workers": s.workers, "store": "redis" if s.redis else "memory"}
            for key, s in SETUPS.items()
        },
        "load": {
            "connections": sizes.connections,
            "seconds_per_run": sizes.run_s,
            "warmup_per_run": sizes.warmup,
            "rounds": sizes.rounds,
        },
        "throughput": {op: summarise(title, op, rounds) for op, title in OPERATIONS.items()},
        "sse": {
            "streams": sizes.streams,
            "per_job": sizes.per_job,
            "jobs": jobs,
            "step_ms": step_ms,
            "entries_per_step": 2,
            "window_s": sizes.window_s,
            # Every job appends 2 entries per step, each to `per_job` readers.
            "events_expected": round(jobs * 2 * (sizes.window_s * 1000 / step_ms) * sizes.per_job),
            "runs": sse,
        },
    }


def summarise(title: str, op: str, rounds: list[dict[str, dict[str, Any]]]) -> dict[str, Any]:
    """One operation's figures per setup (the median round's) and its ratios (median of rounds)."""
    ratios: dict[str, Any] = {}
    for num, den in RATIOS:
        per_round = [ratio(r[num][op]["rps"], r[den][op]["rps"]) for r in rounds]
        valid = [x for x in per_round if x is not None]
        ratios[ratio_key(num, den)] = {
            "round_ratios": [round(x, 3) if x is not None else None for x in per_round],
            "ratio": round(median(valid), 3) if valid else None,
        }
    setups = {}
    for key in SETUPS:
        runs = [r[key][op] for r in rounds]
        setups[key] = side_figures(runs)
        # Where the CPU went, in the median round and in each (see bench/cpu.py).
        by_rps = sorted(runs, key=lambda r: r["rps"] or 0)
        setups[key]["cpu"] = by_rps[len(by_rps) // 2].get("cpu")
        setups[key]["round_cpu"] = [r.get("cpu") for r in runs]
        counts = [run["store"] for run in runs if "store" in run]
        if counts:
            total = {name: sum(c.get(name, 0) for c in counts) for name in counts[0]}
            refused = sum(total.get(k, 0) for k in ("conflicts", "streams_moved", "cascades"))
            commits = total.get("commits", 0)
            total["refused_per_commit"] = round(refused / commits, 3) if commits else None
            # See the module's docstring.
            total["waits"] = refused + total.get("turn_waits", 0) + total.get("stale_reads", 0)
            setups[key]["store"] = total
    return {"title": title, "setups": setups, "ratios": ratios}


@contextmanager
def fresh_server(profile: str, settings: UvicornSettings, setup: Setup, url: str) -> Iterator[Any]:
    """A server of `setup`; a Redis one starts on an empty database, so it seeds its own world."""
    if setup.redis:
        flush(url)
    with reference_server(profile, settings, setup.args(url)) as server:
        yield server


def measure_throughput(
    settings: UvicornSettings, setup: Setup, url: str, sizes: Sizes, redis_pid: int | None = None
) -> dict[str, dict[str, Any]]:
    with fresh_server("throughput", settings, setup, url) as server:
        with client(server) as http:
            job = create_job(http, SUMMARISE)
            done = http.post(f"/_mock/auvy/jobs/{job}/outcome", json={"outcome": "complete"})
            done.raise_for_status()
        requests = {
            "get_job_status": [request_text("GET", f"/auvy/v1/jobs/{job}/status", AUTH)],
            "list_jobs": [
                request_text("GET", "/auvy/v1/jobs", AUTH),
                _create_request(GLOBEX_AUTH, GLOBEX_SUMMARISE),
            ],
            # Two workspaces in turn: a refused commit (counted) would be a request waiting on
            # one of another workspace, or on an unrelated one of its own.
            "create_job": [
                _create_request(AUTH, SUMMARISE),
                _create_request(GLOBEX_AUTH, GLOBEX_SUMMARISE),
            ],
        }
        results = {}
        for op in OPERATIONS:  # the GETs first: see the module's docstring
            plan = {
                "kind": "http",
                "port": port_of(server),
                "requests": requests[op],
                "connections": sizes.connections,
                "count": sizes.count,
                "warmup": sizes.warmup,
                "window_s": sizes.run_s,
                "time_limit_s": 60,
            }
            before = store_counts(url) if setup.redis else None
            with metered(server.pid, redis_pid if setup.redis else None) as cpu:
                results[op] = run_load(plan, timeout_s=90)
            results[op]["cpu"] = cpu()
            if before is not None:
                after = store_counts(url)
                results[op]["store"] = {k: after.get(k, 0) - before.get(k, 0) for k in after}
    return results


def _create_request(auth: dict[str, str], pathway: str) -> str:
    body = json.dumps({"pathway_id": pathway, "input": {"topic": "bench"}}).encode()
    headers = {**auth, "Content-Type": "application/json"}
    return request_text("POST", "/auvy/v1/jobs", headers, body)


def store_counts(url: str) -> dict[str, int]:
    """Every worker's commits and refused commits so far (the store's `stats` hash): a refused
    commit is a request that waited on another one, whichever tenant that was."""
    import redis

    with redis.Redis.from_url(url) as r:
        raw: Any = r.hgetall("mock_server:stats")
    return {k.decode(): int(v) for k, v in raw.items()}


def sse_or_error(settings: UvicornSettings, setup: Setup, url: str, sizes: Sizes) -> dict[str, Any]:
    """One setup's delivery figures; a failure is recorded in its row, so the throughput figures
    already taken are kept."""
    try:
        return measure_sse(settings, setup, url, sizes)
    except (RuntimeError, OSError, httpx.HTTPError) as exc:
        return {"error": f"{type(exc).__name__}: {exc}"}


def measure_sse(settings: UvicornSettings, setup: Setup, url: str, sizes: Sizes) -> dict[str, Any]:
    step_ms = fanout_step_ms()
    jobs_count = max(1, sizes.streams // sizes.per_job)
    with fresh_server("fanout", settings, setup, url) as server:
        with client(server) as http:
            jobs = start_spread(http, jobs_count, step_ms)
        plan = {
            "kind": "sse",
            "port": port_of(server),
            "paths": [f"/auvy/v1/jobs/{jobs[i % jobs_count]}/stream" for i in range(sizes.streams)],
            "headers": AUTH,
            "settle_s": sizes.settle_s,
            "window_s": sizes.window_s,
            "time_limit_s": 60,
        }
        result = run_load(plan, timeout_s=120)
    return {
        key: result[key]
        for key in ("opened", "failed", "open_s", "events_in_window", "events_per_s", "latency")
    }


def fanout_step_ms() -> int:
    step: int = tomllib.loads((PROFILES / "fanout.toml").read_text())["auvy"]["step_ms"]
    return step


def flush(url: str) -> None:
    import redis

    with redis.Redis.from_url(url) as r:
        r.flushdb()


def redis_version(url: str) -> str | None:
    import redis

    with redis.Redis.from_url(url) as r:
        version = r.info("server").get("redis_version")
    return str(version) if version is not None else None
