"""Reads under the Redis store: a safe request that fires no timer is taken to change nothing,
which the tests verify; the checks of reads that end together share one round trip."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
import redis
from starlette.applications import Starlette

from mock_server.app import create_app
from mock_server.store import snapshot
from mock_server.store.snapshot import Snapshots

from .test_fencing import events
from .test_shared import (
    KEY,
    PREFIX,
    create_job,
    eventually,
    profile,
    running,
    script_calls,
    two_workers,
)
from .test_stand_ins import a_job_with_events

LIMITED = {"Authorization": "Bearer auvy_test_acme_limited"}  # 5 requests a second (seed)


def test_reads_that_end_while_a_check_is_on_its_way_share_its_next_round_trip(
    redis_url: str, redis_client: redis.Redis
) -> None:
    async def test() -> None:
        async with running(create_app(profile(), store=redis_url)) as a:
            job_id = await create_job(a)
            before = script_calls(redis_client)
            got = await asyncio.gather(
                *(a.get(f"/auvy/v1/jobs/{job_id}/status", headers=KEY) for _ in range(20))
            )
            assert [r.status_code for r in got] == [200] * 20
            calls = script_calls(redis_client) - before
            assert 1 <= calls < 20, f"{calls} script calls for 20 reads"

    asyncio.run(asyncio.wait_for(test(), 60))


def test_a_stale_read_in_a_shared_check_runs_again_alone(
    redis_url: str, redis_client: redis.Redis
) -> None:
    """Checked in one round trip, each read is judged by what it read: the one reading a job
    created elsewhere, which the feed has not announced yet, runs again (and finds the job);
    the other, reading a job that did not change, is answered at once."""

    async def test() -> None:
        async with two_workers(redis_url) as (_first, second, a, b):
            store = second.state.store
            known = await create_job(b)
            await b.get(f"/auvy/v1/jobs/{known}/status", headers=KEY)  # b is current
            fresh = await create_job(a)
            store._known_version = store.version  # the feed has not told b yet
            old, new = await asyncio.gather(
                b.get(f"/auvy/v1/jobs/{known}/status", headers=KEY),
                b.get(f"/auvy/v1/jobs/{fresh}/status", headers=KEY),
            )
            assert (old.status_code, new.status_code) == (200, 200), new.text
            assert store.counts()["stale_reads"] == 1

    asyncio.run(asyncio.wait_for(test(), 60))


def test_a_get_that_fires_no_timer_prints_nothing_and_a_write_only_once_per_call(
    redis_url: str, redis_client: redis.Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A GET looks at no document; a write that changed records leaves them to its commit,
    which looks at both once for every section it carries (SharedWorld._documents_checked)."""

    async def test() -> None:
        app = create_app(profile(), store=redis_url)
        store = app.state.store
        snapshots: Snapshots = store._snapshots
        snapshots.verify = False  # as served: the tests' verification looks every time
        printed: list[tuple[str, bool]] = []
        state_print = snapshots.state_print

        def counted(part: str) -> bytes | None:
            # httpx's ASGI transport runs the app in the caller's task: the request's own
            # prints are this task's, the commit's are its committer's.
            printed.append((part, asyncio.current_task() is mine))
            return state_print(part)

        mine = asyncio.current_task()
        monkeypatch.setattr(snapshots, "state_print", counted)
        async with running(app) as a:
            job_id = await create_job(a)
            assert printed
            printed.clear()
            got = await a.get(f"/auvy/v1/jobs/{job_id}/status", headers=KEY)
            assert got.status_code == 200, got.text
            assert printed == []
            assert (await a.post(f"/auvy/v1/jobs/{job_id}/cancel", headers=KEY)).is_success
            assert sorted(printed) == [("config", False), ("live", False)]

    asyncio.run(asyncio.wait_for(test(), 60))


def test_verification_fails_a_get_that_changed_a_record(
    redis_url: str, redis_client: redis.Redis
) -> None:
    """What taking a GET to change nothing would hide, verification (on in these tests)
    turns into a 500 naming what changed, and nothing reaches Redis."""

    async def test() -> None:
        app = create_app(profile(), store=redis_url)
        assert app.state.store._snapshots.verify, f"{snapshot.VERIFY_ENV} is not set"
        async with running(app) as a:
            job_id = await create_job(a)
            jobs = app.state.store._records["auvy.jobs"]
            reading = jobs.get

            def get_and_change(key: str, default: Any = None) -> Any:
                job = reading(key, default)
                if job is not None:
                    job.input = {"changed": "by a GET"}
                return job

            jobs.get = get_and_change
            before = int(redis_client.hget(PREFIX + "world", "v") or 0)
            got = await a.get(f"/auvy/v1/jobs/{job_id}/status", headers=KEY)
            assert got.status_code == 500
            assert int(redis_client.hget(PREFIX + "world", "v") or 0) == before

    async def expect_the_error() -> None:
        with pytest.raises(RuntimeError, match=r"safe request .* auvy\.jobs\n"):
            await test()

    # The handler's error reaches the ASGI transport (which re-raises it) after the 500.
    asyncio.run(asyncio.wait_for(expect_the_error(), 60))


