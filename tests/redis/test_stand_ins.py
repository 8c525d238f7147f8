"""Sections never wait on Redis for a stream: one that lacks a copy runs on a stand-in, is
undone, the copies are loaded with the async client, and it runs again (store/streams.py)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
import redis
from starlette.applications import Starlette
from starlette.types import ASGIApp, Receive, Scope, Send

from mock_server.store.shared import SectionMiddleware, SharedWorld
from mock_server.store.streams import RedisStreams

from .test_fencing import events
from .test_shared import KEY, create_job, status, two_workers


def blocking_loads(app: Starlette) -> list[str]:
    """Where the worker's stream stores would wait on Redis inside a section: the list each
    such load is noted in."""
    store = app.state.store
    noted: list[str] = []
    for streams in store._stores.values():
        pipeline = streams.client.pipeline

        def counted(*args: Any, _streams: RedisStreams = streams, _pipe: Any = pipeline) -> Any:
            if _streams._batched():
                noted.append(_streams.prefix)
            return _pipe(*args)

        streams.client.pipeline = counted
    return noted


async def a_job_with_events(client: httpx.AsyncClient) -> str:
    """A job made through `client`, stepped so that its stream holds events (it starts empty)."""
    job = await create_job(client)
    assert (await client.post("/_mock/clock/advance", json={"ms": 25})).status_code == 200
    return job


@contextlib.asynccontextmanager
async def through_the_middleware(
    app: ASGIApp, store: SharedWorld
) -> AsyncIterator[httpx.AsyncClient]:
    """A client of `app` run in the worker's sections, with no error handler in between."""
    transport = httpx.ASGITransport(app=SectionMiddleware(app, store))
    async with httpx.AsyncClient(transport=transport, base_url="http://mock") as client:
        yield client


def test_ticks_of_jobs_made_by_another_worker_never_wait_on_redis_and_run_once(
    redis_url: str,
) -> None:
    """Worker 2 steps jobs worker 1 made (it holds no copy of their streams): the tick is
    doomed once, undone (the clock advanced once, not twice), and runs again on the loaded
    copies; every job's stream is the same read from either worker."""

    async def test() -> None:
        async with two_workers(redis_url) as (first, second, a, b):
            jobs = [await create_job(a) for _ in range(3)]
            noted = blocking_loads(second)
            before = second.state.world.engine.now()
            advanced = await b.post("/_mock/clock/advance", json={"ms": 25})
            assert advanced.status_code == 200, advanced.text
            assert advanced.json()["now_ms"] == before + 25, "the undone run moved the clock"
            assert advanced.json()["timers_run"] > 0
            assert noted == [], f"a section waited on Redis for a stream: {noted}"
            counts = second.state.store.counts()
            assert counts["stream_loads"] >= 1, counts
            for job in jobs:
                await status(a, job)  # worker 1 catches up
                stepped = events(second, job)
                assert len(stepped) > 1, stepped
                assert events(first, job) == stepped

    asyncio.run(asyncio.wait_for(test(), 30))


def test_a_request_on_a_stream_another_worker_made_answers_once_with_one_event(
    redis_url: str,
) -> None:
    async def test() -> None:
        async with two_workers(redis_url) as (first, second, a, b):
            job = await create_job(a)
            noted = blocking_loads(second)
            cancelled = await b.post(f"/auvy/v1/jobs/{job}/cancel", headers=KEY)
            assert cancelled.status_code == 200, cancelled.text
            assert noted == []
            assert second.state.store.counts()["stream_loads"] == 1
            kinds = [e.get("type") for e in events(second, job)]
            assert kinds.count(kinds[-1]) == 1, f"the last event twice: {kinds}"
            await status(a, job)
            assert events(first, job) == events(second, job)
            assert await status(b, job) == await status(a, job)

    asyncio.run(asyncio.wait_for(test(), 30))


def test_an_error_raised_on_a_stand_in_is_not_the_answer(redis_url: str) -> None:
    """A section that fails because a stand-in was empty runs again on the real stream."""

    async def test() -> None:
        async with two_workers(redis_url) as (first, second, a, _b):
            job = await a_job_with_events(a)
            assert events(first, job), "no event to read"
            store, world = second.state.store, second.state.world
            runs: list[int] = []

            def first_event() -> dict[str, Any]:
                found = world.auvy.streams.read_after(job, None, world.engine.now())
                runs.append(len(found.entries))
                return dict(found.entries[0].data)  # IndexError on an empty stand-in

            got = await store.transact(first_event)
            assert runs == [0, len(events(first, job))]
            assert got == events(first, job)[0]

    asyncio.run(asyncio.wait_for(test(), 30))


