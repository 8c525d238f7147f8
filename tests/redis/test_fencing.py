"""Events and state commit together: a section whose commit is refused leaves no trace in Redis.

The scenario of issue 16: a worker runs a job's timer steps (appending to its event stream) but
another worker commits first (or the first dies before it commits). Another worker then runs the
same steps from the state Redis holds. Were the first worker's events already in the stream, a
client would read the steps twice (progress 0, 20, 0, 20).
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
import uuid
from collections.abc import Callable
from typing import Any, NamedTuple

import pytest
import redis
from starlette.applications import Starlette

from conformance.spec_check import ResponseSpec
from mock_server.app import create_app
from mock_server.model.auvy.records import workspace_of
from mock_server.model.store import in_partition
from mock_server.model.strait.records import TriggerOptions
from mock_server.store.shared import TURN_AFTER, TURN_WAIT_MS

from .test_shared import (
    COMPLETE,
    KEY,
    PREFIX,
    another_commit,
    create_job,
    eventually,
    profile,
    running,
    script_calls,
    two_workers,
)

ADVANCE_MS = 25  # ci.toml: the job starts after 5 ms, then a step every 10 ms
STEP_MS, STEPS = 10, 6  # so each advance runs one step, on alternating workers


def events(app: Starlette, job_id: str) -> list[dict[str, Any]]:
    """The job's committed events, as any client would read them (outside a section)."""
    world = app.state.world
    result = world.auvy.streams.read_after(job_id, None, world.engine.now())
    ids = [entry.id for entry in result.entries]
    assert ids == sorted(set(ids)), f"ids not strictly increasing: {ids}"
    return [dict(entry.data) for entry in result.entries]


async def reference_events(ms: int = ADVANCE_MS) -> list[dict[str, Any]]:
    """What one in-memory world streams for the same job and the same clock advance."""
    app = create_app(profile())
    async with running(app) as client:
        job_id = await create_job(client)
        advanced = await client.post("/_mock/clock/advance", json={"ms": ms})
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
        async with two_workers(redis_url) as (first, second, a, b):
            job_id = await create_job(a)
            before = events(second, job_id)
            shared = first.state.store
            await shared.enter()
            shared.engine.clock.advance(ADVANCE_MS)
            assert shared.engine.run_due() > 0
            # Meanwhile another worker commits: the world is no longer the one this section
            # loaded, so its commit must be refused, events included.
            another_commit(redis_client)
            assert not await shared.leave()
            assert events(second, job_id) == before, "a refused section's events reached the stream"
            advanced = await b.post("/_mock/clock/advance", json={"ms": ADVANCE_MS})
            assert advanced.status_code == 200, advanced.text
            got = events(second, job_id)
            assert same_job(got) == same_job(expected)
            # And the worker whose section was refused rolled back to, and reloads, the world
            # that won.
            seen_by_a = await a.get(f"/auvy/v1/jobs/{job_id}/status", headers=KEY)
            seen_by_b = await b.get(f"/auvy/v1/jobs/{job_id}/status", headers=KEY)
            assert seen_by_a.json() == seen_by_b.json()

    asyncio.run(asyncio.wait_for(test(), 60))


def refuse_commits(shared: Any, client: redis.Redis, times: int) -> list[int]:
    """Make the next `times` commits that write records find that another worker committed
    first: each is then genuinely refused by Redis. Returns a tally."""
    original = shared._send_batch
    refused: list[int] = []

    async def losing_the_lock(flight: Any) -> None:
        if len(refused) < times and any(t.changes and t.changes.names for t in flight.batch):
            another_commit(client)
            refused.append(1)
        await original(flight)

    shared._send_batch = losing_the_lock
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


STRAIT_KEY = "strait_7e7635b23a9157c5d9911aab0d35be05779b32737b4536af9581aa5abb7e66c1"


class Write(NamedTuple):
    """One write of an API, and what its 503 answers: `where` the envelope keeps the code."""

    api: str
    operation: str  # its operationId in the API's spec
    path: str
    headers: dict[str, str]
    body: dict[str, Any]
    where: tuple[str, ...]
    code: str


