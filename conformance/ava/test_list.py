"""GET /v1/ava/jobs: each filter alone, the created_at bounds, and filters combined.

Other tests run in parallel on the same tenant, so each check is about this test's own jobs (in
or out of the list) and about every listed job matching the filters, never about counts.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from conformance.checks import ava_error_envelope
from conformance.clients.ava import TERMINAL, AvaClient, format_ts, parse_ts, shift
from conformance.profile import TargetProfile

req = pytest.mark.req
TRIGGERS = ("manual", "scheduled", "webhook", "event")


def timeout(profile: TargetProfile) -> float:
    return float(profile.get("ava.job_timeout_s", 30))


def ids(jobs: list[dict[str, Any]]) -> set[str]:
    return {j["id"] for j in jobs}


def later() -> str:
    """A scheduled_at that keeps a job queued for the rest of the run."""
    return format_ts(datetime.now(UTC) + timedelta(hours=1))


@req("ava.jobs.list.shape")
def test_list_includes_a_new_job(ava: AvaClient, profile: TargetProfile) -> None:
    record = ava.start(profile.need("ava.workers.complete.id"))
    listed = {j["id"]: j for j in ava.jobs()}
    assert record["id"] in listed, "a job just triggered is not listed"
    assert listed[record["id"]]["worker_id"] == record["worker_id"]


@req("ava.jobs.list.filter-worker")
def test_filter_by_worker(ava: AvaClient, profile: TargetProfile) -> None:
    complete, fail = profile.need("ava.workers.complete.id"), profile.need("ava.workers.fail.id")
    a, b = ava.start(complete)["id"], ava.start(fail)["id"]
    found = ava.jobs(worker_id=complete)
    assert {j["worker_id"] for j in found} == {complete}
    assert a in ids(found) and b not in ids(found)
    assert ava.jobs(worker_id="wkr_no_such_worker_0000") == []


@pytest.fixture
def one_of_each(ava: AvaClient, profile: TargetProfile) -> Iterator[dict[str, str]]:
    """A job in every status: queued (scheduled far ahead), running, completed, failed and
    cancelled. The live ones are cancelled afterwards."""
    complete = profile.need("ava.workers.complete.id")
    jobs = {
        "queued": ava.start(complete, scheduled_at=later())["id"],
        "running": ava.start(profile.need("ava.workers.long.id"))["id"],
        "completed": ava.start(complete)["id"],
        "failed": ava.start(profile.need("ava.workers.fail.id"))["id"],
        "cancelled": ava.start(complete, scheduled_at=later())["id"],
    }
    try:
        ava.data(ava.cancel(jobs["cancelled"]), "cancel a queued job")
        for status in ("running", "completed", "failed"):
            ava.wait_for(jobs[status], {status}, timeout(profile))
        yield jobs
    finally:
        for status in ("queued", "running"):
            ava.cancel(jobs[status])


@req("ava.jobs.list.filter-status")
@pytest.mark.parametrize("status", ["queued", "running", "completed", "failed", "cancelled"])
def test_filter_by_status(ava: AvaClient, one_of_each: dict[str, str], status: str) -> None:
    found = ava.jobs(status=status)
    assert {j["status"] for j in found} <= {status}, "a listed job has another status"
    mine = {s for s, job_id in one_of_each.items() if job_id in ids(found)}
    assert mine == {status}, f"filter[status]={status} listed this test's {sorted(mine)} jobs"


@req("ava.jobs.list.filter-trigger")
def test_filter_by_trigger(ava: AvaClient, profile: TargetProfile) -> None:
    worker_id = profile.need("ava.workers.complete.id")
    made = {t: ava.start(worker_id, trigger=t)["id"] for t in TRIGGERS}
    for trigger in TRIGGERS:
        found = ava.jobs(trigger=trigger)
        assert {j["trigger"] for j in found} == {trigger}, trigger
        mine = {t for t, job_id in made.items() if job_id in ids(found)}
        assert mine == {trigger}, f"filter[trigger]={trigger} listed {sorted(mine)}"


@req("ava.jobs.list.created-after")
def test_created_after_is_an_inclusive_lower_bound(ava: AvaClient, profile: TargetProfile) -> None:
    record = ava.start(profile.need("ava.workers.complete.id"))
    at = record["created_at"]
    found = ava.jobs(created_after=at)
    assert record["id"] in ids(found), "a job created exactly at the bound is not listed"
    assert all(parse_ts(j["created_at"]) >= parse_ts(at) for j in found)
    assert record["id"] not in ids(ava.jobs(created_after=shift(at, 1)))
    assert record["id"] in ids(ava.jobs(created_after=shift(at, -60_000)))


@req("ava.jobs.list.created-before")
def test_created_before_is_an_inclusive_upper_bound(ava: AvaClient, profile: TargetProfile) -> None:
    record = ava.start(profile.need("ava.workers.complete.id"))
    at = record["created_at"]
    found = ava.jobs(created_before=at)
    assert record["id"] in ids(found), "a job created exactly at the bound is not listed"
    assert all(parse_ts(j["created_at"]) <= parse_ts(at) for j in found)
    assert record["id"] not in ids(ava.jobs(created_before=shift(at, -1)))
    assert record["id"] in ids(ava.jobs(created_before=shift(at, 60_000)))


@req("ava.jobs.list.created-after", "ava.jobs.list.created-before")
def test_a_window_that_is_empty_lists_nothing(ava: AvaClient, profile: TargetProfile) -> None:
    at = ava.start(profile.need("ava.workers.complete.id"))["created_at"]
    assert ava.jobs(created_after=shift(at, 1), created_before=shift(at, -1)) == []


@req("ava.jobs.list.combined")
def test_filters_combine(ava: AvaClient, profile: TargetProfile) -> None:
    complete, fail = profile.need("ava.workers.complete.id"), profile.need("ava.workers.fail.id")
    first = ava.start(complete, trigger="webhook")
    others = [
        ava.start(complete, trigger="event"),
        ava.start(fail, trigger="webhook"),
    ]
    last = ava.start(complete, trigger="webhook")
    for job in (first, *others, last):
        ava.wait_for(job["id"], TERMINAL, timeout(profile))
    filters = {
        "worker_id": complete,
        "status": "completed",
        "trigger": "webhook",
        "created_after": first["created_at"],
        "created_before": last["created_at"],
    }
    found = ava.jobs(**filters)
    for job in found:
        assert (job["worker_id"], job["status"], job["trigger"]) == (
            complete,
            "completed",
            "webhook",
        ), job
        assert parse_ts(first["created_at"]) <= parse_ts(job["created_at"])
        assert parse_ts(job["created_at"]) <= parse_ts(last["created_at"])
    assert {first["id"], last["id"]} <= ids(found)
    assert not ids(others) & ids(found)


@req("ava.jobs.list.invalid-filter")
@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("filter[status]", "paused"),
        ("filter[status]", "COMPLETED"),
        ("filter[trigger]", "cron"),
        ("filter[created_after]", "yesterday"),
        ("filter[created_before]", "2025-13-01T00:00:00Z"),
        ("filter[created_after]", "2025-06-01"),
    ],
)
def test_invalid_filter_values_are_rejected(ava: AvaClient, name: str, value: str) -> None:
    ava_error_envelope(ava.list_jobs({name: value}), 400, "validation_error", name)
