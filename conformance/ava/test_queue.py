"""Dequeue order on a saturated queue, and execution held until scheduled_at.

The priority check owns a tenant of its own (`ava.queue.identity`): it fills every execution slot
with blockers, queues quick jobs of mixed priorities behind them, frees the slots and compares
the order the quick jobs started in. No other test uses that tenant, so parallel runs cannot
disturb the order.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest

from conformance.clients.ava import TERMINAL, AvaClient, format_ts, parse_ts, precision_ms
from conformance.profile import TargetProfile

req = pytest.mark.req
# Duplicates of 1 and 5 check FIFO within a priority; 10 and 1 the ends of the range.
PRIORITIES = (5, 9, 1, 5, 3, 10, 1, 5)


def timeout(profile: TargetProfile) -> float:
    return float(profile.get("ava.job_timeout_s", 30))


@req("ava.jobs.priority.order", "ava.jobs.priority.fifo")
def test_saturated_queue_dequeues_by_priority_then_in_order(
    ava_as: Callable[..., AvaClient], profile: TargetProfile
) -> None:
    client = ava_as(str(profile.need("ava.queue.identity")))
    block, quick = profile.need("ava.queue.block"), profile.need("ava.queue.quick")
    slots = int(profile.get("ava.queue.max_concurrent", 1))
    # Jobs left live by an earlier run would hold slots and spoil the order.
    for status in ("queued", "running"):
        for leftover in client.jobs(status=status):
            client.cancel(leftover["id"])
    blockers = [client.start(block)["id"] for _ in range(slots)]
    queued = []
    try:
        for blocker in blockers:
            client.wait_for(blocker, {"running"}, timeout(profile))
        for n, priority in enumerate(PRIORITIES):
            record = client.start(quick, priority=priority, input={"n": n})
            assert record["priority"] == priority, f"sent priority {priority}, got {record}"
            queued.append(record["id"])
        waiting = [client.job(job_id)["status"] for job_id in queued]
        assert set(waiting) == {"queued"}, f"the queue was not saturated: {waiting}"
    finally:
        for blocker in blockers:
            client.cancel(blocker)
    finals = [client.wait_for(job_id, TERMINAL, timeout(profile)) for job_id in queued]
    assert [f["status"] for f in finals] == ["completed"] * len(finals)
    expected = sorted(range(len(PRIORITIES)), key=lambda n: (PRIORITIES[n], n))
    started = [parse_ts(finals[n]["started_at"]) for n in expected]
    actual = sorted(range(len(PRIORITIES)), key=lambda n: (parse_ts(finals[n]["started_at"]), n))
    # Strictly: higher priority first and equal priority FIFO (FACTS.md) leave no ties to allow,
    # and with the queue tenant's slots taken one at a time each start follows the last finish.
    ties = [expected[i] for i in range(1, len(started)) if started[i] == started[i - 1]]
    assert not ties, (
        f"jobs {ties} started at the same instant as the one before them, so the order cannot be "
        "told: the queue tenant must run one job at a time and ava.queue.quick take time"
    )
    assert started == sorted(started), (
        "jobs did not start in priority order (FIFO within a priority): "
        f"expected (priority, n) {[(PRIORITIES[n], n) for n in expected]}, "
        f"got {[(PRIORITIES[n], n) for n in actual]}"
    )


@req("ava.jobs.scheduled-at.delay")
def test_scheduled_job_does_not_start_before_scheduled_at(
    ava: AvaClient, profile: TargetProfile
) -> None:
    at = datetime.now(UTC) + timedelta(seconds=1.5)
    sent = format_ts(at)
    record = ava.start(profile.need("ava.workers.complete.id"), scheduled_at=sent)
    assert record["status"] == "queued"
    early = ava.job(record["id"])
    assert early["status"] == "queued" and early["started_at"] is None, early
    final = ava.wait_for(record["id"], TERMINAL, timeout(profile) + 1.5)
    assert final["status"] == "completed", final
    # started_at may be rendered coarser than it was taken (cut to the second, say): a start
    # within one rendered tick before scheduled_at may be a start just after it.
    tick = timedelta(milliseconds=precision_ms(final["started_at"]))
    assert parse_ts(final["started_at"]) + tick > parse_ts(sent), (
        f"started at {final['started_at']}, before its scheduled_at {sent}"
    )


@req("ava.jobs.scheduled-at.omitted")
@pytest.mark.parametrize("when", ["omitted", "past"])
def test_without_a_future_scheduled_at_the_job_runs_now(
    ava: AvaClient, profile: TargetProfile, when: str
) -> None:
    fields = {}
    if when == "past":
        fields["scheduled_at"] = format_ts(datetime.now(UTC) - timedelta(hours=1))
    record = ava.start(profile.need("ava.workers.complete.id"), **fields)
    final = ava.wait_for(record["id"], TERMINAL, timeout(profile))
    assert final["status"] == "completed", final
