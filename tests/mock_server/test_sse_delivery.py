"""`mock_server.sse.deliver` in process: what each reader is sent, wake-up by wake-up.

The real-server tests (test_sse.py) show what a client sees on the wire; these drive the
generator directly on a manual clock, so they can tell chunks apart, count encodings and check
the keepalive's timing without a socket.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncGenerator, Callable, Coroutine, Mapping
from typing import Any

import pytest

from mock_server import sse
from mock_server.clock import ManualClock
from mock_server.model.engine import Engine
from mock_server.model.stream import Entry, EventStream, ReadResult
from mock_server.model.stream_id import StreamId

KEY = "job_1"
LONG_S = 30.0  # a keepalive interval no test waits for


class Source:
    """One stream on a manual clock, read and appended as the API models do."""

    def __init__(self, *, maxlen: int | None = None) -> None:
        self.engine = Engine(ManualClock())
        self.stream = EventStream(self.engine.now(), maxlen=maxlen)
        self.finished = False

    def read(self, after: StreamId | None) -> ReadResult:
        return self.stream.read_after(after, self.engine.now())

    def append(self, *items: Mapping[str, object]) -> list[Entry]:
        """Append `items` in one model step: one notification for all of them."""
        entries = [self.stream.append(data, self.engine.clock.advance(1)) for data in items]
        self.engine.notify(KEY)
        return entries

    def deliver(
        self, *, after: StreamId | None = None, ping_s: float = LONG_S, with_ids: bool = True
    ) -> Reader:
        return Reader(self.frames(after=after, ping_s=ping_s, with_ids=with_ids))

    def frames(
        self, *, after: StreamId | None, ping_s: float, with_ids: bool
    ) -> AsyncGenerator[bytes, None]:
        return sse.deliver(
            self.engine,
            KEY,
            self.read,
            after=after,
            is_terminal_entry=lambda e: e.data.get("type") == "complete",
            is_finished=lambda: self.finished,
            ping_interval_s=ping_s,
            gap=lambda cursor, _: {"type": "truncated", "requested_after": cursor.encode()},
            with_ids=with_ids,
        )


class Reader:
    """A client of one `deliver` generator: its next chunk is awaited in a task of its own, so a
    test can look whether the reader waits without cancelling (and so ending) it."""

    def __init__(self, frames: AsyncGenerator[bytes, None]) -> None:
        self.frames = frames
        self.pending: asyncio.Task[bytes | None] | None = None

    async def _step(self) -> bytes | None:
        try:
            return await anext(self.frames)
        except StopAsyncIteration:
            return None

    def _next(self) -> asyncio.Task[bytes | None]:
        if self.pending is None:
            self.pending = asyncio.create_task(self._step())
        return self.pending

    async def idle(self) -> bool:
        """True when the reader has nothing to send now (it waits)."""
        task = self._next()
        await asyncio.sleep(0.01)
        return not task.done()

    async def take(self, timeout: float = 5.0) -> bytes | None:
        """The next chunk; None when the stream ended."""
        task = self._next()
        await asyncio.wait_for(asyncio.shield(task), timeout)
        self.pending = None
        return task.result()

    async def close(self) -> None:
        if self.pending is not None:
            self.pending.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.pending
        await self.frames.aclose()


def run(test: Callable[[], Coroutine[Any, Any, None]]) -> None:
    asyncio.run(test())


def frames_of(entries: list[Entry], *, with_ids: bool = True) -> bytes:
    return b"".join(sse.frame(e.data, e.id if with_ids else None) for e in entries)


# --- frames shared by the readers of one stream ----------------------------------------------


def test_a_shared_frame_is_exactly_what_frame_makes() -> None:
    entry = Entry(StreamId(17, 2), {"type": "token", "content": 'naïve \u2028 "q"\n', "n": 1.5})
    for with_ids in (True, False):
        frames = sse.SharedFrames(with_ids)
        expected = sse.frame(entry.data, entry.id if with_ids else None)
        assert frames.of(entry) == expected
        assert frames.of(entry) is frames.of(entry), "a second reader gets the same bytes"


def test_an_equal_but_other_entry_is_encoded_afresh() -> None:
    frames = sse.SharedFrames(True)
    first = Entry(StreamId(5, 0), {"type": "token", "content": "a"})
    other = Entry(StreamId(5, 0), {"type": "token", "content": "b"})  # same id, another stream
    assert frames.of(first) == sse.frame(first.data, first.id)
    assert frames.of(other) == sse.frame(other.data, other.id)


def test_the_cache_keeps_only_the_latest_entries() -> None:
    frames = sse.SharedFrames(True)
    entries = [Entry(StreamId(i, 0), {"i": i}) for i in range(1, 3 * sse.SharedFrames.LIMIT)]
    encoded = [frames.of(e) for e in entries]
    assert len(frames) == sse.SharedFrames.LIMIT
    assert frames.of(entries[-1]) is encoded[-1]
    assert frames.of(entries[0]) == encoded[0], "an evicted entry is encoded again, the same"


def test_readers_of_one_key_share_one_cache_until_the_last_leaves() -> None:
    a = sse.shared_frames("k-share", True)
    b = sse.shared_frames("k-share", True)
    bare = sse.shared_frames("k-share", False)
    assert a is b and a is not bare, "framing with and without ids is cached apart"
    sse.release_frames("k-share", a)
    assert sse._shared[("k-share", True)] is b, "one reader is left"
    sse.release_frames("k-share", b)
    sse.release_frames("k-share", bare)
    assert ("k-share", True) not in sse._shared
    assert ("k-share", False) not in sse._shared


def test_readers_of_one_job_get_identical_bytes_encoded_once(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    encoded: list[Mapping[str, object]] = []
    real = sse.frame

    def counting(data: Mapping[str, object], ident: StreamId | None = None) -> bytes:
        encoded.append(data)
        return real(data, ident)

    monkeypatch.setattr(sse, "frame", counting)

    async def scenario() -> None:
        src = Source()
        readers = [src.deliver() for _ in range(5)]
        for r in readers:
            assert await r.idle()
        entries = src.append({"type": "token", "content": "x"}, {"type": "state_update"})
        chunks = [await r.take() for r in readers]
        assert len(encoded) == 2, "each entry encoded once for all five readers"
        assert all(c == frames_of(entries) for c in chunks)
        for r in readers:
            await r.close()

    run(scenario)


# --- one wake-up, one chunk --------------------------------------------------------------------


def test_every_frame_of_one_wakeup_goes_out_as_one_chunk() -> None:
    async def scenario() -> None:
        src = Source()
        reader = src.deliver()
        assert await reader.idle()
        entries = src.append({"type": "token", "content": "a"}, {"type": "state_update", "n": 1})
        assert await reader.take() == frames_of(entries)
        more = src.append({"type": "token", "content": "b"})
        assert await reader.take() == frames_of(more)
        await reader.close()

    run(scenario)


def test_frames_without_ids() -> None:
    async def scenario() -> None:
        src = Source()
        reader = src.deliver(with_ids=False)
        assert await reader.idle()
        entries = src.append({"type": "chunk", "n": 1}, {"type": "chunk", "n": 2})
        chunk = await reader.take()
        assert chunk == frames_of(entries, with_ids=False)
        assert b"id:" not in chunk
        await reader.close()

    run(scenario)


def test_a_terminal_entry_ends_the_stream_and_nothing_after_it_is_sent() -> None:
    async def scenario() -> None:
        src = Source()
        reader = src.deliver()
        assert await reader.idle()
        entries = src.append({"type": "token"}, {"type": "complete"}, {"type": "token"})
        assert await reader.take() == frames_of(entries[:2])
        assert await reader.take() is None, "the stream ended"

    run(scenario)


def test_a_finished_source_ends_the_stream_once_a_read_finds_nothing() -> None:
    async def scenario() -> None:
        src = Source()
        entries = src.append({"type": "token"})
        src.finished = True
        assert (
            await Reader(src.frames(after=entries[0].id, ping_s=LONG_S, with_ids=True)).take()
            is None
        )
        # Without a terminal entry, the read after the next wake-up (here a keepalive) ends it.
        reader = src.deliver(ping_s=0.02)
        assert await reader.take() == frames_of(entries)
        assert await reader.take() == sse.PING
        assert await reader.take() is None, "the stream ended"

    run(scenario)


def test_an_empty_first_read_is_read_again_before_the_stream_ends() -> None:
    """A handler reads `first` before the response begins; when the job finishes in between,
    its last entries must still be sent: an empty read from before is no reason to end."""

    async def scenario() -> None:
        src = Source()
        seen = src.append({"type": "token"})
        first = src.read(seen[0].id)
        assert not first.entries
        last = src.append({"type": "token"}, {"type": "complete"})
        src.finished = True
        reader = Reader(
            sse.deliver(
                src.engine,
                KEY,
                src.read,
                after=seen[0].id,
                is_terminal_entry=lambda e: e.data.get("type") == "complete",
                is_finished=lambda: src.finished,
                ping_interval_s=LONG_S,
                first=first,
            )
        )
        assert await reader.take() == frames_of(last)
        assert await reader.take() is None, "the terminal entry ends the stream"

    run(scenario)


def test_after_resumes_exclusively() -> None:
    async def scenario() -> None:
        src = Source()
        entries = src.append({"n": 1}, {"n": 2}, {"n": 3})
        reader = src.deliver(after=StreamId.parse(entries[0].id.encode()))
        assert await reader.take() == frames_of(entries[1:])
        assert await reader.idle()
        await reader.close()

    run(scenario)


def test_the_gap_marker_leads_the_chunk_of_a_truncated_read() -> None:
    async def scenario() -> None:
        src = Source(maxlen=2)
        entries = src.append({"n": 1}, {"n": 2}, {"n": 3}, {"n": 4})
        reader = src.deliver(after=entries[0].id)
        marker = sse.frame({"type": "truncated", "requested_after": entries[0].id.encode()})
        assert await reader.take() == marker + frames_of(entries[2:])
        await reader.close()

    run(scenario)


def test_a_reader_leaving_unsubscribes_and_releases_the_cache() -> None:
    async def scenario() -> None:
        src = Source()
        reader = src.deliver()
        assert await reader.idle()
        assert src.engine.subscribers(KEY) == 1
        await reader.close()
        assert src.engine.subscribers(KEY) == 0
        assert (KEY, True) not in sse._shared

    run(scenario)


# --- the shared-store hook -------------------------------------------------------------------


def test_entries_are_judged_after_the_engine_caught_up() -> None:
    async def scenario() -> None:
        src = Source()
        calls: list[str] = []

        async def catch_up() -> None:
            calls.append("catch_up")

        def read(after: StreamId | None) -> ReadResult:
            calls.append("read")
            return src.read(after)

        def terminal(_: Entry) -> bool:
            calls.append("judge")
            return False

        src.engine.catch_up = catch_up
        reader = Reader(
            sse.deliver(
                src.engine,
                KEY,
                read,
                after=None,
                is_terminal_entry=terminal,
                is_finished=lambda: False,
                ping_interval_s=LONG_S,
            )
        )
        assert await reader.idle()
        assert calls == ["read"], "an empty read of a live job needs no catching up"
        entries = src.append({"n": 1})
        assert await reader.take() == frames_of(entries)
        assert calls == ["read", "read", "catch_up", "judge"]
        await reader.close()

    run(scenario)


def test_a_finished_job_with_nothing_read_is_read_again_after_catching_up() -> None:
    """The commit that finished the job may have landed after the read: its entries must be
    read with the caught-up model, not dropped by ending on an empty read."""

    async def scenario() -> None:
        src = Source()
        calls: list[str] = []
        done = False

        async def catch_up() -> None:
            nonlocal done
            calls.append("catch_up")
            src.append({"type": "end"})  # what the other worker committed meanwhile
            done = True

        def read(after: StreamId | None) -> ReadResult:
            calls.append("read")
            return src.read(after)

        src.engine.catch_up = catch_up
        reader = Reader(
            sse.deliver(
                src.engine,
                KEY,
                read,
                after=None,
                is_terminal_entry=lambda entry: entry.data.get("type") == "end",
                is_finished=lambda: True,
                ping_interval_s=LONG_S,
            )
        )
        frames = await reader.take()
        assert frames is not None and b"end" in frames
        assert await reader.take() is None, "the terminal entry ends the stream"
        assert calls == ["read", "catch_up", "read"]
        assert done
        await reader.close()

    run(scenario)


# --- keepalive --------------------------------------------------------------------------------


def test_a_quiet_stream_gets_a_ping_after_the_interval() -> None:
    async def scenario() -> None:
        src = Source()
        reader = src.deliver(ping_s=0.05)
        began = time.monotonic()
        assert await reader.take() == sse.PING
        assert time.monotonic() - began >= 0.045
        began = time.monotonic()
        assert await reader.take() == sse.PING, "and again after each further interval"
        assert time.monotonic() - began >= 0.045
        await reader.close()

    run(scenario)


def test_a_change_restarts_the_keepalive_interval() -> None:
    async def scenario() -> None:
        src = Source()
        reader = src.deliver(ping_s=0.2)
        assert await reader.idle()
        await asyncio.sleep(0.15)
        entries = src.append({"n": 1})
        assert await reader.take() == frames_of(entries)
        changed_at = time.monotonic()
        assert await reader.take() == sse.PING
        assert time.monotonic() - changed_at >= 0.19, "the ping counts from the last change"
        await reader.close()

    run(scenario)


def test_the_ping_text_is_the_callers() -> None:
    async def scenario() -> None:
        src = Source()
        reader = Reader(
            sse.deliver(
                src.engine,
                KEY,
                src.read,
                after=None,
                is_terminal_entry=lambda _: False,
                is_finished=lambda: False,
                ping_interval_s=0.02,
                ping=b": keepalive\n\n",
            )
        )
        assert await reader.take() == b": keepalive\n\n"
        await reader.close()

    run(scenario)


def test_wakeup_reports_a_change_or_the_interval() -> None:
    async def scenario() -> None:
        wakeup = sse.Wakeup(0.03)
        waiter = wakeup.wait()
        wakeup.set()
        assert await waiter is True
        assert wakeup.changed
        began = time.monotonic()
        assert await wakeup.wait() is False
        assert time.monotonic() - began >= 0.025
        wakeup.set()
        wakeup.set()  # nobody waits: only the flag says it
        wakeup.close()

    run(scenario)


def test_a_cancelled_wait_leaves_no_timer() -> None:
    async def scenario() -> None:
        wakeup = sse.Wakeup(LONG_S)
        waiter = wakeup.wait()
        waiter.cancel()
        wakeup.set()  # a change after the reader went away is ignored
        wakeup.close()
        assert wakeup._timer is None

    run(scenario)
