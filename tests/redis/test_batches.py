"""Group commit: sections that end while a commit is on its way run on, and commit together.

A section that wrote gives the worker back before its commit's answer; the next section runs on
the model it left (speculatively) and the sections that end meanwhile share the next script
call. What may never happen: an answer, an event or a state that a refused commit took back
reaching anyone, or a section that ran after a refused one landing.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import redis
from starlette.applications import Starlette

from mock_server.app import create_app
from mock_server.model.stream_id import StreamId
from mock_server.store.shared import CHECK, FOLLOW, WRITE, SharedWorld

from .test_shared import PREFIX, create_job, eventually, profile, running


@dataclass
class Held:
    """Holds the store's next commit call until `release()`: the sections that end meanwhile
    run after a section on its way. `conflict` makes another worker write the job first."""

    store: SharedWorld
    client: redis.Redis
    gate: asyncio.Event = field(default_factory=asyncio.Event)
    batches: list[list[str]] = field(default_factory=list)
    conflict_on: str | None = None

    async def commit(
        self, original: Callable[[list[Any]], Awaitable[list[Any]]], batch: list[Any]
    ) -> list[Any]:
        self.batches.append([t.kind for t in batch])
        if len(self.batches) == 1:
            await self.gate.wait()
            if self.conflict_on is not None:
                written = self.client.hincrby(PREFIX + "world", "v", 1)
                self.client.zadd(PREFIX + "versions", {f"auvy.jobs\n{self.conflict_on}": written})
        return await original(batch)

    async def in_flight(self) -> None:
        await eventually(lambda: self.store._flight is not None, lambda: "a commit on its way")

    def release(self, *, conflict_on: str | None = None) -> None:
        self.conflict_on = conflict_on
        self.gate.set()


@contextlib.asynccontextmanager
async def held_commits(app: Starlette, client: redis.Redis) -> AsyncIterator[Held]:
    store: SharedWorld = app.state.store
    held = Held(store, client)
    original = store._commit_batch

    async def commit(batch: list[Any]) -> list[Any]:
        return await held.commit(original, batch)

    store._commit_batch = commit  # type: ignore[method-assign]
    try:
        yield held
    finally:
        held.gate.set()
        store._commit_batch = original  # type: ignore[method-assign]


async def section(store: SharedWorld, work: Callable[[], object]) -> tuple[object, bool]:
    """One section, optimistic as a request's first attempt: what `work` answered, and
    whether the section committed."""
    await store.enter(optimistic=True)
    try:
        answer = work()
    finally:
        committed = await store.leave()
    return answer, committed


def test_sections_that_end_while_a_commit_is_on_its_way_share_the_next_call(
    redis_url: str, redis_client: redis.Redis
) -> None:
    async def test() -> None:
        app = create_app(profile(), store=redis_url)
        async with running(app) as client:
            await create_job(client)
            store: SharedWorld = app.state.store
            sizes: list[int] = []
            original = store._commit_batch

            async def counted(batch: list[Any]) -> list[Any]:
                sizes.append(sum(t.kind == WRITE for t in batch))
                return await original(batch)

            store._commit_batch = counted  # type: ignore[method-assign]
            before = redis_client.hlen(PREFIX + "records:auvy.jobs")
            jobs = await asyncio.gather(*(create_job(client) for _ in range(20)))
            assert sum(sizes) == 20, sizes
            assert len(sizes) < 20 and max(sizes) > 1, f"no batch shared a call: {sizes}"
            held: list[bytes] = redis_client.hkeys(PREFIX + "records:auvy.jobs")  # type: ignore[assignment]
            assert len(held) == before + 20
            assert set(jobs) <= {k.decode() for k in held}

    asyncio.run(asyncio.wait_for(test(), 60))


def test_a_read_after_a_section_on_its_way_answers_once_that_one_landed(
    redis_url: str, redis_client: redis.Redis
) -> None:
    async def test() -> None:
        app = create_app(profile(), store=redis_url)
        async with running(app) as client:
            job = await create_job(client)
            store: SharedWorld = app.state.store
            jobs = app.state.world.auvy.jobs
            async with held_commits(app, redis_client) as held:
                first = asyncio.create_task(
                    section(store, lambda: jobs[job].input.update(by="first"))
                )
                await held.in_flight()
                read = asyncio.create_task(section(store, lambda: jobs[job].input.get("by")))
                await eventually(lambda: len(store._queue) == 1, lambda: "the read waiting")
                assert store._queue[0].kind in (CHECK, FOLLOW)
                await asyncio.sleep(0.05)
                assert not read.done(), "a read answered before what it read was committed"
                held.release()
                assert await first == (None, True)
                assert await read == ("first", True)

    asyncio.run(asyncio.wait_for(test(), 60))


def test_a_section_that_ran_after_a_refused_one_is_refused_and_rolled_back(
    redis_url: str, redis_client: redis.Redis
) -> None:
    async def test() -> None:
        app = create_app(profile(), store=redis_url)
        async with running(app) as client:
            job = await create_job(client)
            store: SharedWorld = app.state.store
            jobs = app.state.world.auvy.jobs
            streams = app.state.world.auvy.streams
            before = redis_client.hget(PREFIX + "records:auvy.jobs", job)
            entries = len(streams.read_after(job, None, store.engine.now()).entries)
            counts = store.counts()

            def second() -> object:
                seen = jobs[job].input.get("by")
                jobs[job].input["then"] = seen
                streams.append(job, {"then": seen}, store.engine.now())
                return seen

            async with held_commits(app, redis_client) as held:
                first = asyncio.create_task(
                    section(store, lambda: jobs[job].input.update(by="first"))
                )
                await held.in_flight()
                after = asyncio.create_task(section(store, second))
                await eventually(lambda: len(store._queue) == 1, lambda: "the second waiting")
                held.release(conflict_on=job)
                assert await first == (None, False)
                assert await after == ("first", False), "it read what the refused one wrote"
            # Nothing of either reached Redis, and this process holds what Redis holds.
            assert redis_client.hget(PREFIX + "records:auvy.jobs", job) == before
            assert "by" not in jobs[job].input and "then" not in jobs[job].input
            assert len(streams.read_after(job, None, store.engine.now()).entries) == entries
            now = store.counts()
            assert now["conflicts"] == counts["conflicts"] + 1
            assert now["cascades"] == counts["cascades"] + 1
            # The next section runs on the world as Redis holds it, and lands.
            seen, committed = await section(store, second)
            assert (seen, committed) == (None, True)

    asyncio.run(asyncio.wait_for(test(), 60))


def test_appends_of_sections_on_their_way_reach_no_reader_until_they_land(
    redis_url: str, redis_client: redis.Redis
) -> None:
    """Two sections append to one stream, the second while the first's commit is on its way:
    both land, in order, with strictly increasing ids; a reader outside the sections (an SSE
    stream) sees neither before they land, and `catch_up` waits for them."""

    async def test() -> None:
        app = create_app(profile(), store=redis_url)
        async with running(app) as client:
            job = await create_job(client)
            store: SharedWorld = app.state.store
            streams = app.state.world.auvy.streams
            now = store.engine.now

            def committed_data() -> list[dict[str, Any]]:
                return [dict(e.data) for e in streams.read_after(job, None, now()).entries]

            before = committed_data()
            async with held_commits(app, redis_client) as held:
                first = asyncio.create_task(
                    section(store, lambda: streams.append(job, {"n": 1}, now()))
                )
                await held.in_flight()
                second = asyncio.create_task(
                    section(store, lambda: streams.append(job, {"n": 2}, now()))
                )
                await eventually(lambda: len(store._queue) == 1, lambda: "the second waiting")
                assert committed_data() == before, "a reader saw an append not yet committed"
                caught_up = asyncio.create_task(store.catch_up())
                await asyncio.sleep(0.05)
                assert not caught_up.done(), "catch_up returned with sections on their way"
                held.release()
                (one, landed_one), (two, landed_two) = await first, await second
                await caught_up
            assert landed_one and landed_two
            assert committed_data() == [*before, {"n": 1}, {"n": 2}]
            raw: list[tuple[bytes, Any]] = redis_client.xrange(f"{PREFIX}auvy:{job}")  # type: ignore[assignment]
            ids = [i for i, _ in raw]
            assert ids == sorted(set(ids)) and len(ids) == len(before) + 2
            assert [one, two] == [StreamId.parse(i.decode()) for i in ids[-2:]]

    asyncio.run(asyncio.wait_for(test(), 60))