REFUSED_WRITES = [
    Write(
        "auvy",
        "createJob",
        "/auvy/v1/jobs",
        KEY,
        {"pathway_id": COMPLETE},
        ("code",),
        "INTERNAL_SERVER_ERROR",
    ),
    Write(
        "ava",
        "triggerJob",
        "/ava/v1/ava/jobs",
        {
            "x-internal-secret": "ava_test_internal_secret",
            "x-tenant-id": "ten_acme",
            "x-user-id": "usr_1",
            "x-platform-role": "platform-admin",
        },
        {"worker_id": "wkr_acme_complete"},
        ("error", "code"),
        "service_unavailable",
    ),
    Write(
        "strait",
        "triggerJob",
        "/strait/v1/jobs/job_acme_long/trigger",
        {"Authorization": f"Bearer {STRAIT_KEY}"},
        {},
        ("error", "code"),
        "service_unavailable",
    ),
]
AVA_WRITE = REFUSED_WRITES[1]
AVA_HEADERS = AVA_WRITE.headers


def record_counts(client: redis.Redis) -> dict[bytes, int]:
    return {name: client.hlen(name) for name in client.scan_iter(match=PREFIX + "records:*")}


def test_a_request_refused_every_time_is_answered_503_in_its_envelope_and_changes_nothing(
    redis_url: str, redis_client: redis.Redis
) -> None:
    async def test() -> None:
        app = create_app(profile(), store=redis_url)
        async with running(app) as client:
            before = record_counts(redis_client)
            jobs = (await client.get("/auvy/v1/jobs", headers=KEY)).json()
            refused = refuse_commits(app.state.store, redis_client, 10_000)
            for write in REFUSED_WRITES:
                answer = await client.post(write.path, headers=write.headers, json=write.body)
                assert answer.status_code == 503, (write.path, answer.text)
                assert answer.headers["retry-after"] == "1"
                # Documented: the status, its header and its body, as the suites check them.
                spec = ResponseSpec.for_api(write.api)
                spec.check(write.operation, 503, answer.headers, answer.json())
                found: Any = answer.json()
                for name in write.where:
                    found = found[name]
                assert found == write.code, (write.path, answer.text)
            assert len(refused) >= 3
            after = record_counts(redis_client)
            assert after == before
            # The refused runs were rolled back in this process too: it shows no phantom job.
            refused.extend([1] * 10_000)  # stop refusing
            assert (await client.get("/auvy/v1/jobs", headers=KEY)).json() == jobs

    asyncio.run(asyncio.wait_for(test(), 60))


def refused_so_far(redis_client: redis.Redis, *apps: Starlette) -> int:
    """Commits refused because another worker wrote what they read, over `apps`: checked
    against the tally in Redis, which the benchmark reads."""
    conflicts: int = sum(app.state.store.counts()["conflicts"] for app in apps)
    assert int(redis_client.hget(PREFIX + "stats", "conflicts") or 0) == conflicts
    return conflicts


def test_creates_on_two_workers_commit_side_by_side_without_refusing_each_other(
    redis_url: str, redis_client: redis.Redis
) -> None:
    """Two AUVY jobs created at the same time on two workers share no record: neither commit
    is refused, however the two interleave, and both workers see every job."""

    async def test() -> None:
        async with two_workers(redis_url) as (first, second, a, b):
            before = len((await a.get("/auvy/v1/jobs", headers=KEY)).json()["jobs"])
            # Both sections load the same world before either commits.
            shared = [app.state.store for app in (first, second)]
            for store in shared:
                await store.enter()
            made = []
            for app in (first, second):
                auvy = app.state.world.auvy
                pathway = auvy.pathways[COMPLETE]
                job = auvy.start_script(pathway.workspace_id, pathway.script, pathway.step_ms, {})
                made.append(job.id)
            assert [await store.leave() for store in shared] == [True, True]
            made += await asyncio.gather(*(create_job(c) for c in (a, b) * 10))
            assert len(set(made)) == 22
            assert refused_so_far(redis_client, first, second) == 0
            for client in (a, b):
                listed = (await client.get("/auvy/v1/jobs?limit=100", headers=KEY)).json()["jobs"]
                ids = [job["job_id"] for job in listed]
                assert len(ids) == before + 22 and set(made) <= set(ids)

    asyncio.run(asyncio.wait_for(test(), 60))


