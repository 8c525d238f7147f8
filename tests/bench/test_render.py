"""bench.json and bench.md from one results dict: what a reader finds, and what is missing."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from bench.__main__ import main
from bench.goals import evaluate
from bench.report import fmt, render, write

LATENCY = {"count": 10, "p50_ms": 1.5, "p90_ms": 2.0, "p99_ms": 4.25, "max_ms": 5.0, "mean_ms": 1.6}


def side(rps: float) -> dict[str, Any]:
    return {"rps": rps, "latency": LATENCY, "statuses": {"200": 100}, "errors": 0}


def sample() -> dict[str, Any]:
    scenarios: dict[str, Any] = {
        "throughput": {
            "load": {"connections": 10, "requests_per_run": 100, "warmup_per_run": 10, "rounds": 1},
            "operations": {
                "get_job_status": {
                    "title": "GET job status (AUVY)",
                    "ours": side(3000.0),
                    "bare": side(4000.0),
                    "ratio": 0.75,
                },
            },
            "profiles": {
                "get_job_status": {
                    "samples": 400,
                    "busy": 0.9,
                    "areas": [{"area": "uvicorn (HTTP parsing)", "share": 0.5}],
                    "top_functions": [{"function": "send (uvicorn/x.py)", "share": 0.4}],
                }
            },
        },
        "fanout": {"error": "RuntimeError: the load generator failed"},
        "redis": {"skipped": "redis-server is not installed"},
        "state": {
            "jobs": {"jobs": 1000, "per_job_at_rest_bytes": 4096, "per_event_bytes": 300},
            "bounded": {
                "maxlen": 10,
                "ttl_ms": 1000,
                "retained_bound": 100,
                "retained_max": 80,
                "samples": [
                    {
                        "round": 1,
                        "clock_s": 1,
                        "appended": 50,
                        "retained": 50,
                        "rss_delta_bytes": 1,
                    },
                    {
                        "round": 2,
                        "clock_s": 2,
                        "appended": 99,
                        "retained": 80,
                        "rss_delta_bytes": 2,
                    },
                ],
            },
        },
    }
    return {
        "started_at": "2026-01-01 00:00 UTC",
        "duration_s": 12.0,
        "machine": {"cpus": 2, "python": "3.11.7", "platform": "Linux"},
        "server": {"loop_used": "uvloop", "http_used": "httptools", "workers": 1},
        "scenarios": scenarios,
        "goals": evaluate(scenarios),
        "notes": ["Ratios compare figures of this run only."],
        "load_average": {"throughput": [0.5, 2.25], "state": [2.0, 1.0]},
    }


def test_the_goals_table_says_met_missed_and_not_measured() -> None:
    md = render(sample())
    assert "| GET job status (AUVY): throughput ours / bare | >= 0.6 | 0.750 | pass |" in md
    assert "| memory per job at rest (its record, events counted apart) | < 2048 bytes |" in md
    assert "4,096.0 bytes | **miss** |" in md
    assert "| SSE delivery p99 at 1,000 streams | < 50 ms | - | not measured |" in md


def test_every_scenario_has_a_section_even_when_it_failed_or_did_not_run() -> None:
    md = render(sample())
    for title in ("## 1. ", "## 2. ", "## 3. ", "## 4. ", "## 5. ", "## 6. ", "## 7. "):
        assert title in md
    assert "Failed: `RuntimeError: the load generator failed`" in md
    assert "Skipped: redis-server is not installed" in md
    assert md.count("Not run in this session") == 3  # resume, suite and monitor


def test_throughput_shows_both_sides_and_where_the_time_goes() -> None:
    md = render(sample())
    assert "| GET job status (AUVY) | 3,000 | 4,000 | 0.750 | 1.50 / 4.25 | 1.50 / 4.25 |" in md
    assert "### Where the time goes" in md
    assert "| uvicorn (HTTP parsing) | 50.0% |" in md
    assert "`send (uvicorn/x.py)` 40.0%" in md


def test_retention_within_its_bound_reads_bounded() -> None:
    md = render(sample())
    assert "At most 80 entries were held" in md
    assert "bounded" in md and "**not bounded**" not in md


def test_a_missing_figure_is_a_dash_never_a_zero() -> None:
    assert fmt(None) == "-"
    assert fmt(True) == "-"
    assert fmt(0) == "0.0"
    assert fmt(1234.5, 0, "ms") == "1,234 ms"  # format's own rounding (half to even)


def test_write_and_render_again_from_the_json(tmp_path: Path) -> None:
    as_json, as_md = write(sample(), tmp_path)
    first = as_md.read_text(encoding="utf-8")
    assert json.loads(as_json.read_text(encoding="utf-8"))["duration_s"] == 12.0
    as_md.unlink()
    assert main(["--render", str(as_json)]) == 0
    assert as_md.read_text(encoding="utf-8") == first


def test_the_machine_load_of_each_scenario_is_noted() -> None:
    md = render(sample())
    assert "(1-minute load average, 2 CPUs)" in md
    assert "throughput 0.5 -> 2.2, state 2.0 -> 1.0." in md


def test_the_monitor_section_shows_its_cost_and_its_violations() -> None:
    lat = {"p50_ms": 2.0, "p99_ms": 4.0}
    scenarios = {
        "monitor": {
            "load": {"connections": 10, "rounds": 1, "streams": 50, "window_s": 2.0},
            "get_job_status": {
                "ratio": 0.4,
                "round_ratios": [0.4],
                "direct_rps": [4000.0],
                "monitor_rps": [1600.0],
                "added_p50_ms": 3.2,
                "added_p99_ms": 7.5,
            },
            "sse": {"direct": {"latency": lat}, "monitor": {"latency": lat}, "added_p99_ms": 0.0},
            "monitor": {"exchanges": 1200, "violations": 0, "rss_kb": 50000},
        }
    }
    md = render({"scenarios": scenarios})
    assert "throughput via monitor / direct 0.4" in md
    assert "p99 7.5 ms" in md
    assert "1200 exchanges checked, 0 violation(s)" in md
