"""The store's lines to Redis (line.py, checks.py): a read's check when Redis lost the script,
answers nothing, or is gone; a commit cut off; raw replies in either protocol."""

from __future__ import annotations

import asyncio
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
import redis

from mock_server.app import create_app
from mock_server.errors import Unavailable
from mock_server.store import checks, shared
from mock_server.store.checks import ReadChecks, ReadSet
from mock_server.store.line import Line, Replies
from mock_server.store.shared import feed_entries

from .test_shared import KEY, create_job, profile, running

# Answers 1 for every read it is given, and Redis's TIME.
ALL_HOLD = """
local t = redis.call('TIME')
local out = {t[1], t[2]}
for _ = 1, tonumber(ARGV[1]) do out[#out + 1] = 1 end
return out
"""


def read(version: int = 1) -> ReadSet:
    return ReadSet(version, [], ["auvy.jobs\njob-1"])


def checks_on(url: str, stale: list[ReadSet] | None = None) -> ReadChecks:
    found = [] if stale is None else stale
    return ReadChecks(url, ALL_HOLD, [], heard=lambda *_: None, stale=found.append)


@contextmanager
def silent_server() -> Iterator[str]:
    """A TCP server on loopback that takes connections and never answers."""
    listener = socket.create_server(("127.0.0.1", 0))
    held: list[socket.socket] = []

    def accept() -> None:
        while True:
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            held.append(conn)

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield f"redis://127.0.0.1:{listener.getsockname()[1]}/0"
    finally:
        listener.close()
        for conn in held:
            conn.close()
        thread.join(timeout=5)


ECHO = "return ARGV[1]"
FAIL_ON_X = "if ARGV[1] == 'x' then return redis.error_reply('ERR told to') end return ARGV[1]"


def test_pipelined_replies_come_in_order_and_an_error_reply_fails_only_its_call(
    redis_url: str,
) -> None:
    async def test() -> None:
        line = Line(redis_url)
        replies = Replies(line, asyncio.get_running_loop(), 5)
        try:
            await line.load(FAIL_ON_X)
            for arg in ("a", "x", "b"):
                await line.send_script(FAIL_ON_X, [], [arg])
                replies.expect()
            assert await replies.next() == b"a"
            with pytest.raises(redis.ResponseError, match="told to"):
                await replies.next()
            assert await replies.next() == b"b"
            # The line reads on after an error reply: a later call is answered too.
            assert await line.call("PING", deadline_s=5) in (b"PONG", "PONG", True)
        finally:
            replies.cancel()
            await line.close()

    asyncio.run(asyncio.wait_for(test(), 30))


def test_waiting_for_a_reply_or_for_more_wakes_for_whichever_comes_first(redis_url: str) -> None:
    async def test() -> None:
        line = Line(redis_url)
        replies = Replies(line, asyncio.get_running_loop(), 5)
        more = asyncio.Event()
        try:
            await line.load(ECHO)
            asyncio.get_running_loop().call_later(0.05, more.set)
            assert not await replies.next_or(more), "nothing was sent: only `more` wakes it"
            more.clear()
            await line.send_script(ECHO, [], ["r"])
            replies.expect()
            assert await replies.next_or(more), "the reply woke it"
            assert await replies.next() == b"r"
            with pytest.raises(RuntimeError, match="no reply is due"):
                await replies.next()
        finally:
            replies.cancel()
            await line.close()

    asyncio.run(asyncio.wait_for(test(), 30))


def test_replies_due_from_a_redis_that_does_not_answer_fail_at_the_deadline(
    redis_url: str, redis_client: redis.Redis
) -> None:
    async def test() -> None:
        line = Line(redis_url)
        replies = Replies(line, asyncio.get_running_loop(), 0.2)
        try:
            await line.load(ECHO, deadline_s=5)
            redis_client.client_pause(1500, all=True)
            for arg in ("a", "b"):
                await line.send_script(ECHO, [], [arg])
                replies.expect()
            with pytest.raises(TimeoutError):
                await replies.next()
            # The line dropped its connection: the second reply is lost, not awaited.
            with pytest.raises(RuntimeError, match="no reply is due"):
                await replies.next()
        finally:
            redis_client.client_unpause()
            replies.cancel()
            await line.close()

    asyncio.run(asyncio.wait_for(test(), 30))


def test_a_script_redis_lost_is_loaded_again(redis_url: str, redis_client: redis.Redis) -> None:
    async def test() -> None:
        line = checks_on(redis_url)
        try:
            assert await line.check(read())
            redis_client.script_flush()
            assert await line.check(read())
        finally:
            await line.close()

    asyncio.run(asyncio.wait_for(test(), 30))


