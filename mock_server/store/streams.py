"""`RedisStreams`: the model's `StreamStore` as real Redis Streams, with the in-memory semantics.

Each stream is a Redis stream `<prefix><key>` plus a hash `<prefix><key>:meta` holding its creation
time (`c`), its last id (`l`) and the newest id dropped by trimming or expiry (`d`). Ids are server
ids (`XADD <ms>-*`) for the model's clock, which may be a manual one far from Redis's: when that
clock stands still or goes back, `<last ms>-*` lets Redis bump the sequence, exactly as
`StreamId.next_for` does. Expiry follows the model's clock too (a frontend developer may advance it
by a day); PEXPIRE only lets Redis reclaim a stream one TTL after the model considers it expired,
and never sooner than RECLAIM_FLOOR_MS of real time: a manual clock may stand still while real
time passes, and Redis must not drop a stream the model still holds alive.
Redis keeps no record of entries removed by MAXLEN trimming (`max-deleted-entry-id` only follows
XDEL), hence `d`: a read after an id older than `d` is truncated, as in `EventStream`.

Every direct operation is one Lua script, so it is atomic on its own and costs one round trip.

Inside a shared store's section (`batching()` true) nothing is written here: each stream the
section touches is loaded once into an in-memory `EventStream` (its working copy), appends go to
that copy (which computes the same ids Redis would) and are queued, and reads of it see them. The
section's commit (`SharedWorld`) writes the queued operations in the script that commits the
state, after checking that each stream still ends where the copy began: events and state commit
together or not at all, and a refused section leaves no entry behind.

A section never waits on Redis itself when its runner can run it again (`deferring`): a
stream it holds no copy of (one another worker made, say) is given an empty stand-in and noted
(`missing`), and the section runs on, so that one run finds every stream it lacks. It is doomed:
`SharedWorld` undoes it instead of committing it, loads the copies it lacked with the async
client in one round trip (`load`), and it runs again. Reads in a section go to the working
copy too, so a section sees the appends of the sections before it.

A working copy whose section committed is kept (up to CACHED streams, least recently used
first out): it is what Redis then holds, so the next section that appends to the stream (a
job's next step) needs no round trip to load it. `SharedWorld` drops the copies of streams other
workers changed since (`forget`, as soon as the change feed or a load names them), and a refused
section's copies are dropped (`settle`). Readers outside a section (SSE) read such a copy too:
the entries this process committed reach its own readers without a round trip, as in memory.
Between a section's end and its commit's answer (`SharedWorld` commits sections in groups,
while the next ones run) its copies are *speculative*: later sections append to them, and the
commit checks each against the end the one before left; readers never see them.
"""

from __future__ import annotations

import asyncio
import contextvars
import json
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import redis
import redis.asyncio as aioredis

from ..model.stream import Entry, EventStream, ReadResult
from ..model.stream_id import StreamId

RECLAIM_FLOOR_MS = 3_600_000
# The read the running task's last `prefetch` fetched: (store, (key, cursor), result).
_HANDED: contextvars.ContextVar[tuple[RedisStreams, tuple[str, str], ReadResult] | None] = (
    contextvars.ContextVar("mock_server.store.streams.handed", default=None)
)
CACHED = 10_000