def test_concurrent_writes_that_meet_on_two_workers_all_land_once(
    redis_url: str, redis_client: redis.Redis
) -> None:
    """Compare-and-set, not a lock: two workers create AVA jobs at the same time (each bumps the
    tenant's queue counters in the live document), commits collide and the losers run again;
    every job is created exactly once and both workers see them all."""

    async def test() -> None:
        async with two_workers(redis_url) as (first, second, a, b):

            async def create(client: Any) -> str:
                answer = await client.post(AVA_WRITE.path, headers=AVA_HEADERS, json=AVA_WRITE.body)
                assert answer.status_code in (200, 201), answer.text
                body = answer.json()
                made: str = body.get("data", body)["id"]
                return made

            before = redis_client.hlen(PREFIX + "records:ava.jobs")
            made = await asyncio.gather(*(create(c) for c in (a, b) * 15))
            assert len(set(made)) == 30
            assert refused_so_far(redis_client, first, second) > 0, (
                "the workers never collided: nothing was tested"
            )
            assert redis_client.hlen(PREFIX + "records:ava.jobs") == before + 30
            for client in (a, b):
                for job in made:
                    seen = await client.get(f"/ava/v1/ava/jobs/{job}", headers=AVA_HEADERS)
                    assert seen.status_code == 200, seen.text

    asyncio.run(asyncio.wait_for(test(), 60))


def test_steps_alternating_between_workers_append_to_one_stream_in_order(
    redis_url: str, redis_client: redis.Redis
) -> None:
    """Each worker keeps the stream copies its sections committed; a copy another worker has
    since appended to must be dropped, or its next step would reuse an id or lose an entry."""

    async def test() -> None:
        expected = await reference_events(STEPS * STEP_MS)
        async with two_workers(redis_url) as (first, second, a, b):
            job_id = await create_job(a)
            for step in range(STEPS):
                client = (a, b)[step % 2]
                advanced = await client.post("/_mock/clock/advance", json={"ms": STEP_MS})
                assert advanced.status_code == 200, advanced.text
            for app in (first, second):
                assert same_job(events(app, job_id)) == same_job(expected)
                # Each stale copy was dropped when the other worker's commit was loaded, not
                # found out by a refused commit.
                assert app.state.store.counts()["streams_moved"] == 0

    asyncio.run(asyncio.wait_for(test(), 60))


def test_a_refused_request_under_a_mount_is_routed_again_from_its_own_path(
    redis_url: str, redis_client: redis.Redis
) -> None:
    """Routing rewrites the scope it is given (a Mount's root_path): a second attempt routed
    from the first one's scope answered 404 for a route that exists."""

    async def test() -> None:
        app = create_app(profile(), store=redis_url)
        async with running(app) as client:
            await create_job(client)  # a pending job: advancing the clock changes records
            refused = refuse_commits(app.state.store, redis_client, 1)
            advanced = await client.post("/_mock/clock/advance", json={"ms": ADVANCE_MS})
            assert refused == [1]
            assert advanced.status_code == 200, advanced.text

    asyncio.run(asyncio.wait_for(test(), 60))


