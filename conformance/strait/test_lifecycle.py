"""The 13 statuses: every one reached, every change allowed by FACTS.md's table; schedules,
expiry, retries, dead-lettering, the other outcomes and waiting."""

from __future__ import annotations

import contextlib
import itertools
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest

from conformance.checks import ConformanceFailure
from conformance.clients.sse import SseEvent
from conformance.clients.strait import (
    STATUSES,
    TERMINAL,
    TRANSITIONS,
    StraitClient,
    from_now,
    parse_ts,
)
from conformance.profile import TargetProfile

req = pytest.mark.req
Job = Callable[[str], str]


def follows_the_table(path: list[str]) -> None:
    """Each consecutive pair of statuses is a transition FACTS.md's table allows."""
    for before, after in itertools.pairwise(path):
        if after not in TRANSITIONS.get(before, frozenset()):
            raise ConformanceFailure(
                f"status change {before} -> {after} is not in the transition table",
                " -> ".join(path),
            )


def chained(changes: list[dict[str, Any]]) -> list[str]:
    """The statuses the status_change frames went through; each `from` is the previous `to`."""
    assert changes, "no status_change frames"
    path = [changes[0]["from"]]
    for change in changes:
        if change["from"] != path[-1]:
            raise ConformanceFailure(
                "status_change frames do not chain",
                f"{change['from']} follows {path[-1]} ({' -> '.join(path)})",
            )
        path.append(change["to"])
    return path


@dataclass
class Scenario:
    """A run that should pass through `through` and end `final`."""

    job: str
    final: str
    through: tuple[str, ...] = ()
    cancel: bool = False  # canceled while delayed instead of released
    expires: bool = False  # left delayed until its expires_at


SCENARIOS = {
    "complete": Scenario("complete", "completed", ("delayed", "queued", "dequeued", "executing")),
    "retry": Scenario("retry", "completed", ("executing", "queued")),
    "dead_letter": Scenario("dead_letter", "dead_letter", ("executing",)),
    "fatal": Scenario("fatal", "failed", ("executing",)),
    "crash": Scenario("crash", "crashed", ("executing",)),
    "system_fail": Scenario("system_fail", "system_failed", ("dequeued",)),
    "timeout": Scenario("timeout", "timed_out", ("executing",)),
    "wait": Scenario("wait", "completed", ("executing", "waiting")),
    "cancel": Scenario("complete", "canceled", ("delayed",), cancel=True),
    "expire": Scenario("complete", "expired", ("delayed",), expires=True),
}


@req("strait.lifecycle.statuses", "strait.stream.status-changes")
def test_every_status_is_reached_through_allowed_changes(
    strait: StraitClient, strait_job: Job
) -> None:
    # Every run starts delayed and its stream is opened before anything happens to it, so each
    # stream sees the run's whole life; the runs then proceed side by side.
    runs: dict[str, str] = {}
    for name, scenario in SCENARIOS.items():
        extra = {"expires_at": from_now(1.2)} if scenario.expires else {}
        runs[name] = strait.held(strait_job(scenario.job), **extra)["id"]
    paths: dict[str, list[str]] = {}
    with contextlib.ExitStack() as stack:
        streams = {n: stack.enter_context(strait.stream(r)) for n, r in runs.items()}
        for name, stream in streams.items():
            assert stream.status_code == 200, f"{name}: stream answered {stream.status_code}"
        for name, scenario in SCENARIOS.items():
            if scenario.cancel:
                strait.cancel(runs[name])
            elif not scenario.expires:
                strait.release(runs[name])
        for name, stream in streams.items():
            frames = [json.loads(i.data) for i in stream if isinstance(i, SseEvent)]
            assert stream.ended, f"{name}: the stream did not end"
            changes = [f for f in frames if f["type"] == "status_change"]
            paths[name] = path = chained(changes)
            follows_the_table(path)
            scenario = SCENARIOS[name]
            assert path[-1] == scenario.final, f"{name}: {' -> '.join(path)}"
            assert set(scenario.through) <= set(path), f"{name}: {' -> '.join(path)}"
            assert strait.run(runs[name])["status"] == path[-1], f"{name}: GET disagrees"
    seen = set(itertools.chain.from_iterable(paths.values()))
    assert seen == set(STATUSES), f"never reached: {sorted(set(STATUSES) - seen)}"


