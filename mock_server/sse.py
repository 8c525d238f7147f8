"""Event-stream framing and delivery: entries to `id:`/`data:` frames, keepalives, end on terminal.

Delivery waits on the engine's change notifications rather than polling, and sends a `: ping`
comment when nothing happened for the keepalive interval (real seconds: keepalives are about the
connection, not the emulated clock).

Fan-out is the expensive case (one job, many readers, an append every few ms), so a wake-up does
as little per reader as it can: the frames of one entry are encoded once for every reader of its
stream (`SharedFrames`), all frames of one wake-up go out as one chunk (one socket write, one pass
through the ASGI send chain), and the wait is a bare future with a keepalive timer that is only
moved when it fires, instead of a task and a timer per wait (`asyncio.wait_for`).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncGenerator, Callable, Mapping
from typing import Final

from .model.engine import Engine
from .model.stream import Entry, ReadResult
from .model.stream_id import StreamId

HEADERS = {
    "Cache-Control": "no-cache",
    "X-Accel-Buffering": "no",
    "Connection": "keep-alive",
}


def frame(data: Mapping[str, object], ident: StreamId | None = None) -> bytes:
    body = json.dumps(data, separators=(",", ":"), ensure_ascii=False)
    # json.dumps never emits raw newlines, so one data: line always carries the whole payload.
    head = f"id: {ident.encode()}\n" if ident is not None else ""
    return f"{head}data: {body}\n\n".encode()


PING = b": ping\n\n"


class SharedFrames:
    """The encoded frames of a stream's latest entries, for every reader of that stream.

    Readers of one job wake on the same append and read the same `Entry` objects, so the first
    one encodes and the others reuse its bytes. A hit needs the very same object (not an equal
    one): a frame is then certainly what `frame` would make of it, whichever world or store it
    came from, and a store that builds entries afresh on each read simply never hits. Holding
    the entry also pins its `id()`, the key, for as long as it is cached. Bounded: live readers
    only ever need the latest few, and a reader replaying a backlog must not grow it.
    """

    LIMIT: Final = 64

    __slots__ = ("_recent", "readers", "with_ids")

    def __init__(self, with_ids: bool) -> None:
        self.with_ids = with_ids
        self.readers = 0
        self._recent: dict[int, tuple[Entry, bytes]] = {}

    def of(self, entry: Entry) -> bytes:
        recent = self._recent
        hit = recent.get(id(entry))
        if hit is not None and hit[0] is entry:
            return hit[1]
        encoded = frame(entry.data, entry.id if self.with_ids else None)
        if len(recent) >= self.LIMIT:
            # Dicts keep insertion order: the first key is the oldest entry cached.
            del recent[next(iter(recent))]
        recent[id(entry)] = (entry, encoded)
        return encoded

    def __len__(self) -> int:
        return len(self._recent)


# By stream key and framing; an entry lives only while some reader of its key is connected.
_shared: dict[tuple[str, bool], SharedFrames] = {}


def shared_frames(key: str, with_ids: bool) -> SharedFrames:
    """The cache of `key`'s readers, counting one more reader; `release_frames` when done."""
    frames = _shared.get((key, with_ids))
    if frames is None:
        frames = _shared[(key, with_ids)] = SharedFrames(with_ids)
    frames.readers += 1
    return frames


def release_frames(key: str, frames: SharedFrames) -> None:
    frames.readers -= 1
    if frames.readers <= 0 and _shared.get((key, frames.with_ids)) is frames:
        del _shared[(key, frames.with_ids)]


