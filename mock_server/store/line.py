"""`Line`: one connection to Redis for one caller that makes one call at a time (the read
checks, the commits, the change feed), without redis-py's per-command machinery.

A client command through `redis.asyncio.Redis` takes a connection from the pool, runs it under
retries, applies the socket timeout with asyncio timeouts, encodes each argument in Python and
converts the reply with a response callback. For calls as small as a section's commit that was
more than the call's own work: on a busy worker the change feed's XREAD alone, returning this
worker's own commits, was a fifth of a write's time. And every asyncio timeout asks for the
running loop, which in Python 3.11 makes a getpid() system call (to notice a fork): those calls
stood out in a busy worker's profile. A line packs the whole command with hiredis in one C
call, sends it on its connection
(made by redis-py from the URL: TLS, unix sockets, AUTH and SELECT as usual) and reads the raw
reply. A call that is cancelled or fails drops the connection, so the next call cannot read
the reply meant for it; the next call connects again.
"""

from __future__ import annotations

import asyncio
import collections
import hashlib
from collections.abc import Callable
from typing import Any

import redis
import redis.asyncio as aioredis

from ..errors import Unavailable

_pack: Callable[[tuple[Any, ...]], bytes] | None
try:
    from hiredis import pack_command as _pack
except ImportError:  # the redis extra installs it; redis-py alone packs commands too
    _pack = None


# What a call raises when Redis cannot be reached, cut it off, or did not answer by its deadline.
NO_ANSWER = (redis.ConnectionError, TimeoutError, OSError)


def unavailable(error: BaseException, deadline_s: float) -> Unavailable:
    """A call's NO_ANSWER error as the APIs' 503 (`deadline_s`: the call's deadline)."""
    if isinstance(error, TimeoutError):
        return Unavailable(f"the store's Redis did not answer within {deadline_s} s", 1)
    return Unavailable(f"the store's Redis did not answer: {error!r}", 1)


class Line:
    def __init__(self, url: str) -> None:
        # The pool only parses the URL. No socket timeout: a call's deadline is one timeout
        # around it (`deadline_s`), not one on every read and write.
        pool = aioredis.ConnectionPool.from_url(url)
        self._connection = pool.connection_class(
            **{**pool.connection_kwargs, "socket_timeout": None}
        )
        self._shas: dict[str, str] = {}

    async def call(self, *command: Any, deadline_s: float | None = None) -> Any:
        """One command's raw reply (bytes, ints and lists, as hiredis parses them); an error
        reply is raised as redis-py raises it. Past `deadline_s` it raises TimeoutError."""
        connection = self._connection
        try:
            async with asyncio.timeout(deadline_s):
                await connection.send_packed_command(self._packed(command), check_health=False)
                return await connection.read_response()
        except redis.ResponseError:
            raise
        except BaseException:
            # Cancelled, timed out or cut off: the reply may still come, and the next call must
            # not read it as its own.
            await connection.disconnect(nowait=True)
            raise

    def _packed(self, command: tuple[Any, ...]) -> list[bytes]:
        if _pack is not None:
            return [_pack(command)]
        packed: list[bytes] = self._connection.pack_command(*command)
        return packed

    # Pipelined use: commands sent one after another, their replies read in the same order by
    # one reader (Redis answers a connection's commands in order). No `call` meanwhile.

    async def send_script(self, script: str, keys: list[str], args: list[Any]) -> None:
        """Send an EVALSHA of `script`, which Redis must hold (`load`), without reading."""
        command = ("EVALSHA", self._sha(script), len(keys), *keys, *args)
        try:
            await self._connection.send_packed_command(self._packed(command), check_health=False)
        except BaseException:
            await self._connection.disconnect(nowait=True)
            raise

    async def receive(self, *, deadline_s: float | None = None) -> Any:
        """The next reply, as `call` gives it."""
        try:
            async with asyncio.timeout(deadline_s):
                return await self._connection.read_response()
        except redis.ResponseError:
            raise
        except BaseException:
            await self._connection.disconnect(nowait=True)
            raise

    async def load(self, script: str, *, deadline_s: float | None = None) -> None:
        """Make sure Redis holds `script` (SCRIPT LOAD: a round trip)."""
        await self.call("SCRIPT", "LOAD", script, deadline_s=deadline_s)

    def _sha(self, script: str) -> str:
        sha = self._shas.get(script)
        if sha is None:
            sha = self._shas[script] = hashlib.sha1(script.encode()).hexdigest()
        return sha

    async def script(
        self, script: str, keys: list[str], args: list[Any], *, deadline_s: float | None = None
    ) -> Any:
        """EVALSHA of `script`, loading it first when Redis does not hold it (never did,
        restarted, or SCRIPT FLUSH)."""
        command = ("EVALSHA", self._sha(script), len(keys), *keys, *args)
        try:
            return await self.call(*command, deadline_s=deadline_s)
        except redis.exceptions.NoScriptError:
            await self.call("SCRIPT", "LOAD", script, deadline_s=deadline_s)
            return await self.call(*command, deadline_s=deadline_s)

    async def close(self) -> None:
        await self._connection.disconnect(nowait=True)


