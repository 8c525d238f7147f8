"""RedisStreams against a real redis-server, and differentially against the in-memory streams.

The differential test is fakeredis's method turned around: the same generated operations (creates,
appends with a clock that moves on, stands still or goes back, reads after any id, trimming, TTL
expiry) go to `MemoryStreams` and to `RedisStreams`, and every result must be equal: ids, entries,
the truncation flag and where the retained window begins.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
import redis
import redis.asyncio as aioredis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mock_server.model.store import MemoryStreams
from mock_server.model.stream_id import StreamId
from mock_server.store.streams import RECLAIM_FLOOR_MS, RedisStreams

_prefixes = itertools.count()


@pytest.fixture
def client(redis_client: redis.Redis) -> Iterator[redis.Redis]:
    yield redis_client


def stores(
    client: redis.Redis, maxlen: int | None, ttl_ms: int | None, *, batched: bool = False
) -> tuple[MemoryStreams, RedisStreams]:
    # A fresh prefix per example keeps hypothesis's examples apart without a FLUSHDB each time.
    prefix = f"t{next(_prefixes)}:"
    return MemoryStreams(maxlen=maxlen, ttl_ms=ttl_ms), RedisStreams(
        client, prefix, maxlen=maxlen, ttl_ms=ttl_ms, batching=(lambda: True) if batched else None
    )


def test_ids_are_server_ids_that_keep_increasing_when_the_clock_goes_back(
    client: redis.Redis,
) -> None:
    _, streams = stores(client, None, None)
    ids = [streams.append("j", {"n": n}, now) for n, now in enumerate([1000, 1000, 900, 2000])]
    assert [i.encode() for i in ids] == ["1000-0", "1000-1", "1000-2", "2000-0"]
    assert client.xlen(streams.prefix + "j") == 4


def test_a_read_after_a_trimmed_id_is_truncated_and_resumes_at_the_oldest(
    client: redis.Redis,
) -> None:
    _, streams = stores(client, 2, None)
    ids = [streams.append("j", {"n": n}, 10 + n) for n in range(4)]
    result = streams.read_after("j", ids[0], 20)
    assert result.truncated
    assert [e.data for e in result.entries] == [{"n": 2}, {"n": 3}]
    assert result.first_retained == ids[2]
    assert not streams.read_after("j", ids[2], 20).truncated


@pytest.mark.parametrize("count", [None, 5])
def test_a_read_after_the_greatest_id_finds_nothing_as_in_memory(
    client: redis.Redis, count: int | None
) -> None:
    """`after=18446744073709551615-18446744073709551615` is a valid id (a client may send it):
    nothing follows it. An XRANGE from just after it is an error in Redis, which answered a
    stream request with a 500 (found by schemathesis through the balancer)."""
    memory, streams = stores(client, None, None)
    for store in (memory, streams):
        store.append("j", {"n": 0}, 1000)
    greatest = StreamId.parse("18446744073709551615-18446744073709551615")
    assert streams.read_after("j", greatest, 1000, count) == memory.read_after(
        "j", greatest, 1000, count
    )
    assert streams.read_after("j", greatest, 1000, count).entries == ()


def test_a_stream_expires_on_the_models_clock_and_redis_reclaims_it_later(
    client: redis.Redis,
) -> None:
    _, streams = stores(client, None, 1000)
    first = streams.append("j", {"n": 0}, 5000)
    # Reclaiming waits at least the floor of real time: a manual clock may stand still meanwhile.
    assert RECLAIM_FLOOR_MS - 60_000 < client.pttl(streams.prefix + "j") <= RECLAIM_FLOOR_MS
    expired = streams.read_after("j", first, 6000)
    assert expired.entries == () and expired.first_retained is None
    assert streams.read_after("j", StreamId(0, 1), 6000).truncated
    again = streams.append("j", {"n": 1}, 6000)
    assert again > first


def test_clear_removes_only_this_stores_keys(client: redis.Redis) -> None:
    _, mine = stores(client, None, None)
    _, other = stores(client, None, None)
    mine.append("a", {}, 1)
    other.append("a", {}, 1)
    mine.clear()
    assert mine.read_after("a", None, 1).entries == ()
    assert len(other.read_after("a", None, 1).entries) == 1


# -- differential ----------------------------------------------------------------------------------

KEYS = ("a", "b")


@dataclass(frozen=True)
class Create:
    key: str


@dataclass(frozen=True)
class Append:
    key: str
    n: int


@dataclass(frozen=True)
class Read:
    key: str
    # An index into the ids seen so far (None: read from the start), nudged to hit ids that were
    # never issued on either side of real ones.
    pick: int | None
    nudge: int
    count: int | None


@dataclass(frozen=True)
class Commit:
    """A section's end: a batched store writes what it queued (a direct one has nothing)."""


