"""The change feeds: one per worker, written by the commits of the other workers alive."""

from __future__ import annotations

import asyncio
import itertools
import time
from dataclasses import dataclass

import httpx
import pytest
import redis

from mock_server.app import create_app
from mock_server.store import shared

from .test_shared import PREFIX, create_job, eventually, profile, running, two_workers


async def heard_all(one: shared.SharedWorld, other: shared.SharedWorld) -> None:
    """Wait until `other` has heard (through its feed) of every commit `one` made."""
    await eventually(
        lambda: other._known_version >= one.version,
        lambda: f"worker 2 heard of version {other._known_version}, not {one.version}",
    )


def feeds(client: redis.Redis) -> dict[str, int]:
    """Each feed in Redis and how many entries it holds."""
    found = client.scan_iter(match=PREFIX + "changes:*")
    return {k.decode()[len(PREFIX + "changes:") :]: int(client.xlen(k)) for k in found}


def test_a_worker_alone_writes_no_feed_entry(redis_url: str, redis_client: redis.Redis) -> None:
    async def test() -> None:
        app = create_app(profile(), store=redis_url)
        async with running(app) as a:
            for _ in range(3):
                await create_job(a)
            assert sum(feeds(redis_client).values()) == 0
            alive = redis_client.zrange(PREFIX + "workers", 0, -1)
            assert alive == [app.state.store.worker.encode()]

    asyncio.run(asyncio.wait_for(test(), 30))


def test_a_commit_writes_the_feed_of_the_other_worker_and_not_its_own(
    redis_url: str, redis_client: redis.Redis
) -> None:
    async def test() -> None:
        async with two_workers(redis_url) as (first, second, a, _b):
            one, other = first.state.store, second.state.store
            await create_job(a)
            found = feeds(redis_client)
            assert found.get(one.worker, 0) == 0
            assert found.get(other.worker, 0) >= 1
            # And the other worker heard of it.
            await heard_all(one, other)

    asyncio.run(asyncio.wait_for(test(), 30))


def test_a_worker_silent_too_long_gets_no_entries_and_catches_up_when_it_beats_again(
    redis_url: str, redis_client: redis.Redis
) -> None:
    """A worker whose heartbeat is older than WORKER_TTL_MS is taken for dead: commits skip its
    feed. Once it beats again after such a silence (a process paused that long), it loads
    before its next section and wakes every reader, which reads again."""

    async def test() -> None:
        async with two_workers(redis_url) as (_first, second, a, _b):
            other = second.state.store
            stale = int(time.time() * 1000) - shared.WORKER_TTL_MS - 1_000
            redis_client.zadd(PREFIX + "workers", {other.worker: stale})
            redis_client.delete(PREFIX + "changes:" + other.worker)
            await create_job(a)
            assert feeds(redis_client).get(other.worker, 0) == 0

            woken: list[str] = []
            other.engine.subscribe("some:stream", lambda: woken.append("some:stream"))
            other._beaten = time.monotonic() - shared.WORKER_TTL_MS / 1000 - 1
            version = other.version
            await other._beat(other._section_line)
            assert woken == ["some:stream"]
            assert other._known_version > version, "it must load before its next section"
            score = redis_client.zscore(PREFIX + "workers", other.worker)
            assert score is not None and score > stale

    asyncio.run(asyncio.wait_for(test(), 30))


def test_a_worker_that_stops_leaves_no_feed_and_no_heartbeat(
    redis_url: str, redis_client: redis.Redis
) -> None:
    async def test() -> None:
        async with two_workers(redis_url) as (_first, _second, a, _b):
            await create_job(a)
            assert feeds(redis_client)

    asyncio.run(asyncio.wait_for(test(), 30))
    assert feeds(redis_client) == {}
    assert redis_client.zcard(PREFIX + "workers") == 0


@dataclass
class FeedRead:
    began: float  # time.monotonic()
    entries: int
    busy: bool  # whether the reading worker had commits on their way when it returned


def recording_feed_reads(store: shared.SharedWorld) -> list[FeedRead]:
    """Every XREAD of `store`'s feed from now on. Nothing between a read's return and the
    follower's choice of pace awaits, so `busy` is what that choice saw."""
    line = store._feed_line
    reads: list[FeedRead] = []
    call = line.call

    async def counted(*command: object, deadline_s: float | None = None) -> object:
        began = time.monotonic()
        answer = await call(*command, deadline_s=deadline_s)
        if command[0] == "XREAD":
            entries = len(list(shared.feed_entries(answer)))
            reads.append(FeedRead(began, entries, store._busy()))
        return answer

    line.call = counted  # type: ignore[method-assign]
    return reads


def gaps_after(reads: list[FeedRead], *, busy: bool) -> list[float]:
    """How long after each read that brought entries (its worker `busy` or not) the next began."""
    return [
        later.began - read.began
        for read, later in itertools.pairwise(reads)
        if read.entries and read.busy == busy
    ]


def test_while_the_other_worker_commits_on_and_on_its_feed_is_read_in_paced_batches(
    redis_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A feed read that brought entries is followed by the next one FEED_PACE_MS after it
    began at the soonest, so one read takes in many commits; the worker still hears them all.
    (A longer pace than the real one, for a test that tells pacing from chance.)"""
    monkeypatch.setattr(shared, "FEED_PACE_MS", 50)
    monkeypatch.setattr(shared, "FEED_PACE_BUSY_MS", 50)

    async def test() -> None:
        async with two_workers(redis_url) as (first, second, a, _b):
            one, other = first.state.store, second.state.store
            reads = recording_feed_reads(other)
            for _ in range(40):
                await create_job(a)
            await heard_all(one, other)
            assert sum(r.entries for r in reads) >= 40
            brought = [r for r in reads if r.entries]
            assert len(brought) < 20, f"{len(brought)} feed reads for 40 commits: not batched"
            gaps = gaps_after(reads, busy=False)
            assert gaps and min(gaps) >= 0.05, f"read again {min(gaps) * 1000:.1f} ms after"

    asyncio.run(asyncio.wait_for(test(), 30))


def test_a_worker_whose_own_commits_are_on_their_way_reads_its_feed_at_the_busy_pace(
    redis_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Both workers create jobs side by side. After a read that brought entries, the next
    comes FEED_PACE_BUSY_MS later when the reader had commits on their way (their answers
    bring what the feed announced), and FEED_PACE_MS later when it had none."""
    monkeypatch.setattr(shared, "FEED_PACE_MS", 0)
    monkeypatch.setattr(shared, "FEED_PACE_BUSY_MS", 50)

    async def test() -> None:
        async with two_workers(redis_url) as (first, second, a, b):
            one, other = first.state.store, second.state.store
            reads = recording_feed_reads(other)

            async def creating(client: httpx.AsyncClient, count: int) -> None:
                for _ in range(count):
                    await create_job(client)

            # Several requests at once on the reader: its commits are on their way most of
            # the time.
            await asyncio.gather(creating(a, 60), *(creating(b, 20) for _ in range(4)))
            await heard_all(one, other)
            busy, idle = gaps_after(reads, busy=True), gaps_after(reads, busy=False)
            assert busy, f"worker 2 never read its feed with commits on their way: {reads}"
            assert min(busy) >= 0.05, f"busy, read again {min(busy) * 1000:.1f} ms after"
            if idle:
                assert min(idle) < 0.05, "idle, it waited the busy pace too"

    asyncio.run(asyncio.wait_for(test(), 30))
