"""POST /v1/ava/jobs/{id}/cancel from each status: queued and running are cancelled; completed,
failed and cancelled are 409 resource_conflict and stay exactly as they were.

The document shows no response for a cancel, so success may be the record (200 or 202) or no body
(204); the job's status, polled afterwards, is what must be cancelled.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from conformance.checks import ava_error_envelope, body_of, status_is
from conformance.clients.ava import TERMINAL, AvaClient, format_ts, promised
from conformance.profile import TargetProfile

req = pytest.mark.req


def timeout(profile: TargetProfile) -> float:
    return float(profile.get("ava.job_timeout_s", 30))


def queued_job(ava: AvaClient, profile: TargetProfile) -> dict[str, Any]:
    """A job that stays queued: scheduled an hour ahead."""
    at = format_ts(datetime.now(UTC) + timedelta(hours=1))
    return ava.start(profile.need("ava.workers.complete.id"), scheduled_at=at)


@req("ava.jobs.cancel.queued")
def test_cancel_a_queued_job(ava: AvaClient, profile: TargetProfile) -> None:
    job = queued_job(ava, profile)
    assert ava.job(job["id"])["status"] == "queued"
    record = ava.stop(job["id"])
    if record is not None:
        # An accepted cancel may still show the job as it was when the request arrived.
        assert record["status"] in ("queued", "cancelled"), record
    ava.wait_for(job["id"], {"cancelled"}, timeout(profile))
    time.sleep(0.2)
    after = ava.job(job["id"])
    assert after["status"] == "cancelled", after
    assert after["started_at"] is None, "a job cancelled while queued was started anyway"
    assert after["output"] is None, "a job cancelled before it started has an output"


@req("ava.jobs.cancel.running")
def test_cancel_a_running_job(ava: AvaClient, profile: TargetProfile) -> None:
    job_id = ava.start(profile.need("ava.workers.long.id"))["id"]
    ava.wait_for(job_id, {"running"}, timeout(profile))
    record = ava.stop(job_id)
    if record is not None:
        # A deployment may let the handler clean up after SIGTERM first: running, then cancelled.
        assert record["status"] in ("running", "cancelled"), record
    final = ava.wait_for(job_id, TERMINAL, timeout(profile))
    assert final["status"] == "cancelled", f"a cancelled job ended {final['status']}"
    assert final["started_at"] is not None, "a job cancelled while running has no started_at"
    time.sleep(0.3)
    assert promised(ava.job(job_id)) == promised(final), "a cancelled job changed afterwards"


@req("ava.jobs.cancel.reference-record")
def test_the_reference_answers_a_cancel_with_the_cancelled_record(
    ava: AvaClient, profile: TargetProfile
) -> None:
    job_id = ava.start(profile.need("ava.workers.long.id"))["id"]
    ava.wait_for(job_id, {"running"}, timeout(profile))
    response = ava.cancel(job_id)
    status_is(response, 200)
    record = body_of(response)["data"]
    assert record["status"] == "cancelled", record
    assert record["completed_at"] is not None, "the reference sets completed_at on cancel"
    assert isinstance(record["duration_ms"], int), record
    assert record["output"] is None and record["error"] is None, record
    assert promised(ava.job(job_id)) == promised(record)


def terminal_job(ava: AvaClient, profile: TargetProfile, status: str) -> dict[str, Any]:
    if status == "cancelled":
        job_id = queued_job(ava, profile)["id"]
        ava.stop(job_id, "cancel a queued job")
        return ava.wait_for(job_id, {"cancelled"}, timeout(profile))
    kind = {"completed": "complete", "failed": "fail"}[status]
    job_id = ava.start(profile.need(f"ava.workers.{kind}.id"))["id"]
    final = ava.wait_for(job_id, TERMINAL, timeout(profile))
    assert final["status"] == status, final
    return final


@req("ava.jobs.cancel.terminal-409")
@pytest.mark.parametrize("status", ["completed", "failed", "cancelled"])
def test_cancel_of_a_finished_job_is_a_conflict(
    ava: AvaClient, profile: TargetProfile, status: str
) -> None:
    before = terminal_job(ava, profile, status)
    ava_error_envelope(ava.cancel(before["id"]), 409, "resource_conflict")
    assert promised(ava.job(before["id"])) == promised(before), "a refused cancel changed the job"
    logs = ava.logs(before["id"], limit=500)["logs"]
    ava_error_envelope(ava.cancel(before["id"]), 409, "resource_conflict")
    assert ava.logs(before["id"], limit=500)["logs"] == logs, "a refused cancel wrote log lines"


@req("ava.jobs.cancel.unknown-job")
def test_cancel_of_an_unknown_job_is_not_found(ava: AvaClient) -> None:
    ava_error_envelope(ava.cancel("job_01hxyz00000000000000000000"), 404, "resource_not_found")