def test_a_request_refused_by_another_workers_turn_waits_for_it_to_end(
    redis_url: str, redis_client: redis.Redis
) -> None:
    """Another worker holds the turn (it was starving, then died): this worker's commit is
    refused once, then it waits for the turn to expire instead of running again and again."""

    async def test() -> None:
        app = create_app(profile(), store=redis_url)
        async with running(app) as client:
            redis_client.set(PREFIX + "turn", "someone-else", px=600)
            started = time.monotonic()
            created = await client.post("/auvy/v1/jobs", headers=KEY, json={"pathway_id": COMPLETE})
            assert created.status_code == 200, created.text
            assert time.monotonic() - started >= 0.5  # it did wait for the other's turn
            assert app.state.store.counts()["turn_waits"] == 1

    asyncio.run(asyncio.wait_for(test(), 60))


def test_a_starving_request_takes_the_turn_and_lands(
    redis_url: str, redis_client: redis.Redis
) -> None:
    """Refused TURN_AFTER times by other workers' commits, a request takes the turn: its next
    commit lands, and gives the turn back."""

    async def test() -> None:
        app = create_app(profile(), store=redis_url)
        store = app.state.store
        async with running(app) as client:
            taken: list[str] = []
            take = store._take_turn

            async def spied() -> str:
                taken.append(await take())
                assert redis_client.get(PREFIX + "turn") == taken[-1].encode()
                return taken[-1]

            store._take_turn = spied
            refused = refuse_commits(store, redis_client, TURN_AFTER)
            created = await client.post("/auvy/v1/jobs", headers=KEY, json={"pathway_id": COMPLETE})
            assert created.status_code == 200, created.text
            assert len(refused) == TURN_AFTER and len(taken) == 1
            assert not redis_client.exists(PREFIX + "turn"), "its commit gives the turn back"

    asyncio.run(asyncio.wait_for(test(), 60))


def test_a_turn_that_never_ends_is_answered_503_after_a_bounded_wait(
    redis_url: str, redis_client: redis.Redis
) -> None:
    async def test() -> None:
        app = create_app(profile(), store=redis_url)
        async with running(app) as client:
            redis_client.set(PREFIX + "turn", "stuck")  # no expiry: never given back
            started = time.monotonic()
            answer = await client.post("/auvy/v1/jobs", headers=KEY, json={"pathway_id": COMPLETE})
            waited = time.monotonic() - started
            assert answer.status_code == 503, answer.text
            assert answer.json()["code"] == "INTERNAL_SERVER_ERROR"
            assert TURN_WAIT_MS / 1000 <= waited < 30, waited
            # Reads never need the turn.
            listed = await client.get("/auvy/v1/jobs", headers=KEY)
            assert listed.status_code == 200, listed.text

    asyncio.run(asyncio.wait_for(test(), 60))


async def _two_sections(
    redis_url: str, first_reads: Callable[[Any], object], second_writes: Callable[[Any], None]
) -> bool:
    """Worker A's section runs `first_reads` and then changes job 1; worker B's section, begun
    on the same world, runs `second_writes` and commits first. Whether A's commit landed."""
    async with two_workers(redis_url) as (first, second, a, _):
        mine = await create_job(a)
        shared = [app.state.store for app in (first, second)]
        for store in shared:
            await store.enter()
        auvy_a = first.state.world.auvy
        first_reads(auvy_a.jobs)
        auvy_a.jobs[mine].input["touched_by"] = "a"
        second_writes(second.state.world.auvy.jobs)
        assert await shared[1].leave()
        return bool(await shared[0].leave())


# The seeded workspaces of the keys auvy_test_acme_rw (KEY) and auvy_test_globex_rw.
ACME_WORKSPACE = "3f1c0a52-6a4e-4c8e-9d43-6b1f0e7a9a01"
GLOBEX_WORKSPACE = "7b2d4e61-1c3f-4a5b-8e9d-0f1a2b3c4d02"


def _new_job(jobs: Any, job_id: str) -> None:
    model = next(iter(jobs.untouched_values()))
    jobs[job_id] = dataclasses.replace(model, id=job_id, input={})


