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

import httpx
import redis
from starlette.applications import Starlette

from mock_server.app import create_app
from mock_server.model.stream_id import StreamId
from mock_server.store.shared import CHECK, FOLLOW, WRITE, SharedWorld

from .test_shared import PREFIX, create_job, eventually, profile, running


@dataclass
class Held:
    """Holds back the answers to the store's commit calls until `release()`: the sections that
    end meanwhile run after sections on their way (sent in a second call, or waiting for one).
    With `conflict_on`, another worker writes that job just before the first call reaches
    Redis, which therefore refuses it. With `hold_sends`, the first call does not even reach
    Redis until then."""

    store: SharedWorld
    client: redis.Redis
    conflict_on: str | None = None
    hold_sends: bool = False
    gate: asyncio.Event = field(default_factory=asyncio.Event)
    sent: list[list[str]] = field(default_factory=list)

    async def send(self, original: Callable[[Any], Awaitable[None]], flight: Any) -> None:
        self.sent.append([t.kind for t in flight.batch])
        if self.hold_sends:
            await self.gate.wait()
        if len(self.sent) == 1 and self.conflict_on is not None:
            written = self.client.hincrby(PREFIX + "world", "v", 1)
            self.client.zadd(PREFIX + "versions", {f"auvy.jobs\n{self.conflict_on}": written})
        await original(flight)

    async def receive(self, original: Callable[..., Awaitable[Any]], **kwargs: Any) -> Any:
        await self.gate.wait()
        return await original(**kwargs)

    async def calls_on_their_way(self, count: int) -> None:
        await eventually(
            lambda: len(self.sent) == count and len(self.store._flights) == count,
            lambda: f"{count} commit calls on their way, not {len(self.store._flights)}",
        )

    def release(self) -> None:
        self.gate.set()


@contextlib.asynccontextmanager
async def held_commits(
    app: Starlette, client: redis.Redis, conflict_on: str | None = None, hold_sends: bool = False
) -> AsyncIterator[Held]:
    store: SharedWorld = app.state.store
    held = Held(store, client, conflict_on, hold_sends)
    line = store._section_line
    send, receive = store._send_batch, line.receive

    async def sending(flight: Any) -> None:
        await held.send(send, flight)

    async def receiving(**kwargs: Any) -> Any:
        return await held.receive(receive, **kwargs)

    store._send_batch = sending  # type: ignore[method-assign]
    line.receive = receiving  # type: ignore[method-assign]
    try:
        yield held
    finally:
        held.gate.set()
        store._send_batch = send  # type: ignore[method-assign]
        line.receive = receive  # type: ignore[method-assign]


@contextlib.asynccontextmanager
async def a_worker_with_a_job(
    url: str,
) -> AsyncIterator[tuple[Starlette, httpx.AsyncClient, SharedWorld, str]]:
    """A worker on the world at `url`, running, its client, its store and a job it created."""
    app = create_app(profile(), store=url)
    async with running(app) as client:
        yield app, client, app.state.store, await create_job(client)


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
        async with a_worker_with_a_job(redis_url) as (_, client, store, _job):
            sizes: list[int] = []
            original = store._send_batch

            async def counted(flight: Any) -> None:
                sizes.append(sum(t.kind == WRITE for t in flight.batch))
                await original(flight)

            store._send_batch = counted  # type: ignore[method-assign]
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
        async with a_worker_with_a_job(redis_url) as (app, _, store, job):
            jobs = app.state.world.auvy.jobs
            async with held_commits(app, redis_client) as held:
                first = asyncio.create_task(
                    section(store, lambda: jobs[job].input.update(by="first"))
                )
                await held.calls_on_their_way(1)
                read = asyncio.create_task(section(store, lambda: jobs[job].input.get("by")))
                await held.calls_on_their_way(2)
                assert held.sent[1] in ([CHECK], [FOLLOW]), held.sent
                await asyncio.sleep(0.05)
                assert not read.done(), "a read answered before what it read was committed"
                held.release()
                assert await first == (None, True)
                assert await read == ("first", True)

    asyncio.run(asyncio.wait_for(test(), 60))


