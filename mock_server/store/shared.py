"""`SharedWorld`: one world for every worker process (and host) pointed at the same Redis.

Event streams live in Redis Streams (`RedisStreams`). Records (jobs, runs, interventions,
traces, logs, webhook deliveries) live one per hash field (`SharedRecords`); the rest of the world
(tokens, workspaces, queues, the timers, the clock's offset, ...) is one snapshot. Each change
carries the world's version: a sorted set maps every record to the version that last wrote it.

- A *section* is one request or one timer tick. It takes the Redis lock (SET NX PX with a token)
  and, when Redis holds a newer version than this process, loads the records changed since its
  own version (and the rest, when that changed); it runs, then writes the records it touched
  whose bytes changed (and the rest, when changed) as version+1. The write is refused unless the
  lock is still ours (a fencing check in the same script that releases the lock). State changes
  are therefore atomic across processes, and a timer (a job's next step, a schedule, a retry, a
  timeout, a TTL) runs in exactly one worker: whoever ran it saved a world without it.
- Each commit appends to a change feed (a Redis stream): the keys the section notified (a job's
  stream or status) and when the world's next timer is due. Every worker follows the feed with a
  blocking XREAD and wakes its own SSE readers of those keys and its timer driver, so a client on
  any worker sees an append made on another one. A reader that finds new entries reads them again
  in a read-only section (`reading`), so the model judging them is never older than they are.

This serialises every request: it is for shared staging mocks and fanning SSE out over several
processes, not for raw throughput (see the README). Record keys are computed inside the scripts,
so the store needs one Redis (or a cluster's single slot), not a sharded cluster.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
import os
import secrets
import socket
from collections.abc import AsyncIterator, Awaitable
from typing import Any, TypeVar
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import redis
import redis.asyncio as aioredis
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ..clock import Clock, ManualClock, SystemClock
from ..model.engine import Engine
from ..model.store import StreamStore
from ..profile import ServerProfile
from .codec import CodecError
from .records import SharedRecords
from .snapshot import Root, Snapshots
from .streams import STREAM_FUNCTIONS, RedisStreams

log = logging.getLogger("mock_server.store")
T = TypeVar("T")

DEFAULT_PREFIX = "mock_server:"
LOCK_MS = (
    5_000  # a section takes milliseconds; a worker killed inside one blocks the rest this long
)
LEASE_MS = 3_000
FEED_LENGTH = 1_000
# Below redis-py's default socket timeout: an idle XREAD returns and blocks again.
FEED_BLOCK_MS = 2_000
# The model methods a timer loaded from Redis may call (see `Call`): the only code a world
# document can name.
TIMER_CALLS = (("auvy", "_tick"), ("ava", "_fire"), ("strait", "_fire"), ("ava_outbox", "_wake"))

# Records are named "STORE\nKEY" in the version index and kept in the hash PREFIX + STORE.

# KEYS: lock, world, versions. ARGV: token, lock ms, our version, records' hash prefix.
# false when the lock is taken; else {version} or, when newer, {version, rest ('' = unchanged
# since our version), fingerprint, then name and bytes ('' = removed) of each record changed}.
_ENTER = """
if not redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then return false end
local v = tonumber(redis.call('HGET', KEYS[2], 'v') or '0')
local ours = tonumber(ARGV[3])
if v <= ours then return {v} end
local out = {v, '', redis.call('HGET', KEYS[2], 'f') or ''}
if tonumber(redis.call('HGET', KEYS[2], 'rv') or '0') > ours then
  out[2] = redis.call('HGET', KEYS[2], 'b') or ''
