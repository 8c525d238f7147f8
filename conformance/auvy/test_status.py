"""GET /v1/jobs/{jobId}/status and GET /v1/jobs."""

from __future__ import annotations

import time
import uuid
from datetime import datetime
from typing import Any

import pytest

from conformance.checks import ConformanceFailure, auvy_error_envelope, body_of, status_is
from conformance.clients.auvy import STARTED, AuvyClient
from conformance.profile import TargetProfile

req = pytest.mark.req
TERMINAL = {"completed", "failed"}
FIELDS = (
    "job_id",
    "status",
    "progress",
    "current_step",
    "failedReason",
    "result",
    "waitingFor",
    "created_at",
    "processed_at",
    "finished_at",
)


def timeout(profile: TargetProfile) -> float:
    return float(profile.get("auvy.job_timeout_s", 30))


def ts(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def watch(auvy: AuvyClient, job_id: str, until: set[str], limit_s: float) -> list[dict[str, Any]]:
    """Every status snapshot from now until the job reaches `until`."""
    seen = []
    deadline = time.monotonic() + limit_s
    while time.monotonic() < deadline:
        snap = auvy.status(job_id)
        seen.append(snap)
        if snap["status"] in until:
            return seen
        time.sleep(0.02)
    raise ConformanceFailure(f"job {job_id} did not reach {until}", repr(seen[-1:]))


@req("auvy.jobs.status.fields")
def test_status_has_every_documented_field(auvy: AuvyClient, profile: TargetProfile) -> None:
    job_id = auvy.start(profile.need("auvy.pathways.complete.id"))
    body = auvy.status(job_id)
    missing = [f for f in FIELDS if f not in body]
    assert not missing, f"status lacks {missing}"
    assert body["job_id"] == job_id
    assert body["status"] in {"pending", "running", "completed", "failed", "waiting", "paused"}


@req("auvy.jobs.status.result-when-completed", "auvy.jobs.status.completed-final")
def test_completed_job_reports_result(auvy: AuvyClient, profile: TargetProfile) -> None:
    job_id = auvy.start(profile.need("auvy.pathways.complete.id"))
    final = auvy.wait_for(job_id, TERMINAL, timeout(profile))
    assert final["status"] == "completed", final
    assert final["result"] is not None, "a completed job must carry its result"
    assert not final.get("waitingFor"), "a completed job is not waiting for input"
    # Completed is final: a later read says the same.
    time.sleep(0.2)
    again = auvy.status(job_id)
    assert again["status"] == "completed" and again["result"] == final["result"]


@req("auvy.jobs.status.result-when-completed")
def test_completed_job_reports_the_profiles_result(
    auvy: AuvyClient, profile: TargetProfile
) -> None:
    expected = profile.need("auvy.pathways.complete.result")
    job_id = auvy.start(profile.need("auvy.pathways.complete.id"))
    final = auvy.wait_for(job_id, TERMINAL, timeout(profile))
    assert (final["status"], final["result"]) == ("completed", expected), final


@req("auvy.jobs.status.result-when-completed")
def test_result_is_absent_before_completion(auvy: AuvyClient, profile: TargetProfile) -> None:
    job_id = auvy.start(profile.need("auvy.pathways.long.id"))
    try:
        snap = auvy.wait_for(job_id, {"running"}, timeout(profile))
        assert snap.get("result") is None, f"a running job reported a result: {snap['result']!r}"
    finally:
        auvy.cancel(job_id)


@req("auvy.jobs.status.failed-reason", "auvy.jobs.status.failed-final")
def test_failed_job_reports_failed_reason(auvy: AuvyClient, profile: TargetProfile) -> None:
    job_id = auvy.start(profile.need("auvy.pathways.fail.id"))
    final = auvy.wait_for(job_id, TERMINAL, timeout(profile))
    assert final["status"] == "failed", final
    assert isinstance(final["failedReason"], str) and final["failedReason"], final
    assert final.get("result") is None, "result is for completed jobs"
    time.sleep(0.2)
    assert auvy.status(job_id)["status"] == "failed", "failed must be terminal"


@req("auvy.jobs.status.failed-reason")
def test_failed_job_reports_the_profiles_reason(auvy: AuvyClient, profile: TargetProfile) -> None:
    expected = profile.need("auvy.pathways.fail.reason")
    job_id = auvy.start(profile.need("auvy.pathways.fail.id"))
    final = auvy.wait_for(job_id, TERMINAL, timeout(profile))
    assert (final["status"], final["failedReason"]) == ("failed", expected), final


@req("auvy.jobs.status.waiting-for")
def test_waiting_job_reports_waiting_for(auvy: AuvyClient, profile: TargetProfile) -> None:
    job_id = auvy.start(profile.need("auvy.pathways.approval.id"))
    try:
        snap = auvy.wait_for(job_id, {"waiting"}, timeout(profile))
        # Its shape is not published (FACTS.md), only that it is there while the job waits.
        assert snap.get("waitingFor"), f"a waiting job has no waitingFor: {snap}"
    finally:
        auvy.cancel(job_id)


@req("auvy.jobs.status.waiting-for-shape")
def test_waiting_for_names_the_intervention(auvy: AuvyClient, profile: TargetProfile) -> None:
    job_id = auvy.start(profile.need("auvy.pathways.approval.id"))
    try:
        waiting = auvy.wait_for(job_id, {"waiting"}, timeout(profile))["waitingFor"]
        assert isinstance(waiting, dict) and waiting.get("interventionId"), waiting
    finally:
        auvy.cancel(job_id)


@req("auvy.jobs.status.timestamps")
def test_timestamps_are_ordered(auvy: AuvyClient, profile: TargetProfile) -> None:
    job_id = auvy.start(profile.need("auvy.pathways.complete.id"))
    first = auvy.status(job_id)
    if first["status"] == "pending":
        assert first["finished_at"] is None
    final = auvy.wait_for(job_id, TERMINAL, timeout(profile))
    created = ts(final["created_at"])
    assert final["processed_at"] is not None, "a job that ran has processed_at"
    assert final["finished_at"] is not None, "a terminal job has finished_at"
    processed, finished = ts(final["processed_at"]), ts(final["finished_at"])
    assert created <= processed <= finished, (created, processed, finished)


@req("auvy.jobs.status.progress")
def test_progress_never_decreases_and_ends_at_100(auvy: AuvyClient, profile: TargetProfile) -> None:
    job_id = auvy.start(profile.need("auvy.pathways.complete.id"))
    seen = watch(auvy, job_id, TERMINAL, timeout(profile))
    progress = [s["progress"] for s in seen]
    assert all(0 <= p <= 100 for p in progress), progress
    assert progress == sorted(progress), f"progress went backwards: {progress}"
    assert seen[-1]["status"] == "completed" and progress[-1] == 100, seen[-1]


# --- lists ---------------------------------------------------------------------------------------


def list_body(auvy: AuvyClient, **params: Any) -> dict[str, Any]:
    response = auvy.list_jobs(params=params)
    status_is(response, 200)
    body: dict[str, Any] = body_of(response)
    return body


@req("auvy.jobs.list.shape")
def test_list_shape(auvy: AuvyClient, profile: TargetProfile) -> None:
    auvy.start(profile.need("auvy.pathways.complete.id"))
    body = list_body(auvy, limit=5, offset=0)
    for key in ("jobs", "total", "limit", "offset"):
        assert key in body, f"list response lacks {key}"
    assert isinstance(body["jobs"], list) and len(body["jobs"]) <= 5
    assert body["limit"] == 5 and body["offset"] == 0
    assert isinstance(body["total"], int) and body["total"] >= 1
    for job in body["jobs"]:
        assert "job_id" in job and "status" in job, job


@req("auvy.jobs.list.filters")
def test_list_filter_by_pathway(auvy: AuvyClient, profile: TargetProfile) -> None:
    complete = profile.need("auvy.pathways.complete.id")
    failing = profile.need("auvy.pathways.fail.id")
    mine = auvy.start(complete)
    other = auvy.start(failing)
    ids = set(auvy.job_ids(pathway_id=failing))
    assert other in ids, "a job of the pathway is missing from its list"
    assert mine not in ids, "a job of another pathway is in the list"
    body = list_body(auvy, pathway_id=failing, limit=100)
    assert all(j.get("pathway_id", failing) == failing for j in body["jobs"]), body["jobs"]


@req("auvy.jobs.list.filters")
def test_list_filter_by_status(auvy: AuvyClient, profile: TargetProfile) -> None:
    job_id = auvy.start(profile.need("auvy.pathways.fail.id"))
    auvy.wait_for(job_id, TERMINAL, timeout(profile))
    failed = list_body(auvy, status="failed", limit=100)
    assert all(j["status"] == "failed" for j in failed["jobs"]), failed["jobs"]
    assert job_id in auvy.job_ids(status="failed"), "a failed job is missing from status=failed"
    assert job_id not in auvy.job_ids(status="completed"), "a failed job is listed as completed"


@req("auvy.jobs.list.filters")
def test_list_filter_by_unknown_receptor_is_empty(auvy: AuvyClient) -> None:
    # No job of the suite comes from this receptor; the filter must not ignore the parameter.
    body = list_body(auvy, receptor_id=f"rcp_{uuid.uuid4().hex}", limit=100)
    assert body["jobs"] == [] and body["total"] == 0, body


@req("auvy.jobs.list.filters")
def test_list_filter_by_receptor_gives_exactly_its_jobs(
    auvy: AuvyClient, profile: TargetProfile
) -> None:
    main = profile.need("auvy.public.receptors.main")
    workspace = profile.need("auvy.public.workspace")
    response = auvy.public(
        "executePublicReceptor",
        "POST",
        f"/v1/public/receptors/{workspace}/{main['slug']}/execute",
        token=main["token"],
        json_body={"message": "list me"},
    )
    status_is(response, STARTED)
    fired = str(body_of(response)["job_id"])
    private = auvy.start(profile.need("auvy.pathways.complete.id"))
    ids = auvy.job_ids(receptor_id=main["id"])
    assert fired in ids, "a job the receptor fired is missing from its list"
    assert private not in ids, "a job no receptor fired is in the receptor's list"
    # Another receptor's jobs are not its jobs either (no test fires `no_files`, so check the
    # filter is exclusive by the ids the other receptor's list holds).
    other = profile.need("auvy.public.receptors.no_files.id")
    assert not set(ids) & set(auvy.job_ids(receptor_id=other)), "lists of two receptors overlap"
    body = list_body(auvy, receptor_id=main["id"], limit=100)
    wrong = [j for j in body["jobs"] if j.get("receptor_id", main["id"]) != main["id"]]
    assert not wrong, f"jobs of another receptor: {wrong}"


@req("auvy.jobs.list.bad-query-400")
@pytest.mark.parametrize(
    "params",
    [
        {"status": "cancelled"},
        {"status": "done"},
        {"limit": "ten"},
        {"limit": -1},
        {"offset": -5},
        {"offset": "x"},
        {"pathway_id": "not-a-uuid"},
    ],
    ids=[
        "status-cancelled",
        "status-unknown",
        "limit-word",
        "limit-negative",
        "offset-negative",
        "offset-word",
        "pathway-malformed",
    ],
)
def test_list_rejects_bad_query(auvy: AuvyClient, params: dict[str, Any]) -> None:
    auvy_error_envelope(auvy.list_jobs(params=params), 400, "VALIDATION_ERROR")


@req("auvy.jobs.list.pagination")
def test_list_pages_cover_the_set_without_duplicates(
    auvy: AuvyClient, profile: TargetProfile
) -> None:
    pathway = profile.need("auvy.pathways.fail.id")
    started = {auvy.start(pathway) for _ in range(5)}
    for job_id in started:
        auvy.wait_for(job_id, TERMINAL, timeout(profile))
    # A filter that only our finished jobs (and older finished ones) match keeps the set stable
    # while other tests run in parallel: finished jobs never change status.
    total = list_body(auvy, pathway_id=pathway, status="failed", limit=1)["total"]
    assert total >= 5, f"total {total} does not count the 5 jobs just finished"
    first_total = total
    seen: list[str] = []
    offset = 0
    # Jobs other tests finish meanwhile may grow the set; `total` is re-read on every page.
    while offset < total:
        page = list_body(auvy, pathway_id=pathway, status="failed", limit=2, offset=offset)
        assert page["limit"] == 2 and page["offset"] == offset, page
        total = max(total, page["total"])
        # Every page but the last is full: a short page in the middle is a gap.
        expected = min(2, page["total"] - offset)
        assert len(page["jobs"]) >= min(expected, 2) and len(page["jobs"]) <= 2, page
        seen.extend(j["job_id"] for j in page["jobs"])
        offset += 2
    assert started <= set(seen), f"missing from pages: {started - set(seen)}"
    if total == first_total:
        # Nothing joined the set while paging, so nothing may have shifted onto a second page.
        assert len(seen) == len(set(seen)), "a job appeared on two pages"
    beyond = list_body(auvy, pathway_id=pathway, status="failed", limit=2, offset=total + 10)
    assert beyond["jobs"] == [] and beyond["total"] >= total


@req("auvy.jobs.list.workspace-scoped")
def test_list_shows_only_the_callers_workspace(auvy_as: Any, profile: TargetProfile) -> None:
    main, other = auvy_as("main"), auvy_as("other")
    mine = main.start(profile.need("auvy.pathways.complete.id"))
    body = list_body(other, limit=100)
    assert mine not in {j["job_id"] for j in body["jobs"]}, "another workspace's job is listed"
    assert mine not in str(body)
