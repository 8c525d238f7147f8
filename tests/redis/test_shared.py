"""Two apps (two workers' worlds) in one process sharing a real Redis: records travel one by one.

The apps run their lifespans (joining the world in Redis) and take requests through httpx's ASGI
transport; nothing here streams, so no server is needed. A manual clock keeps jobs where the test
put them: every change in Redis is one a request made.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis
from starlette.applications import Starlette

from mock_server.app import create_app
from mock_server.profile import ServerProfile

REPO = Path(__file__).resolve().parents[2]
KEY = {"Authorization": "Bearer auvy_test_acme_rw"}
COMPLETE = "0b7e1f3a-2c4d-4e5f-8a9b-1c2d3e4f5a10"
PREFIX = "mock_server:"


def profile(**server: Any) -> ServerProfile:
    loaded = ServerProfile.load(REPO / "fixtures" / "server" / "ci.toml")
    return replace(loaded, clock="manual", **server)


Clients = tuple[httpx.AsyncClient, httpx.AsyncClient]


@contextlib.asynccontextmanager
async def running(app: Starlette) -> AsyncIterator[httpx.AsyncClient]:
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://mock") as client:
            yield client


Workers = tuple[Starlette, Starlette, httpx.AsyncClient, httpx.AsyncClient]


@contextlib.asynccontextmanager
async def two_workers(url: str) -> AsyncIterator[Workers]:
    """Two workers' apps sharing the world at `url`, running, and a client of each."""
    first = create_app(profile(), store=url)
    second = create_app(profile(), store=url)
    async with running(first) as a, running(second) as b:
        yield first, second, a, b


def with_two_workers(url: str, test: Callable[[Clients], Awaitable[None]]) -> None:
    async def go() -> None:
        async with two_workers(url) as (_, _, a, b):
            await test((a, b))

    asyncio.run(go())


async def eventually(holds: Callable[[], bool], what: Callable[[], str]) -> None:
    """Wait (at most 5 s) until `holds()`; else fail saying `what()` was awaited."""
    for _ in range(500):
        if holds():
            return
        await asyncio.sleep(0.01)
    raise AssertionError(what())


async def create_job(client: httpx.AsyncClient) -> str:
    created = await client.post("/auvy/v1/jobs", headers=KEY, json={"pathway_id": COMPLETE})
    assert created.status_code == 200, created.text
    job_id: str = created.json()["job_id"]
    return job_id


async def status(client: httpx.AsyncClient, job_id: str) -> tuple[int, str | None]:
    got = await client.get(f"/auvy/v1/jobs/{job_id}/status", headers=KEY)
    return got.status_code, got.json().get("status") if got.status_code == 200 else None


def script_calls(client: redis.Redis) -> int:
    """How many script calls Redis has answered (EVALSHA: every call the store makes)."""
    stats: Any = client.info("commandstats")
    return int(stats.get("cmdstat_evalsha", {}).get("calls", 0))


def version(client: redis.Redis) -> int:
    return int(client.hget(PREFIX + "world", "v") or 0)


def another_commit(client: redis.Redis) -> int:
    """Another worker's commit as a section that loaded the world before it sees it: one that
    changed the live document, which every section reads, so that section's commit is refused."""
    committed = client.hincrby(PREFIX + "world", "v", 1)
    client.hset(PREFIX + "world", "rv", committed)
    return int(committed)


def written_at(client: redis.Redis, at: int) -> set[str]:
    names: list[bytes] = client.zrangebyscore(PREFIX + "versions", at, at)  # type: ignore[assignment]
    return {n.decode() for n in names}


def test_a_job_made_on_one_worker_is_changed_on_the_other_and_seen_back(
    redis_url: str, redis_client: redis.Redis
) -> None:
    async def test(clients: Clients) -> None:
        a, b = clients
        job_id = await create_job(a)
        assert await status(b, job_id) == (200, "pending")
        cancelled = await b.post(f"/auvy/v1/jobs/{job_id}/cancel", headers=KEY)
        assert cancelled.status_code == 200, cancelled.text
        assert await status(a, job_id) == (200, "failed")  # failedReason "cancelled"

    with_two_workers(redis_url, test)