@pytest.mark.parametrize(
    ("reads", "lands"),
    [
        (lambda jobs: None, True),
        (lambda jobs: len(jobs), False),  # counted the jobs: a new one changes the count
        (lambda jobs: list(jobs), False),
        (lambda jobs: "job_new" in jobs, False),  # asked for the very job B made
        (lambda jobs: jobs.get("job_new"), False),
        (lambda jobs: "job_other" in jobs, True),
        # Listed the workspace B's new job is in, or another one.
        (lambda jobs: in_partition(jobs, ACME_WORKSPACE, workspace_of), False),
        (lambda jobs: in_partition(jobs, GLOBEX_WORKSPACE, workspace_of), True),
    ],
    ids=[
        "disjoint",
        "len",
        "walk",
        "contains",
        "get-missing",
        "contains-other",
        "list-its-workspace",
        "list-another-workspace",
    ],
)
def test_a_commit_is_refused_exactly_when_another_wrote_what_it_read(
    redis_url: str, redis_client: redis.Redis, reads: Callable[[Any], object], lands: bool
) -> None:
    """Read-set validation: a record read (or looked up in vain) or a store walked that another
    worker's commit has since written refuses the section; anything else it did not read lets
    it land beside that commit."""
    landed = asyncio.run(
        asyncio.wait_for(_two_sections(redis_url, reads, lambda j: _new_job(j, "job_new")), 60)
    )
    assert landed is lands
    held = redis_client.hexists(PREFIX + "records:auvy.jobs", "job_new")
    assert held, "the first commit must land either way"


def test_two_sections_writing_one_record_refuse_the_second(
    redis_url: str, redis_client: redis.Redis
) -> None:
    async def test() -> None:
        async with two_workers(redis_url) as (first, second, a, b):
            job_id = await create_job(a)
            await status_of(b, job_id)  # B holds the job too
            shared = [app.state.store for app in (first, second)]
            for store in shared:
                await store.enter()
            for app, who in ((first, "a"), (second, "b")):
                app.state.world.auvy.jobs[job_id].input["by"] = who
            assert await shared[1].leave()
            assert not await shared[0].leave()
            assert refused_so_far(redis_client, first, second) == 1
            # A rolled back and reloads B's version.
            for app in (first, second):
                await app.state.store.enter()
                assert app.state.world.auvy.jobs[job_id].input["by"] == "b"
                assert await app.state.store.leave()

    asyncio.run(asyncio.wait_for(test(), 60))


async def status_of(client: Any, job_id: str) -> str:
    got = await client.get(f"/auvy/v1/jobs/{job_id}/status", headers=KEY)
    assert got.status_code == 200, got.text
    status: str = got.json()["status"]
    return status


GLOBEX_STRAIT = "strait_a8002ead2c8261875226792ca4c6b687899afb7c0f9dc1fa362077b190f08ad1"


def ava_create(tenant: str, worker: str, *, list_first: bool = False) -> Callable[[Any], object]:
    """Create a job; with `list_first`, list the tenant's jobs before (a dashboard's poll)."""

    def create(world: Any) -> object:
        ava = world.ava
        who = ava.authenticate("ava_test_internal_secret", tenant, "usr_1", "platform-admin")
        if list_first:
            ava.list_jobs(who)
        return ava.trigger(who, worker)

    return create


def strait_trigger(token: str, job: str, *, list_first: bool = False) -> Callable[[Any], object]:
    """Trigger a run; with `list_first`, list the project's runs and dead letters before."""

    def trigger(world: Any) -> object:
        strait = world.strait
        who = strait.authenticate(token)
        if list_first:
            strait.list_runs(who, who.project_id)
            strait.dead_letters(who, who.project_id)
        return strait.trigger(who, job, TriggerOptions())

    return trigger


ACME_SUMMARISE = "0b7e1f3a-2c4d-4e5f-8a9b-1c2d3e4f5a10"
GLOBEX_SUMMARISE = "7c4f8a0b-9d1e-4f2a-9b6c-8d9e0f1a2b17"