@dataclass(frozen=True)
class Tick:
    ms: int  # may be 0 (the clock stands still) or negative (it goes back)


operations = st.one_of(
    st.builds(Create, st.sampled_from(KEYS)),
    st.builds(Append, st.sampled_from(KEYS), st.integers(0, 1000)),
    st.builds(Append, st.sampled_from(KEYS), st.integers(0, 1000)),
    st.builds(
        Read,
        st.sampled_from(KEYS),
        st.none() | st.integers(0, 50),
        st.integers(-1, 1),
        st.none() | st.integers(1, 4),
    ),
    st.builds(Tick, st.integers(-30, 60) | st.sampled_from([0, 0, 500])),
    st.builds(Commit),
)


def nudged(ident: StreamId, nudge: int) -> StreamId:
    if nudge < 0 and ident.seq > 0:
        return StreamId(ident.ms, ident.seq - 1)
    if nudge > 0:
        return StreamId(ident.ms, ident.seq + 1)
    return ident


@settings(
    max_examples=200,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    maxlen=st.none() | st.integers(0, 4),
    ttl_ms=st.none() | st.integers(1, 200),
    start_ms=st.integers(0, 3) | st.integers(1_767_225_600_000, 1_767_225_600_100),
    ops=st.lists(operations, max_size=40),
    batched=st.booleans(),
)
def test_redis_streams_behave_like_the_in_memory_streams(
    client: redis.Redis,
    maxlen: int | None,
    ttl_ms: int | None,
    start_ms: int,
    ops: list[Create | Append | Read | Tick | Commit],
    batched: bool,
) -> None:
    """Batched, the store works on in-memory copies between commits: the ids it hands out, what
    it reads back before and after committing, must all be what one in-memory store gives."""
    memory, real = stores(client, maxlen, ttl_ms, batched=batched)
    now = start_ms
    seen: list[StreamId] = []
    for op in [*ops, Commit()]:
        if isinstance(op, Commit):
            assert real.commit()
            for key in KEYS:  # what Redis now holds, read directly
                assert RedisStreams(client, real.prefix, maxlen=maxlen, ttl_ms=ttl_ms).read_after(
                    key, None, now
                ) == memory.read_after(key, None, now), op
        elif isinstance(op, Tick):
            now = max(0, now + op.ms)
        elif isinstance(op, Create):
            memory.create(op.key, now)
            real.create(op.key, now)
        elif isinstance(op, Append):
            data = {"n": op.n, "key": op.key}
            expected = memory.append(op.key, data, now)
            assert real.append(op.key, data, now) == expected, op
            seen.append(expected)
        else:
            after = None
            if op.pick is not None and seen:
                after = nudged(seen[op.pick % len(seen)], op.nudge)
            expected_read = memory.read_after(op.key, after, now, op.count)
            assert real.read_after(op.key, after, now, op.count) == expected_read, (op, after)


def test_real_time_passing_under_a_still_manual_clock_keeps_the_stream(
    client: redis.Redis,
) -> None:
    # The model's TTL is 50 ms but its clock stands still; Redis must not reclaim the stream
    # because 200 ms of real time went by.
    _, streams = stores(client, None, 50)
    first = streams.append("j", {"n": 0}, 5000)
    time.sleep(0.2)
    second = streams.append("j", {"n": 1}, 5000)
    assert second == StreamId(first.ms, first.seq + 1)
    assert [e.id for e in streams.read_after("j", None, 5000).entries] == [first, second]