def test_a_request_writes_only_the_records_it_changed_and_a_read_writes_none(
    redis_url: str, redis_client: redis.Redis
) -> None:
    async def test(clients: Clients) -> None:
        a, b = clients
        first, second = await create_job(a), await create_job(a)
        before = version(redis_client)
        assert await status(b, first) == (200, "pending")
        assert await status(a, second) == (200, "pending")
        assert version(redis_client) == before, "a read wrote to the world"
        assert (await b.post(f"/auvy/v1/jobs/{first}/cancel", headers=KEY)).status_code == 200
        after = version(redis_client)
        assert after == before + 1
        written = written_at(redis_client, after)
        # The job, and its pending step's timer, cancelled with it (a record of its own).
        assert {n for n in written if not n.startswith("timers\n")} == {f"auvy.jobs\n{first}"}
        assert len(written) == 2
        second_at = redis_client.zscore(PREFIX + "versions", f"auvy.jobs\n{second}")
        assert second_at is not None and second_at < after

    with_two_workers(redis_url, test)


def test_a_reset_on_one_worker_removes_the_jobs_on_the_other(
    redis_url: str, redis_client: redis.Redis
) -> None:
    async def test(clients: Clients) -> None:
        a, b = clients
        job_id = await create_job(a)
        assert await status(b, job_id) == (200, "pending")
        assert (await a.post("/_mock/reset")).status_code == 200
        assert (await status(b, job_id))[0] == 404
        assert not redis_client.hexists(PREFIX + "records:auvy.jobs", job_id)

    with_two_workers(redis_url, test)


def test_a_world_made_with_another_profile_is_replaced_without_its_records(
    redis_url: str, redis_client: redis.Redis
) -> None:
    async def test() -> str:
        async with running(create_app(profile(), store=redis_url)) as a:
            job_id = await create_job(a)
        # Another ping interval: another profile, so another world.
        other = create_app(profile(ping_interval_ms=999), store=redis_url)
        async with running(other) as b:
            assert (await status(b, job_id))[0] == 404
        return job_id

    job_id = asyncio.run(test())
    assert not redis_client.hexists(PREFIX + "records:auvy.jobs", job_id)
    assert redis_client.zscore(PREFIX + "versions", f"auvy.jobs\n{job_id}") is None


def test_a_worker_joining_later_loads_every_record(
    redis_url: str, redis_client: redis.Redis
) -> None:
    async def test() -> None:
        async with running(create_app(profile(), store=redis_url)) as a:
            jobs = [await create_job(a) for _ in range(3)]
            assert (await a.post(f"/auvy/v1/jobs/{jobs[1]}/cancel", headers=KEY)).is_success
            async with running(create_app(profile(), store=redis_url)) as late:
                seen = [await status(late, j) for j in jobs]
        assert seen == [(200, "pending"), (200, "failed"), (200, "pending")]

    asyncio.run(test())


def test_a_reader_cancelled_anywhere_never_leaves_the_process_sections_held(
    redis_url: str, redis_client: redis.Redis
) -> None:
    """An SSE client that goes away cancels its reader wherever it is, even while the load it
    shares with other readers runs; this process's sections would then wait for ever. No Redis
    lock exists to be left behind (commits are compare-and-set)."""

    async def test() -> None:
        app = create_app(profile(), store=redis_url)
        async with running(app) as client:
            catch_up = app.state.world.engine.catch_up
            assert catch_up is not None
            store = app.state.store
            local = store._local

            for steps in range(12):  # cancel at each await along the way in turn
                # As if a read had seen a commit this process has not loaded: a real load.
                store._stores["auvy"].read_version = store.version + 1
                readers = [asyncio.create_task(catch_up()) for _ in range(3)]
                for _ in range(steps):
                    await asyncio.sleep(0)
                readers[0].cancel()
                for reader in readers:
                    with contextlib.suppress(asyncio.CancelledError):
                        await reader
                # Another section (the timer driver, the webhook dispatcher) may run a moment.
                for _ in range(100):
                    if not local.locked():
                        break
                    await asyncio.sleep(0.01)
                assert not local.locked(), f"sections held after cancelling at await {steps}"
            assert not redis_client.exists(PREFIX + "lock")
            assert (await client.get("/auvy/v1/jobs", headers=KEY)).status_code == 200


