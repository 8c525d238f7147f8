"""Timers are records (`<prefix>records:timers`), not part of the live document.

The live document holds no timer, so its size does not follow the number of running jobs; a
timer scheduled on one worker and cancelled on another never fires; and two workers sharing
Redis step jobs exactly as one in-memory world does.
"""

from __future__ import annotations

import asyncio
import re
from typing import Any

import httpx
import pytest
import redis
from starlette.applications import Starlette

from mock_server.app import create_app
from mock_server.model.scheduler import Call

from .test_fencing import ADVANCE_MS, REFUSED_WRITES, events, reference_events, same_job
from .test_shared import (
    KEY,
    PREFIX,
    another_commit,
    create_job,
    eventually,
    profile,
    running,
    status,
    two_workers,
)

START_MS = 5  # ci.toml: a job starts 5 ms after it is created, then steps every 10 ms


def live_document_size(client: redis.Redis) -> int:
    return int(client.hstrlen(PREFIX + "world", "b"))


async def live_size_with_running_jobs(url: str, client: redis.Redis, count: int) -> int:
    client.flushdb()
    async with running(create_app(profile(), store=url)) as a:
        jobs = [await create_job(a) for _ in range(count)]
        assert (await a.post("/_mock/clock/advance", json={"ms": START_MS})).is_success
        assert [await status(a, job) for job in jobs] == [(200, "running")] * count
        return live_document_size(client)


def test_the_live_document_does_not_grow_with_running_jobs(
    redis_url: str, redis_client: redis.Redis
) -> None:
    """With every job's next step a timer record of its own, 100 running jobs leave the live
    document as large as 5 do, give or take a few digits: the timers' sequence counter (10 or 200
    timers made) is the only thing in it that the number of jobs changes, so 16 bytes is room to
    spare. When the timers were in it, each running job added about 150 bytes (5,555 bytes with
    5 running jobs, 19,827 with 100)."""

    async def test() -> tuple[int, int]:
        few = await live_size_with_running_jobs(redis_url, redis_client, 5)
        many = await live_size_with_running_jobs(redis_url, redis_client, 100)
        return few, many

    few, many = asyncio.run(asyncio.wait_for(test(), 120))
    assert few > 0
    assert abs(many - few) <= 16, (few, many)
    assert redis_client.hlen(PREFIX + "records:timers") == 100