class Replies:
    """The replies to calls sent on `line` with `send_script`, read in order by one task of
    their own while any is due (`expect` after each send): the caller sends more calls
    meanwhile, and waits for the next reply or for something to send, whichever comes first
    (`next_or`). It reads nothing else from the line while any reply is due.

    One reader for all the replies, waking the caller directly, rather than a task per reply
    and a task and `asyncio.wait` per wait for one: with it (and unshielded section futures) a
    busy worker's POST went from about 2,650 to 2,790 req/s and GET from 7,000 to 7,600, in
    alternating runs on one machine."""

    def __init__(self, line: Line, loop: asyncio.AbstractEventLoop, deadline_s: float) -> None:
        self._line = line
        self._loop = loop
        self._deadline_s = deadline_s
        self._due = 0  # calls sent whose replies the reader has not read yet
        # Read replies in order: (True, reply) or (False, the error `Line.receive` raised).
        self._ready: collections.deque[tuple[bool, Any]] = collections.deque()
        self._reader: asyncio.Task[None] | None = None
        self._waiter: asyncio.Future[None] | None = None  # `next` waiting for a reply
        self._more: asyncio.Event | None = None  # `next_or` waiting for a reply or for this

    def expect(self) -> None:
        """A call was sent: read its reply."""
        self._due += 1
        if self._reader is None or self._reader.done():
            self._reader = self._loop.create_task(self._read())

    async def next_or(self, more: asyncio.Event) -> bool:
        """Wait for the next reply (True: `next` has it) or for `more` to be set (False). The
        reader sets `more` when the reply comes first."""
        if not self._ready:
            self._more = more
            try:
                await more.wait()
            finally:
                self._more = None
        return bool(self._ready)

    async def next(self) -> Any:
        """The next reply (an error reply raised, as `Line.call` raises it)."""
        while not self._ready:
            if self._due == 0:
                raise RuntimeError("no reply is due")
            self._waiter = self._loop.create_future()
            try:
                await self._waiter
            finally:
                self._waiter = None
        ok, reply = self._ready.popleft()
        if not ok:
            raise reply
        return reply

    def cancel(self) -> None:
        """Stop reading: the line drops its connection (the replies due are lost)."""
        if self._reader is not None and not self._reader.done():
            self._reader.cancel()
        self._reader = None
        self._due = 0

    async def _read(self) -> None:
        while self._due:
            try:
                reply = await self._line.receive(deadline_s=self._deadline_s)
            except redis.ResponseError as exc:  # an error reply: the line reads on
                self._ready.append((False, exc))
            except BaseException as exc:
                # The line dropped its connection: the replies still due are lost.
                self._due = 0
                self._ready.append((False, exc))
                self._wake()
                if isinstance(exc, asyncio.CancelledError):
                    raise
                return
            else:
                self._ready.append((True, reply))
            self._due -= 1
            self._wake()

    def _wake(self) -> None:
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)
        if self._more is not None:
            self._more.set()