def test_readers_woken_together_share_one_load(redis_url: str, redis_client: redis.Redis) -> None:
    async def test() -> None:
        app = create_app(profile(), store=redis_url)
        async with running(app):
            store = app.state.store
            loads = 0
            original = store._catch_up

            async def counted() -> None:
                nonlocal loads
                loads += 1
                await original()

            store._catch_up = counted
            # Every read so far was of a world this process holds: nothing to load.
            await asyncio.gather(*(store.catch_up() for _ in range(50)))
            assert loads == 0
            # A read saw a commit this process has not loaded: one load for all the readers.
            store._stores["auvy"].read_version = store.version + 1
            await asyncio.gather(*(store.catch_up() for _ in range(50)))
            assert 1 <= loads <= 2, loads

    asyncio.run(asyncio.wait_for(test(), 60))


def test_a_worker_on_a_host_whose_clock_is_wrong_keeps_redis_time(
    redis_url: str, redis_client: redis.Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each section reads Redis's TIME, so hosts agree on now: a host an hour slow still stamps
    jobs with the time every other worker of the world uses."""
    real = time.time_ns
    monkeypatch.setattr(time, "time_ns", lambda: real() - 3_600 * 10**9)

    async def test() -> None:
        app = create_app(replace(profile(), clock="system"), store=redis_url)
        async with running(app) as client:
            await client.get("/auvy/v1/jobs", headers=KEY)
            seconds, micros = redis_client.time()
            redis_ms = seconds * 1000 + micros // 1000
            assert abs(app.state.world.engine.now() - redis_ms) < 1_000

    asyncio.run(asyncio.wait_for(test(), 60))


def test_many_readers_prefetching_at_once_wait_for_a_connection_rather_than_fail(
    redis_url: str, redis_client: redis.Redis
) -> None:
    """A thousand SSE readers woken by one commit each prefetch their stream at once; redis-py's
    default async pool refuses a call past its hundredth connection (MaxConnectionsError),
    which failed those readers' streams. The store's pool makes them wait their turn."""

    async def test() -> None:
        app = create_app(profile(), store=redis_url)
        async with running(app) as a:
            jobs = [await create_job(a) for _ in range(3)]
            shared = app.state.store
            await asyncio.gather(
                *(shared.prefetch("auvy", jobs[i % 3], None) for i in range(3)),
                *(shared.aio.xrange(f"{PREFIX}nothing:{i}") for i in range(400)),
            )

    asyncio.run(asyncio.wait_for(test(), 60))


def test_another_workers_new_record_is_built_only_when_a_section_reads_it(
    redis_url: str, redis_client: redis.Redis
) -> None:
    """A worker hears of every record the others write and reads few: it keeps their bytes and
    builds the object at the first read. One that cannot be built fails only its readers."""

    async def test() -> None:
        async with two_workers(redis_url) as (_, second, a, b):
            jobs = second.state.store._records["auvy.jobs"]
            job_id = await create_job(a)
            # A record no process can build, as a newer version of the code might write it, in
            # the same workspace (what Redis holds begins with the record's partition).
            held = redis_client.hget(PREFIX + "records:auvy.jobs", job_id)
            assert isinstance(held, bytes)
            workspace, _, _ = held.partition(b"\n")
            broken = "0b7e1f3a-0000-4000-8000-00000000beef"
            written = redis_client.hincrby(PREFIX + "world", "v", 1)
            planted = workspace + b'\n{"$o": "os:system"}'
            redis_client.hset(PREFIX + "records:auvy.jobs", broken, planted)
            redis_client.zadd(PREFIX + "versions", {f"auvy.jobs\n{broken}": written})
            other = await create_job(b)  # b's commit brings what it lacked: both jobs
            assert job_id in jobs and broken in jobs
            assert not jobs.holds_object(job_id) and not jobs.holds_object(broken)
            assert jobs.holds_object(other)
            assert await status(b, job_id) == (200, "pending")
            assert jobs.holds_object(job_id)
            failed = await b.get(f"/auvy/v1/jobs/{broken}/status", headers=KEY)
            # The server's fault, not the client's: the API's envelope, as any internal error.
            assert failed.status_code == 500 and failed.json()["code"] == "INTERNAL_SERVER_ERROR"
            assert not jobs.holds_object(broken)
            listed = await b.get("/auvy/v1/jobs", headers=KEY)  # walks the workspace's jobs
            assert listed.status_code == 500, listed.text
            assert await status(b, other) == (200, "pending"), "the other records still serve"
            assert await create_job(b), "and the worker still writes"

    asyncio.run(test())
