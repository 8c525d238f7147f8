"""GET /v1/ava/jobs: each filter alone, the created_at bounds, and filters combined.

Other tests run in parallel on the same tenant, so each check is about this test's own jobs (in
or out of the list) and about every listed job matching the filters, never about counts.

Neither pagination nor order is documented: `AvaClient.jobs` follows any next-page pointer a
response carries, and nothing here depends on the order (the reference's own choice, one page
newest first, is checked separately as a decision).
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from conformance.checks import body_of, status_is
from conformance.clients.ava import (
    TERMINAL,
    AvaClient,
    format_ts,
    invalid,
    parse_ts,
    precision_ms,
    shift,
)
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
    # An id that names no worker matches no job; a server may also call the filter invalid.
    response = ava.list_jobs({"filter[worker_id]": "wkr_no_such_worker_0000"})
    if response.status_code == 200:
        assert ava.data(response, "list an unknown worker's jobs") == []
    else:
        invalid(response, "filter[worker_id]")


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
        ava.stop(jobs["cancelled"], "cancel a queued job")
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


# Whether a job created exactly at a bound is inside it is not documented; one rendered tick
# (the precision of created_at) past the bound must be outside, a minute before it inside.


@req("ava.jobs.list.created-after")
def test_created_after_is_a_lower_bound(ava: AvaClient, profile: TargetProfile) -> None:
    record = ava.start(profile.need("ava.workers.complete.id"))
    at = record["created_at"]
    tick = precision_ms(at)
    found = ava.jobs(created_after=at)
    assert all(parse_ts(j["created_at"]) >= parse_ts(at) for j in found)
    assert record["id"] not in ids(ava.jobs(created_after=shift(at, tick)))
    earlier = ava.jobs(created_after=shift(at, -60_000))
    assert record["id"] in ids(earlier), "a job created after the bound is not listed"
    assert all(parse_ts(j["created_at"]) >= parse_ts(shift(at, -60_000)) for j in earlier)


@req("ava.jobs.list.created-before")
def test_created_before_is_an_upper_bound(ava: AvaClient, profile: TargetProfile) -> None:
    record = ava.start(profile.need("ava.workers.complete.id"))
    at = record["created_at"]
    tick = precision_ms(at)
    found = ava.jobs(created_before=at)
    assert all(parse_ts(j["created_at"]) <= parse_ts(at) for j in found)
    assert record["id"] not in ids(ava.jobs(created_before=shift(at, -tick)))
    assert record["id"] in ids(ava.jobs(created_before=shift(at, 60_000)))


@req("ava.jobs.list.bounds-inclusive")
def test_the_reference_bounds_are_inclusive(ava: AvaClient, profile: TargetProfile) -> None:
    record = ava.start(profile.need("ava.workers.complete.id"))
    at = record["created_at"]
    assert record["id"] in ids(ava.jobs(created_after=at)), "created_after excludes the bound"
    assert record["id"] in ids(ava.jobs(created_before=at)), "created_before excludes the bound"


@req("ava.jobs.list.created-after", "ava.jobs.list.created-before")
def test_a_window_that_is_empty_lists_nothing(ava: AvaClient, profile: TargetProfile) -> None:
    at = ava.start(profile.need("ava.workers.complete.id"))["created_at"]
    tick = precision_ms(at)
    # A lower bound above the upper one may also be called invalid; it must never list a job.
    response = ava.list_jobs(
        {"filter[created_after]": shift(at, tick), "filter[created_before]": shift(at, -tick)}
    )
    if response.status_code == 200:
        assert ava.data(response, "list an empty window") == []
    else:
        invalid(response)


@req("ava.jobs.list.date-only-bounds")
@pytest.mark.parametrize("name", ["created_after", "created_before"])
def test_a_calendar_date_bound_is_a_bound_or_refused(
    ava: AvaClient, profile: TargetProfile, name: str
) -> None:
    record = ava.start(profile.need("ava.workers.complete.id"))
    created = parse_ts(record["created_at"]).date()
    # Two days either side: whichever hour of the day a date stands for, the job is on one side.
    before = (created - timedelta(days=2)).isoformat()
    after = (created + timedelta(days=2)).isoformat()
    inside, outside = (before, after) if name == "created_after" else (after, before)
    response = ava.list_jobs({f"filter[{name}]": inside})
    if response.status_code != 200:
        invalid(response, f"filter[{name}]")
        invalid(ava.list_jobs({f"filter[{name}]": outside}), f"filter[{name}]")
        return
    assert record["id"] in ids(ava.jobs(**{name: inside})), f"{name}={inside} left the job out"
    assert record["id"] not in ids(ava.jobs(**{name: outside})), f"{name}={outside} kept it"


@req("ava.jobs.list.date-only-rejected")
def test_the_reference_rejects_a_calendar_date_bound(ava: AvaClient) -> None:
    for name in ("filter[created_after]", "filter[created_before]"):
        response = ava.list_jobs({name: "2025-06-01"})
        status_is(response, 400)
        invalid(response, name)


@req("ava.jobs.list.one-page-newest-first")
def test_the_reference_lists_every_match_in_one_page_newest_first(
    ava: AvaClient, profile: TargetProfile
) -> None:
    worker_id = profile.need("ava.workers.complete.id")
    made = [ava.start(worker_id, trigger="event")["id"] for _ in range(3)]
    response = ava.list_jobs({"filter[worker_id]": worker_id})
    status_is(response, 200)
    body = body_of(response)
    assert set(body) == {"data"}, f"the reference's list has more than data: {sorted(body)}"
    listed = [j["id"] for j in body["data"]]
    assert set(made) <= set(listed), "one page did not hold every match"
    stamps = [parse_ts(j["created_at"]) for j in body["data"]]
    assert stamps == sorted(stamps, reverse=True), "the list is not newest first"
    positions = [listed.index(job_id) for job_id in made]
    assert positions == sorted(positions, reverse=True), "later triggers are not listed first"


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
    # One rendered tick outside the first and last: whether a bound itself is inside is open.
    tick = precision_ms(first["created_at"])
    after, before = shift(first["created_at"], -tick), shift(last["created_at"], tick)
    filters = {
        "worker_id": complete,
        "status": "completed",
        "trigger": "webhook",
        "created_after": after,
        "created_before": before,
    }
    found = ava.jobs(**filters)
    for job in found:
        assert (job["worker_id"], job["status"], job["trigger"]) == (
            complete,
            "completed",
            "webhook",
        ), job
        assert parse_ts(after) <= parse_ts(job["created_at"]) <= parse_ts(before), job
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
        ("filter[created_after]", "2025-06-31"),
    ],
)
def test_invalid_filter_values_are_rejected(ava: AvaClient, name: str, value: str) -> None:
    invalid(ava.list_jobs({name: value}), name)
