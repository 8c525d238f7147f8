"""Scenario 4: the memory the model's state takes, and that retention keeps it bounded.

Each part runs in a fresh interpreter (`python -m bench.scenarios.state PART`), on the model alone
(no HTTP) with a manual clock, and measures resident memory (VmRSS) before and after, so the
figures include the allocator's own overhead, as a server's memory would.

- `jobs`: 100,000 jobs of the seed's `summarise` pathway run to completion (13 entries each on
  their streams), then 1,000,000 more events appended to 1,000 of those streams. Per event: the
  second delta / 1,000,000. Per job at rest: (the first delta - its entries x per event) / 100,000.
- `bounded`: streams with stream_maxlen and stream_ttl_ms as in the server profiles, created and
  filled (far past maxlen) while the clock moves on: retained entries and memory over time.
"""

from __future__ import annotations

import gc
import json
import subprocess
import sys
from dataclasses import asdict, dataclass
from typing import Any

from mock_server.clock import ManualClock
from mock_server.model.auvy import AuvyModel, Settings
from mock_server.model.engine import Engine
from mock_server.model.store import MemoryStreams
from mock_server.profile import FIXTURES
from mock_server.seed import load_auvy

from ..servers import ACME_KEY, SUMMARISE, rss_kb

REPO_ROOT = FIXTURES.parent


@dataclass(frozen=True)
class Sizes:
    jobs: int = 100_000
    events: int = 1_000_000
    event_streams: int = 1_000
    # bounded: every round moves the clock by round_ms, creates streams_per_round new streams and
    # appends appends_per_stream entries to each.
    rounds: int = 40
    round_ms: int = 10_000
    streams_per_round: int = 20
    appends_per_stream: int = 2_500
    maxlen: int = 1_000
    ttl_ms: int = 60_000

    @classmethod
    def quick(cls) -> Sizes:
        return cls(jobs=20_000, events=200_000, event_streams=200, rounds=16)


def run(sizes: Sizes) -> dict[str, Any]:
    return {
        "jobs": in_subprocess("jobs", sizes),
        "bounded": in_subprocess("bounded", sizes),
    }


def in_subprocess(part: str, sizes: Sizes) -> dict[str, Any]:
    proc = subprocess.run(
        [sys.executable, "-m", "bench.scenarios.state", part, json.dumps(asdict(sizes))],
        capture_output=True,
        text=True,
        cwd=REPO_ROOT,
        timeout=300,
        check=False,
    )
    if proc.returncode != 0:
        raise RuntimeError(f"state/{part} failed ({proc.returncode}):\n{proc.stderr[-2000:]}")
    result: dict[str, Any] = json.loads(proc.stdout)
    return result


def _rss_bytes() -> int:
    gc.collect()
    kb = rss_kb(_pid())
    if kb is None:
        raise RuntimeError("no /proc/<pid>/status VmRSS here: memory figures need Linux")
    return kb * 1024


def _pid() -> int:
    import os

    return os.getpid()


def measure_jobs(sizes: Sizes) -> dict[str, Any]:
    clock = ManualClock()
    engine = Engine(clock)
    settings = Settings(step_ms=1, start_delay_ms=0)
    model = AuvyModel(
        engine,
        settings,
        streams=MemoryStreams(maxlen=settings.stream_maxlen, ttl_ms=settings.stream_ttl_ms),
    )
    load_auvy(model, FIXTURES / "seed" / "auvy.toml")
    who = model.authenticate(ACME_KEY)
    before = _rss_bytes()
    ids = []
    for i in range(sizes.jobs):
        ids.append(model.start_pathway(who, SUMMARISE, input={"topic": f"report {i}"}).id)
    clock.advance(1_000)
    engine.run_due()
    statuses = {str(s) for s in (model.jobs.get(i).status for i in ids)}  # type: ignore[union-attr]
    entries = sum(len(model.read_events(model.get_job(who, i), None).entries) for i in ids)
    del who
    with_jobs = _rss_bytes()
    per_stream = sizes.events // sizes.event_streams
    for n, job_id in enumerate(ids[: sizes.event_streams]):
        for k in range(per_stream):
            data: dict[str, object]
            if k % 2 == 0:
                data = {"type": "token", "content": f"row {n}.{k} "}
            else:
                data = {
                    "type": "state_update",
                    "status": "running",
                    "progress": k % 100,
                    "current_step": "backfill",
                    "waitingFor": None,
                }
            model.streams.append(job_id, data, clock.now_ms())
    with_events = _rss_bytes()
    appended = per_stream * sizes.event_streams
    per_event = (with_events - with_jobs) / appended
    per_job_total = (with_jobs - before) / sizes.jobs
    entries_per_job = entries / sizes.jobs
    return {
        "jobs": sizes.jobs,
        "job_statuses": sorted(statuses),
        "entries_per_job": round(entries_per_job, 2),
        "events_appended": appended,
        "events_retained": entries + appended,
        "rss_before_bytes": before,
        "rss_with_jobs_bytes": with_jobs,
        "rss_with_events_bytes": with_events,
        "per_event_bytes": round(per_event),
        "per_job_with_stream_bytes": round(per_job_total),
        "per_job_at_rest_bytes": round(per_job_total - entries_per_job * per_event),
    }


def measure_bounded(sizes: Sizes) -> dict[str, Any]:
    clock = ManualClock()
    store = MemoryStreams(maxlen=sizes.maxlen, ttl_ms=sizes.ttl_ms)
    samples = []
    start = _rss_bytes()
    created = 0
    for r in range(sizes.rounds):
        clock.advance(sizes.round_ms)
        for _ in range(sizes.streams_per_round):
            key = f"job-{created}"
            created += 1
            store.create(key, clock.now_ms())
            for k in range(sizes.appends_per_stream):
                store.append(key, {"type": "token", "content": f"row {k} "}, clock.now_ms())
        samples.append(
            {
                "round": r + 1,
                "clock_s": (r + 1) * sizes.round_ms // 1000,
                "appended": created * sizes.appends_per_stream,
                "retained": store.retained(),
                "rss_delta_bytes": _rss_bytes() - start,
            }
        )
    alive_streams = min(created, -(-sizes.ttl_ms // sizes.round_ms) * sizes.streams_per_round)
    bound = alive_streams * sizes.maxlen
    half = samples[len(samples) // 2]
    last = samples[-1]
    growth = (
        (last["rss_delta_bytes"] - half["rss_delta_bytes"]) / half["rss_delta_bytes"]
        if half["rss_delta_bytes"] > 0
        else None
    )
    return {
        "maxlen": sizes.maxlen,
        "ttl_ms": sizes.ttl_ms,
        "streams_created": created,
        "appended": created * sizes.appends_per_stream,
        "retained_bound": bound,
        "retained_max": max(s["retained"] for s in samples),
        "rss_growth_second_half": round(growth, 4) if growth is not None else None,
        "samples": samples,
    }


PARTS = {"jobs": measure_jobs, "bounded": measure_bounded}


def main(argv: list[str]) -> int:
    part, raw = argv
    print(json.dumps(PARTS[part](Sizes(**json.loads(raw)))))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