def test_a_rate_limited_get_commits_its_hit_so_the_limit_holds_across_workers(
    redis_url: str, redis_client: redis.Redis
) -> None:
    """A GET changes the rate limiter, by design: the store, taking a safe request to change
    nothing else, still commits that (verification off, as served)."""

    async def test() -> None:
        async with two_workers(redis_url) as (first, second, a, b):
            for app in (first, second):
                app.state.store._snapshots.verify = False
            for _ in range(5):
                got = await a.get("/auvy/v1/jobs", headers=LIMITED, params={"limit": 1})
                assert got.status_code == 200, got.text
            limited = await b.get("/auvy/v1/jobs", headers=LIMITED, params={"limit": 1})
            assert limited.status_code == 429, limited.text

    asyncio.run(asyncio.wait_for(test(), 60))


async def append_note(app: Starlette, job: str) -> None:
    """Append an event to the job's stream, and change nothing else, in a section of `app`."""
    store, world = app.state.store, app.state.world
    await store.transact(
        lambda: world.auvy.streams.append(job, {"type": "note"}, world.engine.now())
    )


def test_a_read_of_a_stream_another_worker_appended_to_since_runs_again_on_the_new_entries(
    redis_url: str,
) -> None:
    """Worker 2 holds a copy of a job's stream; worker 1 appends to it (and only to it), and
    the feed has not told worker 2. A read-only section there that skipped its load read the
    old copy: its check, which names the stream, refuses it, and it runs again on the stream
    as Redis holds it."""

    async def test() -> None:
        async with two_workers(redis_url) as (first, second, a, _b):
            job = await a_job_with_events(a)
            two = second.state

            async def read_in_sections() -> list[dict[str, Any]]:
                for attempt in range(5):
                    async with two.store.section(optimistic=attempt == 0) as outcome:
                        got = events(second, job)
                    if outcome.committed:
                        return got
                raise AssertionError("the read never landed")

            # The first read loads a copy good for its run only (the stream moved since the
            # world it began on); the second's is kept.
            await read_in_sections()
            before = await read_in_sections()
            assert any(job in store._cache for store in two.store._stores.values())

            async def deaf(fields: dict[bytes, bytes]) -> None:
                return None

            two.store._changed_elsewhere = deaf
            await append_note(first, job)
            stale = two.store.counts()["stale_reads"]
            after = await read_in_sections()
            assert after == [*before, {"type": "note"}]
            assert two.store.counts()["stale_reads"] == stale + 1

    asyncio.run(asyncio.wait_for(test(), 30))


def test_a_copy_kept_for_a_doomed_sections_next_run_is_checked_though_that_run_loaded(
    redis_url: str,
) -> None:
    """Worker 2 lacks a job's stream: its section is doomed and loads a copy, kept for the next
    run. Worker 1 appends to the stream meanwhile, and worker 2's feed marks the copy stale.
    The next run loads the world (which vouches for what it holds, not for that copy), reads
    the copy, and is checked all the same: refused, it runs again on the new entries."""

    async def test() -> None:
        async with two_workers(redis_url) as (first, second, a, _b):
            job = await a_job_with_events(a)
            two = second.state

            async with two.store.section(optimistic=True) as outcome:
                events(second, job)
            assert outcome.doomed
            copies = [s._cache[job] for s in two.store._stores.values() if job in s._cache]
            assert len(copies) == 1
            await append_note(first, job)
            await eventually(lambda: copies[0].stale, lambda: "the feed never named the stream")
            stale = two.store.counts()["stale_reads"]
            got: list[dict[str, Any]] = []
            for _ in range(5):
                async with two.store.section() as outcome:  # loads the world first
                    got = events(second, job)
                if outcome.committed:
                    break
            assert got and got[-1] == {"type": "note"}
            assert two.store.counts()["stale_reads"] == stale + 1

    asyncio.run(asyncio.wait_for(test(), 30))