def test_a_batched_commit_is_refused_whole_when_a_stream_moved_under_it(
    client: redis.Redis,
) -> None:
    _, direct = stores(client, None, None)
    batched = RedisStreams(client, direct.prefix, maxlen=None, ttl_ms=None, batching=lambda: True)
    first = direct.append("a", {"n": 0}, 100)
    batched.append("b", {"n": 1}, 100)
    queued = batched.append("a", {"n": 1}, 100)
    assert queued == StreamId(100, 1)
    assert direct.read_after("a", None, 100).entries[-1].id == first  # nothing written yet
    racing = direct.append("a", {"n": 2}, 100)  # another writer got there first
    assert not batched.commit()
    assert [e.data for e in direct.read_after("a", None, 100).entries] == [{"n": 0}, {"n": 2}]
    assert direct.read_after("a", None, 100).entries[-1].id == racing
    assert direct.read_after("b", None, 100).entries == ()  # the other stream was not written


def prefetching_store(
    redis_url: str, client: redis.Redis, prefix: str
) -> tuple[aioredis.Redis, RedisStreams, list[str]]:
    """A store that prefetches with an async client, and the list its blocking reads go to."""
    aio = aioredis.Redis.from_url(redis_url)
    store = RedisStreams(client, prefix, maxlen=None, ttl_ms=None, aio=aio)
    blocking: list[str] = []
    sync_read = store._read

    def counted(*args: Any, **kwargs: Any) -> Any:
        blocking.append("read")
        return sync_read(*args, **kwargs)

    store._read = counted  # type: ignore[assignment]
    return aio, store, blocking


def test_a_prefetched_read_answers_without_blocking_and_is_shared_until_the_stream_changes(
    redis_url: str, client: redis.Redis
) -> None:
    async def test() -> None:
        aio, store, blocking = prefetching_store(redis_url, client, "pf:")
        first = store.append("s", {"n": 1}, 1_000)
        fetches: list[int] = []
        fetch = store._fetch

        async def counted_fetch(*args: Any) -> Any:
            fetches.append(1)
            return await fetch(*args)

        store._fetch = counted_fetch  # type: ignore[method-assign,assignment]
        # Ten readers at one cursor, woken together: one fetch, and no blocking read.
        await asyncio.gather(*(store.prefetch("s", None, 1_000) for _ in range(10)))
        assert len(fetches) == 1
        for _ in range(10):
            assert [e.data for e in store.read_after("s", None, 1_000).entries] == [{"n": 1}]
        assert blocking == []
        # A change makes what was fetched stale: the next read does not answer from it.
        store.append("s", {"n": 2}, 1_001)
        store.changed("s")
        assert len(store.read_after("s", None, 1_001).entries) == 2
        assert blocking == ["read"]
        # A fetch in flight when the stream changes is not kept.
        pending = asyncio.create_task(store.prefetch("s", first, 1_001))
        await asyncio.sleep(0)
        store.append("s", {"n": 3}, 1_002)
        store.changed("s")
        await pending
        assert [e.data for e in store.read_after("s", first, 1_002).entries] == [
            {"n": 2},
            {"n": 3},
        ]
        await aio.aclose()

    asyncio.run(asyncio.wait_for(test(), 30))


def test_a_reader_reads_what_it_prefetched_even_when_the_stream_changed_meanwhile(
    redis_url: str, client: redis.Redis
) -> None:
    """Its fetch is not kept for other readers (it may lack the change), but the reader that
    fetched uses it rather than block on a round trip: the change woke that reader, which reads
    again."""

    async def test() -> None:
        aio, store, blocking = prefetching_store(redis_url, client, "pf2:")
        store.append("s", {"n": 1}, 1_000)
        fetch = store._fetch

        async def fetch_then_change(*args: Any) -> Any:
            result = await fetch(*args)
            store.append("s", {"n": 2}, 1_001)
            store.changed("s")  # the feed names the stream while the fetch was on its way
            return result

        store._fetch = fetch_then_change  # type: ignore[method-assign,assignment]
        await store.prefetch("s", None, 1_001)
        assert [e.data for e in store.read_after("s", None, 1_001).entries] == [{"n": 1}]
        assert blocking == []

        async def another_reader() -> list[Any]:
            return [e.data for e in store.read_after("s", None, 1_001).entries]

        # Not shared: another task reading at that cursor reads Redis, and sees the change.
        assert await asyncio.create_task(another_reader()) == [{"n": 1}, {"n": 2}]
        assert blocking == ["read"]
        # Handed over once: the same reader's next read reads again.
        assert len(store.read_after("s", None, 1_001).entries) == 2
        await aio.aclose()

    asyncio.run(asyncio.wait_for(test(), 30))