class Wakeup:
    """What a reader waits for: a change of its key, or the keepalive interval without one.

    `set` is the engine listener. The keepalive timer outlives a wait: a change only moves the
    start of the interval, and the timer, when it fires early for the current wait, re-arms
    itself once for the right time. So a busy stream costs a timer per interval, not per wait.
    """

    # uvloop's timers have millisecond granularity and may fire that much before their time;
    # re-arming for less than this would only spin.
    SLACK_S: Final = 0.001

    __slots__ = ("_interval", "_loop", "_since", "_timer", "_waiter", "changed")

    def __init__(self, interval_s: float) -> None:
        self._loop = asyncio.get_running_loop()
        self._interval = interval_s
        self._since = 0.0
        self._timer: asyncio.TimerHandle | None = None
        self._waiter: asyncio.Future[bool] | None = None
        self.changed = False

    def set(self) -> None:
        self.changed = True
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(True)

    def wait(self) -> asyncio.Future[bool]:
        """Resolves to True when the key changed, False when the interval passed without one.

        A bare future rather than a coroutine: every wait's objects are alive while it lasts,
        and what a thousand waiting readers hold is what the garbage collector keeps promoting.
        """
        loop = self._loop
        self._since = loop.time()
        if self._timer is None:
            self._timer = loop.call_at(self._since + self._interval, self._expire)
        waiter = self._waiter = loop.create_future()
        return waiter

    def _expire(self) -> None:
        self._timer = None
        waiter = self._waiter
        if waiter is None or waiter.done():
            return  # not waiting: the next wait arms a timer of its own
        due = self._since + self._interval
        if self._loop.time() + self.SLACK_S < due:
            self._timer = self._loop.call_at(due, self._expire)
        else:
            waiter.set_result(False)

    def close(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None


def _chunk(
    frames: SharedFrames,
    result: ReadResult,
    cursor: StreamId | None,
    gap: Callable[[StreamId, ReadResult], Mapping[str, object]] | None,
    is_terminal_entry: Callable[[Entry], bool],
) -> tuple[bytes, StreamId | None, bool]:
    """Every frame of one read as one chunk, the new cursor, and whether the stream ended."""
    parts: list[bytes] = []
    if gap is not None and result.truncated and cursor is not None:
        parts.append(frame(gap(cursor, result)))
    for entry in result.entries:
        parts.append(frames.of(entry))
        cursor = entry.id
        if is_terminal_entry(entry):
            return b"".join(parts), cursor, True
    return (parts[0] if len(parts) == 1 else b"".join(parts)), cursor, False


async def deliver(
    engine: Engine,
    key: str,
    read: Callable[[StreamId | None], ReadResult],
    *,
    after: StreamId | None,
    is_terminal_entry: Callable[[Entry], bool],
    is_finished: Callable[[], bool],
    ping_interval_s: float,
    first: ReadResult | None = None,
    gap: Callable[[StreamId, ReadResult], Mapping[str, object]] | None = None,
    ping: bytes = PING,
    with_ids: bool = True,
    stream: str | None = None,
) -> AsyncGenerator[bytes, None]:
    """Yield frames after `after` until a terminal entry was sent (or the source finished).

    Whenever a read finds that entries after the cursor were trimmed (a reader that fell more
    than the maximum length behind, or resumed too late), `gap` makes an id-less marker entry
    so the loss is visible instead of silent. Each yield carries every frame of one read.
    `stream` names the model's stream store that holds `key` ("auvy", "strait"): a shared store
    then fetches each read ahead without blocking the event loop (`Engine.prefetch`).
    """
    wakeup = Wakeup(ping_interval_s)
    unsubscribe = engine.subscribe(key, wakeup.set)
    frames = shared_frames(key, with_ids)
    if first is not None:
        # `first` was read before we subscribed: re-read once so nothing appended since is missed.
        wakeup.changed = True
    cursor = after
    try:
        # An empty `first` is not a read to end on: the source may have finished after it, with
        # entries it came too early for (the handler read it before the response began).
        result = first if first is not None and first.entries else None
        while True:
            if result is None:
                wakeup.changed = False
                engine.run_due()
                if stream is not None and engine.prefetch is not None:
                    # Under a shared store: the read below then answers from what this fetched
                    # without blocking, and the readers of one stream share one fetch.
                    await engine.prefetch(stream, key, cursor)
                result = read(cursor)
                if engine.catch_up is not None:
                    # Under a shared store, judge entries (is this one terminal?) or their absence
                    # (has the job finished?) only with a model at least as new as what Redis
                    # holds: other workers append, and this process's model may be in the middle
                    # of another request's section (see `Engine.catch_up`).
                    if result.entries:
                        await engine.catch_up()
                    elif is_finished():
                        # Finished by a commit whose entries the read before came too early for.
                        await engine.catch_up()
                        result = read(cursor)
            chunk, cursor, ended = _chunk(frames, result, cursor, gap, is_terminal_entry)
            if chunk:
                yield chunk
            if ended or (not result.entries and is_finished()):
                return
            result = None
            if wakeup.changed:
                continue
            if not await wakeup.wait():
                yield ping
    finally:
        wakeup.close()
        unsubscribe()
        release_frames(key, frames)
