"""GET /v1/ava/jobs/{id}: polling a job to completed and to failed; timestamps; finality."""

from __future__ import annotations

import time

import pytest

from conformance.checks import ava_error_envelope
from conformance.clients.ava import TERMINAL, AvaClient, parse_ts, precision_ms, promised
from conformance.profile import TargetProfile

req = pytest.mark.req


def timeout(profile: TargetProfile) -> float:
    return float(profile.get("ava.job_timeout_s", 30))


@req("ava.jobs.get.output", "ava.jobs.get.terminal")
def test_polling_reaches_completed_with_the_output(ava: AvaClient, profile: TargetProfile) -> None:
    job_id = ava.start(profile.need("ava.workers.complete.id"))["id"]
    final = ava.wait_for(job_id, TERMINAL, timeout(profile))
    assert final["status"] == "completed", final
    assert final["output"] is not None, "a completed job carries its handler's return value"
    expected = profile.get("ava.workers.complete.output")
    if expected is not None:
        assert final["output"] == expected
    assert final["error"] is None
    time.sleep(0.2)
    assert promised(ava.job(job_id)) == promised(final), "a completed job changed afterwards"


@req("ava.jobs.get.error", "ava.jobs.get.terminal")
def test_polling_reaches_failed_with_the_error(ava: AvaClient, profile: TargetProfile) -> None:
    job_id = ava.start(profile.need("ava.workers.fail.id"))["id"]
    final = ava.wait_for(job_id, TERMINAL, timeout(profile))
    assert final["status"] == "failed", final
    assert isinstance(final["error"], str) and final["error"], final
    expected = profile.get("ava.workers.fail.error")
    if expected is not None:
        assert final["error"] == expected
    assert final["output"] is None
    time.sleep(0.2)
    assert promised(ava.job(job_id)) == promised(final), "a failed job changed afterwards"


@req("ava.jobs.get.output")
def test_output_is_null_while_running(ava: AvaClient, profile: TargetProfile) -> None:
    job_id = ava.start(profile.need("ava.workers.long.id"))["id"]
    try:
        running = ava.wait_for(job_id, {"running"}, timeout(profile))
        assert running["output"] is None and running["error"] is None, running
        assert running["started_at"] is not None and running["completed_at"] is None, running
    finally:
        ava.cancel(job_id)  # cleanup: the cancel itself is judged in test_cancel


@req("ava.jobs.get.timestamps")
@pytest.mark.parametrize("kind", ["complete", "fail"])
def test_timestamps_and_duration_agree(ava: AvaClient, profile: TargetProfile, kind: str) -> None:
    job_id = ava.start(profile.need(f"ava.workers.{kind}.id"))["id"]
    final = ava.wait_for(job_id, TERMINAL, timeout(profile))
    assert final["started_at"] is not None and final["completed_at"] is not None, final
    created, started, completed = (
        parse_ts(final[f]) for f in ("created_at", "started_at", "completed_at")
    )
    assert created <= started <= completed, (created, started, completed)
    expected_ms = round((completed - started).total_seconds() * 1000)
    duration = final["duration_ms"]
    assert isinstance(duration, int) and not isinstance(duration, bool), final
    # Each rendered timestamp may be rounded or cut to its own precision (1 ms for .123, 1 s for
    # none) from the clock duration_ms was measured with: one tick each, plus a millisecond.
    slack = 2 * precision_ms(final["started_at"], final["completed_at"]) + 1
    assert abs(duration - expected_ms) <= slack, (
        f"duration_ms {duration} but completed_at - started_at is {expected_ms} ms (+-{slack})"
    )


@req("ava.jobs.get.record")
@pytest.mark.parametrize("job_id", ["job_01hxyz00000000000000000000", "nope", "0"])
def test_unknown_job_is_not_found(ava: AvaClient, job_id: str) -> None:
    ava_error_envelope(ava.get_job(job_id), 404, "resource_not_found")
