"""What a run recorded: events (level, type), checkpoints, usage, tool calls, structured outputs,
the debug bundle that gathers them, the management state, child runs, continuation lineage and
dependency status."""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable
from typing import Any

import pytest

from conformance.checks import body_of, status_is, strait_error_envelope
from conformance.clients.strait import TERMINAL, StraitClient, same_run
from conformance.profile import TargetProfile

req = pytest.mark.req
Job = Callable[[str], str]


def listing(strait: StraitClient, op: str, run_id: str, suffix: str, **params: Any) -> Any:
    response = strait.sub(op, run_id, suffix, params=params or None)
    status_is(response, 200)
    return body_of(response)


@pytest.fixture
def executed(strait: StraitClient, strait_job: Job) -> dict[str, Any]:
    """A completed run, in debug mode so that it records events at more than one level."""
    return strait.finish(strait_job("complete"), "completed", debug_mode=True)


@req("strait.records.events")
def test_events_are_recorded_and_filtered_by_level_and_type(
    strait: StraitClient, executed: dict[str, Any]
) -> None:
    run_id = executed["id"]
    events = listing(strait, "listRunEvents", run_id, "events")
    assert events, "a run that executed has no events"
    assert {e["run_id"] for e in events} == {run_id}
    levels = {e["level"] for e in events}
    types = {e["type"] for e in events}
    assert len(levels) > 1 or len(types) > 1, "nothing to tell filtered from unfiltered events"
    for level in ("debug", "info", "warn", "error"):
        found = listing(strait, "listRunEvents", run_id, "events", level=level)
        assert found == [e for e in events if e["level"] == level], f"level={level}"
    for kind in types:
        found = listing(strait, "listRunEvents", run_id, "events", type=kind)
        assert found == [e for e in events if e["type"] == kind], f"type={kind}"
    some = events[0]
    both = listing(
        strait, "listRunEvents", run_id, "events", level=some["level"], type=some["type"]
    )
    assert both == [e for e in events if e["level"] == some["level"] and e["type"] == some["type"]]
    assert listing(strait, "listRunEvents", run_id, "events", type="no.such.type") == []


@req("strait.decision.filter-values")
def test_an_event_level_outside_the_list_is_400(
    strait: StraitClient, executed: dict[str, Any]
) -> None:
    response = strait.sub("listRunEvents", executed["id"], "events", params={"level": "loud"})
    strait_error_envelope(response, 400, "bad_request")


@req("strait.records.checkpoints")
def test_checkpoints_have_increasing_sequence_numbers(
    strait: StraitClient, strait_job: Job
) -> None:
    # Three attempts (two retried failures): more than one checkpoint to compare.
    run = strait.finish(strait_job("retry"), "completed")
    checkpoints = listing(strait, "listRunCheckpoints", run["id"], "checkpoints")
    assert checkpoints, "a run that executed has no checkpoints"
    assert {c["run_id"] for c in checkpoints} == {run["id"]}
    sequences = [c["sequence"] for c in checkpoints]
    assert all(a < b for a, b in itertools.pairwise(sequences)), sequences


@req("strait.records.usage")
def test_usage_rows_add_up(strait: StraitClient, executed: dict[str, Any]) -> None:
    usage = listing(strait, "listRunUsage", executed["id"], "usage")
    assert usage, "a run that executed has no usage rows"
    for row in usage:
        assert row["run_id"] == executed["id"]
        assert row["total_tokens"] == row["prompt_tokens"] + row["completion_tokens"], row
        assert row["provider"] and row["model"], row


@req("strait.records.tool-calls")
def test_tool_calls_are_recorded(strait: StraitClient, executed: dict[str, Any]) -> None:
    calls = listing(strait, "listRunToolCalls", executed["id"], "tool-calls")
    assert calls, "a run that executed has no tool calls"
    for call in calls:
        assert call["run_id"] == executed["id"] and call["tool_name"], call


@req("strait.records.outputs")
def test_a_completed_run_has_structured_outputs(
    strait: StraitClient, executed: dict[str, Any]
) -> None:
    outputs = listing(strait, "listRunOutputs", executed["id"], "outputs")
    assert outputs, "a completed run has no structured outputs"
    for output in outputs:
        assert output["run_id"] == executed["id"] and output["output_key"], output


@req("strait.records.events", "strait.records.checkpoints", "strait.records.outputs")
def test_a_run_that_never_executed_has_no_records(strait: StraitClient, strait_job: Job) -> None:
    run = strait.held(strait_job("complete"))
    try:
        for op, suffix in (
            ("listRunCheckpoints", "checkpoints"),
            ("listRunUsage", "usage"),
            ("listRunToolCalls", "tool-calls"),
            ("listRunOutputs", "outputs"),
        ):
            assert listing(strait, op, run["id"], suffix) == [], f"{suffix} of a delayed run"
    finally:
        strait.cancel(run["id"])


@req("strait.records.debug-bundle")
def test_debug_bundle_holds_what_the_individual_routes_return(
    strait: StraitClient, executed: dict[str, Any]
) -> None:
    run_id = executed["id"]
    bundle = listing(strait, "getRunDebugBundle", run_id, "debug-bundle")
    assert same_run(bundle["run"], strait.run(run_id)), "the bundle's run is not the run"
    for key, op, suffix in (
        ("events", "listRunEvents", "events"),
        ("checkpoints", "listRunCheckpoints", "checkpoints"),
        ("usage", "listRunUsage", "usage"),
        ("tool_calls", "listRunToolCalls", "tool-calls"),
        ("outputs", "listRunOutputs", "outputs"),
    ):
        assert bundle[key] == listing(strait, op, run_id, suffix), f"bundle {key} differs"
        assert bundle[key], f"the bundle of a completed run has no {key}"


