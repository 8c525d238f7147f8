"""GET /v1/ava/jobs/{id}/logs: the shape, the level filter, and the default and maximum limit."""

from __future__ import annotations

from typing import Any

import pytest

from conformance.checks import ava_error_envelope
from conformance.clients.ava import TERMINAL, AvaClient, parse_ts
from conformance.profile import TargetProfile

req = pytest.mark.req
LEVELS = ("info", "warn", "error")


def timeout(profile: TargetProfile) -> float:
    return float(profile.get("ava.job_timeout_s", 30))


def finished(ava: AvaClient, profile: TargetProfile, kind: str) -> dict[str, Any]:
    job_id = ava.start(profile.need(f"ava.workers.{kind}.id"))["id"]
    return ava.wait_for(job_id, TERMINAL, timeout(profile))


@req("ava.jobs.logs.shape")
def test_logs_of_a_finished_job(ava: AvaClient, profile: TargetProfile) -> None:
    job = finished(ava, profile, "complete")
    body = ava.logs(job["id"])
    assert body["job_id"] == job["id"]
    assert body["job_status"] == job["status"] == "completed"
    lines = body["logs"]
    assert lines, "a job that ran wrote no log lines"
    stamps = [parse_ts(line["ts"]) for line in lines]
    assert stamps == sorted(stamps), "log lines are not in the order they were written"
    started, completed = parse_ts(job["started_at"]), parse_ts(job["completed_at"])
    assert all(started <= ts <= completed for ts in stamps), "a line is outside the job's run"


@req("ava.jobs.logs.shape")
def test_logs_report_the_current_status(ava: AvaClient, profile: TargetProfile) -> None:
    job_id = ava.start(profile.need("ava.workers.long.id"))["id"]
    try:
        ava.wait_for(job_id, {"running"}, timeout(profile))
        assert ava.logs(job_id)["job_status"] == "running"
    finally:
        ava.cancel(job_id)
    ava.wait_for(job_id, {"cancelled"}, timeout(profile))
    assert ava.logs(job_id)["job_status"] == "cancelled"


@req("ava.jobs.logs.level-filter")
def test_level_filter_keeps_only_that_level(ava: AvaClient, profile: TargetProfile) -> None:
    job = finished(ava, profile, "logs")
    for level in LEVELS:
        lines = ava.logs(job["id"], **{"filter[level]": level, "limit": 500})["logs"]
        assert lines, f"the logs worker wrote no {level} lines"
        other = sorted({line["level"] for line in lines} - {level})
        assert not other, f"filter[level]={level} also returned {other} lines"


@req("ava.jobs.logs.default-limit")
def test_default_limit_is_100(ava: AvaClient, profile: TargetProfile) -> None:
    job = finished(ava, profile, "logs")
    assert len(ava.logs(job["id"])["logs"]) == 100
    assert len(ava.logs(job["id"], limit=7)["logs"]) == 7


@req("ava.jobs.logs.max-limit")
def test_limit_500_is_the_maximum(ava: AvaClient, profile: TargetProfile) -> None:
    if int(profile.get("ava.workers.logs.min_lines", 0)) <= 500:
        pytest.skip("ava.workers.logs.min_lines must be above 500 to see the maximum")
    job = finished(ava, profile, "logs")
    assert len(ava.logs(job["id"], limit=500)["logs"]) == 500


@req("ava.jobs.logs.max-limit")
@pytest.mark.parametrize("limit", ["501", "0", "-1", "1000000", "ten", "1.5", ""])
def test_limit_outside_1_to_500_is_rejected(
    ava: AvaClient, profile: TargetProfile, limit: str
) -> None:
    job_id = ava.start(profile.need("ava.workers.complete.id"))["id"]
    ava_error_envelope(ava.get_logs(job_id, {"limit": limit}), 400, "validation_error", "limit")


@req("ava.jobs.logs.level-filter")
@pytest.mark.parametrize("level", ["debug", "INFO", "warning", ""])
def test_unknown_level_is_rejected(ava: AvaClient, profile: TargetProfile, level: str) -> None:
    job_id = ava.start(profile.need("ava.workers.complete.id"))["id"]
    response = ava.get_logs(job_id, {"filter[level]": level})
    ava_error_envelope(response, 400, "validation_error", "filter[level]")


@req("ava.jobs.logs.unknown-job")
def test_logs_of_an_unknown_job_are_not_found(ava: AvaClient) -> None:
    ava_error_envelope(ava.get_logs("job_01hxyz00000000000000000000"), 404, "resource_not_found")