def test_an_undone_section_leaves_the_changes_of_the_sections_before_it_still_on_their_way(
    redis_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The section before it changed a job and its commit is on its way: undoing the doomed
    section puts the job back as that section left it, not as Redis held it."""

    async def test() -> None:
        async with two_workers(redis_url) as (first, second, a, _b):
            mine = await create_job(a)
            store, world = second.state.store, second.state.world
            # A job worker 2 holds, and a stream it lacks.
            theirs = await create_job(_b)
            lacking = await create_job(a)
            await status(_b, mine)
            await store.enter()
            world.auvy.jobs.get(theirs).failed_reason = "first"
            world.auvy.jobs.save(theirs, world.auvy.jobs.get(theirs))
            landing = asyncio.create_task(store.leave())
            await asyncio.sleep(0)  # the first section left; its commit is on its way
            seen: list[str | None] = []

            def second_section() -> None:
                job = world.auvy.jobs.get(theirs)
                seen.append(job.failed_reason)
                job.failed_reason = "second"
                world.auvy.jobs.save(theirs, job)
                world.auvy.streams.append(lacking, {"type": "note"}, world.engine.now())

            await store.transact(second_section, optimistic=True)  # runs while it is on its way
            assert await landing
            assert seen == ["first", "first"], "undone, not as the section before left it"
            assert world.auvy.jobs.get(theirs).failed_reason == "second"
            assert store.counts()["stream_loads"] == 1
            assert events(first, lacking)[-1] == {"type": "note"}

    asyncio.run(asyncio.wait_for(test(), 30))


def test_a_redis_that_does_not_answer_a_load_is_a_503_in_the_apis_envelope(
    redis_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def test() -> None:
        async with two_workers(redis_url) as (first, second, a, b):
            job = await create_job(a)

            async def cut_off(self: RedisStreams, keys: Any) -> None:
                raise redis.ConnectionError("connection reset by peer")

            monkeypatch.setattr(RedisStreams, "load", cut_off)
            cancelled = await b.post(f"/auvy/v1/jobs/{job}/cancel", headers=KEY)
            assert cancelled.status_code == 503, cancelled.text
            assert "did not answer" in cancelled.json()["message"], cancelled.text
            assert cancelled.headers.get("Retry-After")
            monkeypatch.undo()
            # Nothing of the undone run was left behind: the cancel runs once it can load.
            again = await b.post(f"/auvy/v1/jobs/{job}/cancel", headers=KEY)
            assert again.status_code == 200, again.text
            await status(a, job)
            assert events(first, job) == events(second, job)

    asyncio.run(asyncio.wait_for(test(), 30))


def test_a_request_that_fails_on_a_stand_in_runs_again_and_answers(redis_url: str) -> None:
    """Through the middleware with no error handler in between (an ASGI app raising on its
    own): what failed on a stand-in is not the answer (found in review)."""

    async def test() -> None:
        async with two_workers(redis_url) as (first, second, a, _b):
            job = await a_job_with_events(a)
            store, world = second.state.store, second.state.world

            async def bare(scope: Scope, receive: Receive, send: Send) -> None:
                found = world.auvy.streams.read_after(job, None, world.engine.now())
                if not found.entries:
                    raise RuntimeError("no events")
                await send({"type": "http.response.start", "status": 200, "headers": []})
                await send({"type": "http.response.body", "body": b"%d" % len(found.entries)})

            async with through_the_middleware(bare, store) as client:
                got = await client.get("/")
            assert got.status_code == 200 and got.text == str(len(events(first, job)))
            assert store.counts()["stream_loads"] == 1

    asyncio.run(asyncio.wait_for(test(), 30))


def test_a_request_cancelled_while_it_runs_on_a_stand_in_is_not_run_again(
    redis_url: str,
) -> None:
    """A cancellation is not a failure to run again (found in review): it reaches the caller."""

    async def test() -> None:
        async with two_workers(redis_url) as (_first, second, a, _b):
            job = await a_job_with_events(a)
            store, world = second.state.store, second.state.world
            runs: list[int] = []

            async def slow_on_a_stand_in(scope: Scope, receive: Receive, send: Send) -> None:
                found = world.auvy.streams.read_after(job, None, world.engine.now())
                runs.append(len(found.entries))
                if not found.entries:
                    await asyncio.sleep(5)  # cancelled meanwhile
                await send({"type": "http.response.start", "status": 200, "headers": []})
                await send({"type": "http.response.body", "body": b"ok"})

            async with through_the_middleware(slow_on_a_stand_in, store) as client:
                with pytest.raises(TimeoutError):
                    await asyncio.wait_for(client.get("/"), 0.2)
            assert runs == [0], f"run again after it was cancelled: {runs}"
            # The worker goes on: the next request runs on the loaded copy.
            assert (await _b.get(f"/auvy/v1/jobs/{job}/status", headers=KEY)).status_code == 200

    asyncio.run(asyncio.wait_for(test(), 30))
