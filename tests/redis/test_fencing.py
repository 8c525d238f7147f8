"""Events and state commit together: a section whose commit is refused leaves no trace in Redis.

The scenario of issue 16: a worker runs a job's timer steps (appending to its event stream) and
dies, or stalls past the lock's expiry, before it commits. Another worker then runs the same
steps from the state Redis still holds. Were the first worker's events already in the stream, a
client would read the steps twice (progress 0, 20, 0, 20).
"""

from __future__ import annotations

import asyncio
from typing import Any

import redis
from starlette.applications import Starlette

from mock_server.app import create_app

from .test_shared import COMPLETE, KEY, PREFIX, create_job, profile, running

ADVANCE_MS = 25  # ci.toml: the job starts after 5 ms, then a step every 10 ms


def events(app: Starlette, job_id: str) -> list[dict[str, Any]]:
    """The job's committed events, as any client would read them (outside a section)."""
    world = app.state.world
    result = world.auvy.streams.read_after(job_id, None, world.engine.now())
    ids = [entry.id for entry in result.entries]
    assert ids == sorted(set(ids)), f"ids not strictly increasing: {ids}"
    return [dict(entry.data) for entry in result.entries]


async def reference_events() -> list[dict[str, Any]]:
    """What one in-memory world streams for the same job and the same clock advance."""
    app = create_app(profile())
    async with running(app) as client:
        job_id = await create_job(client)
        advanced = await client.post("/_mock/clock/advance", json={"ms": ADVANCE_MS})
        assert advanced.status_code == 200, advanced.text
        return events(app, job_id)


def same_job(data: list[dict[str, Any]]) -> list[dict[str, Any]]:
    # Job and intervention ids are random per world; everything else must match.
    return [{k: v for k, v in d.items() if not k.endswith("_id")} for d in data]


def test_steps_run_by_a_worker_whose_commit_was_refused_leave_no_event(
    redis_url: str, redis_client: redis.Redis
) -> None:
    async def test() -> None:
        expected = await reference_events()
        assert len(expected) >= 3, expected  # the steps really ran: there is something to lose
        first = create_app(profile(), store=redis_url)
        second = create_app(profile(), store=redis_url)
        async with running(first) as a, running(second) as b:
            job_id = await create_job(a)
            before = events(second, job_id)
            shared = first.state.store
            await shared.enter()
            shared.engine.clock.advance(ADVANCE_MS)
            assert shared.engine.run_due() > 0
            # The worker stalls past its lock's expiry (or dies): Redis forgets its lock.
            redis_client.delete(PREFIX + "lock")
            await shared.leave()
            assert events(second, job_id) == before, "a refused section's events reached the stream"
            advanced = await b.post("/_mock/clock/advance", json={"ms": ADVANCE_MS})
            assert advanced.status_code == 200, advanced.text
            got = events(second, job_id)
            assert same_job(got) == same_job(expected)
            # And the worker whose section was refused reloads the world that won.
            seen_by_a = await a.get(f"/auvy/v1/jobs/{job_id}/status", headers=KEY)
            seen_by_b = await b.get(f"/auvy/v1/jobs/{job_id}/status", headers=KEY)
            assert seen_by_a.json() == seen_by_b.json()

    asyncio.run(asyncio.wait_for(test(), 60))


def refuse_commits(shared: Any, client: redis.Redis, times: int) -> list[int]:
    """Make the next `times` commits that write records lose their lock first (as if they had
    stalled past its expiry): each is then genuinely refused by Redis. Returns a tally."""
    original = shared._commit_section
    refused: list[int] = []

    async def losing_the_lock(*args: Any, **kwargs: Any) -> int:
        if len(refused) < times and kwargs.get("records"):
            client.delete(PREFIX + "lock")
            refused.append(1)
        result: int = await original(*args, **kwargs)
        return result

    shared._commit_section = losing_the_lock
    return refused


def test_a_request_whose_commit_is_refused_runs_again_and_answers_once(
    redis_url: str, redis_client: redis.Redis
) -> None:
    async def test() -> None:
        app = create_app(profile(), store=redis_url)
        async with running(app) as client:
            before = redis_client.hlen(PREFIX + "records:auvy.jobs")
            refused = refuse_commits(app.state.store, redis_client, 1)
            job_id = await create_job(client)
            assert refused == [1]
            assert redis_client.hlen(PREFIX + "records:auvy.jobs") == before + 1
            assert redis_client.hexists(PREFIX + "records:auvy.jobs", job_id)
            status = await client.get(f"/auvy/v1/jobs/{job_id}/status", headers=KEY)
            assert status.status_code == 200, status.text

    asyncio.run(asyncio.wait_for(test(), 60))


def test_a_request_refused_every_time_is_answered_503_and_changes_nothing(
    redis_url: str, redis_client: redis.Redis
) -> None:
    async def test() -> None:
        app = create_app(profile(), store=redis_url)
        async with running(app) as client:
            before = redis_client.hlen(PREFIX + "records:auvy.jobs")
            refuse_commits(app.state.store, redis_client, 100)
            answer = await client.post("/auvy/v1/jobs", headers=KEY, json={"pathway_id": COMPLETE})
            assert answer.status_code == 503, answer.text
            assert redis_client.hlen(PREFIX + "records:auvy.jobs") == before

    asyncio.run(asyncio.wait_for(test(), 60))
