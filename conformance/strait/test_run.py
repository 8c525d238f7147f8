"""GET /v1/runs/{runID}: the run record, every field the document lists, and its timings."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from conformance.checks import body_of, status_is, strait_error_envelope
from conformance.clients.strait import PAUSED, STATUSES, StraitClient, parse_ts

req = pytest.mark.req
Job = Callable[[str], str]

NULLABLE_STRING = (str, type(None))
NULLABLE_INT = (int, type(None))
# The run record exactly as the document lists it, with the JSON type of each field (null where
# a field does not apply yet).
DOCUMENTED_FIELDS: dict[str, tuple[type, ...]] = {
    "id": (str,),
    "job_id": (str,),
    "project_id": (str,),
    "status": (str,),
    "attempt": (int,),
    "payload": (dict,),
    "result": (dict, type(None)),
    "metadata": (dict,),
    "error": NULLABLE_STRING,
    "triggered_by": (str,),
    "scheduled_at": NULLABLE_STRING,
    "started_at": NULLABLE_STRING,
    "finished_at": NULLABLE_STRING,
    "heartbeat_at": NULLABLE_STRING,
    "next_retry_at": NULLABLE_STRING,
    "expires_at": NULLABLE_STRING,
    "parent_run_id": NULLABLE_STRING,
    "priority": (int,),
    "idempotency_key": NULLABLE_STRING,
    "job_version": (int,),
    "workflow_step_run_id": NULLABLE_STRING,
    "max_attempts_override": NULLABLE_INT,
    "timeout_secs_override": NULLABLE_INT,
    "retry_backoff": NULLABLE_STRING,
    "retry_initial_delay_secs": NULLABLE_INT,
    "retry_max_delay_secs": NULLABLE_INT,
    "execution_trace": (dict, type(None)),
    "debug_mode": (bool,),
    "continuation_of": NULLABLE_STRING,
    "lineage_depth": (int,),
    "tags": (dict,),
    "job_version_id": NULLABLE_STRING,
    "created_by": NULLABLE_STRING,
    "batch_id": NULLABLE_STRING,
    "concurrency_key": NULLABLE_STRING,
    "created_at": (str,),
}
TRACE_FIELDS = (
    "queue_wait_ms",
    "dequeue_ms",
    "connect_ms",
    "ttfb_ms",
    "transfer_ms",
    "total_ms",
    "dispatch_ms",
)


# What no run can be without: the record's identity, where it is, and when it was made. The other
# documented fields may be left out while they do not apply (a null and an absent field say the
# same); that the reference always sends them is its decision.
CORE_FIELDS = ("id", "job_id", "project_id", "status", "attempt", "payload", "created_at")


def has_documented_fields(run: dict[str, Any]) -> None:
    missing = [name for name in CORE_FIELDS if name not in run]
    assert not missing, f"the run lacks fields {missing}"
    for name, types in DOCUMENTED_FIELDS.items():
        if name not in run:
            continue
        value = run[name]
        # bool is an int in Python; only debug_mode may be one.
        wrong = isinstance(value, bool) and bool not in types
        assert isinstance(value, types) and not wrong, f"{name} = {value!r}"
    # The live system's paused is the spec's recorded deviation.
    assert run["status"] in {*STATUSES, *PAUSED}, run["status"]
    for name in ("scheduled_at", "started_at", "finished_at", "heartbeat_at", "created_at"):
        if run.get(name) is not None:
            parse_ts(run[name])


@req("strait.decision.every-field-present")
def test_the_reference_sends_every_documented_field(strait: StraitClient, strait_job: Job) -> None:
    for run in (
        strait.finish(strait_job("complete"), "completed"),
        strait.run(strait.held(strait_job("complete"))["id"]),
    ):
        missing = [name for name in DOCUMENTED_FIELDS if name not in run]
        assert not missing, f"the run lacks documented fields {missing}"
        if run["status"] == "delayed":
            strait.cancel(run["id"])


@req("strait.runs.get")
def test_get_returns_the_run(strait: StraitClient, strait_job: Job) -> None:
    made = strait.held(strait_job("complete"), payload={"x": 1})
    try:
        response = strait.get_run(made["id"])
        status_is(response, 200)
        run = body_of(response)
        assert run["id"] == made["id"] and run["job_id"] == made["job_id"]
        assert run["payload"] == {"x": 1} and run["status"] == "delayed"
        assert parse_ts(run["created_at"]) == parse_ts(made["created_at"])
    finally:
        strait.cancel(made["id"])


@req("strait.runs.get")
@pytest.mark.parametrize("run_id", ["0193a1b2-0000-7000-8000-000000000000", "no-such-run"])
def test_get_of_an_unknown_run_is_404(strait: StraitClient, run_id: str) -> None:
    error = strait_error_envelope(strait.get_run(run_id), 404, "not_found")
    assert "not found" in error["message"], error


@req("strait.runs.fields")
def test_a_finished_run_has_every_documented_field(strait: StraitClient, strait_job: Job) -> None:
    run = strait.finish(strait_job("complete"), "completed", metadata={"k": "v"}, tags={"t": "1"})
    has_documented_fields(run)
    assert run.get("metadata") == {"k": "v"} and run.get("tags") == {"t": "1"}
    assert isinstance(run.get("result"), dict), "a completed run has no result object"
    assert run.get("error") is None, "a completed run carries an error"


@req("strait.runs.fields")
def test_a_run_that_never_executed_has_every_documented_field(
    strait: StraitClient, strait_job: Job
) -> None:
    made = strait.held(strait_job("complete"))
    try:
        run = strait.run(made["id"])
        has_documented_fields(run)
        for name in ("started_at", "finished_at", "heartbeat_at", "result", "error"):
            assert run.get(name) is None, f"a run that never executed has {name} = {run[name]!r}"
    finally:
        strait.cancel(made["id"])


@req("strait.runs.execution-trace")
def test_a_finished_run_carries_its_execution_trace(strait: StraitClient, strait_job: Job) -> None:
    run = strait.finish(strait_job("complete"), "completed")
    trace = run.get("execution_trace")
    assert isinstance(trace, dict), f"a run that executed has execution_trace {trace!r}"
    # The documented timings; a target may time more.
    assert set(TRACE_FIELDS) <= set(trace), sorted(set(TRACE_FIELDS) - set(trace))
    for name in TRACE_FIELDS:
        assert trace[name] is None or (isinstance(trace[name], int) and trace[name] >= 0), name
    assert isinstance(trace["total_ms"], int), "total_ms is not set once the run finished"
    created, finished = parse_ts(run["created_at"]), parse_ts(run.get("finished_at"))
    span_ms = (finished - created).total_seconds() * 1000
    assert trace["total_ms"] <= span_ms + 1, f"total_ms {trace['total_ms']} > {span_ms:.0f} ms"


@req("strait.runs.timestamps")
def test_timestamps_follow_the_run(strait: StraitClient, strait_job: Job) -> None:
    run = strait.finish(strait_job("complete"), "completed")
    names = ("created_at", "started_at", "heartbeat_at", "finished_at")
    assert all(run[n] is not None for n in names), {n: run[n] for n in names}
    created, started, beat, finished = (parse_ts(run[n]) for n in names)
    assert created <= started, "started before it was created"
    assert started <= beat <= finished, f"started {started}, heartbeat {beat}, finished {finished}"


@req("strait.runs.timestamps")
def test_an_executing_run_has_started_and_a_heartbeat_but_no_finish(
    strait: StraitClient, strait_job: Job
) -> None:
    run = strait.executing(strait_job("long"))
    try:
        assert run.get("started_at") is not None and run.get("heartbeat_at") is not None, run
        assert run.get("finished_at") is None, "an executing run has finished_at"
        assert parse_ts(run["created_at"]) <= parse_ts(run.get("started_at"))
        assert parse_ts(run.get("started_at")) <= parse_ts(run.get("heartbeat_at"))
    finally:
        strait.cancel(run["id"])
