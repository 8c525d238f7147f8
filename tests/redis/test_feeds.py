"""The change feeds: one per worker, written by the commits of the other workers alive."""

from __future__ import annotations

import asyncio
import time

import redis

from mock_server.app import create_app
from mock_server.store import shared

from .test_shared import PREFIX, create_job, eventually, profile, running, two_workers


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
            await eventually(
                lambda: other._known_version >= one.version,
                lambda: f"worker 2 heard of version {other._known_version}, not {one.version}",
            )

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