def test_sections_that_ran_after_a_refused_one_are_refused_and_rolled_back(
    redis_url: str, redis_client: redis.Redis
) -> None:
    """The first section's call is refused; the second's, sent before that answer came back,
    is refused by Redis (it ran after the first); the third's, not sent yet, by this process.
    None of them reaches Redis or stays in this process's model."""

    async def test() -> None:
        async with a_worker_with_a_job(redis_url) as (app, _, store, job):
            jobs = app.state.world.auvy.jobs
            streams = app.state.world.auvy.streams
            before = redis_client.hget(PREFIX + "records:auvy.jobs", job)
            entries = len(streams.read_after(job, None, store.engine.now()).entries)
            counts, stats = store.counts(), redis_client.hgetall(PREFIX + "stats")

            def after(name: str) -> Callable[[], object]:
                def work() -> object:
                    seen = jobs[job].input.get("by")
                    jobs[job].input[name] = seen
                    streams.append(job, {name: seen}, store.engine.now())
                    return seen

                return work

            async with held_commits(app, redis_client, conflict_on=job) as held:
                first = asyncio.create_task(
                    section(store, lambda: jobs[job].input.update(by="first"))
                )
                await held.calls_on_their_way(1)
                second = asyncio.create_task(section(store, after("second")))
                await held.calls_on_their_way(2)
                third = asyncio.create_task(section(store, after("third")))
                await eventually(lambda: len(store._queue) == 1, lambda: "the third waiting")
                held.release()
                assert await first == (None, False)
                assert await second == ("first", False), "it read what the refused one wrote"
                assert await third == ("first", False)
            # Nothing of them reached Redis, and this process holds what Redis holds.
            assert redis_client.hget(PREFIX + "records:auvy.jobs", job) == before
            assert not {"by", "second", "third"} & set(jobs[job].input)
            assert len(streams.read_after(job, None, store.engine.now()).entries) == entries
            now = store.counts()
            assert now["conflicts"] == counts["conflicts"] + 1
            assert now["cascades"] == counts["cascades"] + 2
            redis_stats = redis_client.hgetall(PREFIX + "stats")
            assert int(redis_stats[b"cascades"]) == int(stats.get(b"cascades", 0)) + 1
            # The next section runs on the world as Redis holds it, and lands.
            assert await section(store, after("fourth")) == (None, True)

    asyncio.run(asyncio.wait_for(test(), 60))


def test_appends_of_sections_on_their_way_reach_no_reader_until_they_land(
    redis_url: str, redis_client: redis.Redis
) -> None:
    """Two sections append to one stream, the second while the first's commit is on its way:
    both land, in order, with strictly increasing ids; a reader outside the sections (an SSE
    stream) sees neither before they land, and `catch_up` waits for them."""

    async def test() -> None:
        async with a_worker_with_a_job(redis_url) as (app, _, store, job):
            streams = app.state.world.auvy.streams
            now = store.engine.now

            def committed_data() -> list[dict[str, Any]]:
                return [dict(e.data) for e in streams.read_after(job, None, now()).entries]

            before = committed_data()
            async with held_commits(app, redis_client, hold_sends=True) as held:
                first = asyncio.create_task(
                    section(store, lambda: streams.append(job, {"n": 1}, now()))
                )
                await held.calls_on_their_way(1)
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


def test_a_document_changed_undeclared_refuses_the_call_and_runs_again_looking(
    redis_url: str, redis_client: redis.Redis
) -> None:
    """A section that wrote records leaves the documents to its commit's one look for every
    section it carries. One that changed a document anyway is refused with the rest of its
    call, rolled back (documents too), and runs again looking at them: then it lands whole."""

    async def test() -> None:
        async with a_worker_with_a_job(redis_url) as (app, _, store, job):
            jobs = app.state.world.auvy.jobs
            receptors = app.state.world.receptors
            token = next(iter(receptors.shares.values()))

            def change() -> None:
                jobs[job].input["by"] = "sneaky"
                receptors.shares["shr_undeclared"] = token  # in the live document

            live = redis_client.hget(PREFIX + "world", "b")
            assert await section(store, change) == (None, False)
            # (Rolling a document back replaces its attributes: look them up again.)
            assert "shr_undeclared" not in receptors.shares and "by" not in jobs[job].input
            assert redis_client.hget(PREFIX + "world", "b") == live
            assert store.counts()["undeclared"] == 1
            # Run again (as the middleware does): it looks at the documents now, and lands.
            assert await section(store, change) == (None, True)
            assert b"shr_undeclared" in (redis_client.hget(PREFIX + "world", "b") or b"")
            assert redis_client.hget(PREFIX + "records:auvy.jobs", job) is not None
            other = create_app(profile(), store=redis_url)
            async with running(other):
                assert "shr_undeclared" in other.state.world.receptors.shares
                assert other.state.world.auvy.jobs[job].input["by"] == "sneaky"

    asyncio.run(asyncio.wait_for(test(), 60))


def test_while_a_call_is_on_its_way_the_next_waits_for_the_sections_waiting_to_run(
    redis_url: str, redis_client: redis.Redis
) -> None:
    """The sections queued for the lock behind the first that leaves share the next call with
    it: the committer waits its turn for the lock behind them (asyncio's lock is fair), so
    that one does not go alone."""

    async def test() -> None:
        async with a_worker_with_a_job(redis_url) as (app, client, store, _job):
            async with held_commits(app, redis_client) as held:
                first = asyncio.create_task(create_job(client))
                await held.calls_on_their_way(1)
                await store._local.acquire()  # a section running: the next five wait for it
                queued = [asyncio.create_task(create_job(client)) for _ in range(5)]
                await eventually(
                    lambda: len(store._local._waiters or ()) == 5,
                    lambda: "5 sections waiting for the lock",
                )
                store._local.release()
                await held.calls_on_their_way(2)
                assert held.sent[1].count(WRITE) == 5, held.sent
                held.release()
                made = await asyncio.gather(first, *queued)
            assert len(set(made)) == 6
            held_jobs: list[bytes] = redis_client.hkeys(PREFIX + "records:auvy.jobs")  # type: ignore[assignment]
            assert set(made) <= {k.decode() for k in held_jobs}

    asyncio.run(asyncio.wait_for(test(), 60))
