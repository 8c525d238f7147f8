"""`ReadChecks`: the checks of reads that skipped their load, made together on a connection of
their own.

A read-only section that skipped its load (see `SharedWorld.enter`) must still learn that
nothing it read was written since the version it ran on. The checks of the reads that end while
one is on its way go in the next script call, one answer per read, as a database's group commit
does for writes: a busy worker makes one round trip for many reads. There is one call at a
time, on one connection that nothing else uses, written with redis-py's connection alone: the
client's per-command machinery (pool, retries, response callbacks) cost more than the call's
own work on a request this small.
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import redis
import redis.asyncio as aioredis
from redis.asyncio.connection import AbstractConnection

from ..errors import Unavailable

_pack: Callable[[tuple[Any, ...]], bytes] | None
try:
    from hiredis import pack_command as _pack
except ImportError:  # the redis extra installs it; redis-py alone packs commands too
    _pack = None

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
        # The pool only parses the URL (host, port, database, TLS or a unix socket). No socket
        # timeout: redis-py applies one per command with asyncio timeouts, which ask for the
        # running loop, a getpid() system call each (Python 3.11), slow in sandboxes such as
        # gVisor; a call's deadline is one timer instead (`_run`).
        pool = aioredis.ConnectionPool.from_url(url)
        self._connection = pool.connection_class(
            **{**pool.connection_kwargs, "socket_timeout": None}
        )
        self._script = script
        self._sha = hashlib.sha1(script.encode()).hexdigest()
        self._keys = keys
        self._heard = heard
        self._stale = stale
        self._waiting: list[tuple[ReadSet, asyncio.Future[bool]]] = []
        self._task: asyncio.Task[None] | None = None
        self._expired = False
        # The loop the checks run on (set by `SharedWorld.start`): asking asyncio for the
        # running loop costs a system call (see above).
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
        loop = self.loop or asyncio.get_running_loop()
        while self._waiting:
            batch, self._waiting = self._waiting, []
            args: list[Any] = [len(batch)]
            for read, _ in batch:
                args += [read.version, "\n".join(read.stores), read.ran, len(read.names)]
                args += read.names
            sent = time.time_ns()
            deadline = loop.call_later(ANSWER_WAIT_S, self._expire)
            try:
                found = await self._call(args)
            except BaseException as caught:
                error = caught
                expired, self._expired = self._expired, False
                if expired and self._task is not None:
                    self._task.uncancel()  # our own deadline, not a cancellation of the task
                    error = Unavailable(f"Redis did not answer within {ANSWER_WAIT_S} s", 1)
                failure = _unavailable(error)
                for _, done in batch:
                    if not done.done():
                        done.set_exception(failure)
                if not isinstance(error, Exception):
                    raise
                continue
            finally:
                deadline.cancel()
            self._heard(found[0], found[1], sent)
            for (read, done), holds in zip(batch, found[2:], strict=True):
                if not int(holds):
                    self._stale(read)
                if not done.done():
                    done.set_result(bool(int(holds)))

    def _expire(self) -> None:
        if self._task is not None and not self._task.done():
            self._expired = True
            self._task.cancel()

    async def _call(self, args: list[Any]) -> list[Any]:
        connection = self._connection
        command = ("EVALSHA", self._sha, len(self._keys), *self._keys, *args)
        found: list[Any]
        try:
            found = await self._send(connection, command)
        except redis.exceptions.NoScriptError:
            # Redis lost its scripts (restarted, SCRIPT FLUSH) or never had it: load it, then
            # call again.
            await self._send(connection, ("SCRIPT", "LOAD", self._script))
            found = await self._send(connection, command)
        except (redis.ConnectionError, redis.TimeoutError, OSError, asyncio.CancelledError):
            # The answer may still come: the next call must not read it as its own.
            await connection.disconnect()
            raise
        return found

    async def _send(self, connection: AbstractConnection, command: tuple[Any, ...]) -> Any:
        # hiredis packs the whole command in one C call; redis-py first encodes each argument
        # in Python (a tenth of a busy worker's time went there).
        packed = [_pack(command)] if _pack is not None else connection.pack_command(*command)
        await connection.send_packed_command(packed, check_health=False)
        return await connection.read_response()

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
        await self._connection.disconnect()


def _unavailable(error: BaseException) -> BaseException:
    """What the reads of a failed call fail with: an error of Redis's own (it refused the
    script, say) as it is; not reaching Redis as Unavailable (the APIs' 503)."""
    if isinstance(error, Unavailable | redis.ResponseError):
        return error
    return Unavailable(f"the store's Redis did not answer: {error!r}", 1)