end
for _, name in ipairs(redis.call('ZRANGEBYSCORE', KEYS[3], '(' .. ARGV[3], '+inf')) do
  local sep = string.find(name, '\\n', 1, true)
  out[#out + 1] = name
  out[#out + 1] = redis.call('HGET', ARGV[4] .. string.sub(name, 1, sep - 1),
    string.sub(name, sep + 1)) or ''
end
return out
"""

# KEYS: lock, world, feed, released, versions. ARGV: token, rest ('' = unchanged), fingerprint,
# worker, notified keys, next due, feed length, records' hash prefix, '1' to drop every record
# first (a world replaced), the stores' names, the streams' queued changes (JSON, see
# `RedisStreams.take`), then name and bytes ('' = removed) of each changed record. Returns the
# version; -1 when the lock was lost, -2 when a stream changed since the section loaded it. Every
# check comes before the first write: Redis does not roll a script back, so a refused commit must
# have written nothing.
_COMMIT = (
    STREAM_FUNCTIONS
    + """
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return -1 end
local streams = cjson.decode(ARGV[11])
if not streams_unchanged(streams) then
  redis.call('DEL', KEYS[1])
  redis.call('LPUSH', KEYS[4], 1)
  redis.call('LTRIM', KEYS[4], 0, 0)
  return -2
end
local v = tonumber(redis.call('HGET', KEYS[2], 'v') or '0')
local changed = ARGV[2] ~= '' or #ARGV > 11 or #streams > 0
if changed then
  v = redis.call('HINCRBY', KEYS[2], 'v', 1)
  redis.call('HSET', KEYS[2], 'f', ARGV[3])
  if ARGV[9] == '1' then
    redis.call('DEL', KEYS[5])
    for store in string.gmatch(ARGV[10], '[^\\n]+') do redis.call('DEL', ARGV[8] .. store) end
  end
  if ARGV[2] ~= '' then redis.call('HSET', KEYS[2], 'b', ARGV[2], 'rv', v) end
  for i = 12, #ARGV, 2 do
    local name = ARGV[i]
    local sep = string.find(name, '\\n', 1, true)
    local hash = ARGV[8] .. string.sub(name, 1, sep - 1)
    if ARGV[i + 1] == '' then
      redis.call('HDEL', hash, string.sub(name, sep + 1))
    else
      redis.call('HSET', hash, string.sub(name, sep + 1), ARGV[i + 1])
    end
    redis.call('ZADD', KEYS[5], v, name)
  end
end
write_streams(streams)
if changed or ARGV[5] ~= '' then
  redis.call('XADD', KEYS[3], 'MAXLEN', '~', ARGV[7], '*',
    'w', ARGV[4], 'v', v, 'k', ARGV[5], 'd', ARGV[6])
end
redis.call('DEL', KEYS[1])
redis.call('LPUSH', KEYS[4], 1)
redis.call('LTRIM', KEYS[4], 0, 0)
return v
"""
)


# KEYS: lease. ARGV: worker, ms. 1 when the worker holds (or now took) the driver lease.
_LEAD = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return 1
end
if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then return 1 end
return 0
"""


class SharedEngine(Engine):
    """Runs timers only inside this process's current section, and remembers what it notified.

    Outside a section (an SSE reader's loop, say) `run_due` does nothing: timers run under the
    lock, in whichever worker's section comes first, or nowhere else would know they ran.
    """

    def __init__(self, clock: Clock) -> None:
        super().__init__(clock)
        self.shared = False  # until the world is in Redis, it is this process's alone
        self.owner: asyncio.Task[Any] | None = None
        self.changed: set[str] = set()

    def run_due(self) -> int:
        if self.shared and (self.owner is None or self.owner is not _current_task()):
            return 0
        return super().run_due()

    def notify(self, key: str) -> None:
        self.changed.add(key)
        if self.shared and self.owner is not None:
            # Inside a section: the change is not in Redis until the commit, so readers woken
            # now would find nothing new; `SharedWorld.leave` wakes them once it is.
            return
        super().notify(key)

    def notify_here(self, key: str) -> None:
        """Wake this process's listeners for a change another worker made."""
        super().notify(key)


async def _finish(call: Awaitable[T]) -> T:
    """Await `call` to its end even when the awaiting task is cancelled meanwhile (then cancel
    the task after): a lock taken or a commit made in Redis must be known to this process, and
    redis-py drops the connection of a command interrupted half-way."""
    task = asyncio.ensure_future(call)
    cancelled = False
    while True:
        try:
            result = await asyncio.shield(task)
            break
        except asyncio.CancelledError:
            if task.cancelled():
                raise
            cancelled = True
    if cancelled:
        raise asyncio.CancelledError
    return result


def _current_task() -> asyncio.Task[Any] | None:
    try:
        return asyncio.current_task()
    except RuntimeError:
        return None


class SharedWorld:
    """The coordination of one worker process; see the module docstring."""

    def __init__(self, url: str, profile: ServerProfile, *, prefix: str = DEFAULT_PREFIX) -> None:
        self.url = url
        self.prefix = prefix
        self.client = redis.Redis.from_url(url)
        self.aio = aioredis.Redis.from_url(url)
        # The change feed's blocking XREAD gets a connection of its own: closing it is how
        # `stop` ends a read that swallowed its cancellation (redis-py does, now and then).
        self._feed_client = aioredis.Redis.from_url(url)
        self._stopping = False
        self.engine = SharedEngine(ManualClock() if profile.clock == "manual" else SystemClock())
        self.engine.reading = self.reading
        # The pid first, so a test can tell which process answered; the suffix keeps two apps of
        # one process (in tests) apart.
        self.worker = f"{os.getpid()}@{socket.gethostname()}:{secrets.token_hex(2)}"
        self.version = 0
        self.fingerprint = hashlib.sha256(repr(profile).encode()).hexdigest()[:16]
        self.due: int | None = None  # the world's next timer, as last heard
        self._snapshots: Snapshots | None = None
        self._stores: dict[str, RedisStreams] = {}
        self._records: dict[str, SharedRecords[Any]] = {}
        # The rest of the world as this process last saw it (Snapshots.state_print).
        self._state_print: bytes | None = None
        self._token = ""
        self._local = asyncio.Lock()
        self._wake = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        names = ("lock", "world", "changes", "released", "driver", "versions")
        self._keys = {name: prefix + name for name in names}
        self._record_prefix = prefix + "records:"
        self._enter = self.aio.register_script(_ENTER)
        self._lead = self.aio.register_script(_LEAD)
        self._commit = self.aio.register_script(_COMMIT)

    # -- wiring ----------------------------------------------------------------------------------

    def streams(self, name: str, maxlen: int | None, ttl_ms: int | None) -> StreamStore:
        """`World`'s stream factory: each model's streams under their own key prefix."""
        store = RedisStreams(
            self.client,
            f"{self.prefix}{name}:",
            maxlen=maxlen,
            ttl_ms=ttl_ms,
            batching=self._in_section,
        )
        self._stores[name] = store
        return store

    def _in_section(self) -> bool:
        """Whether the caller runs this process's current section (its stream changes are then
        the section's, committed with it)."""
        owner = self.engine.owner
        return self.engine.shared and owner is not None and owner is _current_task()

    def attach(self, world: Any, *, limiter: object) -> None:
        """Name the objects whose state is shared; everything else stays per process. The
        models' record stores are replaced by `SharedRecords` holding the same (seeded) records."""
        engine = world.engine
        for owner, attr, name in (
            (world.auvy, "jobs", "auvy.jobs"),
            (world.auvy, "interventions", "auvy.interventions"),
            (world.auvy, "traces", "auvy.traces"),
            (world.ava, "jobs", "ava.jobs"),
            (world.ava, "logs", "ava.logs"),
            (world.ava_outbox, "records", "ava_outbox.records"),
            (world.strait, "runs", "strait.runs"),
            (world.strait, "records", "strait.records"),
        ):
            records = SharedRecords[Any](name, getattr(owner, attr).items())
            setattr(owner, attr, records)
            self._records[name] = records
        self._snapshots = Snapshots(
            [
                Root("clock", engine.clock),
                Root("scheduler", engine.scheduler, frozenset({"on_schedule"})),
                Root("auvy", world.auvy),
                Root("receptors", world.receptors),
                Root("ava_outbox", world.ava_outbox),
                Root("ava", world.ava),
                Root("strait", world.strait),
                Root("limiter", limiter),
            ],
            {
                "engine": engine,
                **{f"streams:{n}": s for n, s in self._stores.items()},
                **{f"records:{n}": r for n, r in self._records.items()},
            },
            TIMER_CALLS,
        )
        self._scheduler = engine.scheduler

    # -- sections ------------------------------------------------------------------------------

    async def _lock(self) -> list[Any]:
        """Take the Redis lock (this process's lock already held); the world when newer."""
        token = secrets.token_hex(8)
        while True:
            call = asyncio.ensure_future(
                self._enter(
                    keys=[self._keys["lock"], self._keys["world"], self._keys["versions"]],
                    args=[token, LOCK_MS, self.version, self._record_prefix],
                )
            )
            try:
                found: list[Any] | None = await asyncio.shield(call)
            except asyncio.CancelledError:
                # Cancelled (an SSE client went away) while the script ran: it may have taken
                # the lock, which would then stall every worker until it expired. Give it back.
                if not call.cancelled() and await _finish(call):
                    self._token = token
                    await self._release()
                raise
            if found:
                self._token = token
                return found
            # Woken by the holder's release (its commit pushes to this list); the timeout
            # covers a holder that died and left the lock to expire.
            await self.aio.blpop([self._keys["released"]], timeout=0.05)

    async def enter(self) -> None:
        await self._local.acquire()
        try:
            found = await self._lock()
            try:
                self._load(found)
            except BaseException:
                await self._release()
                raise
        except BaseException:
            self._local.release()
            raise
        self.engine.changed.clear()
        self._untouch()
        for store in self._stores.values():
            store.discard()
        self.engine.owner = _current_task()

    def _untouch(self) -> None:
        # What was read outside a section (an SSE reader judging its entries) changed nothing.
        for records in self._records.values():
            records.touched.clear()

    async def _release(self) -> None:
        """Give the lock back without changing the world."""
        for store in self._stores.values():
            store.discard()
        await self._commit_section()

    async def _commit_section(
        self,
        rest: bytes = b"",
        notified: str = "",
        due: int | None = None,
        *,
        replace: bool = False,
        records: list[str | bytes] | None = None,
    ) -> int:
        """Write what the section changed (nothing by default) and release the lock: the new
        version, or -1 or -2 when the commit was refused (see _COMMIT)."""
        streams = [group for store in self._stores.values() for group in store.take()]
        version: int = await _finish(
            self._commit(
                keys=[self._keys[k] for k in ("lock", "world", "changes", "released", "versions")],
                args=[
                    self._token,
                    rest,
                    self.fingerprint,
                    self.worker,
                    notified,
                    "" if due is None else due,
                    FEED_LENGTH,
                    self._record_prefix,
                    "1" if replace else "",
                    "\n".join(self._records),
                    json.dumps(streams, separators=(",", ":")),
                    *(records or ()),
                ],
            )
        )
        return version

    def _changed_records(self) -> list[str | bytes]:
        """Name and bytes of each touched record whose bytes differ from what Redis holds."""
        snapshots = self._require()
        changed: list[str | bytes] = []
        for records in self._records.values():
            for key in records.touched:
                value = records.current(key)
                blob = b"" if value is None else snapshots.dumps_value(value)
                if blob != records.blobs.get(key, b""):
                    changed += (f"{records.name}\n{key}", blob)
                    if blob:
                        records.blobs[key] = blob
                    else:
                        records.blobs.pop(key, None)
            records.touched.clear()
        return changed

    async def leave(self, *, replace: bool = False) -> bool:
        """Commit the section and release the lock; False when the commit was refused, so
        nothing the section did (state or events) was written and the caller may run it again."""
        self.engine.owner = None
        committed = False
        try:
            try:
                snapshots = self._require()
                state_print = snapshots.state_print()
                changed = state_print is None or state_print != self._state_print
                blob = snapshots.dumps() if changed else b""
                records = self._changed_records()
            except BaseException:
                # State this process cannot write: give the lock back now (not LOCK_MS later)
                # and reload the world that Redis holds in the next section.
                self.version = -1
                await self._release()
                raise
            self.due = self._scheduler.next_due()
            version = await self._commit_section(
                blob,
                "\n".join(sorted(self.engine.changed)),
                self.due,
                replace=replace,
                records=records,
            )
            if version < 0:
                # The section outlived the lock (or a stream moved under it) and another worker
                # may have changed the world since: its version wins, and this process reloads
                # the whole world in its next section.
                log.error("a section's commit was refused (%d); its changes were dropped", version)
                self.version = -1
            else:
                self.version = int(version)
                self._state_print = state_print
                committed = True
                for key in self.engine.changed:
                    self.engine.notify_here(key)
        finally:
            self.engine.changed.clear()
            for store in self._stores.values():
                store.discard()
            self._wake.set()
            self._local.release()
        return committed

    @contextlib.asynccontextmanager
    async def reading(self) -> AsyncIterator[None]:
        """A read-only section for a stream reader: no timers run and nothing is written.

        Another worker's section appends to a stream before it commits the model; holding the
        lock, a reader sees the entries and the model that knows them together, never entries
        that an older model would misjudge (a terminal change not yet the run's latest)."""
        async with self._local:
            found = await self._lock()
            try:
                self._load(found)
                yield
            finally:
                self._untouch()
                await self._release()

    @contextlib.asynccontextmanager
    async def section(self) -> AsyncIterator[None]:
        await self.enter()
        try:
            yield
        finally:
            await self.leave()

    def _load(self, found: list[Any]) -> None:
        version = int(found[0])
        if len(found) > 1:
            snapshots = self._require()
            # Everything is decoded before anything changes, so a world this process cannot
            # read (another version of the code) leaves its own intact.
            loaded = []
            for i in range(3, len(found), 2):
                store, _, key = found[i].decode().partition("\n")
                blob = found[i + 1]
                value = snapshots.loads_value(blob) if blob else None
                loaded.append((self._records[store], key, value, blob))
            if self.version <= 0:
                # Joining (or after losing the lock): Redis sent every record; drop ours.
                for records in self._records.values():
                    records.forget()
            for records, key, value, blob in loaded:
                records.loaded(key, value, blob)
            if found[1]:
                snapshots.load(found[1])
                # Later sections compare against a print of what we loaded, not the bytes
                # received: the same state can encode differently once rebuilt (a set's order
                # follows its history), and a read would then write the world back.
                self._state_print = snapshots.state_print()
            self.due = self._scheduler.next_due()
        self.version = version

    def _require(self) -> Snapshots:
        if self._snapshots is None:
            raise RuntimeError("SharedWorld.attach() was not called")
        return self._snapshots

    # -- lifetime ------------------------------------------------------------------------------

    async def start(self) -> None:
        """Join the world in Redis, or publish this process's freshly seeded one."""
        self.engine.shared = True
        await self._local.acquire()
        token = secrets.token_hex(8)
        try:
            while not (
                found := await self._enter(
                    keys=[self._keys["lock"], self._keys["world"], self._keys["versions"]],
                    args=[token, LOCK_MS, 0, self._record_prefix],
                )
            ):
                await self.aio.blpop([self._keys["released"]], timeout=0.05)
            self._token = token
            joined = False
            if len(found) > 1:
                fingerprint = found[2].decode() if isinstance(found[2], bytes) else found[2]
                if fingerprint != self.fingerprint:
                    log.warning("the world in Redis was made with another profile: replacing it")
                else:
                    try:
                        self._load(found)
                        joined = True
                    except CodecError as exc:
                        log.warning("cannot load the world in Redis (%s): replacing it", exc)
            if not joined:
                self.version = int(found[0])
                self._state_print = None  # forces the commit below to publish this world
                for records in self._records.values():
                    records.blobs.clear()
                    records.touched.update(records)
        except BaseException:
            self._local.release()
            raise
        self.engine.changed.clear()
        self.engine.owner = _current_task()
        await self.leave(replace=not joined)
        self._tasks = [
            asyncio.create_task(self._follow(), name="mock_server.store.follow"),
            asyncio.create_task(self._drive(), name="mock_server.store.drive"),
        ]

    async def stop(self) -> None:
        self._stopping = True
        for task in self._tasks:
            task.cancel()
        if self._tasks:
            _, pending = await asyncio.wait(self._tasks, timeout=1)
            if pending:
                await self._feed_client.connection_pool.disconnect()
                await asyncio.wait(pending, timeout=FEED_BLOCK_MS / 1000 + 1)
            for task in self._tasks:
                if task.done() and not task.cancelled() and task.exception() is not None:
                    log.error("%s ended with %r", task.get_name(), task.exception())
        self._tasks = []
        await self._feed_client.aclose()
        await self.aio.aclose()
        self.client.close()

    async def _drive(self) -> None:
        """The timer driver: sleep until the world's next timer (as last heard), then run every
        due timer in a section. Only the worker holding the driver lease does, so the others
        do not queue for the lock just to find nothing left to run; when it dies, another takes
        the lease within LEASE_MS. (Requests run due timers too, in whichever worker.)"""
        clock = self.engine.clock
        while True:
            due = self.due
            if due is not None and not clock.manual and due <= clock.now_ms():
                if await self._lead(keys=[self._keys["driver"]], args=[self.worker, LEASE_MS]):
                    try:
                        async with self.section():
                            self.engine.run_due()
                    except CodecError:
                        # Data in Redis this process refuses to load: fail this tick, not the
                        # driver for good (a reset or a replaced world mends it).
                        log.exception("timer tick failed; retrying")
                        await asyncio.sleep(LEASE_MS / 3000)
                else:
                    await asyncio.sleep(LEASE_MS / 3000)
                continue
            timeout = None if due is None or clock.manual else (due - clock.now_ms()) / 1000
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=timeout)

    async def _follow(self) -> None:
        """Follow the change feed (blocking XREAD): wake local SSE readers and the driver."""
        feed = self._keys["changes"]
        last: bytes | str = "$"
        client = self._feed_client
        while not self._stopping:
            try:
                answer: Any = await client.xread({feed: last}, block=FEED_BLOCK_MS, count=100)
            except (redis.ConnectionError, redis.TimeoutError) as exc:
                if self._stopping:
                    return
                log.warning("change feed: %s; retrying", exc)
                await asyncio.sleep(0.5)
                continue
            for _, entries in answer or ():
                for ident, fields in entries:
                    last = ident
                    if fields[b"w"].decode() != self.worker:
                        await self._changed_elsewhere(fields)

    async def _changed_elsewhere(self, fields: dict[bytes, bytes]) -> None:
        due = fields[b"d"]
        self.due = int(due) if due else None
        keys = [k for k in fields[b"k"].decode().split("\n") if k]
        # Readers woken here catch up with the world when they read (`reading`).
        for key in keys:
            self.engine.notify_here(key)
        self._wake.set()