def auvy_start(token: str, pathway: str, *, list_first: bool = False) -> Callable[[Any], object]:
    """Start a pathway's job; with `list_first`, list the workspace's jobs and interventions
    before (a dashboard's poll)."""

    def start(world: Any) -> object:
        auvy = world.auvy
        who = auvy.authenticate(token)
        if list_first:
            auvy.list_jobs(who)
            auvy.list_interventions(who)
        return auvy.start_pathway(who, pathway)

    return start


def strait_trigger_then_cancel(token: str, job: str) -> Callable[[Any], object]:
    """Trigger a run and cancel it (cancelling its children: a walk of its project's runs)."""

    def cancel(world: Any) -> object:
        strait = world.strait
        who = strait.authenticate(token)
        run, _ = strait.trigger(who, job, TriggerOptions())
        return strait.cancel(who, run.id)

    return cancel


@pytest.mark.parametrize(
    ("first", "second", "lands"),
    [
        (
            ava_create("ten_acme", "wkr_acme_complete"),
            ava_create("ten_globex", "wkr_globex_complete"),
            True,
        ),
        (
            ava_create("ten_acme", "wkr_acme_complete"),
            ava_create("ten_acme", "wkr_acme_complete"),
            False,
        ),
        (
            strait_trigger(STRAIT_KEY, "job_acme_long"),
            strait_trigger(GLOBEX_STRAIT, "job_globex_complete"),
            True,
        ),
        (
            strait_trigger(STRAIT_KEY, "job_acme_long"),
            strait_trigger(STRAIT_KEY, "job_acme_long"),
            False,
        ),
        (
            auvy_start("auvy_test_acme_rw", ACME_SUMMARISE, list_first=True),
            auvy_start("auvy_test_globex_rw", GLOBEX_SUMMARISE),
            True,
        ),
        (
            auvy_start("auvy_test_acme_rw", ACME_SUMMARISE, list_first=True),
            auvy_start("auvy_test_acme_rw", ACME_SUMMARISE),
            False,
        ),
        (
            ava_create("ten_acme", "wkr_acme_complete", list_first=True),
            ava_create("ten_globex", "wkr_globex_complete"),
            True,
        ),
        (
            strait_trigger(STRAIT_KEY, "job_acme_long", list_first=True),
            strait_trigger(GLOBEX_STRAIT, "job_globex_complete"),
            True,
        ),
        (
            strait_trigger(STRAIT_KEY, "job_acme_long", list_first=True),
            strait_trigger(STRAIT_KEY, "job_acme_long"),
            False,
        ),
        (
            strait_trigger_then_cancel(STRAIT_KEY, "job_acme_long"),
            strait_trigger(GLOBEX_STRAIT, "job_globex_complete"),
            True,
        ),
    ],
    ids=[
        "ava-two-tenants",
        "ava-one-tenant",
        "strait-two-projects",
        "strait-one-project",
        "auvy-listed-its-workspace",
        "auvy-listed-the-workspace-written",
        "ava-listed-its-tenant",
        "strait-listed-its-project",
        "strait-listed-the-project-written",
        "strait-cancelled-in-its-project",
    ],
)
def test_writes_in_two_partitions_land_side_by_side_and_in_one_the_second_is_refused(
    redis_url: str,
    redis_client: redis.Redis,
    first: Callable[[Any], object],
    second: Callable[[Any], object],
    lands: bool,
) -> None:
    """An AVA tenant's queue and counters, a Strait project's created_at and idempotency keys
    are records of their own: creating in one tenant (project) does not refuse a creation in
    another begun on the same world, and does refuse one in the same. A listing reads its own
    tenant's (project's) jobs alone: a creation elsewhere does not refuse it either."""

    async def test() -> None:
        apps = [create_app(profile(), store=redis_url) for _ in range(2)]
        async with running(apps[0]), running(apps[1]):
            shared = [app.state.store for app in apps]
            for store in shared:
                await store.enter()
            first(apps[0].state.world)
            second(apps[1].state.world)
            assert await shared[1].leave()
            assert await shared[0].leave() is lands
            assert refused_so_far(redis_client, *apps) == (0 if lands else 1)

    asyncio.run(asyncio.wait_for(test(), 60))


