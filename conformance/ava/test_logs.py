"""GET /v1/ava/jobs/{id}/logs: the shape, the level filter, and the default and maximum limit."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from conformance.checks import ava_error_envelope
from conformance.clients.ava import TERMINAL, AvaClient, invalid, parse_ts, precision_ms
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
    # Each timestamp may be rendered at its own precision: allow the coarsest one either way.
    tick = timedelta(
        milliseconds=precision_ms(job["started_at"], job["completed_at"], *(x["ts"] for x in lines))
    )
    started, completed = parse_ts(job["started_at"]) - tick, parse_ts(job["completed_at"]) + tick
    outside = [x for x, ts in zip(lines, stamps, strict=True) if not started <= ts <= completed]
    assert not outside, (
        f"lines outside the job's run {job['started_at']}..{job['completed_at']}: {outside[:3]}"
    )


@req("ava.jobs.logs.shape")
def test_logs_report_the_current_status(ava: AvaClient, profile: TargetProfile) -> None:
    job_id = ava.start(profile.need("ava.workers.long.id"))["id"]
    try:
        ava.wait_for(job_id, {"running"}, timeout(profile))
        assert ava.logs(job_id)["job_status"] == "running"
    finally:
        ava.stop(job_id)
    ava.wait_for(job_id, {"cancelled"}, timeout(profile))
    assert ava.logs(job_id)["job_status"] == "cancelled"


@req("ava.jobs.logs.level-filter")
def test_level_filter_keeps_that_level(ava: AvaClient, profile: TargetProfile) -> None:
    """The document lists the levels but not whether a filter means exactly that level or that
    level and above (as log viewers often do). Either way no lower level comes back, the level
    itself does, and the target reads every level the same way."""
    job = finished(ava, profile, "logs")
    readings: set[str] = set()
    for level in LEVELS:
        lines = ava.logs(job["id"], **{"filter[level]": level, "limit": 500})["logs"]
        got = {line["level"] for line in lines}
        assert level in got, f"filter[level]={level} returned no {level} lines"
        lower = sorted(got - set(LEVELS[LEVELS.index(level) :]))
        assert not lower, f"filter[level]={level} returned lower-level lines: {lower}"
        # The logs worker writes every level, so "and above" must bring back each higher one.
        at_least = set(LEVELS[LEVELS.index(level) :])
        assert got in ({level}, at_least), f"filter[level]={level} returned {sorted(got)}"
        if level != LEVELS[-1]:  # error has nothing above it: both readings agree there
            readings.add("exact" if got == {level} else "at-least")
    assert len(readings) == 1, "filter[level] is exact for one level and a minimum for another"


@req("ava.jobs.logs.level-exact")
def test_the_reference_level_filter_is_exact(ava: AvaClient, profile: TargetProfile) -> None:
    job = finished(ava, profile, "logs")
    for level in LEVELS:
        lines = ava.logs(job["id"], **{"filter[level]": level, "limit": 500})["logs"]
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
@pytest.mark.parametrize("limit", ["0", "-1", "ten", "1.5", ""])
def test_limit_that_is_not_a_positive_integer_is_rejected(
    ava: AvaClient, profile: TargetProfile, limit: str
) -> None:
    job_id = ava.start(profile.need("ava.workers.complete.id"))["id"]
    invalid(ava.get_logs(job_id, {"limit": limit}), "limit")


@req("ava.jobs.logs.max-limit")
@pytest.mark.parametrize("limit", ["501", "1000000"])
def test_limit_above_500_is_rejected_or_capped(
    ava: AvaClient, profile: TargetProfile, limit: str
) -> None:
    """ "Default 100, max 500.": asking for more may be refused or answered with at most 500."""
    job = finished(ava, profile, "logs")
    response = ava.get_logs(job["id"], {"limit": limit})
    if response.status_code != 200:
        invalid(response, "limit")
        return
    lines = ava.data(response, f"read logs with limit={limit}")["logs"]
    assert len(lines) <= 500, f"limit={limit} returned {len(lines)} lines, above the maximum"
    if int(profile.get("ava.workers.logs.min_lines", 0)) > 500:
        assert len(lines) == 500, f"limit={limit} capped at {len(lines)} lines, not 500"


@req("ava.jobs.logs.over-max-rejected")
@pytest.mark.parametrize("limit", ["501", "1000000"])
def test_the_reference_rejects_limit_above_500(
    ava: AvaClient, profile: TargetProfile, limit: str
) -> None:
    job_id = ava.start(profile.need("ava.workers.complete.id"))["id"]
    ava_error_envelope(ava.get_logs(job_id, {"limit": limit}), 400, "validation_error", "limit")


@req("ava.jobs.logs.level-filter")
@pytest.mark.parametrize("level", ["debug", "INFO", "warning", ""])
def test_unknown_level_is_rejected(ava: AvaClient, profile: TargetProfile, level: str) -> None:
    job_id = ava.start(profile.need("ava.workers.complete.id"))["id"]
    response = ava.get_logs(job_id, {"filter[level]": level})
    invalid(response, "filter[level]")


@req("ava.jobs.logs.unknown-job")
def test_logs_of_an_unknown_job_are_not_found(ava: AvaClient) -> None:
    ava_error_envelope(ava.get_logs("job_01hxyz00000000000000000000"), 404, "resource_not_found")