def test_a_commit_redis_ran_nothing_of_for_want_of_its_script_runs_again(
    redis_url: str, redis_client: redis.Redis
) -> None:
    """A commit call answered NOSCRIPT (Redis restarted or SCRIPT FLUSH) wrote nothing: its
    sections run again once the script is loaded, and the client sees one answer."""

    async def test() -> None:
        app = create_app(profile(), store=redis_url)
        async with running(app) as a:
            await create_job(a)
            store = app.state.store
            redis_client.script_flush()
            before = store.counts()["cascades"]
            job_id = await create_job(a)
            assert store.counts()["cascades"] == before + 1, "the call ran nothing: run again"
            assert redis_client.hexists("mock_server:records:auvy.jobs", job_id)
            got = await a.get(f"/auvy/v1/jobs/{job_id}/status", headers=KEY)
            assert got.status_code == 200 and got.json()["status"] == "pending", got.text

    asyncio.run(asyncio.wait_for(test(), 30))


def test_reads_whose_call_gets_no_answer_fail_unavailable_at_the_deadline(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(checks, "ANSWER_WAIT_S", 0.3)

    async def test() -> None:
        with silent_server() as url:
            line = checks_on(url)
            try:
                results = await asyncio.gather(
                    line.check(read()), line.check(read()), return_exceptions=True
                )
                assert all(isinstance(r, Unavailable) for r in results), results
                assert "did not answer within 0.3 s" in str(results[0])
            finally:
                await line.close()

    asyncio.run(asyncio.wait_for(test(), 30))


def test_reads_fail_unavailable_when_redis_is_gone() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]  # nothing listens here once closed

    async def test() -> None:
        line = checks_on(f"redis://127.0.0.1:{port}/0")
        try:
            with pytest.raises(Unavailable, match="the store's Redis did not answer"):
                await line.check(read())
        finally:
            await line.close()

    asyncio.run(asyncio.wait_for(test(), 30))


def test_a_read_whose_check_cannot_reach_redis_is_a_503_in_the_apis_envelope(
    redis_url: str, redis_client: redis.Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def test() -> None:
        app = create_app(profile(), store=redis_url)
        async with running(app) as a:
            job_id = await create_job(a)
            store = app.state.store

            async def gone(_: ReadSet) -> bool:
                raise checks._unavailable(ConnectionError("Connection refused"))

            monkeypatch.setattr(store._checks, "check", gone)
            got = await a.get(f"/auvy/v1/jobs/{job_id}/status", headers=KEY)
            assert got.status_code == 503, got.text
            assert got.headers["retry-after"] == "1"
            assert got.json()["code"] == "INTERNAL_SERVER_ERROR", got.text

    asyncio.run(asyncio.wait_for(test(), 30))


@pytest.mark.parametrize("protocol", [2, 3])
def test_the_change_feed_reads_raw_xread_replies_in_either_protocol(
    redis_url: str, redis_client: redis.Redis, protocol: int
) -> None:
    async def test() -> list[tuple[bytes, dict[bytes, bytes]]]:
        line = Line(f"{redis_url}?protocol={protocol}")
        try:
            await line.call("XADD", "feed", "1-1", "w", "a", "v", "7")
            await line.call("XADD", "feed", "1-2", "w", "b", "v", "8")
            answer = await line.call("XREAD", "COUNT", 10, "STREAMS", "feed", "0")
            empty = await line.call("XREAD", "COUNT", 10, "BLOCK", 10, "STREAMS", "feed", "$")
            assert list(feed_entries(empty)) == []
            return list(feed_entries(answer))
        finally:
            await line.close()

    assert asyncio.run(asyncio.wait_for(test(), 30)) == [
        (b"1-1", {b"w": b"a", b"v": b"7"}),
        (b"1-2", {b"w": b"b", b"v": b"8"}),
    ]


def test_a_commit_redis_does_not_answer_is_a_503_and_the_next_request_reloads_the_world(
    redis_url: str, redis_client: redis.Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Whether such a commit landed is unknown: the worker answers 503 in the API's envelope
    and loads the whole world Redis holds before its next section."""

    async def test() -> None:
        app = create_app(profile(), store=redis_url)
        async with running(app) as a:
            job_id = await create_job(a)
            store = app.state.store
            line = store._section_line
            send = line.send_script

            async def cut_off(text: str, keys: list[str], args: list[object]) -> None:
                if text == shared._COMMIT:
                    raise redis.ConnectionError("Connection reset by peer")
                await send(text, keys, args)

            monkeypatch.setattr(line, "send_script", cut_off)
            cancelled = await a.post(f"/auvy/v1/jobs/{job_id}/cancel", headers=KEY)
            assert cancelled.status_code == 503, cancelled.text
            assert cancelled.json()["code"] == "INTERNAL_SERVER_ERROR"
            assert store._lost, "the next section reloads the whole world"
            monkeypatch.setattr(line, "send_script", send)
            got = await a.get(f"/auvy/v1/jobs/{job_id}/status", headers=KEY)
            assert got.status_code == 200 and got.json()["status"] == "pending", got.text
            assert store.version > 0

    asyncio.run(asyncio.wait_for(test(), 30))