# Lua shared by the direct operations and SharedWorld's commit, which writes a section's appends
# with the ids the model already used. `append(stream, meta, now_ms, data, id, maxlen, ttl_ms,
# reclaim floor)`: id '' lets Redis pick `<ms>-*`; maxlen or ttl_ms '' means none.
STREAM_FUNCTIONS = """
local function append(s, m, now, data, id, maxlen, ttl, floor)
  local created = redis.call('HGET', m, 'c')
  if not created then
    redis.call('HSET', m, 'c', now)
    created = now
  else
    created = tonumber(created)
  end
  if ttl ~= '' and now >= created + tonumber(ttl) then
    local newest = redis.call('XREVRANGE', s, '+', '-', 'COUNT', 1)
    if #newest > 0 then redis.call('HSET', m, 'd', newest[1][1]) end
    redis.call('XTRIM', s, 'MAXLEN', 0)
    redis.call('HSET', m, 'c', now)
    created = now
  end
  if id == '' then
    local ms = now
    local last = redis.call('HGET', m, 'l')
    if last then
      local last_ms = tonumber(string.match(last, '^(%d+)-'))
      if last_ms >= now then ms = last_ms end
    end
    id = string.format('%d', ms) .. '-*'
  end
  id = redis.call('XADD', s, id, 'd', data)
  redis.call('HSET', m, 'l', id)
  if maxlen ~= '' then
    local excess = redis.call('XLEN', s) - tonumber(maxlen)
    if excess > 0 then
      local dropped = redis.call('XRANGE', s, '-', '+', 'COUNT', excess)
      redis.call('HSET', m, 'd', dropped[#dropped][1])
      redis.call('XTRIM', s, 'MAXLEN', maxlen)
    end
  end
  if ttl ~= '' then
    local keep = math.max(created + 2 * tonumber(ttl) - now, floor)
    redis.call('PEXPIRE', s, keep)
    redis.call('PEXPIRE', m, keep)
  end
  return id
end

local function create(s, m, now, ttl, floor)
  redis.call('DEL', s, m)
  redis.call('HSET', m, 'c', now)
  if ttl ~= '' then redis.call('PEXPIRE', m, math.max(2 * tonumber(ttl), floor)) end
end

-- A section's queued changes (`RedisStreams.take`): true when every stream still ends where the
-- section's working copy began. Writes nothing, so a commit checks it before its first write.
local function streams_unchanged(groups)
  for _, g in ipairs(groups) do
    if g[3] ~= '-' and (redis.call('HGET', g[2], 'l') or '') ~= g[3] then return false end
  end
  return true
end

local function write_streams(groups)
  for _, g in ipairs(groups) do
    local floor = tonumber(g[6])
    for i = 7, #g do
      local op = g[i]
      if op[1] == 'c' then
        create(g[1], g[2], tonumber(op[2]), g[5], floor)
      else
        append(g[1], g[2], tonumber(op[2]), op[3], op[4], g[4], g[5], floor)
      end
    end
  end
end
"""

# ARGV: the queued changes as JSON. 1 when written, 0 when a stream had changed (nothing written).
_COMMIT = (
    STREAM_FUNCTIONS
    + """
local groups = cjson.decode(ARGV[1])
if not streams_unchanged(groups) then return 0 end
write_streams(groups)
return 1
"""
)

# KEYS: stream, meta. ARGV: now_ms, data, maxlen ('' = none), ttl_ms ('' = none), reclaim floor.
_APPEND = (
    STREAM_FUNCTIONS
    + """
return append(KEYS[1], KEYS[2], tonumber(ARGV[1]), ARGV[2], '', ARGV[3], ARGV[4], tonumber(ARGV[5]))
"""
)

# KEYS: stream, meta, and the shared world's document (optional). ARGV: now_ms, after ('' =
# from the start), count ('' = all), ttl_ms. Returns {entries, dropped-through or false, first
# retained id, the world's version as of the read (false without KEYS[3])}; a missing stream
# reads as an empty one.
_READ = """
local s, m = KEYS[1], KEYS[2]
local now, after, count, ttl = tonumber(ARGV[1]), ARGV[2], ARGV[3], ARGV[4]
local version = false
if KEYS[3] then version = redis.call('HGET', KEYS[3], 'v') or '0' end
local created = redis.call('HGET', m, 'c')
if not created then return {{}, false, false, version} end
if ttl ~= '' and now >= tonumber(created) + tonumber(ttl) then
  local newest = redis.call('XREVRANGE', s, '+', '-', 'COUNT', 1)
  if #newest > 0 then
    redis.call('HSET', m, 'd', newest[1][1])
    redis.call('XTRIM', s, 'MAXLEN', 0)
  end
end
local start = '-'
if after ~= '' then start = '(' .. after end
local entries = {}
if after == '18446744073709551615-18446744073709551615' then
  -- Nothing follows the greatest id, and an XRANGE from just after it is an error.
elseif count == '' then
  entries = redis.call('XRANGE', s, start, '+')
else
  entries = redis.call('XRANGE', s, start, '+', 'COUNT', count)
end
local first = redis.call('XRANGE', s, '-', '+', 'COUNT', 1)
local first_id = false
if #first > 0 then first_id = first[1][1] end
return {entries, redis.call('HGET', m, 'd'), first_id, version}
"""