@req("strait.lifecycle.delayed")
def test_a_scheduled_run_waits_for_its_time(strait: StraitClient, strait_job: Job) -> None:
    at = from_now(0.6)
    run = strait.start(strait_job("complete"), scheduled_at=at)
    assert run["status"] == "delayed", f"a run scheduled 0.6 s ahead is {run['status']}"
    assert strait.run(run["id"])["status"] == "delayed"
    final = strait.wait_for(run["id"], TERMINAL)
    assert final["status"] == "completed", final["status"]
    assert final["started_at"] is not None
    assert parse_ts(final["started_at"]) >= parse_ts(at), "the run started before scheduled_at"


@req("strait.lifecycle.expired")
def test_a_run_still_delayed_at_expires_at_expires(strait: StraitClient, strait_job: Job) -> None:
    at = from_now(0.3)
    run = strait.held(strait_job("complete"), expires_at=at)
    assert parse_ts(run["expires_at"]) == parse_ts(at)
    final = strait.wait_for(run["id"], TERMINAL)
    assert final["status"] == "expired", f"a run past its expires_at is {final['status']}"
    assert final["started_at"] is None, "an expired run executed"
    assert final["finished_at"] is not None
    assert parse_ts(final["finished_at"]) >= parse_ts(at), "expired before its expires_at"


@req("strait.lifecycle.retry")
def test_a_failed_attempt_is_retried_then_completes(
    strait: StraitClient, strait_job: Job, profile: TargetProfile
) -> None:
    attempts = int(profile.need("strait.facts.retry_attempts"))
    run_id = strait.start(strait_job("retry"))["id"]
    waiting = strait.wait_until(
        run_id,
        lambda r: (r["status"] == "queued" and r["attempt"] >= 2) or r["status"] in TERMINAL,
        "a queued retry",
    )
    assert waiting["status"] == "queued", f"never seen waiting for a retry: {waiting['status']}"
    assert waiting["next_retry_at"] is not None, "a run waiting for its retry has no next_retry_at"
    assert parse_ts(waiting["next_retry_at"]) >= parse_ts(waiting["created_at"])
    assert waiting["error"], "a retried attempt left no error"
    final = strait.wait_for(run_id, TERMINAL)
    assert final["status"] == "completed", f"the retried run ended {final['status']}"
    assert final["attempt"] == attempts, f"completed on attempt {final['attempt']}"


@req("strait.lifecycle.dead-letter", "strait.list.dlq")
def test_a_run_out_of_attempts_is_dead_lettered(
    strait: StraitClient, strait_job: Job, profile: TargetProfile
) -> None:
    attempts = int(profile.need("strait.facts.dead_letter_attempts"))
    final = strait.finish(strait_job("dead_letter"), "dead_letter")
    assert final["error"], "a dead-lettered run has no error"
    assert final["attempt"] == attempts, f"dead-lettered after {final['attempt']} attempts"
    assert final["finished_at"] is not None
    dlq = strait.list_dlq()
    assert dlq.status_code == 200, dlq.text[:300]
    listed = {r["id"]: r for r in dlq.json()}
    assert final["id"] in listed, "a dead-lettered run is not in GET /v1/runs/dlq"
    assert all(r["status"] == "dead_letter" for r in listed.values())


@req("strait.lifecycle.outcomes")
@pytest.mark.parametrize(
    ("job", "status"),
    [
        ("fatal", "failed"),
        ("crash", "crashed"),
        ("system_fail", "system_failed"),
        ("timeout", "timed_out"),
    ],
)
def test_each_outcome_has_its_status_an_error_and_finished_at(
    strait: StraitClient, strait_job: Job, job: str, status: str
) -> None:
    final = strait.finish(strait_job(job), status)
    assert isinstance(final["error"], str) and final["error"], f"{status} without an error"
    assert final["finished_at"] is not None, f"{status} without finished_at"
    assert parse_ts(final["finished_at"]) >= parse_ts(final["created_at"])
    if status == "failed":
        # A non-retryable error is not retried.
        assert final["attempt"] == 1, f"a non-retryable failure ran {final['attempt']} attempts"
    if status == "system_failed":
        assert final["result"] is None


@req("strait.lifecycle.waiting")
def test_a_waiting_run_executes_again_and_completes(strait: StraitClient, strait_job: Job) -> None:
    run_id = strait.held(strait_job("wait"))["id"]
    read = strait.read(run_id, release=True)
    assert read.ended, "the stream did not end"
    path = chained(read.changes)
    assert "waiting" in path, f"the run never waited: {' -> '.join(path)}"
    after = path[path.index("waiting") + 1 :]
    assert after[:1] == ["executing"], f"after waiting: {' -> '.join(after)}"
    assert path[-1] == "completed" and strait.run(run_id)["status"] == "completed"