class SectionRefused(BaseException):
    """Raised into a handler's `send` when its section's commit was refused: that response
    describes changes that were never written, so it must not reach the client. A BaseException,
    so the APIs' catch-all error handlers (`except Exception`) let it through."""


# A refused commit means a section outlived its lock (5 s) or raced a stream: rare, so a request
# that meets one this often in a row is answered 503 instead of being run yet again.
ATTEMPTS = 3


class SectionMiddleware:
    """Runs each HTTP request in a section, from before the handler until the response starts.

    The body is read before the lock is taken, so a slow client does not hold every worker up; an
    event stream's body runs after the section, reading Redis and woken by the change feed. A
    request whose commit is refused runs again, from its buffered body, against the world that
    won: nothing of the refused run was written, and none of its response was sent.
    """

    def __init__(self, app: ASGIApp, shared: SharedWorld) -> None:
        self.app = app
        self.shared = shared
        self.header = (b"x-mock-worker", shared.worker.encode())

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        messages = await _buffered(receive)
        for _ in range(ATTEMPTS):
            try:
                await self._attempt(scope, _replay(messages, receive), send)
                return
            except BaseException as exc:
                if not _refused(exc):
                    raise
                log.warning(
                    "%s %s: commit refused, running it again", scope["method"], scope["path"]
                )
        await send(
            {
                "type": "http.response.start",
                "status": 503,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"retry-after", b"1"),
                    self.header,
                ],
            }
        )
        await send(
            {
                "type": "http.response.body",
                "body": b'{"code":"UNAVAILABLE","message":"the store kept refusing this change"}',
            }
        )

    async def _attempt(self, scope: Scope, receive: Receive, send: Send) -> None:
        shared = self.shared
        await shared.enter()
        open_ = True

        async def send_after_leaving(message: Message) -> None:
            nonlocal open_
            if message["type"] == "http.response.start":
                if open_:
                    open_ = False
                    if not await shared.leave():
                        raise SectionRefused
                message = {**message, "headers": [*message.get("headers", ()), self.header]}
            await send(message)

        try:
            await self.app(scope, receive, send_after_leaving)
        finally:
            if open_:
                open_ = False
                await shared.leave()