# The commit's guard for a stream it did not load (created afresh): no check.
UNCHECKED = "-"


@dataclass
class Pending:
    """One stream's working copy in a section and what the commit must write to Redis."""

    stream: EventStream | None  # None: no such stream (yet)
    base_last: str  # the stream's last id when loaded ('' none, UNCHECKED when never loaded)
    ops: list[list[str]] = field(default_factory=list)
    # Loaded while another worker appended, or named by the feed since (see `RedisStreams.load`
    # and `forget`): good for the one section it was loaded for, whose answer it still
    # reflects and whose commit checks it, not for readers outside sections nor for later
    # sections (it is dropped once used).
    stale: bool = False
    stand_in: bool = False  # for a stream the section lacked (see `missing`): never kept
    # The world's version when `load` read it (0: not known): a commit up to it is in it.
    at: int = 0


class RedisStreams:
    """A `StreamStore` in Redis; `maxlen` and `ttl_ms` as for `MemoryStreams`.

    `batching` says whether the caller is inside a section whose commit will write the changes
    (see the module docstring); without it every operation is written at once."""

    def __init__(
        self,
        client: redis.Redis,
        prefix: str,
        *,
        maxlen: int | None,
        ttl_ms: int | None,
        batching: Callable[[], bool] | None = None,
        deferring: Callable[[], bool] | None = None,
        aio: aioredis.Redis | None = None,
        world_key: str | None = None,
    ) -> None:
        if maxlen is not None and maxlen < 0:
            raise ValueError("maxlen must be >= 0")
        if ttl_ms is not None and ttl_ms <= 0:
            raise ValueError("ttl_ms must be > 0")
        self.client = client
        self.prefix = prefix
        self.maxlen = maxlen
        self.ttl_ms = ttl_ms
        self._batching = batching
        self._deferring = deferring
        # The streams the sections since the last `take_missing` lacked, and those loaded for
        # them (`load`) that no section has used yet.
        self.missing: set[str] = set()
        self._handed: set[str] = set()
        self._pending: dict[str, Pending] = {}
        # Committed working copies (see the module docstring).
        self._cache: OrderedDict[str, Pending] = OrderedDict()
        # Copies holding appends not yet known committed: key -> (the section that appended
        # last, the copy), and the keys each such section appended to (see `take`).
        self._speculative: dict[str, tuple[object, Pending]] = {}
        self._owned: dict[object, list[str]] = {}
        self._append = client.register_script(_APPEND)
        self._read = client.register_script(_READ)
        self._commit = client.register_script(_COMMIT)
        # Reads fetched ahead with the async client (`prefetch`), shared by the readers of one
        # stream at one cursor until the stream changes (`changed`).
        self._aio = aio
        self._aread = None if aio is None else aio.register_script(_READ)
        # Bumped when every copy is dropped (`forget(None)`, `clear`): a load begun before
        # keeps nothing.
        self._epoch = 0
        self._fresh: OrderedDict[str, dict[str, ReadResult]] = OrderedDict()  # key -> cursor
        self._fetching: dict[tuple[str, str], asyncio.Task[ReadResult]] = {}
        self._fetching_keys: dict[str, int] = {}
        self._generation: dict[str, int] = {}
        # The shared world's document, whose version each read also returns: `read_version` is
        # the newest seen, so a reader can tell whether its process's model is at least as new
        # as the entries it read (SharedWorld.catch_up).
        self._world_key = world_key
        self.read_version = 0

    def _keys(self, key: str) -> list[str]:
        return [self.prefix + key, f"{self.prefix}{key}:meta"]

    def _batched(self) -> bool:
        return self._batching is not None and self._batching()

    # -- the section's working copies ----------------------------------------------------------

    def _working(self, key: str) -> Pending:
        pending = self._pending.get(key)
        if pending is None:
            speculative = self._speculative.get(key)
            if speculative is not None:
                # Ends where the section before left it: this section's own ops, that base.
                before = speculative[1]
                pending = self._pending[key] = Pending(before.stream, before.base_last)
                return pending
            pending = self._cache.pop(key, None)
            if pending is not None:
                self._handed.discard(key)
                self._pending[key] = pending
                return pending
            if self._deferring is not None and self._deferring():
                self.missing.add(key)
                pending = self._pending[key] = Pending(None, "", stand_in=True)
                return pending
            # A section whose runner cannot run it again (a test's, say) waits for Redis.
            pipe = self.client.pipeline(transaction=True)
            self._queue_load(pipe, key)
            pending = self._pending[key] = self._loaded(*pipe.execute())
        return pending

    def _queue_load(self, pipe: Any, key: str) -> None:
        stream, meta = self._keys(key)
        pipe.hmget(meta, ["c", "l", "d"])
        pipe.xrange(stream, "-", "+")

    def _loaded(self, meta: list[Any], rows: list[Any]) -> Pending:
        """A copy from a stream's meta hash (c, l, d) and its entries, as `_queue_load` reads
        them."""
        created, last, dropped = meta
        copy = None
        if created is not None:
            copy = EventStream.restore(
                int(created),
                [Entry(StreamId.parse(_text(i)), _data([b"d", f[b"d"]])) for i, f in rows],
                last_id=None if last is None else StreamId.parse(_text(last)),
                dropped_through=None if dropped is None else StreamId.parse(_text(dropped)),
                maxlen=self.maxlen,
                ttl_ms=self.ttl_ms,
            )
        return Pending(copy, "" if last is None else _text(last))

    def take_missing(self) -> list[str]:
        """The streams the sections lacked since the last call (see `missing`)."""
        missing, self.missing = list(self.missing), set()
        return missing

    async def load(self, keys: Iterable[str]) -> None:
        """Load copies of these streams with the async client, in one round trip, for a doomed
        section (see `missing`) to run again."""
        assert self._aio is not None, "a deferring store needs the async client"
        # Not a stream this process's own appends are on their way to: Redis may not hold them
        # yet. The section runs again once they landed (it loads first, see `SharedWorld.enter`)
        # and asks for it then.
        flying = {k for owned in self._owned.values() for k in owned}
        wanted = [
            k
            for k in dict.fromkeys(keys)
            if k not in self._cache and k not in self._speculative and k not in flying
        ]
        if not wanted:
            return
        epoch = self._epoch
        # Counted as fetching, so that `changed` moves their generation meanwhile.
        for key in wanted:
            self._counting(key)
        generations = {k: self._generation.get(k, 0) for k in wanted}
        try:
            pipe = self._aio.pipeline(transaction=True)
            if self._world_key is not None:
                pipe.hget(self._world_key, "v")
            for key in wanted:
                self._queue_load(pipe, key)
            found = await pipe.execute()
            at = int(found.pop(0) or 0) if self._world_key is not None else 0
        finally:
            for key in wanted:
                self._unfetching(key)
        if epoch != self._epoch:
            return  # every copy was dropped meanwhile: the next run asks again
        for n, key in enumerate(wanted):
            if key in self._cache or key in self._speculative or key in self._pending:
                continue  # a section made or loaded it meanwhile: that copy is newer
            copy = self._loaded(found[2 * n], found[2 * n + 1])
            # Changed while on its way: good for the section it was loaded for only (see
            # `Pending.stale`).
            copy.stale = self._generation.get(key, 0) != generations[key]
            copy.at = at
            self._keep(key, copy)
            # Kept for the section that asked, whatever the feed says before it runs again (it
            # would else ask again and again while another worker appends on: see `forget`).
            self._handed.add(key)

    def section_reads(self) -> list[str]:
        """The streams the section read and did not append to (those it appended to, its
        commit checks by their last id), for its read set: each one's Redis key, the world
        version its copy was loaded at (0: not known; a commit up to it is in it), and "s"
        when the copy is stale (kept for this run though a commit since appended to it: the
        world the section ran on does not vouch for it), tab-separated."""
        return [
            f"{self.prefix}{key}\t{p.at}\t{'s' if p.stale else ''}"
            for key, p in self._pending.items()
            if not p.ops
        ]

    def take(self, owner: object = None) -> list[list[Any]]:
        """The section's queued changes, one group per stream, for the commit script:
        [stream key, meta key, expected last id, maxlen, ttl_ms, reclaim floor, op, ...], each
        op ["c", now] (create) or ["a", now, data, id] (append). The copies it appended to stay
        speculative until `settle(owner, ...)` tells how the commit went; the next section
        appends after them."""
        maxlen, ttl = ("" if v is None else str(v) for v in (self.maxlen, self.ttl_ms))
        groups: list[list[Any]] = []
        appended: list[str] = []
        for key, p in self._pending.items():
            if not p.ops:
                if key not in self._speculative and not p.stale:
                    self._keep(key, p)  # loaded and only read: what Redis holds
                continue
            groups.append(
                [*self._keys(key), p.base_last, maxlen, ttl, str(RECLAIM_FLOOR_MS), *p.ops]
            )
            last = None if p.stream is None else p.stream.last_id
            self._speculative[key] = (
                owner,
                Pending(p.stream, "" if last is None else last.encode()),
            )
            appended.append(key)
        if appended:
            self._owned[owner] = appended
        self._pending = {}
        return groups

    def settle(self, owner: object, committed: bool) -> None:
        """The commit of the section that took `owner`'s changes landed (its copies are what
        Redis holds, unless a later section appended since) or was refused (its copies are
        dropped: a later section that appended to them is refused too)."""
        for key in self._owned.pop(owner, ()):
            speculative = self._speculative.get(key)
            mine = speculative is not None and speculative[0] is owner
            if mine:
                del self._speculative[key]
            if not committed:
                self._cache.pop(key, None)
                continue
            self.changed(key)
            if mine and speculative is not None and speculative[1].stream is not None:
                self._keep(key, speculative[1])

    def _keep(self, key: str, pending: Pending) -> None:
        self._cache[key] = pending
        self._cache.move_to_end(key)
        while len(self._cache) > CACHED:
            gone, _ = self._cache.popitem(last=False)
            self._handed.discard(gone)

    def discard(self) -> list[str]:
        """Forget a section that will not commit: the copies it changed are dropped (a later
        section loads them again: they are returned, but for those it made afresh), the others
        stay."""
        dropped = []
        for key, p in self._pending.items():
            if p.ops:
                self._speculative.pop(key, None)
                self._cache.pop(key, None)
                if not p.stand_in and p.base_last != UNCHECKED:
                    dropped.append(key)
            elif key not in self._speculative and not p.stand_in and not p.stale:
                self._keep(key, p)
        self._pending = {}
        return dropped

    def forget(self, keys: Iterable[str] | None, version: int | None = None) -> None:
        """Drop the cached copies of these streams (changed by another worker, by commit
        `version` if known: a copy loaded at that version or later holds the change); None:
        all."""
        if keys is None:
            self._epoch += 1
            self._cache.clear()
            self._handed.clear()
            self._speculative.clear()
            self._fresh.clear()
            return
        for key in keys:
            self.changed(key)
            cached = self._cache.get(key)
            if version is not None and cached is not None and cached.at >= version:
                continue
            if cached is not None and key in self._handed:
                cached.stale = True  # the section it was loaded for runs on it: its commit checks
                continue
            self._cache.pop(key, None)
            self._speculative.pop(key, None)

    def stream_of(self, redis_key: str) -> str | None:
        """This store's key for a Redis stream key, or None when it is not one of ours."""
        return redis_key[len(self.prefix) :] if redis_key.startswith(self.prefix) else None

    def commit(self) -> bool:
        """Write the queued changes on their own (SharedWorld commits them with the state
        instead): False, writing nothing, when a stream changed since its copy was loaded."""
        owner = object()
        groups = self.take(owner)
        if not groups:
            return True
        committed = bool(self._commit(args=[json.dumps(groups, separators=(",", ":"))]))
        self.settle(owner, committed)
        return committed

    # -- StreamStore -----------------------------------------------------------------------------

    def create(self, key: str, now_ms: int) -> None:
        if self._batched():
            pending = self._pending.get(key)
            if pending is None:
                pending = self._pending[key] = Pending(None, UNCHECKED)
            pending.stream = EventStream(now_ms, maxlen=self.maxlen, ttl_ms=self.ttl_ms)
            pending.ops.append(["c", str(now_ms)])
            return
        stream, meta = self._keys(key)
        # Like a new EventStream: whatever an earlier stream under this key held is gone.
        pipe = self.client.pipeline(transaction=True)
        pipe.delete(stream, meta)
        pipe.hset(meta, "c", now_ms)
        if self.ttl_ms is not None:
            pipe.pexpire(meta, max(2 * self.ttl_ms, RECLAIM_FLOOR_MS))
        pipe.execute()

    def append(self, key: str, data: Mapping[str, object], now_ms: int) -> StreamId:
        if now_ms < 0:
            raise ValueError("now_ms must be >= 0")
        body = json.dumps(data, separators=(",", ":"), ensure_ascii=False)
        if self._batched():
            pending = self._working(key)
            if pending.stream is None:
                pending.stream = EventStream(now_ms, maxlen=self.maxlen, ttl_ms=self.ttl_ms)
            # The copy stores what a read from Redis would give back, not the caller's object.
            entry = pending.stream.append(json.loads(body), now_ms)
            pending.ops.append(["a", str(now_ms), body, entry.id.encode()])
            return entry.id
        args = [now_ms, body, *self._limits(), RECLAIM_FLOOR_MS]
        raw = self._append(keys=self._keys(key), args=args)
        return StreamId.parse(_text(raw))

    def read_after(
        self, key: str, after: StreamId | None, now_ms: int, count: int | None = None
    ) -> ReadResult:
        if count is not None and count < 1:
            raise ValueError("count must be >= 1")
        if self._batched():
            copy = self._working(key).stream
            if copy is None:
                return ReadResult((), False, None)
            return copy.read_after(after, now_ms, count=count)
        else:
            local = self._local_copy(key)
            if local is not None:
                return local.read_after(after, now_ms, count=count)
            fresh = self._fresh.get(key, {}).get(_cursor(after)) if count is None else None
            if fresh is not None:
                return fresh
            handed = _HANDED.get()
            if handed is not None and handed[0] is self and count is None:
                _HANDED.set(None)
                if handed[1] == (key, _cursor(after)):
                    return handed[2]
        raw = self._read(keys=self._read_keys(key), args=self._read_args(after, now_ms, count))
        return self._read_result(raw, after)

    def _local_copy(self, key: str) -> EventStream | None:
        """The committed copy of the stream this process holds (what Redis holds, unless
        another worker has appended since and this process has not heard of it yet)."""
        cached = self._cache.get(key)
        return None if cached is None or cached.stale else cached.stream

    def _read_keys(self, key: str) -> list[str]:
        keys = self._keys(key)
        return keys if self._world_key is None else [*keys, self._world_key]

    def _read_result(self, raw: Any, after: StreamId | None) -> ReadResult:
        """A read script's answer as a result, noting the world version it was read at."""
        if raw is not None and len(raw) > 3 and raw[3]:
            self.read_version = max(self.read_version, int(raw[3]))
        return _result(raw, after)

    def _read_args(self, after: StreamId | None, now_ms: int, count: int | None) -> list[Any]:
        return [
            now_ms,
            "" if after is None else after.encode(),
            "" if count is None else count,
            self._limits()[1],
        ]

    async def prefetch(self, key: str, after: StreamId | None, now_ms: int) -> None:
        """Read the stream after `after` with the async client, so that the `read_after` that
        follows answers without a blocking round trip. Readers of one stream at one cursor (the
        readers one commit woke) share one read. A read begun before the stream changed is not
        kept: its answer may lack the change."""
        if self._aread is None or self._local_copy(key) is not None:
            return
        slot = (key, _cursor(after))
        if slot[1] in self._fresh.get(key, {}):
            return
        task = self._fetching.get(slot)
        if task is None:
            generation = self._generation.get(key, 0)
            task = asyncio.create_task(self._fetch(slot, generation, after, now_ms))
            self._fetching[slot] = task
            self._counting(key)
            task.add_done_callback(lambda _: self._fetched(slot))
        result = await asyncio.shield(task)
        # Kept for this reader's next read even when the stream changed during the fetch (then
        # other readers may not share it): the change woke this reader, which was subscribed
        # before it fetched, so it reads again. Without it, that read fell back to a blocking
        # round trip, and with two workers the feed's wake-ups made that common.
        _HANDED.set((self, slot, result))

    def _fetched(self, slot: tuple[str, str]) -> None:
        self._fetching.pop(slot, None)
        self._unfetching(slot[0])

    def _counting(self, key: str) -> None:
        """One more read of `key` on its way (see `changed`)."""
        self._fetching_keys[key] = self._fetching_keys.get(key, 0) + 1

    def _unfetching(self, key: str) -> None:
        left = self._fetching_keys.pop(key, 1) - 1
        if left:
            self._fetching_keys[key] = left

    async def _fetch(
        self, slot: tuple[str, str], generation: int, after: StreamId | None, now_ms: int
    ) -> ReadResult:
        assert self._aread is not None
        key = slot[0]
        keys = self._read_keys(key)
        raw = await self._aread(keys=keys, args=self._read_args(after, now_ms, None))
        result = self._read_result(raw, after)
        if self._generation.get(key, 0) == generation:
            self._fresh.setdefault(key, {})[slot[1]] = result
            self._fresh.move_to_end(key)
            while len(self._fresh) > CACHED:
                self._fresh.popitem(last=False)
        return result

    def changed(self, key: str) -> None:
        """The stream `key` changed: reads fetched before are stale."""
        if key in self._fetching_keys:
            self._generation[key] = self._generation.get(key, 0) + 1
        else:
            self._generation.pop(key, None)
        self._fresh.pop(key, None)

    def clear(self) -> None:
        # Not deferred to the commit: a reset deletes at once, and runs again if its commit is
        # refused (see the README).
        self._epoch += 1
        self._pending.clear()
        self._handed.clear()
        self._cache.clear()
        self._speculative.clear()
        self._fresh.clear()
        keys = list(self.client.scan_iter(match=_glob_escape(self.prefix) + "*", count=1000))
        for start in range(0, len(keys), 500):
            self.client.delete(*keys[start : start + 500])

    def _limits(self) -> list[str | int]:
        return [
            "" if self.maxlen is None else self.maxlen,
            "" if self.ttl_ms is None else self.ttl_ms,
        ]


def _cursor(after: StreamId | None) -> str:
    return "" if after is None else after.encode()


def _result(raw: Any, after: StreamId | None) -> ReadResult:
    if raw is None:
        return ReadResult((), False, None)
    rows, dropped, first = raw[:3]
    entries = tuple(Entry(StreamId.parse(_text(ident)), _data(fields)) for ident, fields in rows)
    truncated = after is not None and bool(dropped) and after < StreamId.parse(_text(dropped))
    first_id = StreamId.parse(_text(first)) if first else None
    return ReadResult(entries, truncated, first_id)


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _data(fields: Any) -> Mapping[str, object]:
    # XRANGE gives a flat [field, value, ...] list from a script; the only field is `d`.
    value: Mapping[str, object] = json.loads(fields[1])
    return value


def _glob_escape(text: str) -> str:
    return "".join("\\" + c if c in "*?[]\\" else c for c in text)