@contextlib.asynccontextmanager
async def deferring(
    redis_url: str, client: redis.Redis, prefix: str, *, version: int | None = None
) -> AsyncIterator[tuple[RedisStreams, RedisStreams, list[str]]]:
    """A store inside a section whose runner runs it again (so it never blocks on Redis), one
    writing the same streams at once (another worker), and the list the first's blocking loads
    go to; `version`: the world's version, as the loads read it."""
    if version is not None:
        client.hset(prefix + "world", "v", version)
    aio = aioredis.Redis.from_url(redis_url)
    store = RedisStreams(
        client,
        prefix,
        maxlen=None,
        ttl_ms=None,
        batching=lambda: True,
        deferring=lambda: True,
        aio=aio,
        world_key=prefix + "world",
    )
    blocking: list[str] = []
    pipeline = store.client.pipeline

    def counted(*args: Any, **kwargs: Any) -> Any:
        blocking.append("pipeline")
        return pipeline(*args, **kwargs)

    store.client.pipeline = counted  # type: ignore[method-assign]
    try:
        yield store, RedisStreams(client, prefix, maxlen=None, ttl_ms=None), blocking
    finally:
        await aio.aclose()


def test_a_section_lacking_a_stream_runs_on_a_stand_in_and_the_copy_is_loaded_without_blocking(
    redis_url: str, client: redis.Redis
) -> None:
    async def test() -> None:
        async with deferring(redis_url, client, "df:", version=7) as (store, direct, blocking):
            direct.append("s", {"n": 1}, 1_000)
            # The section's first run: a stand-in, empty, and noted; nothing waited on Redis.
            assert store.read_after("s", None, 1_000).entries == ()
            stand_in_id = store.append("s", {"n": 2}, 1_001)
            assert store.missing == {"s"}
            assert store.take_missing() == ["s"] and store.missing == set()
            assert store.discard() == [], "a stand-in is neither kept nor loaded again"
            assert store._local_copy("s") is None
            await store.load(["s"])
            assert blocking == []
            # The run again: the real stream, and the append follows its last entry.
            assert [e.data for e in store.read_after("s", None, 1_001).entries] == [{"n": 1}]
            appended = store.append("s", {"n": 2}, 1_001)
            assert appended == StreamId(1_001, 0) and appended == stand_in_id
            assert store.missing == set()
            assert store.commit()
            assert [e.data for e in direct.read_after("s", None, 1_001).entries] == [
                {"n": 1},
                {"n": 2},
            ]
            assert blocking == []

    asyncio.run(asyncio.wait_for(test(), 30))


def test_a_discarded_section_returns_the_copies_it_appended_to_for_loading_again(
    redis_url: str, client: redis.Redis
) -> None:
    async def test() -> None:
        async with deferring(redis_url, client, "df2:") as (store, direct, _):
            direct.append("held", {"n": 1}, 1_000)
            await store.load(["held"])
            store.append("held", {"n": 2}, 1_001)  # on the loaded copy
            store.create("fresh", 1_001)
            store.append("fresh", {"n": 1}, 1_001)
            store.append("lacked", {"n": 1}, 1_001)  # a stand-in
            assert sorted(store.take_missing()) == ["lacked"]
            assert store.discard() == ["held"]
            assert store._local_copy("held") is None, "the copy appended to is dropped"
            await store.load(["held", "lacked"])
            copy = store._local_copy("held")
            assert copy is not None
            assert [e.data for e in copy.read_after(None, 1_001).entries] == [{"n": 1}]
            assert "lacked" in store._cache, "known not to exist: no stand-in next time"

    asyncio.run(asyncio.wait_for(test(), 30))


def test_a_loaded_copy_outlives_the_news_of_a_change_it_already_holds(
    redis_url: str, client: redis.Redis
) -> None:
    """A copy `load` read at world version 9 holds every append committed up to 9: a later
    word that commit 9 appended does not drop it, one of commit 10 does."""

    async def test() -> None:
        async with deferring(redis_url, client, "df3:", version=9) as (store, direct, _):
            direct.append("s", {"n": 1}, 1_000)
            await store.load(["s"])
            store.read_after("s", None, 1_000)  # the section it was loaded for
            store.discard()
            store.forget(["s"], 9)
            assert store._local_copy("s") is not None
            store.forget(["s"], 10)
            assert store._local_copy("s") is None

    asyncio.run(asyncio.wait_for(test(), 30))