def _refused(exc: BaseException) -> bool:
    # A streaming response sends from inside a task group, which may wrap the exception.
    if isinstance(exc, BaseExceptionGroup):
        return all(_refused(inner) for inner in exc.exceptions)
    return isinstance(exc, SectionRefused)


async def _buffered(receive: Receive) -> list[Message]:
    messages: list[Message] = []
    while True:
        message = await receive()
        messages.append(message)
        if message["type"] != "http.request" or not message.get("more_body", False):
            return messages


def _replay(messages: list[Message], receive: Receive) -> Receive:
    """The buffered body again (a fresh copy per attempt), then the client's own messages."""
    queued = list(messages)

    async def replay() -> Message:
        if queued:
            return queued.pop(0)
        return await receive()

    return replay


def open_store(url: str, profile: ServerProfile) -> SharedWorld:
    """A `SharedWorld` for `redis://HOST:PORT/DB[?prefix=NAME:]` (also rediss:// and unix://).

    The prefix (default `mock_server:`) namespaces every key, so the mock can share a Redis (and
    a database) with other applications, or run several independent worlds side by side."""
    parts = urlsplit(url)
    if parts.scheme not in ("redis", "rediss", "unix"):
        raise ValueError(f"--store {url!r}: expected redis://HOST:PORT/DB")
    query = parse_qsl(parts.query, keep_blank_values=True)
    prefix = next((v for k, v in query if k == "prefix"), DEFAULT_PREFIX)
    if not prefix:
        raise ValueError(f"--store {url!r}: prefix must not be empty")
    rest = urlencode([(k, v) for k, v in query if k != "prefix"])
    return SharedWorld(urlunsplit(parts._replace(query=rest)), profile, prefix=prefix)