def test_a_worker_reads_another_workers_appends_once_the_feed_names_the_stream(
    redis_url: str, redis_client: redis.Redis
) -> None:
    """A worker reads the streams its own commits wrote from its copies, without a round trip;
    once the change feed says another worker appended to one, that copy is dropped, so the
    very next read (no request on this worker in between) has the other worker's entries."""

    async def test() -> None:
        expected = await reference_events()
        async with two_workers(redis_url) as (first, _second, a, b):
            job_id = await create_job(a)
            assert job_id in first.state.store._stores["auvy"]._cache
            advanced = await b.post("/_mock/clock/advance", json={"ms": ADVANCE_MS})
            assert advanced.status_code == 200, advanced.text
            version = int(redis_client.hget(PREFIX + "world", "v") or 0)
            store = first.state.store
            await eventually(
                lambda: store._known_version >= version,
                lambda: f"the worker never heard of version {version}",
            )
            assert same_job(events(first, job_id)) == same_job(expected)

    asyncio.run(asyncio.wait_for(test(), 60))


def test_a_tick_run_on_a_world_the_feed_had_not_announced_yet_is_refused_and_runs_again(
    redis_url: str, redis_client: redis.Redis
) -> None:
    """The timer driver's sections skip loading when the feed has announced nothing new. When
    the feed lags (here: as if another worker's cancel had not reached it yet) the tick runs
    on the older world, and its commit, checking what it read, is refused: the job cancelled
    elsewhere never steps."""

    async def test() -> None:
        async with two_workers(redis_url) as (first, second, a, b):
            job_id = await create_job(a)
            shared = first.state.store
            loaded = shared.version
            cancelled = await b.post(f"/auvy/v1/jobs/{job_id}/cancel", headers=KEY)
            assert cancelled.status_code == 200, cancelled.text
            before = events(second, job_id)
            shared._known_version = loaded  # the feed has not told this worker yet
            # But its copy of the stream is current (the feed dropped the old one): the tick is
            # refused by what it read, not doomed for a stream it lacks.
            await shared._stores["auvy"].load([job_id])

            def tick() -> int:
                if not ticks:
                    shared.engine.clock.advance(ADVANCE_MS)
                ran: int = shared.engine.run_ticks()
                ticks.append(ran)
                return ran

            ticks: list[int] = []
            await shared.transact(tick, optimistic=True)
            assert ticks[0] > 0, "the first attempt did not run on the older world"
            assert ticks[-1] == 0
            assert shared.counts()["conflicts"] == 1
            assert shared.counts()["stream_loads"] == 0
            assert events(second, job_id) == before
            status = await a.get(f"/auvy/v1/jobs/{job_id}/status", headers=KEY)
            assert status.json()["status"] == "failed", status.text

    asyncio.run(asyncio.wait_for(test(), 60))


def test_a_write_costs_one_round_trip_and_a_read_one(
    redis_url: str, redis_client: redis.Redis
) -> None:
    """Issue 16: one round trip for a read, one for a write. A worker that has heard of every
    commit skips the load; the write's commit (or the read's check) is its only script call."""

    async def test() -> None:
        async with running(create_app(profile(), store=redis_url)) as a:
            job_id = await create_job(a)
            before = script_calls(redis_client)
            await create_job(a)
            assert script_calls(redis_client) - before == 1
            before = script_calls(redis_client)
            status = await a.get(f"/auvy/v1/jobs/{job_id}/status", headers=KEY)
            assert status.status_code == 200, status.text
            assert script_calls(redis_client) - before == 1

    asyncio.run(asyncio.wait_for(test(), 60))


