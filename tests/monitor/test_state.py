"""The per-job state stays bounded: an LRU of jobs, a cap on the ids kept per job."""

from __future__ import annotations

from monitor.state import IDS_CAP, Jobs, pack, unpack


def test_old_jobs_are_evicted_least_recently_used_first() -> None:
    jobs = Jobs(cap=3)
    for name in ("a", "b", "c"):
        jobs.get("auvy", name)
    jobs.get("auvy", "a")  # used again: b is now the oldest
    jobs.get("auvy", "d")
    assert len(jobs) == 3
    assert jobs.peek("auvy", "b") is None
    assert jobs.peek("auvy", "a") is not None
    assert jobs.evicted == 1


def test_a_job_with_too_many_ids_stops_keeping_them() -> None:
    state = Jobs().get("auvy", "a")
    ids = list(range(IDS_CAP + 1))
    state.add_coverage(0, IDS_CAP, ids)
    assert state.overflow
    assert not state.seen and not state.covered


def test_coverage_ranges_merge() -> None:
    state = Jobs().get("auvy", "a")
    state.add_coverage(1, 3, [1, 2, 3])
    state.add_coverage(4, 6, [4, 6])
    state.add_coverage(10, 12, [10, 12])
    assert state.covered == [(1, 6), (10, 12)]
    assert state.is_covered(5) and not state.is_covered(8)


def test_stream_ids_pack_in_order() -> None:
    packed = [pack(i) for i in ("1-5", "2-0", "2-1", "18446744073709551615-0")]
    assert all(p is not None for p in packed)
    assert packed == sorted(packed)  # type: ignore[type-var]
    assert unpack(packed[1]) == "2-0"  # type: ignore[arg-type]
    assert pack("1-") is None and pack("٣-0") is None
