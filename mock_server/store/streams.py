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

Every operation is one Lua script, so it is atomic on its own and costs one round trip.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import redis

from ..model.stream import Entry, ReadResult
from ..model.stream_id import StreamId

RECLAIM_FLOOR_MS = 3_600_000

# KEYS: stream, meta. ARGV: now_ms, data, maxlen ('' = none), ttl_ms ('' = none), reclaim floor.
_APPEND = """
local s, m = KEYS[1], KEYS[2]
local now, maxlen, ttl = tonumber(ARGV[1]), ARGV[3], ARGV[4]
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
local ms = now
local last = redis.call('HGET', m, 'l')
if last then
  local last_ms = tonumber(string.match(last, '^(%d+)-'))
  if last_ms >= now then ms = last_ms end
end
local id = redis.call('XADD', s, string.format('%d', ms) .. '-*', 'd', ARGV[2])
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
  local keep = math.max(created + 2 * tonumber(ttl) - now, tonumber(ARGV[5]))
  redis.call('PEXPIRE', s, keep)
  redis.call('PEXPIRE', m, keep)
end
return id
"""

# KEYS: stream, meta. ARGV: now_ms, after ('' = from the start), count ('' = all), ttl_ms.
# Returns false for a missing stream, else {entries, dropped-through or false, first retained id}.
_READ = """
local s, m = KEYS[1], KEYS[2]
local now, after, count, ttl = tonumber(ARGV[1]), ARGV[2], ARGV[3], ARGV[4]
local created = redis.call('HGET', m, 'c')
if not created then return false end
if ttl ~= '' and now >= tonumber(created) + tonumber(ttl) then
  local newest = redis.call('XREVRANGE', s, '+', '-', 'COUNT', 1)
  if #newest > 0 then
    redis.call('HSET', m, 'd', newest[1][1])
    redis.call('XTRIM', s, 'MAXLEN', 0)
  end
end
local start = '-'
if after ~= '' then start = '(' .. after end
local entries
if count == '' then
  entries = redis.call('XRANGE', s, start, '+')
else
  entries = redis.call('XRANGE', s, start, '+', 'COUNT', count)
end
local first = redis.call('XRANGE', s, '-', '+', 'COUNT', 1)
local first_id = false
if #first > 0 then first_id = first[1][1] end
return {entries, redis.call('HGET', m, 'd'), first_id}
"""


class RedisStreams:
    """A `StreamStore` in Redis; `maxlen` and `ttl_ms` as for `MemoryStreams`."""

    def __init__(
        self,
        client: redis.Redis,
        prefix: str,
        *,
        maxlen: int | None,
        ttl_ms: int | None,
    ) -> None:
        if maxlen is not None and maxlen < 0:
            raise ValueError("maxlen must be >= 0")
        if ttl_ms is not None and ttl_ms <= 0:
            raise ValueError("ttl_ms must be > 0")
        self.client = client
        self.prefix = prefix
        self.maxlen = maxlen
        self.ttl_ms = ttl_ms
        self._append = client.register_script(_APPEND)
        self._read = client.register_script(_READ)

    def _keys(self, key: str) -> list[str]:
        return [self.prefix + key, f"{self.prefix}{key}:meta"]

    def create(self, key: str, now_ms: int) -> None:
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
        args = [now_ms, body, *self._limits(), RECLAIM_FLOOR_MS]
        raw = self._append(keys=self._keys(key), args=args)
        return StreamId.parse(_text(raw))

    def read_after(
        self, key: str, after: StreamId | None, now_ms: int, count: int | None = None
    ) -> ReadResult:
        if count is not None and count < 1:
            raise ValueError("count must be >= 1")
        args: list[str | int] = [
            now_ms,
            "" if after is None else after.encode(),
            "" if count is None else count,
        ]
        raw = self._read(keys=self._keys(key), args=[*args, self._limits()[1]])
        if raw is None:
            return ReadResult((), False, None)
        rows, dropped, first = raw
        entries = tuple(
            Entry(StreamId.parse(_text(ident)), _data(fields)) for ident, fields in rows
        )
        truncated = after is not None and bool(dropped) and after < StreamId.parse(_text(dropped))
        first_id = StreamId.parse(_text(first)) if first else None
        return ReadResult(entries, truncated, first_id)

    def clear(self) -> None:
        keys = list(self.client.scan_iter(match=_glob_escape(self.prefix) + "*", count=1000))
        for start in range(0, len(keys), 500):
            self.client.delete(*keys[start : start + 500])

    def _limits(self) -> list[str | int]:
        return [
            "" if self.maxlen is None else self.maxlen,
            "" if self.ttl_ms is None else self.ttl_ms,
        ]


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _data(fields: Any) -> Mapping[str, object]:
    # XRANGE gives a flat [field, value, ...] list from a script; the only field is `d`.
    value: Mapping[str, object] = json.loads(fields[1])
    return value


def _glob_escape(text: str) -> str:
    return "".join("\\" + c if c in "*?[]\\" else c for c in text)
