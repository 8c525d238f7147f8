"""`ReadChecks`: the checks of reads that skipped their load, made together on a connection of
their own.

A read-only section that skipped its load (see `SharedWorld.enter`) must still learn that
nothing it read was written since the version it ran on. The checks of the reads that end while
one is on its way go in the next script call, one answer per read, as a database's group commit
does for writes: a busy worker makes one round trip for many reads. The calls go on a `Line`
of their own (line.py), a second one sent while the first is on its way (PIPELINE), so that
neither this worker nor Redis waits for the other.
"""

from __future__ import annotations

import asyncio
import collections
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import redis

from ..errors import Unavailable
from .line import Line, Replies, unavailable

# How long a call may wait for its answer before its reads fail, and how many calls may be
# on their way at once.
ANSWER_WAIT_S = 30
PIPELINE = 2


@dataclass
class ReadSet:
    """What a section read, that its commit (or check) must find unchanged: stores it walked
    or counted, and records by name."""

    version: int  # the world version the section ran on
    stores: list[str]
    names: list[str]
    ran: str = ""  # how far the section ran due timers, if it did
    # The streams it read (see `RedisStreams.section_reads`), checked by the commit that last
    # appended to each: a copy this process held may lack another worker's entries the feed
    # has not announced yet.
    streams: list[str] = field(default_factory=list)


Waiting = tuple[ReadSet, "asyncio.Future[bool]"]


def _args(batch: list[Waiting]) -> list[Any]:
    args: list[Any] = [len(batch)]
    for read, _ in batch:
        args += [read.version, "\n".join(read.stores), read.ran, "\n".join(read.streams)]
        args.append(len(read.names))
        args += read.names
    return args


class ReadChecks:
    """`check(read)` answers whether nothing `read` names was written since its version.

    `script` takes KEYS `keys` and ARGV: how many reads, then for each its version, stores,
    `ran`, streams, how many names, the names; it answers Redis TIME (seconds, microseconds),
    then 1 or 0 per read. `heard(seconds, micros, sent_ns)` is told each TIME; `stale(read)`
    each read found stale."""

    def __init__(
        self,
        url: str,
        script: str,
        keys: list[str],
        *,
        heard: Callable[[Any, Any, int], None],
        stale: Callable[[ReadSet], None],
    ) -> None:
        self._line = Line(url)
        self._script = script
        self._keys = keys
        self._heard = heard
        self._stale = stale
        self._waiting: list[Waiting] = []
        self._more = asyncio.Event()  # set when a read is added to `_waiting`
        self._loaded = False  # whether Redis holds the script, as far as this knows
        self._task: asyncio.Task[None] | None = None
        # The loop the checks run on (set by `SharedWorld.start`): asking asyncio for the
        # running loop costs a system call (see line.py).
        self.loop: asyncio.AbstractEventLoop | None = None

    async def check(self, read: ReadSet) -> bool:
        loop = self.loop or asyncio.get_running_loop()
        done: asyncio.Future[bool] = loop.create_future()
        self._waiting.append((read, done))
        self._more.set()
        if self._task is None or self._task.done():
            self._task = loop.create_task(self._run())
        # Not shielded: a request cancelled meanwhile cancels only `done`; its read stays in
        # its batch, whose answer skips a future already done.
        return await done

    async def _run(self) -> None:
        """Send the waiting reads' checks, one call per batch, a second call while the first
        is on its way (PIPELINE); answer each batch in turn."""
        loop = self.loop or asyncio.get_running_loop()
        flights: collections.deque[tuple[list[Waiting], int]] = collections.deque()
        replies = Replies(self._line, loop, ANSWER_WAIT_S)
        try:
            while True:
                while self._waiting and len(flights) < PIPELINE and self._loaded:
                    batch, self._waiting = self._waiting, []
                    flights.append((batch, time.time_ns()))
                    await self._line.send_script(self._script, self._keys, _args(batch))
                    replies.expect()
                if not flights:
                    if not self._waiting:
                        return
                    await self._line.load(self._script, deadline_s=ANSWER_WAIT_S)
                    self._loaded = True
                    continue
                if len(flights) < PIPELINE and self._loaded and not self._waiting:
                    self._more.clear()
                    if not await replies.next_or(self._more):
                        continue
                batch, sent = flights.popleft()
                try:
                    found = await replies.next()
                except redis.exceptions.NoScriptError:
                    # Redis lost the script (restarted, SCRIPT FLUSH) and ran nothing: check
                    # these reads again once it is loaded.
                    self._loaded = False
                    self._waiting = batch + self._waiting
                    continue
                self._heard(found[0], found[1], sent)
                for (read, done), holds in zip(batch, found[2:], strict=True):
                    if not int(holds):
                        self._stale(read)
                    if not done.done():
                        done.set_result(bool(int(holds)))
        except Exception as exc:
            replies.cancel()
            self._loaded = False
            failure = _unavailable(exc)
            # The reads on their way and those waiting to go fail alike; the next read starts
            # over, on a fresh connection.
            waiting, self._waiting = self._waiting, []
            for batch in [*(b for b, _ in flights), waiting]:
                for _, done in batch:
                    if not done.done():
                        done.set_exception(failure)

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
        await self._line.close()


def _unavailable(error: Exception) -> Exception:
    """What the reads of a failed call fail with: an error of Redis's own (it refused the
    script, say) as it is; not reaching Redis, or no answer in time, as Unavailable (the APIs'
    503)."""
    if isinstance(error, Unavailable | redis.ResponseError):
        return error
    return unavailable(error, ANSWER_WAIT_S)
