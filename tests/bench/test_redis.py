"""The Redis scenario's pure parts: when it skips, how rounds become ratios, what the report shows.

No server, no redis-server and no load generator run here.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

import bench.__main__ as bench_main
from bench.goals import FIGURES, MISS, PASS, evaluate, report_figures
from bench.redis_server import MISSING
from bench.report import render
from bench.scenarios import redis as scenario
from bench.servers import UvicornSettings

LATENCY = {"count": 10, "p50_ms": 1.5, "p90_ms": 2.0, "p99_ms": 4.25, "max_ms": 5.0, "mean_ms": 1.6}


def load_run(rps: float) -> dict[str, Any]:
    """One load generator answer, as bench.load prints it."""
    return {
        "rps": rps,
        "latency": LATENCY,
        "statuses": {"200": 100},
        "errors": 0,
        "timed_out": False,
    }


# Where the CPU went in a run with 2 workers (bench/cpu.py): each worker, Redis, the load.
TWO_WORKERS_CPU = {"server": [0.69, 0.58], "redis": 0.33, "load": 0.15}


def one_round(memory: float, redis_1: float, redis_2: float) -> dict[str, dict[str, Any]]:
    rounds: dict[str, dict[str, Any]] = {
        key: {
            "get_job_status": load_run(rps),
            "list_jobs": load_run(rps / 3),
            "create_job": load_run(rps / 2),
        }
        for key, rps in (("memory", memory), ("redis_1", redis_1), ("redis_2", redis_2))
    }
    for op in rounds["redis_2"].values():
        op["cpu"] = TWO_WORKERS_CPU
    return rounds


def sample() -> dict[str, Any]:
    rounds = [one_round(4000, 400, 600), one_round(5000, 250, 500), one_round(4500, 300, 450)]
    return {
        "redis_version": "7.0.15",
        "setups": {
            key: {"title": s.title, "workers": s.workers, "store": "redis" if s.redis else "memory"}
            for key, s in scenario.SETUPS.items()
        },
        "load": {"connections": 10, "seconds_per_run": 2.0, "warmup_per_run": 10, "rounds": 3},
        "throughput": {
            op: scenario.summarise(title, op, rounds) for op, title in scenario.OPERATIONS.items()
        },
        "sse": {
            "streams": 100,
            "per_job": 10,
            "jobs": 10,
            "step_ms": 250,
            "entries_per_step": 2,
            "window_s": 5.0,
            "events_expected": 4000,
            "runs": {
                "memory": {
                    "opened": 100,
                    "open_s": 0.2,
                    "events_in_window": 4000,
                    "latency": LATENCY,
                },
                "redis_1": {
                    "opened": 100,
                    "open_s": 0.9,
                    "events_in_window": 3990,
                    "latency": {**LATENCY, "p50_ms": 12.0, "p99_ms": 45.5},
                },
                "redis_2": {"error": "RuntimeError: load generator failed (1):\nTraceback | x"},
            },
        },
    }


def test_it_skips_without_redis_py_or_a_redis_server_and_says_why() -> None:
    assert scenario.skip_reason(True, "/usr/bin/redis-server") is None
    assert "redis-py is not installed" in (scenario.skip_reason(False, None) or "")
    assert "redis extra" in (scenario.skip_reason(False, "/usr/bin/redis-server") or "")
    assert scenario.skip_reason(True, None) == MISSING
    assert "apt-get install redis-server" in MISSING


def test_a_missing_redis_server_skips_the_scenario_before_starting_anything(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def must_not_run(*args: object, **kwargs: object) -> None:
        raise AssertionError("a skipped scenario started a server")

    monkeypatch.setattr(scenario, "locate_binary", lambda: None)
    monkeypatch.setattr(scenario, "reference_server", must_not_run)
    monkeypatch.setattr(scenario, "measure_throughput", must_not_run)
    result = scenario.run(UvicornSettings(), scenario.Sizes.quick())
    assert result == {"skipped": MISSING}


def test_a_skipped_scenario_is_reported_and_does_not_fail_the_bench(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr(
        bench_main, "runners", lambda settings, quick: {"redis": lambda: {"skipped": MISSING}}
    )
    assert bench_main.main(["--only", "redis", "--report-dir", str(tmp_path)]) == 0
    md = (tmp_path / "bench.md").read_text(encoding="utf-8")
    assert f"Skipped: {MISSING}" in md
    assert "| SSE delivery p99 through Redis, 2 workers (1,000 streams; 100 with --quick) |" in md
    assert "| POST create job (AUVY): Redis 2 workers / in memory | - |" in md


def test_ratios_are_the_median_of_the_rounds() -> None:
    get = sample()["throughput"]["get_job_status"]
    assert get["ratios"]["redis_1/memory"] == {"round_ratios": [0.1, 0.05, 0.067], "ratio": 0.067}
    assert get["ratios"]["redis_2/redis_1"]["round_ratios"] == [1.5, 2.0, 1.5]
    assert get["ratios"]["redis_2/redis_1"]["ratio"] == 1.5
    # Figures per setup are the median round's, by throughput.
    assert get["setups"]["memory"]["rps"] == 4500
    assert get["setups"]["redis_2"]["round_rps"] == [600, 500, 450]


def test_a_round_without_a_throughput_drops_out_of_the_median() -> None:
    rounds = [one_round(4000, 400, 600), one_round(0, 300, 450)]
    rounds[1]["memory"]["get_job_status"]["rps"] = None
    ratios = scenario.summarise("GET", "get_job_status", rounds)["ratios"]
    assert ratios["redis_1/memory"] == {"round_ratios": [0.1, None], "ratio": 0.1}


def test_the_reported_figures_read_the_ratios_and_the_delivery_p99() -> None:
    data = sample()
    data["sse"]["runs"]["redis_2"] = {"latency": {**LATENCY, "p99_ms": 80.0}}
    figures = {f["id"]: f["value"] for f in report_figures({"redis": data})}
    assert list(figures) == [f.id for f in FIGURES]
    assert figures["6-get-redis-2"] == 0.1
    judged = {g["id"]: g for g in evaluate({"redis": data})}
    assert judged["6-get-redis-1"]["value"] == 0.067
    assert judged["6-get-workers"]["value"] == 1.5
    assert judged["6-sse-p99"]["value"] == 80.0
    assert judged["6-sse-p99"]["status"] == MISS
    assert set(report_figures({})[0]) == {"id", "title", "value", "unit"}
    assert all(f["value"] is None for f in report_figures({"redis": {"skipped": "why"}}))


def test_the_section_shows_every_server_its_ratios_and_delivery() -> None:
    md = render({"scenarios": {"redis": sample()}, "figures": report_figures({})})
    assert "## 6. Redis store: throughput with 1 and 2 workers, SSE delivery" in md
    assert "One throwaway redis-server (7.0.15) on 127.0.0.1" in md
    assert (
        "| POST create job (AUVY) | Redis, 2 workers | 250 | 1.50 / 4.25 | 300 x 200 "
        "| 0.69 + 0.58 · 0.33 · 0.15 |"
    ) in md
    assert (
        "| GET job status (AUVY) | in memory, 1 worker | 4,500 | 1.50 / 4.25 | 300 x 200 | - |"
        in md
    )
    assert (
        "| GET job status (AUVY) | Redis, 1 worker / in memory, 1 worker | 0.067 "
        "| 0.100, 0.050, 0.067 |"
    ) in md
    assert "| Redis, 1 worker | 100 in 0.9 s | 3,990 / 4,000 | 12.00 | 45.50 | 5.00 |" in md
    # A failed delivery run keeps its row, with the first line of the error only.
    assert "| Redis, 2 workers | failed: `RuntimeError: load generator failed (1):` |" in md
    assert "Traceback" not in md
    assert "## Reported figures (no target)" in md
    assert "| POST create job (AUVY): Redis 2 workers / in memory | - |" in md


@pytest.mark.parametrize(("conflicts", "judged"), [(0, PASS), (1, MISS)])
def test_requests_that_waited_are_totalled_over_the_rounds_and_judged(
    conflicts: int, judged: str
) -> None:
    rounds = [one_round(4000, 400, 600), one_round(5000, 250, 500)]
    for n, r in enumerate(rounds):
        r["redis_2"]["create_job"]["store"] = {
            "commits": 100,
            "conflicts": conflicts * (10 + n),
            "streams_moved": conflicts,
            "turn_waits": conflicts * 3,
            "stale_reads": conflicts,
        }
    setups = scenario.summarise("POST", "create_job", rounds)["setups"]
    assert setups["redis_2"]["store"] == {
        "commits": 200,
        "conflicts": conflicts * 21,
        "streams_moved": conflicts * 2,
        "turn_waits": conflicts * 6,
        "stale_reads": conflicts * 2,
        "refused_per_commit": conflicts * 0.115,
        "waits": conflicts * 31,
    }
    assert "store" not in setups["memory"]
    results = {"redis": {"throughput": {"create_job": {"setups": setups}}}}
    goal = {g["id"]: g for g in evaluate(results)}["6-create-waits"]
    assert (goal["value"], goal["status"]) == (conflicts * 31, judged)
