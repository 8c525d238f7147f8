"""The statuses: every observed change allowed by FACTS.md's table and every documented outcome
reached; schedules, expiry, retries, dead-lettering, the other outcomes and waiting.

A target need not show every transient status: FACTS.md allows queued -> executing directly, so
`dequeued` may never be seen, and a stream reports only the changes it reports. That the
reference shows all 13 is its own decision, checked separately."""

from __future__ import annotations

import contextlib
import itertools
import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from conformance.checks import ConformanceFailure
from conformance.clients.sse import SseEvent
from conformance.clients.strait import (
    PAUSED_TRANSITIONS,
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
SCHEDULE_AHEAD_S = 3.0


def follows_the_table(path: list[str]) -> None:
    """Each consecutive pair of statuses is a transition FACTS.md's table allows."""
    for before, after in itertools.pairwise(path):
        allowed = TRANSITIONS.get(before, frozenset()) | PAUSED_TRANSITIONS.get(before, frozenset())
        if after not in allowed:
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
    """A run that ends `final`, passing through `through`: only statuses the job's behaviour
    makes unavoidable (a job that waits is seen waiting); the table and the run's start
    (delayed) already force every other one."""

    job: str
    final: str
    through: tuple[str, ...] = ()
    cancel: bool = False  # canceled while delayed instead of released
    expires: bool = False  # left delayed until its expires_at


SCENARIOS = {
    "complete": Scenario("complete", "completed", ("executing",)),
    "retry": Scenario("retry", "completed", ("executing", "queued")),
    "dead_letter": Scenario("dead_letter", "dead_letter", ("executing",)),
    "fatal": Scenario("fatal", "failed", ("executing",)),
    "crash": Scenario("crash", "crashed", ("executing",)),
    "system_fail": Scenario("system_fail", "system_failed"),
    "timeout": Scenario("timeout", "timed_out"),
    "wait": Scenario("wait", "completed", ("executing", "waiting")),
    "cancel": Scenario("complete", "canceled", cancel=True),
    "expire": Scenario("complete", "expired", expires=True),
}
# Long enough for every held run to be created and its stream opened first, on a slow target.
EXPIRE_AFTER_S = 4.0


def walk_every_scenario(strait: StraitClient, strait_job: Job) -> dict[str, list[str]]:
    """Each scenario's run, followed on its stream from delayed to its end; the paths taken.
    Every path chains, follows FACTS.md's table and ends in the scenario's outcome."""
    # Every run starts delayed and its stream is opened before anything happens to it, so each
    # stream sees the run's whole life; the runs then proceed side by side.
    runs: dict[str, str] = {}
    for name, scenario in SCENARIOS.items():
        extra = {"expires_at": from_now(EXPIRE_AFTER_S)} if scenario.expires else {}
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
            # Frames of other types (FACTS.md: clients tolerate unknown ones) are skipped.
            changes = [
                f for f in frames if isinstance(f, dict) and f.get("type") == "status_change"
            ]
            paths[name] = path = chained(changes)
            follows_the_table(path)
            scenario = SCENARIOS[name]
            assert path[0] == "delayed", f"{name}: a held run's stream starts {' -> '.join(path)}"
            assert path[-1] == scenario.final, f"{name}: {' -> '.join(path)}"
            assert set(scenario.through) <= set(path), f"{name}: {' -> '.join(path)}"
            assert strait.run(runs[name])["status"] == path[-1], f"{name}: GET disagrees"
    return paths


@req("strait.lifecycle.statuses", "strait.stream.status-changes")
def test_every_outcome_is_reached_through_allowed_changes(
    strait: StraitClient, strait_job: Job
) -> None:
    paths = walk_every_scenario(strait, strait_job)
    reached = {path[-1] for path in paths.values()}
    assert reached == TERMINAL, f"outcomes reached: {sorted(reached)}"


@req("strait.decision.dequeued-observed")
def test_the_reference_shows_all_13_statuses_and_always_dequeues(
    strait: StraitClient, strait_job: Job
) -> None:
    paths = walk_every_scenario(strait, strait_job)
    seen = set(itertools.chain.from_iterable(paths.values()))
    assert seen == set(STATUSES), f"never reached: {sorted(set(STATUSES) - seen)}"
    for name, path in paths.items():
        for before, after in itertools.pairwise(path):
            assert (before, after) != ("queued", "executing"), f"{name}: {' -> '.join(path)}"


@req("strait.lifecycle.delayed")
def test_a_scheduled_run_waits_for_its_time(strait: StraitClient, strait_job: Job) -> None:
    # Far enough ahead that the trigger and one GET fit before it on a slow, distant target.
    at = from_now(SCHEDULE_AHEAD_S)
    run = strait.start(strait_job("complete"), scheduled_at=at)
    assert run["status"] == "delayed", (
        f"a run scheduled {SCHEDULE_AHEAD_S} s ahead is {run['status']}"
    )
    seen = strait.run(run["id"])
    if parse_ts(at) > datetime.now(UTC) + timedelta(seconds=0.5):
        # Only while the time is surely ahead (our clock may differ from the server's a little).
        assert seen["status"] == "delayed", f"before its scheduled_at the run is {seen['status']}"
    final = strait.wait_for(run["id"], TERMINAL)
    assert final["status"] == "completed", final["status"]
    assert final.get("started_at") is not None
    assert parse_ts(final.get("started_at")) >= parse_ts(at), "the run started before scheduled_at"


@req("strait.lifecycle.expired")
def test_a_run_still_delayed_at_expires_at_expires(strait: StraitClient, strait_job: Job) -> None:
    at = from_now(2.0)
    run = strait.held(strait_job("complete"), expires_at=at)
    assert parse_ts(run.get("expires_at")) == parse_ts(at)
    final = strait.wait_for(run["id"], TERMINAL)
    assert final["status"] == "expired", f"a run past its expires_at is {final['status']}"
    assert final.get("started_at") is None, "an expired run executed"
    assert final.get("finished_at") is not None
    assert parse_ts(final.get("finished_at")) >= parse_ts(at), "expired before its expires_at"


@req("strait.lifecycle.retry")
def test_a_failed_attempt_is_retried_then_completes(
    strait: StraitClient, strait_job: Job, profile: TargetProfile
) -> None:
    attempts = int(profile.need("strait.facts.retry_attempts"))
    run_id = strait.held(strait_job("retry"))["id"]
    # The stream shows every retry (executing -> queued), however short the delay before it; the
    # run is read when one is announced, and checked if it is still queued for its retry then.
    retries: list[dict[str, Any]] = []
    with strait.stream(run_id) as stream:
        assert stream.status_code == 200, f"stream answered {stream.status_code}"
        strait.release(run_id)
        for item in stream:
            if not isinstance(item, SseEvent):
                continue
            frame = item.json()
            if not isinstance(frame, dict) or frame.get("type") != "status_change":
                continue
            if (frame.get("from"), frame.get("to")) == ("executing", "queued"):
                retries.append(strait.run(run_id))
            if frame.get("to") in TERMINAL:
                break
    assert len(retries) == attempts - 1, f"{len(retries)} retries, expected {attempts - 1}"
    for run in retries:
        if run["status"] == "queued":
            assert run.get("next_retry_at") is not None, (
                "a run queued for a retry has no next_retry_at"
            )
            assert parse_ts(run.get("next_retry_at")) >= parse_ts(run["created_at"])
            assert run.get("error"), "a retried attempt left no error"
    final = strait.wait_for(run_id, TERMINAL)
    assert final["status"] == "completed", f"the retried run ended {final['status']}"
    assert final["attempt"] == attempts, f"completed on attempt {final['attempt']}"


@req("strait.lifecycle.dead-letter", "strait.list.dlq")
def test_a_run_out_of_attempts_is_dead_lettered(
    strait: StraitClient, strait_job: Job, profile: TargetProfile
) -> None:
    attempts = int(profile.need("strait.facts.dead_letter_attempts"))
    final = strait.finish(strait_job("dead_letter"), "dead_letter")
    assert final.get("error"), "a dead-lettered run has no error"
    assert final["attempt"] == attempts, f"dead-lettered after {final['attempt']} attempts"
    assert final.get("finished_at") is not None
    listed = {r["id"]: r for r in strait.dlq()}
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
    assert isinstance(final.get("error"), str) and final.get("error"), f"{status} without an error"
    assert final.get("finished_at") is not None, f"{status} without finished_at"
    assert parse_ts(final.get("finished_at")) >= parse_ts(final["created_at"])
    if status == "failed":
        # A non-retryable error is not retried.
        assert final["attempt"] == 1, f"a non-retryable failure ran {final['attempt']} attempts"
    if status == "system_failed":
        assert final.get("result") is None


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
