"""The issue's goals, judged from a results dict."""

from __future__ import annotations

from typing import Any

from bench.goals import GOALS, MISS, NOT_MEASURED, PASS, Goal, dig, evaluate


def results(**overrides: Any) -> dict[str, Any]:
    """Scenario results shaped as the scenarios write them, every goal met."""
    scenarios: dict[str, Any] = {
        "throughput": {
            "operations": {
                "get_job_status": {"ratio": 0.8},
                "get_run": {"ratio": 0.75},
                "create_job": {"ratio": 0.6},
            }
        },
        "fanout": {
            "runs": {"100": {"latency": {"p99_ms": 3.0}}, "1000": {"latency": {"p99_ms": 9}}}
        },
        "resume": {"in_process": {"ratio": 1.1}, "http": {"ratio": 1.3}},
        "state": {"jobs": {"per_job_at_rest_bytes": 1100}},
        "suite": {"runs": {"-n 2": {"wall_s": 42.0}}},
        "monitor": {"sse": {"added_p99_ms": 1.5}},
        "redis": {
            "throughput": {
                op: {
                    "ratios": {
                        "redis_1/memory": {"ratio": floor},
                        "redis_2/redis_1": {"ratio": 1.1},
                    },
                    "setups": {"redis_2": {"store": {"waits": 0}}},
                }
                for op, floor in (
                    ("get_job_status", 0.6),
                    ("list_jobs", 0.5),
                    ("create_job", 0.35),
                )
            },
            "sse": {"runs": {"redis_2": {"latency": {"p99_ms": 30.0}}}},
        },
    }
    scenarios.update(overrides)
    return scenarios


def by_id(judged: list[dict[str, Any]]) -> dict[str, str]:
    return {g["id"]: g["status"] for g in judged}


def test_every_goal_of_the_issue_is_judged() -> None:
    judged = evaluate(results())
    assert [g["id"] for g in judged] == [g.id for g in GOALS]
    assert set(by_id(judged).values()) == {PASS}


def test_a_figure_on_the_limit_meets_an_at_least_goal_but_not_an_under_goal() -> None:
    at_least = Goal("a", "a", "", 0.6, ">=", lambda r: 0.6)
    under = Goal("u", "u", "ms", 50, "<", lambda r: 50.0)
    at_most = Goal("m", "m", "", 0, "<=", lambda r: 0.0)
    assert at_least.evaluate({})["status"] == PASS
    assert under.evaluate({})["status"] == MISS
    assert at_most.evaluate({})["status"] == PASS


def test_misses_are_reported() -> None:
    slow = results(
        fanout={"runs": {"1000": {"latency": {"p99_ms": 75.0}}}},
        state={"jobs": {"per_job_at_rest_bytes": 4096}},
    )
    statuses = by_id(evaluate(slow))
    assert statuses["2-fanout-p99"] == MISS
    assert statuses["4-job-memory"] == MISS
    assert statuses["1-get-status"] == PASS


def test_the_monitors_sse_goal_is_its_added_p99() -> None:
    slow = results(monitor={"sse": {"added_p99_ms": 6.6}})
    assert by_id(evaluate(slow))["7-monitor-sse"] == MISS
    assert by_id(evaluate(results(monitor={"sse": {}})))["7-monitor-sse"] == NOT_MEASURED


def test_a_failed_or_skipped_scenario_is_not_measured_never_a_pass() -> None:
    partial = results(fanout={"error": "RuntimeError: boom"})
    del partial["suite"]
    statuses = by_id(evaluate(partial))
    assert statuses["2-fanout-p99"] == NOT_MEASURED
    assert statuses["5-suite-quick"] == NOT_MEASURED


def test_a_non_number_is_not_measured() -> None:
    odd = results(state={"jobs": {"per_job_at_rest_bytes": True}})
    assert by_id(evaluate(odd))["4-job-memory"] == NOT_MEASURED


def test_the_target_reads_as_text() -> None:
    goal = next(g for g in GOALS if g.id == "4-job-memory")
    assert goal.target == "< 2048 bytes"
    assert next(g for g in GOALS if g.id == "1-get-status").target == ">= 0.6"


def test_dig_stops_at_a_missing_step() -> None:
    assert dig({"a": {"b": 1}}, "a", "b") == 1
    assert dig({"a": {"b": 1}}, "a", "c") is None
    assert dig({"a": 1}, "a", "b") is None


def test_the_redis_store_goals_miss_below_the_issue_floors() -> None:
    slow = results()["redis"]
    slow["throughput"]["create_job"]["ratios"]["redis_1/memory"]["ratio"] = 0.29
    slow["throughput"]["get_job_status"]["ratios"]["redis_2/redis_1"]["ratio"] = 0.99
    slow["sse"]["runs"]["redis_2"]["latency"]["p99_ms"] = 50.0
    judged = by_id(evaluate(results(redis=slow)))
    assert judged["6-create-redis-1"] == MISS
    assert judged["6-get-workers"] == MISS
    assert judged["6-sse-p99"] == MISS
    assert judged["6-get-redis-1"] == PASS
