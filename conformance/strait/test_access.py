"""Who may call: bearer keys, and another project's runs answered 404 on every route."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from conformance.checks import body_of, no_leak, strait_error_envelope
from conformance.clients.strait import StraitClient, error_of, items_of, new_batch, refused

req = pytest.mark.req
MakeClient = Callable[[str | None], StraitClient]
Call = Callable[[StraitClient, str], httpx.Response]
Job = Callable[[str], str]


def later(hours: int = 1) -> str:
    return (datetime.now(UTC) + timedelta(hours=hours)).strftime("%Y-%m-%dT%H:%M:%SZ")


# Every route that takes a runID, as the other project's key calls it.
RUN_ROUTES: dict[str, Call] = {
    "getRun": lambda c, r: c.get_run(r),
    "cancelRun": lambda c, r: c.cancel(r),
    "replayRun": lambda c, r: c.replay(r),
    "replayDeadLetterRun": lambda c, r: c.dlq_replay(r),
    "listChildRuns": lambda c, r: c.sub("listChildRuns", r, "children"),
    "listRunEvents": lambda c, r: c.sub("listRunEvents", r, "events"),
    "listRunCheckpoints": lambda c, r: c.sub("listRunCheckpoints", r, "checkpoints"),
    "listRunUsage": lambda c, r: c.sub("listRunUsage", r, "usage"),
    "listRunToolCalls": lambda c, r: c.sub("listRunToolCalls", r, "tool-calls"),
    "listRunOutputs": lambda c, r: c.sub("listRunOutputs", r, "outputs"),
    "getRunDebugBundle": lambda c, r: c.sub("getRunDebugBundle", r, "debug-bundle"),
    "setRunDebugMode": lambda c, r: c.set_debug(r, {"debug_mode": True}),
    "listRunLineage": lambda c, r: c.sub("listRunLineage", r, "lineage"),
    "getRunDependencyStatus": lambda c, r: c.sub("getRunDependencyStatus", r, "dependency-status"),
    "resetRunIdempotencyKey": lambda c, r: c.reset_key(r),
    "rescheduleRun": lambda c, r: c.reschedule(r, {"scheduled_at": later(2)}),
    "pauseRun": lambda c, r: c.action("pause", r),
    "resumeRun": lambda c, r: c.action("resume", r),
    "restartRun": lambda c, r: c.action("restart", r),
    "getRunState": lambda c, r: c.sub("getRunState", r, "state"),
    "streamRun": lambda c, r: c.api.request("streamRun", "GET", f"/v1/runs/{r}/stream"),
    "streamRunChunks": lambda c, r: c.api.request(
        "streamRunChunks", "GET", f"/v1/runs/{r}/stream/chunks"
    ),
}


@req("strait.access.other-project-404")
def test_another_projects_run_is_404_on_every_route(
    strait: StraitClient, strait_as: MakeClient, strait_job: Job
) -> None:
    # A delayed run: every route has something it could do to it, and none may.
    run = strait.start(strait_job("complete"), scheduled_at=later(), batch_id=new_batch())
    other = strait_as("other")
    for name, call in RUN_ROUTES.items():
        response = call(other, run["id"])
        error = strait_error_envelope(response, 404, "not_found")
        assert error["message"] == "run not found", (name, error)
        no_leak(response, run["job_id"])
    for name, body in (
        ("bulkCancelRuns", {"run_ids": [run["id"]]}),
        ("bulkReplayDeadLetterRuns", {"run_ids": [run["id"]]}),
    ):
        path = "/v1/runs/bulk-cancel" if name == "bulkCancelRuns" else "/v1/runs/bulk-dlq-replay"
        response = other.api.request(name, "POST", path, json_body=body)
        assert response.status_code in (200, 404), (name, response.text)
    after = strait.run(run["id"])
    assert after["status"] == "delayed" and after.get("scheduled_at") == run.get("scheduled_at")
    strait.cancel(run["id"])


@req("strait.access.key-required")
@pytest.mark.parametrize("key", [None, "not-a-strait-key", "strait_" + "0" * 64])
def test_requests_without_a_valid_key_are_401(strait_as: MakeClient, key: str | None) -> None:
    client = strait_as(None)
    headers = {"Authorization": f"Bearer {key}"} if key else None
    calls = [
        client.api.request(
            "listRuns", "GET", "/v1/runs", params={"project_id": client.project_id}, headers=headers
        ),
        client.api.request("getRun", "GET", "/v1/runs/x", headers=headers),
        client.api.request(
            "bulkCancelRuns",
            "POST",
            "/v1/runs/bulk-cancel",
            json_body={"run_ids": ["x"]},
            headers=headers,
        ),
    ]
    for response in calls:
        strait_error_envelope(response, 401, "authentication_required")


@req("strait.access.project-scoped-lists")
def test_lists_are_scoped_to_the_keys_project(
    strait: StraitClient, strait_as: MakeClient, strait_job: Job
) -> None:
    batch = new_batch()
    run = strait.start(strait_job("complete"), batch_id=batch, scheduled_at=later())
    other = strait_as("other")
    try:
        assert other.runs(batch_id=batch) == []
        # Another project's project_id: refused (any 4xx) or an empty list, never the runs.
        foreign = other.list_runs({"project_id": strait.project_id, "batch_id": batch})
        if foreign.status_code == 200:
            assert items_of(body_of(foreign)) == [], "another project's runs were listed"
        else:
            assert 400 <= foreign.status_code < 500, foreign.status_code
            error_of(foreign, foreign.status_code)
            no_leak(foreign, run["job_id"])
        refused(strait.api.request("listRuns", "GET", "/v1/runs"))
        assert [r["id"] for r in strait.runs(batch_id=batch)] == [run["id"]]
    finally:
        strait.cancel(run["id"])


@req("strait.decision.foreign-project-id-404")
def test_the_reference_answers_another_projects_project_id_with_404(
    strait: StraitClient, strait_as: MakeClient
) -> None:
    other = strait_as("other")
    strait_error_envelope(other.list_runs({"project_id": strait.project_id}), 404, "not_found")
