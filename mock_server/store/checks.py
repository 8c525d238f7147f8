"""`ReadChecks`: the checks of reads that skipped their load, made together on a connection of
their own.

A read-only section that skipped its load (see `SharedWorld.enter`) must still learn that
nothing it read was written since the version it ran on. The checks of the reads that end while
one is on its way go in the next script call, one answer per read, as a database's group commit
does for writes: a busy worker makes one round trip for many reads. There is one call at a
time, on a `Line` of its own (line.py).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import redis

from ..errors import Unavailable
from .line import Line, unavailable

# How long a call may wait for its answer before its reads fail.
ANSWER_WAIT_S = 30


@dataclass
class ReadSet:
    """What a section read, that its commit (or check) must find unchanged: stores it walked
    or counted, and records by name."""

    version: int  # the world version the section ran on
    stores: list[str]
    names: list[str]
    ran: str = ""  # how far the section ran due timers, if it did


class ReadChecks:
    """`check(read)` answers whether nothing `read` names was written since its version.

    `script` takes KEYS `keys` and ARGV: how many reads, then for each its version, stores,
    `ran`, how many names, the names; it answers Redis TIME (seconds, microseconds), then 1 or
    0 per read. `heard(seconds, micros, sent_ns)` is told each TIME; `stale(read)` each read
    found stale."""

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
        self._waiting: list[tuple[ReadSet, asyncio.Future[bool]]] = []
        self._task: asyncio.Task[None] | None = None
        # The loop the checks run on (set by `SharedWorld.start`): asking asyncio for the
        # running loop costs a system call (see line.py).
        self.loop: asyncio.AbstractEventLoop | None = None

    async def check(self, read: ReadSet) -> bool:
        loop = self.loop or asyncio.get_running_loop()
        done: asyncio.Future[bool] = loop.create_future()
        self._waiting.append((read, done))
        if self._task is None or self._task.done():
            self._task = loop.create_task(self._run())
        # Shielded: a request cancelled meanwhile leaves the batch it is in to finish.
        return await asyncio.shield(done)

    async def _run(self) -> None:
        while self._waiting:
            batch, self._waiting = self._waiting, []
            args: list[Any] = [len(batch)]
            for read, _ in batch:
                args += [read.version, "\n".join(read.stores), read.ran, len(read.names)]
                args += read.names
            sent = time.time_ns()
            try:
                found = await self._line.script(
                    self._script, self._keys, args, deadline_s=ANSWER_WAIT_S
                )
            except Exception as exc:
                failure = _unavailable(exc)
                for _, done in batch:
                    if not done.done():
                        done.set_exception(failure)
                continue
            self._heard(found[0], found[1], sent)
            for (read, done), holds in zip(batch, found[2:], strict=True):
                if not int(holds):
                    self._stale(read)
                if not done.done():
                    done.set_result(bool(int(holds)))

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