def test_a_copy_whose_stream_changed_while_it_was_loading_serves_sections_not_readers(
    redis_url: str, client: redis.Redis
) -> None:
    async def test() -> None:
        async with deferring(redis_url, client, "df4:") as (store, direct, blocking):
            direct.append("s", {"n": 1}, 1_000)
            loading = asyncio.create_task(store.load(["s"]))
            await asyncio.sleep(0)
            store.changed("s")  # the feed names it while the load is on its way
            await loading
            assert store._local_copy("s") is None, "readers outside a section fetch afresh"
            assert [e.data for e in store.read_after("s", None, 1_000).entries] == [{"n": 1}]
            assert store.missing == set() and blocking == []

    asyncio.run(asyncio.wait_for(test(), 30))


def test_a_stream_this_process_appends_to_on_the_way_is_not_loaded_under_its_commit(
    redis_url: str, client: redis.Redis
) -> None:
    """A section appended to J (its commit not sent yet); the next appended to J too and lacked
    K. Undone, it drops J; a load of J then could read Redis before the first commit lands and
    keep a copy without it for ever (found in review): J is left to be loaded once that commit
    has landed."""

    async def test() -> None:
        async with deferring(redis_url, client, "df5:", version=1) as (store, _, _):
            store.create("J", 1_000)
            store.append("J", {"n": 0}, 1_000)
            assert store.commit()
            store.append("J", {"n": "A"}, 1_001)
            first = object()
            queued = store.take(first)  # on its way
            store.append("J", {"n": "B"}, 1_002)  # on the first's copy
            store.read_after("K", None, 1_002)  # lacked: a stand-in
            missing, dropped = store.take_missing(), store.discard()
            assert (missing, dropped) == (["K"], ["J"])
            await store.load([*missing, *dropped])
            assert "J" not in store._cache, "loaded under a commit on its way"
            assert "K" in store._cache
            assert store._commit(args=[json.dumps(queued)])
            store.settle(first, True)
            await store.load(["J"])
            copy = store._local_copy("J")
            assert copy is not None
            assert [e.data for e in copy.read_after(None, 1_003).entries] == [{"n": 0}, {"n": "A"}]

    asyncio.run(asyncio.wait_for(test(), 30))


def test_a_copy_loaded_for_a_section_waits_for_it_whatever_the_feed_says_meanwhile(
    redis_url: str, client: redis.Redis
) -> None:
    """Another worker appending on and on would else have the copy dropped before the section
    that asked runs again, and that section doomed again and again: it gets the copy (stale,
    so readers outside sections fetch afresh, and its commit checks the stream)."""

    async def test() -> None:
        async with deferring(redis_url, client, "df6:", version=3) as (store, direct, _):
            direct.append("s", {"n": 1}, 1_000)
            await store.load(["s"])
            store.forget(["s"], 4)
            store.forget(["s"], 5)
            assert store._local_copy("s") is None, "a stale copy for readers"
            assert [e.data for e in store.read_after("s", None, 1_000).entries] == [{"n": 1}]
            assert store.missing == set()
            store.discard()  # that section used it: the next word of a change drops it
            store.forget(["s"], 6)
            assert "s" not in store._cache

    asyncio.run(asyncio.wait_for(test(), 30))


def test_a_stale_copy_serves_the_section_it_was_loaded_for_and_no_later_one(
    redis_url: str, client: redis.Redis
) -> None:
    """Kept stale, it would serve every later section without the other worker's entries (the
    news of them already spent), and nothing would check it (found in review)."""

    async def test() -> None:
        async with deferring(redis_url, client, "df7:", version=3) as (store, direct, _):
            direct.append("s", {"n": 1}, 1_000)
            await store.load(["s"])
            direct.append("s", {"n": 2}, 1_001)  # another worker's
            client.hset("df7:world", "v", 4)
            store.forget(["s"], 4)
            # The section it was loaded for reads it, as it was when the section asked.
            assert [e.data for e in store.read_after("s", None, 2_000).entries] == [{"n": 1}]
            store.take(object())
            # A later section lacks it again, and gets the stream as it now is.
            assert store.read_after("s", None, 2_000).entries == ()
            assert store.take_missing() == ["s"]
            store.discard()
            await store.load(["s"])
            got = [e.data for e in store.read_after("s", None, 2_000).entries]
            assert got == [{"n": 1}, {"n": 2}]

    asyncio.run(asyncio.wait_for(test(), 30))
