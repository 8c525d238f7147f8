"""The rest of the world is two documents, config and live (mock_server.store.snapshot.PARTS).

Job traffic rewrites the live one alone; and no object may be reachable from both, or loading
one document would leave the other pointing at a stale copy.
"""

from __future__ import annotations

import asyncio
import enum
from collections import deque
from typing import Any

import redis
from starlette.applications import Starlette

from mock_server.app import create_app
from mock_server.store.snapshot import PARTS

from .test_fencing import REFUSED_WRITES
from .test_shared import KEY, PREFIX, create_job, profile, running

ATOMS = (str, bytes, int, float, bool, type(None), enum.Enum)


def reachable(value: object, stop: set[int]) -> set[int]:
    """Ids of the mutable objects reachable from `value`, not entering the ones in `stop` (the
    objects every document refers to by name)."""
    seen: set[int] = set()
    stack = [value]
    while stack:
        obj = stack.pop()
        if isinstance(obj, ATOMS) or id(obj) in stop or id(obj) in seen:
            continue
        seen.add(id(obj))
        if isinstance(obj, dict):
            stack += [*obj.keys(), *obj.values()]
        elif isinstance(obj, list | tuple | set | frozenset | deque):
            stack += list(obj)
        elif hasattr(obj, "__dict__"):
            stack += list(vars(obj).values())
        elif hasattr(obj, "__slots__"):
            stack += [getattr(obj, name) for name in obj.__slots__ if hasattr(obj, name)]
    return {i for i in seen}


def shared_between_documents(app: Starlette) -> set[int]:
    snapshots = app.state.store._snapshots
    stop = set(snapshots._by_id)
    found: dict[str, set[int]] = {}
    for part in PARTS:
        state: Any = snapshots._state(part)
        found[part] = reachable(state, stop) - {id(state)}
        # The per-root dicts `_state` builds are new each call; only the world's objects count.
        found[part] -= {id(attrs) for attrs in state.values()}
    immutable_singletons = {id(()), id(frozenset())}
    return (found["live"] & found["config"]) - immutable_singletons


def test_job_traffic_rewrites_the_live_document_alone_and_shares_no_object_with_config(
    redis_url: str, redis_client: redis.Redis
) -> None:
    async def test() -> None:
        app = create_app(profile(), store=redis_url)
        async with running(app) as client:
            assert shared_between_documents(app) == set()
            config_at = redis_client.hget(PREFIX + "world", "cv")
            live_at = redis_client.hget(PREFIX + "world", "rv")
            job = await create_job(client)
            for write in REFUSED_WRITES:
                answer = await client.post(write.path, headers=write.headers, json=write.body)
                assert answer.status_code < 300, answer.text
            assert (await client.post("/_mock/clock/advance", json={"ms": 25})).is_success
            assert (await client.post(f"/auvy/v1/jobs/{job}/cancel", headers=KEY)).is_success
            assert shared_between_documents(app) == set()
            assert redis_client.hget(PREFIX + "world", "rv") != live_at
            assert redis_client.hget(PREFIX + "world", "cv") == config_at

    asyncio.run(asyncio.wait_for(test(), 60))