def test_a_read_on_a_world_the_feed_had_not_announced_yet_is_checked_and_run_again(
    redis_url: str, redis_client: redis.Redis
) -> None:
    """A request on a worker that believes itself current skips the load; a job created on
    another worker a moment before, which the feed has not announced yet, is then missing from
    its model. The read's check finds that job's record newer than the model and the request
    runs again with a load: the client gets the job, never a 404."""

    async def test() -> None:
        async with two_workers(redis_url) as (_first, second, a, b):
            store = second.state.store
            await status_of(b, await create_job(b))  # b holds the world as it now is
            job_id = await create_job(a)
            store._known_version = store.version  # the feed has not told b yet
            got = await b.get(f"/auvy/v1/jobs/{job_id}/status", headers=KEY)
            assert got.status_code == 200, got.text
            assert store.counts()["stale_reads"] == 1
            assert int(redis_client.hget(PREFIX + "stats", "stale_reads") or 0) == 1

    asyncio.run(asyncio.wait_for(test(), 60))


def test_a_section_that_missed_a_timer_already_due_is_refused(
    redis_url: str, redis_client: redis.Redis
) -> None:
    """A clock advance on a worker that has not loaded a job created elsewhere runs the timers
    it knows of; the job's first step, already due by then, is not among them. Its commit
    checks which timers were due by the time it ran them, so it is refused, and the advance
    runs again with that step, as in one world."""

    async def test() -> None:
        async with two_workers(redis_url) as (_first, second, a, _):
            store = second.state.store
            await create_job(a)
            store._known_version = store.version  # b has not heard of the new job yet
            ran: list[int] = []

            def advance() -> None:
                store.engine.clock.advance(ADVANCE_MS)
                ran.append(store.engine.run_ticks())

            await store.transact(advance, optimistic=True)
            assert ran[0] == 0, "the first attempt knew of the job: nothing was tested"
            assert ran[-1] > 0
            assert store.counts()["conflicts"] == 1

    asyncio.run(asyncio.wait_for(test(), 60))


@pytest.mark.parametrize(
    ("listing", "own_write_in"),
    [
        (lambda jobs: in_partition(jobs, ACME_WORKSPACE, workspace_of), ACME_WORKSPACE),
        (lambda jobs: list(jobs), ACME_WORKSPACE),
        (lambda jobs: in_partition(jobs, ACME_WORKSPACE, workspace_of), GLOBEX_WORKSPACE),
    ],
    ids=["partition-after-own-write-there", "store-after-own-write", "partition-own-elsewhere"],
)
def test_a_listing_is_refused_when_another_worker_wrote_there_before_this_ones_own_write(
    redis_url: str, listing: Callable[[Any], object], own_write_in: str
) -> None:
    """A store or partition is written without being read: worker B creates a job in acme and
    commits; worker A, which began before B's commit, creates one too (C), and while C is on its
    way lists acme (S). C lands after B's commit, so the newest write in acme is A's own, which
    S ran after; S must still be refused, for B's job is not in what it listed."""

    async def test() -> bool:
        async with two_workers(redis_url) as (first, second, a, _):
            await create_job(a)
            stores = [app.state.store for app in (first, second)]
            for store in stores:
                await store.enter()
            # Ids of their own: the tests of this module share one redis-server.
            tag = uuid.uuid4().hex
            _new_job_in(first.state.world.auvy.jobs, f"job_c_{tag}", own_write_in)
            _new_job_in(second.state.world.auvy.jobs, f"job_b_{tag}", ACME_WORKSPACE)
            assert await stores[1].leave()
            own = asyncio.create_task(stores[0].leave())
            await stores[0].enter(optimistic=True, safe=True)
            assert stores[0]._speculating, "S must run while C is on its way"
            listing(first.state.world.auvy.jobs)
            landed: bool = await stores[0].leave()
            assert await own, "C touches nothing B wrote: it lands"
            return landed

    assert asyncio.run(asyncio.wait_for(test(), 60)) is False


def _new_job_in(jobs: Any, job_id: str, workspace: str) -> None:
    model = next(iter(jobs.untouched_values()))
    jobs[job_id] = dataclasses.replace(model, id=job_id, input={}, workspace_id=workspace)