@req("strait.records.state")
def test_state_reports_the_runs_management_state(
    strait: StraitClient, strait_job: Job, executed: dict[str, Any]
) -> None:
    state = listing(strait, "getRunState", executed["id"], "state")
    assert state["run_id"] == executed["id"] and state["status"] == "completed", state
    assert state["attempt"] == executed["attempt"] and state["paused"] is False, state
    run = strait.executing(strait_job("long"))
    try:
        status_is(strait.action("pause", run["id"]), 200)
        paused = listing(strait, "getRunState", run["id"], "state")
        assert paused["paused"] is True, "a paused run's state does not say paused"
        assert paused["status"] == strait.run(run["id"])["status"]
    finally:
        strait.cancel(run["id"])


@req("strait.records.children", "strait.list.triggered-by")
def test_children_list_the_runs_a_run_spawned(
    strait: StraitClient, strait_job: Job, profile: TargetProfile
) -> None:
    count = int(profile.need("strait.facts.spawn_count"))
    parent = strait.finish(strait_job("spawn"), "completed")
    children = listing(strait, "listChildRuns", parent["id"], "children")
    assert len(children) == count, f"{len(children)} children, expected {count}"
    for child in children:
        assert child.get("parent_run_id") == parent["id"], child.get("parent_run_id")
        assert child["triggered_by"] == "spawn", child["triggered_by"]
        assert child["status"] in TERMINAL, "the parent completed before its children finished"
        assert listing(strait, "listChildRuns", child["id"], "children") == []
    assert parent.get("parent_run_id") is None


@req("strait.records.lineage")
def test_lineage_lists_the_whole_continuation_chain(
    strait: StraitClient, strait_job: Job, profile: TargetProfile
) -> None:
    depth = int(profile.need("strait.facts.continue_depth"))
    root = strait.start(strait_job("continue"))["id"]
    chain: list[dict[str, Any]] = []
    deadline = time.monotonic() + strait.timeout_s
    while time.monotonic() < deadline:
        chain = listing(strait, "listRunLineage", root, "lineage")
        if len(chain) == depth + 1 and all(r["status"] in TERMINAL for r in chain):
            break
        time.sleep(strait.poll_s)
    assert len(chain) == depth + 1, f"a chain of {len(chain)}, expected {depth + 1}"
    assert chain[0]["id"] == root and chain[0].get("continuation_of") is None
    for n, (before, after) in enumerate(itertools.pairwise(chain), start=1):
        assert after.get("continuation_of") == before["id"], (
            "continuation_of does not link the chain"
        )
        assert after["lineage_depth"] == n, (n, after["lineage_depth"])
        assert after["job_id"] == before["job_id"]
    assert [r["lineage_depth"] for r in chain] == list(range(depth + 1))
    # Every member of the chain answers the same chain.
    for member in chain[1:]:
        again = listing(strait, "listRunLineage", member["id"], "lineage")
        assert [r["id"] for r in again] == [r["id"] for r in chain]
        assert strait.run(member["id"])["continuation_of"] == member.get("continuation_of")


@req("strait.records.lineage")
def test_a_run_never_continued_is_a_chain_of_one(strait: StraitClient, strait_job: Job) -> None:
    run = strait.held(strait_job("complete"))
    try:
        chain = listing(strait, "listRunLineage", run["id"], "lineage")
        assert [r["id"] for r in chain] == [run["id"]]
        assert run["lineage_depth"] == 0 and run.get("continuation_of") is None
    finally:
        strait.cancel(run["id"])


@req("strait.records.dependency-status")
def test_dependency_status_lists_the_jobs_dependencies(
    strait: StraitClient, strait_job: Job, profile: TargetProfile
) -> None:
    dependency = str(profile.need("strait.facts.dependency"))
    # A completed run of the dependency satisfies it (x-decision); make sure one exists.
    strait.finish(dependency, "completed")
    run = strait.held(strait_job("dependent"))
    try:
        status = listing(strait, "getRunDependencyStatus", run["id"], "dependency-status")
        assert status["run_id"] == run["id"] and status["job_id"] == run["job_id"], status
        assert status["status"] == "delayed"
        on = [d["depends_on_job_id"] for d in status["dependencies"]]
        assert dependency in on, f"the dependency on {dependency} is not listed: {on}"
        assert all(d["job_id"] == run["job_id"] for d in status["dependencies"])
        assert isinstance(status["dependencies_satisfied"], bool), status
    finally:
        strait.cancel(run["id"])
    free = strait.held(strait_job("complete"))
    try:
        status = listing(strait, "getRunDependencyStatus", free["id"], "dependency-status")
        assert status["dependencies"] == [] and status["dependencies_satisfied"] is True
    finally:
        strait.cancel(free["id"])


@req("strait.decision.dependency-satisfied")
def test_the_reference_counts_a_completed_run_as_satisfying_a_dependency(
    strait: StraitClient, strait_job: Job, profile: TargetProfile
) -> None:
    strait.finish(str(profile.need("strait.facts.dependency")), "completed")
    run = strait.held(strait_job("dependent"))
    try:
        status = listing(strait, "getRunDependencyStatus", run["id"], "dependency-status")
        assert status["dependencies_satisfied"] is True, status
    finally:
        strait.cancel(run["id"])