def test_a_timer_cancelled_on_another_worker_never_fires(
    redis_url: str, redis_client: redis.Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Worker A schedules a job's next step; worker B cancels the job, which deletes that
    timer's record; A loads the deletion before it next runs timers, so the step never runs."""
    fired: list[tuple[str, tuple[object, ...]]] = []
    call = Call.__call__

    def recording(self: Call, due_ms: int) -> None:
        fired.append((self.method, self.args))
        call(self, due_ms)

    monkeypatch.setattr(Call, "__call__", recording)

    async def test() -> None:
        async with two_workers(redis_url) as (first, _second, a, b):
            job_id = await create_job(a)
            assert (await a.post("/_mock/clock/advance", json={"ms": START_MS})).is_success
            assert await status(b, job_id) == (200, "running")
            assert first.state.store.engine.timers.filed(("auvy", job_id)) is not None
            assert redis_client.hlen(PREFIX + "records:timers") == 1
            cancelled = await b.post(f"/auvy/v1/jobs/{job_id}/cancel", headers=KEY)
            assert cancelled.status_code == 200, cancelled.text
            assert redis_client.hlen(PREFIX + "records:timers") == 0
            after_cancel = events(first, job_id)
            fired.clear()
            for _ in range(5):
                advanced = await a.post("/_mock/clock/advance", json={"ms": 1_000})
                assert advanced.status_code == 200, advanced.text
            assert ("_tick", (job_id,)) not in fired, fired
            assert first.state.store.engine.timers.filed(("auvy", job_id)) is None
            assert events(first, job_id) == after_cancel
            assert await status(a, job_id) == (200, "failed")

    asyncio.run(asyncio.wait_for(test(), 60))


def test_a_refused_section_leaves_the_timer_index_as_redis_holds_it(
    redis_url: str, redis_client: redis.Redis
) -> None:
    """A section ran a job's timers (deleting its record, filing the next step) and its commit
    was refused: the worker's heap and key table go back to the timer records Redis holds, and
    the job then steps as in one in-memory world."""

    async def test() -> None:
        expected = await reference_events()
        app = create_app(profile(), store=redis_url)
        async with running(app) as a:
            job_id = await create_job(a)
            shared = app.state.store
            timers = shared.engine.timers
            start = timers.filed(("auvy", job_id))
            assert start is not None
            await shared.enter()
            shared.engine.clock.advance(ADVANCE_MS)
            assert shared.engine.run_due() > 0
            another_commit(redis_client)  # another worker committed first
            assert not await shared.leave()
            held: list[bytes] = redis_client.hkeys(PREFIX + "records:timers")  # type: ignore[assignment]
            assert set(timers.records) == {name.decode() for name in held} == {str(start.seq)}
            again = timers.filed(("auvy", job_id))
            assert again is not None and (again.seq, again.due_ms) == (start.seq, start.due_ms)
            assert len(timers) == 1 and timers.next_due() == start.due_ms
            advanced = await a.post("/_mock/clock/advance", json={"ms": ADVANCE_MS})
            assert advanced.status_code == 200, advanced.text
            assert same_job(events(app, job_id)) == same_job(expected)

    asyncio.run(asyncio.wait_for(test(), 60))


AVA_HEADERS = REFUSED_WRITES[1].headers
STRAIT_HEADERS = REFUSED_WRITES[2].headers
PATHWAYS = {
    "complete": "0b7e1f3a-2c4d-4e5f-8a9b-1c2d3e4f5a10",
    "fail": "1c8f2a4b-3d5e-4f6a-9b0c-2d3e4f5a6b11",
    "approval": "2d9a3b5c-4e6f-4a7b-8c1d-3e4f5a6b7c12",
    "long": "5a2d6e8f-7b9c-4d0e-9f4a-6b7c8d9e0f15",
    "pause": "6b3e7f9a-8c0d-4e1f-8a5b-7c8d9e0f1a16",
}
# (operation, argument): a job (or run) argument is its index among those of its API created.
SCRIPT: list[tuple[str, Any]] = [
    *(("auvy", name) for name in PATHWAYS),
    ("strait", "job_acme_long"),
    ("ava", "wkr_acme_complete"),
    ("strait", "job_acme_long"),
    ("ava", "wkr_acme_complete"),
    ("strait", "job_acme_long"),
    ("advance", 5),
    ("cancel ava", 1),
    ("advance", 25),
    ("cancel auvy", 3),
    ("cancel strait", 0),
    ("advance", 10),
    ("pause strait", 2),
    ("advance", 30),
    ("cancel auvy", 2),
    ("resume auvy", 4),
    ("advance", 40),
    ("resume strait", 2),
    ("advance", 200),
    ("resume auvy", 4),
    ("advance", 15),
    ("cancel strait", 1),
    ("advance", 1_000),
    ("auvy", "long"),
    ("advance", 5_000),
]


IDS = re.compile(r"id|.*_id|.*Id")


def without_ids(value: Any) -> Any:
    """Ids are random per world (uuids, ulids); the rest, timestamps included (a manual clock
    that starts at one fixed time), must match."""
    if isinstance(value, dict):
        return {k: without_ids(v) for k, v in value.items() if not IDS.fullmatch(k)}
    if isinstance(value, list):
        return [without_ids(v) for v in value]
    return value


def data(answer: httpx.Response) -> Any:
    body = answer.json()
    return body.get("data", body) if isinstance(body, dict) else body


async def play(apps: list[Starlette], clients: list[httpx.AsyncClient]) -> dict[str, Any]:
    """Run SCRIPT, turn by turn on each client, and tell what every request answered and where
    every job ended up."""
    made: dict[str, list[str]] = {"auvy": [], "ava": [], "strait": []}
    answers: list[tuple[Any, ...]] = []
    for turn, (operation, argument) in enumerate(SCRIPT):
        client = clients[turn % len(clients)]
        if operation == "auvy":
            answer = await client.post(
                "/auvy/v1/jobs", headers=KEY, json={"pathway_id": PATHWAYS[argument]}
            )
            made["auvy"].append(answer.json()["job_id"])
        elif operation == "ava":
            answer = await client.post(
                "/ava/v1/ava/jobs", headers=AVA_HEADERS, json={"worker_id": argument}
            )
            made["ava"].append(data(answer)["id"])
        elif operation == "strait":
            answer = await client.post(
                f"/strait/v1/jobs/{argument}/trigger", headers=STRAIT_HEADERS, json={}
            )
            made["strait"].append(data(answer)["id"])
        elif operation == "advance":
            answer = await client.post("/_mock/clock/advance", json={"ms": argument})
            # As many timers ran as one world would run, and the other worker sees their work.
            other = clients[(turn + 1) % len(clients)]
            statuses = [(await status(other, job))[1] for job in made["auvy"]]
            answers.append((answer.json()["timers_run"], statuses))
        else:
            verb, api = operation.split()
            job = made[api][argument]
            if api == "strait":
                path = f"/strait/v1/runs/{job}"
                if verb == "cancel":
                    answer = await client.delete(path, headers=STRAIT_HEADERS)
                else:
                    answer = await client.post(f"{path}/{verb}", headers=STRAIT_HEADERS)
            else:
                path, headers = {
                    "auvy": (f"/auvy/v1/jobs/{job}/{verb}", KEY),
                    "ava": (f"/ava/v1/ava/jobs/{job}/{verb}", AVA_HEADERS),
                }[api]
                answer = await client.post(path, headers=headers)
        answers.append((answer.status_code, operation))
    client = clients[-1]
    auvy = []
    for job in made["auvy"]:
        # Whichever worker ran its steps, every worker reads the job's stream alike.
        seen = [without_ids(events(app, job)) for app in apps]
        assert all(stream == seen[0] for stream in seen), seen
        answer = await client.get(f"/auvy/v1/jobs/{job}/status", headers=KEY)
        auvy.append((without_ids(answer.json()), seen[0]))
    ava = [
        without_ids(data(await client.get(f"/ava/v1/ava/jobs/{job}", headers=AVA_HEADERS)))
        for job in made["ava"]
    ]
    strait = [
        without_ids(data(await client.get(f"/strait/v1/runs/{run}", headers=STRAIT_HEADERS)))
        for run in made["strait"]
    ]
    return {"answers": answers, "auvy": auvy, "ava": ava, "strait": strait}


def test_two_workers_sharing_redis_step_jobs_as_one_world_in_memory(
    redis_url: str, redis_client: redis.Redis
) -> None:
    """The same requests and clock advances, alternating between two workers, give the same
    answers, statuses and events as one in-memory world: timers scheduled on one worker run,
    or stay cancelled, on the other exactly as they would in one process."""

    async def test() -> tuple[dict[str, Any], dict[str, Any]]:
        alone = create_app(profile())
        async with running(alone) as client:
            expected = await play([alone], [client])
        async with two_workers(redis_url) as (first, second, a, b):
            got = await play([first, second], [a, b])
        return expected, got

    expected, got = asyncio.run(asyncio.wait_for(test(), 120))
    statuses = [status["status"] for status, _ in expected["auvy"]]
    # The script is worth comparing only if it reached several outcomes.
    assert {"completed", "failed", "running"} <= set(statuses), statuses
    assert got == expected


def due_set(client: redis.Redis) -> dict[str, int]:
    held: list[tuple[bytes, float]] = client.zrange(  # type: ignore[assignment]
        PREFIX + "due", 0, -1, withscores=True
    )
    return {name.decode(): int(score) for name, score in held}


async def heard(app: Starlette, due: int | None) -> None:
    """Wait until the worker's driver has heard that the world's next timer is due at `due`."""
    store = app.state.store
    await eventually(
        lambda: store.due == due, lambda: f"the worker heard next due {store.due}, not {due}"
    )


def test_the_due_set_follows_the_timer_records_and_every_worker_hears_the_earliest(
    redis_url: str, redis_client: redis.Redis
) -> None:
    """Commits of two workers land side by side, so neither worker's timers are the world's;
    the commit keeps every timer's due time in Redis and the change feed carries the earliest,
    and timer numbers made on a later world sort after those made on an earlier one."""

    async def test() -> None:
        async with two_workers(redis_url) as (first, second, a, b):
            made = [await create_job(c) for c in (a, b, b, a)]
            # Two creates begun on the same world, committed side by side.
            shared = [app.state.store for app in (first, second)]
            for store in shared:
                await store.enter()
            for app in (first, second):
                auvy = app.state.world.auvy
                pathway = auvy.pathways[PATHWAYS["long"]]
                auvy.start_script(pathway.workspace_id, pathway.script, pathway.step_ms, {})
            assert [await store.leave() for store in shared] == [True, True]
            await status(a, made[0])  # both catch up
            await status(b, made[0])
            for app in (first, second):
                timers = app.state.store.engine.timers
                records = {name: t.due_ms for name, t in timers.records.items()}
                assert records == due_set(redis_client)
                assert len(records) == len(made) + 2
                seqs = [timers.filed(("auvy", job)).seq for job in made]
                assert len(set(seqs)) == len(seqs)
                # A number sorts by the world its section began on (a worker that had not heard
                # of the other's last commit began on an older one).
                worlds = [seq >> timers.VERSION_SHIFT for seq in seqs]
                assert sorted(seqs) == [s for _, s in sorted(zip(worlds, seqs, strict=True))]
                await heard(app, min(records.values()))
            cancelled = await a.post(f"/auvy/v1/jobs/{made[0]}/cancel", headers=KEY)
            assert cancelled.status_code == 200, cancelled.text
            assert len(due_set(redis_client)) == len(made) + 1
            await status(b, made[0])
            timers = second.state.store.engine.timers
            assert {n: t.due_ms for n, t in timers.records.items()} == due_set(redis_client)
            assert (await b.post("/_mock/clock/advance", json={"ms": 60_000})).is_success
            # The steps ran (what stays is due later: results kept for a while, say).
            left = due_set(redis_client)
            assert len(left) < len(made) + 1
            assert {n: t.due_ms for n, t in timers.records.items()} == left
            await heard(first, min(left.values(), default=None))

    asyncio.run(asyncio.wait_for(test(), 60))


def test_a_section_that_finds_its_timer_already_run_learns_the_next_due_time(
    redis_url: str, redis_client: redis.Redis
) -> None:
    """The timer driver sleeps until the due time it last heard. Were a tick that found its
    timer already run elsewhere to leave that time in place, the driver would wake for it again
    at once, and again: every section ends knowing its world's next due time."""

    async def test() -> None:
        async with two_workers(redis_url) as (first, _second, a, b):
            made = await create_job(a)
            store = first.state.store
            stale = store.due
            assert stale is not None
            assert (await b.post("/_mock/clock/advance", json={"ms": 60_000})).is_success
            left = due_set(redis_client)
            await status(a, made)  # this worker holds the world as it now is
            # As if the driver had woken for the timer it last heard of, which ran elsewhere.
            store.due, store._due_version = stale, -1
            async with store.section() as outcome:
                assert store.engine.run_ticks() == 0
            assert outcome.committed
            assert store.due == min(left.values(), default=None) != stale

    asyncio.run(asyncio.wait_for(test(), 60))
