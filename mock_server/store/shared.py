"""`SharedWorld`: one world for every worker process (and host) pointed at the same Redis.

Event streams live in Redis Streams (`RedisStreams`). Records (jobs, runs, interventions,
traces, logs, webhook deliveries, and the timers: see timers.py) live one per hash field
(`SharedRecords`); the rest of the world (tokens, workspaces, queues, the clock's offset, ...)
is two documents (snapshot.PARTS). Each change carries the world's version: a sorted set maps
every record to the version that last wrote it.

- A *section* is one request or one timer tick. It takes no lock. It begins with one round
  trip that loads what other workers committed since this process's version (the records
  changed, and the rest when that changed) and reads Redis's TIME, so every host's clock agrees
  (`SkewedClock`). It runs, then commits the records it touched whose bytes changed, the rest
  when changed, and its stream appends, as the next version, in one script that first checks
  that nothing the section read was written since the version it loaded (the documents, each
  record it read or looked up, each store it walked: see _COMMIT). A section that wrote nothing
  (a read) makes no second round trip. A safe request (GET, HEAD) that fired no timer and
  counted no rate-limit hit is taken to have changed nothing, without printing the world to
  tell (see `SharedWorld._changed_nothing`; the tests verify it). A refused commit wrote
  nothing; the process rolls its own objects back to the bytes Redis holds and the section
  runs again on the newer world.
  State changes are therefore atomic across processes, and a timer (a job's next step, a
  schedule, a retry, a timeout, a TTL) takes effect once: two workers may run the same tick,
  but only the first commit lands (the tick's timer record changed under the second), and the
  other re-runs against a world without it. A worker killed mid-section holds nothing up.
- Each commit appends to the change feed of every other worker alive (a Redis stream per worker;
  workers beat in a sorted set, see WORKER_TTL_MS): the keys the section notified (a job's
  stream or status) and when the world's next timer is due. Every worker follows its feed with
  a blocking XREAD and wakes its own SSE readers of those keys and its timer driver, so a client
  on any worker sees an append made on another one; a worker alone reads nothing back. A
  reader that read entries brings the model up to date after the read (`catch_up`, one load
  shared by the readers one commit woke), so the model judging entries is never older than
  they are.

Writes conflict only where they meet: two requests on different jobs (AUVY jobs created in one
workspace or two, AVA jobs in two tenants, Strait runs in two projects, steps of different jobs)
commit side by side; two AVA creates in one tenant meet in its queue record, two Strait triggers
in one project in its ledger. What every section reads does meet: the two documents, so a clock
advance, a reset and token rotation, which change a document, refuse every section begun before
them (the operations that span partitions). A request refused TURN_AFTER times takes the
turn so that its next commit lands. What a section reads without a version is not checked: a
stream it read but did not append to. A section that ran the due timers is checked against the
timers due by then (one made after its world refuses it). A section may also skip its load
when the change feed has announced nothing this process lacks (see `enter`); a read that did
then checks what it read in one script after giving the lock back, together with the reads
that ended meanwhile (checks.py). Record keys are computed inside the scripts, so the
store needs one Redis (or a cluster's single slot), not a sharded cluster.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import contextvars
import gc
import hashlib
import json
import logging
import os
import random
import secrets
import socket
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any, TypeVar
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import redis
import redis.asyncio as aioredis
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ..clock import Clock, ManualClock, SkewedClock
from ..errors import Envelope, Unavailable
from ..model.auvy.records import workspace_of
from ..model.ava import tenant_of
from ..model.engine import Engine
from ..model.store import StreamStore
from ..model.strait.records import project_of
from ..model.stream_id import StreamId
from ..profile import ServerProfile
from ..ratelimit import RateLimiter
from ..responses import JSONResponse
from .checks import ReadChecks, ReadSet
from .codec import CodecError
from .line import NO_ANSWER, Line, Replies, unavailable
from .records import UNDECODED, SharedRecords
from .snapshot import PARTS, Root, Snapshots
from .streams import STREAM_FUNCTIONS, RedisStreams
from .timers import SharedScheduler

log = logging.getLogger("mock_server.store")
# The mark of the section the running task belongs to (see `SharedEngine.begin_section`).
_SECTION: contextvars.ContextVar[object | None] = contextvars.ContextVar(
    "mock_server.store.section", default=None
)
T = TypeVar("T")

DEFAULT_PREFIX = "mock_server:"
AIO_CONNECTIONS = 32  # this worker's async connections to Redis, at most
AIO_WAIT_S = 30  # how long a call waits for one of them before it fails
# The garbage collector's thresholds in a process running this store (see `SharedWorld.start`).
GC_THRESHOLDS = (10_000, 5, 10)
LEASE_MS = 2_000  # a leader that died stops the steps for this long at most
LEASE_RETRY_MS = 500
FEED_LENGTH = 1_000
# How long the change feed's XREAD blocks before it returns empty and blocks again.
FEED_BLOCK_MS = 2_000
# Each worker has a feed of its own, so a worker alone never reads its own commits back (that
# was a fifth of a write's time). A commit writes to the feed of every worker whose heartbeat
# (`_BEAT`, at least every HEARTBEAT_MS while it follows its feed) is younger than
# WORKER_TTL_MS: a worker that died stops getting entries then, and its feed expires.
HEARTBEAT_MS = 1_000
WORKER_TTL_MS = 30_000
# A feed read that brought another worker's commits at once is followed by the next only this
# long after it began: while the other worker commits continuously, each read brings all it
# committed meanwhile instead of waking this worker (and Redis) once per commit. It delays
# only what the feed alone tells: an SSE reader here of a key changed there, a due time.
# While this worker's own commits are on their way it reads less often (FEED_PACE_BUSY_MS):
# their answers bring it what the feed announces (see LOAD_SINCE), up to the last of them.
# Reading at the idle pace cost two workers writing side by side a tenth of their throughput
# (bench: POST, Redis 2 workers / 1), and reading again as soon as the answers were in gave
# it all back (a worker under load is between commits again and again). So for up to
# FEED_PACE_BUSY_MS after its last answer a worker hears late of other workers' commits: its
# SSE readers and its due times wait. A section that read what changed meanwhile (records or
# streams) is refused by its check and runs again on the newer world.
FEED_PACE_MS = 2
FEED_PACE_BUSY_MS = 10
# The model methods a timer loaded from Redis may call (see `Call`): the only code a world
# document can name.
TIMER_CALLS = (("auvy", "_tick"), ("ava", "_fire"), ("strait", "_fire"), ("ava_outbox", "_wake"))

# The models' attributes that go to the config document (see snapshot.PARTS). Which side an
# attribute is on only decides what is re-encoded together; a test checks that no object is
# reachable from both documents (it would come back as two copies).
AUVY_CONFIG = frozenset({"jwt_secret", "keys", "pathways", "settings"})
AVA_CONFIG = frozenset({"secret", "settings", "tenants", "workers"})
STRAIT_CONFIG = frozenset({"dependencies", "jobs", "keys", "projects", "settings"})

# What the keys in Redis hold and how; part of the fingerprint.
LAYOUT = 5
# The most sections one commit call carries (a script runs alone in Redis: bounded), and how
# many calls may be on their way at once (see `_commit_all`).
BATCH_MOST = 64
PIPELINE = 2
# How long every section looks at the documents after one changed them undeclared.
CAREFUL_S = 1.0
# How long `stop` waits for the sections already ended to get their commits' answers.
STOP_WAIT_S = 5

# Records are named "STORE\nKEY" in the version index and kept in the hash PREFIX + STORE.

# What a process holding the world at version `ours` lacks: {version, Redis TIME seconds,
# microseconds} or, when newer, that and {live document, fingerprint, config document (each '' =
# unchanged since `ours`), the streams appended to since and the version that last did, then
# name and bytes ('' = removed) of each record changed}, leaving out what version `known` (false:
# none) wrote: the process's own commit, whose answer it has. Reads only. One script's answer:
# one consistent version.
LOAD_SINCE = """
local function load_since(world, versions, streamversions, ours, prefix, known)
  local t = redis.call('TIME')
  local v = tonumber(redis.call('HGET', world, 'v') or '0')
  if v <= ours or (v == known and v == ours + 1) then return {v, t[1], t[2]} end
  local out = {v, t[1], t[2], '', redis.call('HGET', world, 'f') or '', '',
    redis.call('ZRANGEBYSCORE', streamversions, '(' .. ours, '+inf', 'WITHSCORES')}
  local rv = tonumber(redis.call('HGET', world, 'rv') or '0')
  if rv > ours and rv ~= known then out[4] = redis.call('HGET', world, 'b') or '' end
  local cv = tonumber(redis.call('HGET', world, 'cv') or '0')
  if cv > ours and cv ~= known then out[6] = redis.call('HGET', world, 'c') or '' end
  local changed = redis.call('ZRANGEBYSCORE', versions, '(' .. ours, '+inf', 'WITHSCORES')
  for i = 1, #changed, 2 do
    if tonumber(changed[i + 1]) ~= known then
      local name = changed[i]
      local sep = string.find(name, '\\n', 1, true)
      out[#out + 1] = name
      out[#out + 1] = redis.call('HGET', prefix .. string.sub(name, 1, sep - 1),
        string.sub(name, sep + 1)) or ''
    end
  end
  return out
end
"""

# KEYS: world, versions, stream versions. ARGV: our version, records' hash prefix. Needs no
# lock: see LOAD_SINCE.
_ENTER_KEYS = ("world", "versions", "streamversions")
_ENTER = (
    LOAD_SINCE
    + """
return load_since(KEYS[1], KEYS[2], KEYS[3], tonumber(ARGV[1]), ARGV[2], false)
"""
)

# A store's (or partition's) version in the store versions hash is "VERSION|WRITER|FLOOR":
# the newest version that wrote in it, the worker whose commit that was, and the newest version
# that another worker wrote in it before WRITER's latest run of writes there. A record is read
# before it is written, so its one version says all; a store (partition) is written without
# being read, so a section of this worker that walked it, checked against the newest version
# alone, would take a write of its own for the newest and miss another worker's just before
# (`stamp_stores` keeps FLOOR). What worker `me` checks is the newest write there by another:
# `me`'s own since are commits its sections ran before this one (see `_COMMIT`).
STORE_VERSIONS = """
local function parse_store_version(held)
  return string.match(held, '^(%d+)|([^|]*)|(%d+)$')
end

local function others_version(held, me)
  if not held then return '0' end
  local version, writer, floor = parse_store_version(held)
  if not version then return held end
  if writer == me then return floor end
  return version
end

local function stamp_stores(sv, names, written, me)
  for first = 1, #names, 1000 do
    local last = math.min(first + 999, #names)
    local held = redis.call('HMGET', sv, unpack(names, first, last))
    local fields = {}
    for i = first, last do
      local floor = '0'
      local was = held[i - first + 1]
      if was then
        local version, writer, before = parse_store_version(was)
        if writer == me then floor = before else floor = version or '0' end
      end
      fields[#fields + 1] = names[i]
      fields[#fields + 1] = written .. '|' .. me .. '|' .. floor
    end
    redis.call('HSET', sv, unpack(fields))
  end
end
"""

# True when nothing a section read was written after version `ours`, except by the versions
# in `own` (a set: this process's commits the section ran after, see `Ticket`) and, in a store
# it walked, by `me` ('' = nobody: see STORE_VERSIONS): the documents (the world hash `w`), the
# stores and partitions it walked (`stores`, newline-joined, by the store versions hash `sv`),
# the records named in ARGV[first..last] (by the versions sorted set `rv`), and, when it ran the
# due timers up to `ran` ('' = it ran none), which timers were due then (the due times sorted
# set `due`): a timer already due that another commit made after `ours` is one the section
# should have run and did not know of; and the streams in `streams` (lines "KEY\tVERSION\tS",
# see `RedisStreams.section_reads`, by the stream versions sorted set: a commit up to VERSION,
# when the copy read was loaded, is in the copy; one up to `ours` too, unless S says stale).
UNCHANGED_SINCE = (
    STORE_VERSIONS
    + """
local function unchanged_since(w, rv, sv, due, ours, own, me, stores, ran, first, last,
    streamversions, streams)
  local function seen(version)
    version = tonumber(version or '0')
    return version <= ours or own[version]
  end
  if not seen(redis.call('HGET', w, 'rv')) then return false end
  if not seen(redis.call('HGET', w, 'cv')) then return false end
  if ran ~= '' then
    for _, name in ipairs(redis.call('ZRANGEBYSCORE', due, '-inf', ran)) do
      if not seen(redis.call('ZSCORE', rv, 'timers\\n' .. name)) then return false end
    end
  end
  for store in string.gmatch(stores, '[^\\n]+') do
    if not seen(others_version(redis.call('HGET', sv, store), me)) then return false end
  end
  for i = first, last do
    if not seen(redis.call('ZSCORE', rv, ARGV[i])) then return false end
  end
  for stream, at, stale in string.gmatch(streams, '([^\\n\\t]+)\\t(%d+)\\t(s?)') do
    local version = tonumber(redis.call('ZSCORE', streamversions, stream) or '0')
    if version > tonumber(at) and not own[version] and (stale == 's' or version > ours) then
      return false
    end
  end
  return true
end
"""
)

# Redis's clock in ms, as scripts that stamp the workers' heartbeats and read them agree on it.
NOW_MS = """
local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
"""

# KEYS: world, versions, store versions, stats, due times, stream versions. ARGV: how many
# read-only sections follow, then for each: the version it ran on, the stores it walked, how far
# it ran the due timers ('' = not), the streams it read (see UNCHANGED_SINCE), how many record
# names follow, those names. {Redis TIME seconds,
# microseconds, then per section 1 when nothing it read has been written since (its answer is
# the world's as it now is), else 0}. What a section that skipped its load (see
# `SharedWorld.enter`) checks instead of committing; the checks of sections that ended while
# one was on its way share the next round trip (checks.py).
_VALIDATE_KEYS = ("world", "versions", "storeversions", "stats", "due", "streamversions")
_VALIDATE = (
    UNCHANGED_SINCE
    + """
local t = redis.call('TIME')
local v = tonumber(redis.call('HGET', KEYS[1], 'v') or '0')
local out = {t[1], t[2]}
local i = 2
for _ = 1, tonumber(ARGV[1]) do
  local ours = tonumber(ARGV[i])
  local last = i + 4 + tonumber(ARGV[i + 4])
  -- A stale stream copy (see UNCHANGED_SINCE) is checked even on the world it ran on.
  local current = v == ours and not string.find(ARGV[i + 3], '\\ts', 1, true)
  if current or unchanged_since(KEYS[1], KEYS[2], KEYS[3], KEYS[5], ours, {}, '', ARGV[i + 1],
      ARGV[i + 2], i + 5, last, KEYS[6], ARGV[i + 3]) then
    out[#out + 1] = 1
  else
    redis.call('HINCRBY', KEYS[4], 'stale_reads', 1)
    out[#out + 1] = 0
  end
  i = last + 1
end
return out
"""
)

# A section's outcome in _COMMIT: landed (or, a read, found unchanged), or refused, writing
# nothing.
LANDED = 1
CONFLICT = -2  # another section wrote something this one read, since it loaded the world
STREAM_MOVED = -3  # a stream changed under the section (written outside any section)
NOT_OUR_TURN = -4  # another worker holds the turn (see TURN_AFTER)
CASCADE = -5  # it ran after a section of this process that was refused
# What `SharedWorld._leave` says of a section besides LANDED: its commit was refused (one of the
# above), or it was doomed (it ran on stand-ins for streams this process lacked: see `enter`).
REFUSED, DOOMED = 0, -6
REFUSALS = {
    CONFLICT: "conflicts",
    STREAM_MOVED: "streams_moved",
    NOT_OUR_TURN: "turn_waits",
    CASCADE: "cascades",
}

# Optimism can starve: under many writes a request may lose to other commits again and again.
# After TURN_AFTER refusals in a row it takes the *turn* (SET NX with a TURN_MS expiry): while a
# turn is held only its holder commits, so its next attempt lands. A holder that dies stalls
# other writes for TURN_MS at most, and only while writes were contended anyway.
TURN_AFTER = 3
TURN_MS = 1_000
# How long a starving request waits to get the turn before answering 503.
TURN_WAIT_MS = 3 * TURN_MS

# Each ticket (see `Ticket`) in _COMMIT is WRITE (commit it), CHECK (a read: check it), or
# neither (a read whose answer only needs the sections before it to land).
WRITE, CHECK, FOLLOW = "w", "c", ""
# The fixed ARGV of _COMMIT before its tickets, and of each ticket before its names.
COMMIT_HEAD = 11
TICKET_HEAD = 13

# KEYS: world, workers, versions, stream versions, stats (counts of commits and refusals: no
# part of the world, so counting a refusal writes nothing the world holds), turn, store
# versions, due times, batches (per worker: how its last call went, "sequence:broken:version").
# ARGV: the version this process holds (what it lacks comes back, as _ENTER answers it),
# records' hash prefix, fingerprint, worker, feed length, the feeds' key prefix, '1' to drop
# every record first (a world replaced), the stores' names, how many tickets follow, this call's
# sequence number, the one of the call it was sent after while that one was on its way ('' =
# none: see `Flight`), then per ticket: the version its section began on, this process's commits
# it ran after (comma-joined, see `Ticket`), live document and config document ('' = unchanged),
# the keys it notified, the stores it scanned, how far it ran the due timers ('' = not), the
# turn it holds ('' = none, see TURN_AFTER), its streams' queued changes (JSON, see
# `RedisStreams.take`), WRITE/CHECK/FOLLOW, how many record names it read, how many records it
# changed, the streams it read (see UNCHANGED_SINCE), those names, then name, bytes ('' =
# removed; a split store's prefixed by the record's partition and a newline, see records.py)
# and due time ('' = not a timer, '-' = a timer removed) of each changed record. Returns {what
# this process lacked (before the batch), the tickets' outcomes (LANDED or a refusal), the
# version the batch wrote (0: none), the world's next due time or ''}.
#
# This is the concurrency control, and it takes no lock: a section may commit when nothing it
# read has been written since the version it began on (optimistic, validated by read set),
# except by this process's own commits that it ran after. Every section reads the two
# documents, so a change to either refuses every section that began on an older one; a record
# read, written or looked up in vain is checked by its own version, a store walked or counted
# by the store's version, and a partition listed by the partition's ("STORE\tPARTITION" among
# the store versions, moved by every write in it). So two requests on different jobs (two
# workspaces, say) commit side by side, and the one that commits second is not re-run, and a
# listing is refused only by a write in the partition it listed. Each ticket's checks come
# before its first write: Redis does not roll a script back. The tickets of one call are one
# process's sections in the order they ran, each after the ones before (it may have read what
# they wrote): after a refused one, every later one is refused too (CASCADE), and the landed
# ones share one new version. A call sent after one still on its way ran after all of its
# tickets: when that one broke (or never ran), every ticket of this one is refused too.
_COMMIT_KEYS = (
    "world",
    "workers",
    "versions",
    "streamversions",
    "stats",
    "turn",
    "storeversions",
    "due",
    "batches",
)
_COMMIT = (
    STREAM_FUNCTIONS
    + UNCHANGED_SINCE
    + LOAD_SINCE
    + NOW_MS
    + f"local WORKER_TTL_MS = {WORKER_TTL_MS}\n"
    + f"local COMMIT_HEAD, TICKET_HEAD = {COMMIT_HEAD}, {TICKET_HEAD}\n"
    + f"local REFUSALS = {{[{CONFLICT}] = '{REFUSALS[CONFLICT]}', "
    + f"[{STREAM_MOVED}] = '{REFUSALS[STREAM_MOVED]}', "
    + f"[{NOT_OUR_TURN}] = '{REFUSALS[NOT_OUR_TURN]}', [{CASCADE}] = '{REFUSALS[CASCADE]}'}}\n"
    + """
-- One command per ticket rather than one per record, in pieces Lua's stack can unpack.
local function in_chunks(command, key, list)
  for first = 1, #list, 2000 do
    redis.call(command, key, unpack(list, first, math.min(first + 1999, #list)))
  end
end
local broken = false
local before = false
if ARGV[11] ~= '' then
  local last = redis.call('HGET', KEYS[9], ARGV[4]) or ''
  local seq, was_broken, version = string.match(last, '^(%d+):(%d):(%d+)$')
  if seq ~= ARGV[11] or was_broken == '1' then
    broken = true
  elseif version ~= '0' then
    before = tonumber(version)
  end
end
local lacked = load_since(KEYS[1], KEYS[3], KEYS[4], tonumber(ARGV[1]), ARGV[2], before)
local replace = ARGV[7] == '1'
local turn = redis.call('GET', KEYS[6])
-- The world's version, which only this script's first landed ticket moves while it runs.
local v = tonumber(redis.call('HGET', KEYS[1], 'v') or '0')
local landed = 0
local written = false
local outcomes, notified, appended = {}, {}, {}
local i = COMMIT_HEAD + 1
for t = 1, tonumber(ARGV[9]) do
  local kind = ARGV[i + 9]
  local first = i + TICKET_HEAD
  local records = first + tonumber(ARGV[i + 10])
  local after = records + 3 * tonumber(ARGV[i + 11])
  local outcome = 1
  local streams = {}
  if broken then
    outcome = -5
  elseif kind == 'w' and turn and turn ~= ARGV[i + 7] then
    outcome = -4
  elseif kind ~= '' then
    local base = tonumber(ARGV[i])
    local own = {}
    for version in string.gmatch(ARGV[i + 1], '%d+') do own[tonumber(version)] = true end
    if before then own[before] = true end
    if written then own[written] = true end
    local moved = v ~= base or string.find(ARGV[i + 12], '\\ts', 1, true)
    if moved and (replace or not unchanged_since(KEYS[1], KEYS[3], KEYS[7], KEYS[8], base,
        own, ARGV[4], ARGV[i + 5], ARGV[i + 6], first, records - 1, KEYS[4], ARGV[i + 12])) then
      outcome = -2
    elseif kind == 'w' then
      streams = cjson.decode(ARGV[i + 8])
      if not streams_unchanged(streams) then outcome = -3 end
    end
  end
  if outcome == 1 and kind == 'w' then
    if not written then
      written = redis.call('HINCRBY', KEYS[1], 'v', 1)
      v = written
      redis.call('HSET', KEYS[1], 'f', ARGV[3])
      if replace then
        redis.call('DEL', KEYS[3], KEYS[7], KEYS[8])
        for store in string.gmatch(ARGV[8], '[^\\n]+') do redis.call('DEL', ARGV[2] .. store) end
      end
    end
    if turn and turn == ARGV[i + 7] then
      redis.call('DEL', KEYS[6])
      turn = false
    end
    landed = landed + 1
    if ARGV[i + 2] ~= '' then redis.call('HSET', KEYS[1], 'b', ARGV[i + 2], 'rv', written) end
    if ARGV[i + 3] ~= '' then redis.call('HSET', KEYS[1], 'c', ARGV[i + 3], 'cv', written) end
    local versions, stores = {}, {}
    for r = records, after - 1, 3 do
      local name = ARGV[r]
      local sep = string.find(name, '\\n', 1, true)
      local store = string.sub(name, 1, sep - 1)
      local key = string.sub(name, sep + 1)
      local value = ARGV[r + 1]
      -- A split store's record comes as PARTITION '\\n' BYTES (BYTES '' = removed).
      local cut = string.find(value, '\\n', 1, true)
      if cut then stores[store .. '\\t' .. string.sub(value, 1, cut - 1)] = true end
      if value == '' or cut == #value then
        redis.call('HDEL', ARGV[2] .. store, key)
      else
        redis.call('HSET', ARGV[2] .. store, key, value)
      end
      versions[#versions + 1] = written
      versions[#versions + 1] = name
      stores[store] = true
      local due = ARGV[r + 2]
      if due == '-' then
        redis.call('ZREM', KEYS[8], key)
      elseif due ~= '' then
        redis.call('ZADD', KEYS[8], due, key)
      end
    end
    if #versions > 0 then
      in_chunks('ZADD', KEYS[3], versions)
      local names = {}
      for store in pairs(stores) do names[#names + 1] = store end
      stamp_stores(KEYS[7], names, written, ARGV[4])
    end
    write_streams(streams)
    for _, g in ipairs(streams) do
      redis.call('ZADD', KEYS[4], written, g[1])
      appended[#appended + 1] = g[1]
    end
    if ARGV[i + 4] ~= '' then notified[#notified + 1] = ARGV[i + 4] end
  elseif outcome ~= 1 then
    if kind == 'w' then broken = true end
    if kind == 'c' and outcome == -2 then
      redis.call('HINCRBY', KEYS[5], 'stale_reads', 1)
    else
      redis.call('HINCRBY', KEYS[5], REFUSALS[outcome], 1)
    end
  end
  outcomes[t] = outcome
  i = after
end
local next_due = ''
if written then
  local first = redis.call('ZRANGE', KEYS[8], 0, 0, 'WITHSCORES')
  next_due = first[2] or ''
  -- The change feed: an entry in the feed of every other worker alive (see WORKER_TTL_MS).
  for _, w in ipairs(redis.call('ZRANGEBYSCORE', KEYS[2], now_ms() - WORKER_TTL_MS, '+inf')) do
    if w ~= ARGV[4] then
      local feed = ARGV[6] .. w
      redis.call('XADD', feed, 'MAXLEN', '~', ARGV[5], '*', 'w', ARGV[4], 'v', written,
        'k', table.concat(notified, '\\n'), 'd', next_due, 's', table.concat(appended, '\\n'))
      redis.call('PEXPIRE', feed, 2 * WORKER_TTL_MS)
    end
  end
end
redis.call('HSET', KEYS[9], ARGV[4],
  ARGV[10] .. ':' .. (broken and '1' or '0') .. ':' .. (written or 0))
if landed > 0 then redis.call('HINCRBY', KEYS[5], 'commits', landed) end
return {lacked, outcomes, written or 0, next_due}
"""
)


# KEYS: turn. ARGV: token. Deletes the turn only if it is still this token's.
_GIVE_BACK = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""

# KEYS: workers. ARGV: worker. This worker is alive as of Redis's TIME (returned, in ms);
# workers silent for ten times WORKER_TTL_MS are forgotten.
_BEAT_KEYS = ("workers",)
_BEAT = (
    NOW_MS
    + f"""
local now = now_ms()
redis.call('ZADD', KEYS[1], now, ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - 10 * {WORKER_TTL_MS})
return now
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

    Outside a section (an SSE reader's loop, say) `run_due` does nothing: timers run in a
    section, whose commit is the only way other workers learn that they ran.
    """

    def __init__(self, clock: Clock) -> None:
        super().__init__(clock)
        self.timers = SharedScheduler()
        self.scheduler = self.timers
        self.shared = False  # until the world is in Redis, it is this process's alone
        # The running section's mark (see `begin_section`), None between sections.
        self.owner: object | None = None
        self.changed: set[str] = set()
        # Whether this worker held the timer driver's lease when it last asked.
        self.leading = False
        # How far the current section ran the due timers (None: it ran none), and how many
        # it fired.
        self.ran_until: int | None = None
        self.fired = 0

    def run_due(self) -> int:
        """What a request runs before it looks at the world. On a real clock only the worker
        leading the timer driver runs due timers here: were every worker to, each request on
        a follower would run the ticks the leader is running too, and under load their commits
        refuse each other until both crawl (600 streams over 60 jobs on two workers stalled).
        A follower's request then sees a step a few milliseconds late, as any client of a
        server whose timers run on their own may. A manual clock has no driver: run them."""
        if self.shared and not self.leading and not self.clock.manual:
            return 0
        return self.run_ticks()

    def run_ticks(self) -> int:
        """The due timers, run only inside this process's current section."""
        if self.shared and not self.in_section():
            return 0
        # What the section read: which timers were due by then (checked by its commit).
        self.ran_until = max(self.ran_until or 0, self.clock.now_ms())
        fired = super().run_due()
        self.fired += fired
        return fired

    def begin_section(self) -> None:
        """The calling task now runs this process's section. Marked in a context variable,
        not by comparing tasks: asking asyncio for the current task asks for the running loop,
        which in Python 3.11 makes a getpid() system call (to notice a fork), and those calls
        stood out in a busy worker's profile. A task started inside a section inherits the
        mark, as work the section itself started."""
        mark = object()
        self.owner = mark
        _SECTION.set(mark)

    def end_section(self) -> None:
        self.owner = None

    def in_section(self) -> bool:
        """Whether the caller runs this process's current section."""
        owner = self.owner
        return owner is not None and _SECTION.get() is owner

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

    def notify_everyone_here(self) -> None:
        """Wake every listener of this process (changes it may have missed)."""
        for key in list(self._listeners):
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


class SharedWorld:
    """The coordination of one worker process; see the module docstring."""

    def __init__(self, url: str, profile: ServerProfile, *, prefix: str = DEFAULT_PREFIX) -> None:
        self.url = url
        self.prefix = prefix
        self.client = redis.Redis.from_url(url)
        # A pool that waits for a free connection: a thousand SSE readers woken by one commit
        # each prefetch their stream, and redis-py's default async pool (100 connections)
        # raises MaxConnectionsError for the 101st instead, failing that reader's stream.
        # (`from_pool`: the client owns the pool, so closing the client closes its connections.)
        self.aio = aioredis.Redis.from_pool(
            aioredis.BlockingConnectionPool.from_url(
                url, max_connections=AIO_CONNECTIONS, timeout=AIO_WAIT_S
            )
        )
        # The change feed's blocking XREAD gets a line of its own: closing it is how `stop`
        # ends a read that swallowed its cancellation.
        self._feed_line = Line(url)
        self._stopping = False
        self.engine = SharedEngine(ManualClock() if profile.clock == "manual" else SkewedClock())
        self.engine.catch_up = self.catch_up
        self.engine.prefetch = self.prefetch
        self._scheduler = self.engine.timers
        # The pid first, so a test can tell which process answered; the suffix keeps two apps of
        # one process (in tests) apart.
        self.worker = f"{os.getpid()}@{socket.gethostname()}:{secrets.token_hex(2)}"
        self.version = 0
        # The layout in Redis is part of it: a world written by an older layout is replaced.
        self.fingerprint = hashlib.sha256(f"{LAYOUT}{profile!r}".encode()).hexdigest()[:16]
        self.due: int | None = None  # the world's next timer, as last heard
        self._due_version = -1  # the world version `due` was heard for
        # Versions this process committed and has not loaded since: their changes are its own.
        self._mine: set[int] = set()
        # The newest world version this process has heard of (its commits, the change feed).
        self._known_version = 0
        self._snapshots: Snapshots | None = None
        self._stores: dict[str, RedisStreams] = {}
        self._records: dict[str, SharedRecords[Any]] = {}
        # The rest of the world as this process last saw it (Snapshots.state_print), and the
        # bytes Redis holds for it at `version` (what a refused section rolls back to).
        self._state_print: dict[str, bytes | None] = dict.fromkeys(PARTS)
        self._rest: dict[str, bytes] = {}
        self._counts = {
            "commits": 0,
            "stale_reads": 0,
            "undeclared": 0,
            "stream_loads": 0,
            **dict.fromkeys(REFUSALS.values(), 0),
        }
        # Whether the running section skipped its load and must check its reads (see `enter`),
        # and whether it runs after sections not yet known committed (see `Ticket`).
        self._check_reads = False
        self._speculating = False
        # Sections that left, waiting for the next batch (`_commit_all`), the batch on its
        # way, and the task that commits them.
        self._queue: list[Ticket] = []
        self._flights: collections.deque[Flight] = collections.deque()
        self._next_flight = 1
        self._script_loaded = False  # whether Redis holds _COMMIT, as far as this process knows
        self._more = asyncio.Event()  # set when a section leaves a ticket
        self._committer: asyncio.Task[None] | None = None
        self._idle = asyncio.Event()  # set while no section is waiting for a commit
        self._idle.set()
        # Callers waiting for a model with nothing speculative in it (`_quiet_locked`): new
        # sections wait for them.
        self._holding = 0
        self._unheld = asyncio.Event()
        self._unheld.set()
        # This process's model holds state it cannot write or whose fate is unknown: it loads
        # the whole world Redis holds before its next section.
        self._lost = False
        # The newest change of each document whose commit is on its way (see `_newest_print`).
        self._pending_docs: dict[str, Ticket] = {}
        # Until when every section looks at the documents (see `_documents_checked`).
        self._careful_until = 0.0
        self._safe = False  # whether the running section is a safe request (see `enter`)
        # Whether the running section's runner runs it again when it is refused: a stream it
        # lacks then dooms it rather than being loaded while the event loop waits (streams.py).
        self._deferring = False
        self._limiter: RateLimiter | None = None
        self._limiter_changes = -1  # the limiter's count of changes when the section began
        self._marks = (-1, -1)  # `_document_marks` when the section began
        self._section_turn = ""
        # Stream readers' shared loads (`catch_up`): how many begun and finished, the running one.
        self._catch_started = 0
        self._catch_finished = 0
        self._catch_task: asyncio.Task[None] | None = None
        self._local = asyncio.Lock()
        self._wake = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        names = {*_ENTER_KEYS, *_VALIDATE_KEYS, *_COMMIT_KEYS, "driver"}
        self._keys = {name: prefix + name for name in names}
        self._feed_prefix = prefix + "changes:"
        self._feed = self._feed_prefix + self.worker
        self._beaten = 0.0  # time.monotonic() of this worker's last heartbeat
        self._record_prefix = prefix + "records:"
        self._lead = self.aio.register_script(_LEAD)
        self._give_back = self.aio.register_script(_GIVE_BACK)
        # Sections load and commit on a line of their own (line.py): they run one at a time.
        self._section_line = Line(url)
        self._checks = ReadChecks(
            url,
            _VALIDATE,
            self._keys_of(_VALIDATE_KEYS),
            heard=self._measure_skew,
            stale=self._stale,
        )

    def _keys_of(self, names: tuple[str, ...]) -> list[str]:
        """A script's KEYS, in its order."""
        return [self._keys[name] for name in names]

    # -- wiring ----------------------------------------------------------------------------------

    def streams(self, name: str, maxlen: int | None, ttl_ms: int | None) -> StreamStore:
        """`World`'s stream factory: each model's streams under their own key prefix."""
        store = RedisStreams(
            self.client,
            f"{self.prefix}{name}:",
            maxlen=maxlen,
            ttl_ms=ttl_ms,
            batching=self._in_section,
            deferring=lambda: self._deferring,
            aio=self.aio,
            world_key=self._keys["world"],
        )
        self._stores[name] = store
        return store

    def _in_section(self) -> bool:
        """Whether the caller runs this process's current section (its stream changes are then
        the section's, committed with it)."""
        return self.engine.shared and self.engine.in_section()

    def attach(self, world: Any, *, limiter: RateLimiter) -> None:
        """Name the objects whose state is shared; everything else stays per process. The
        models' record stores are replaced by `SharedRecords` holding the same (seeded) records."""
        engine = world.engine
        self._limiter = limiter
        # Split by partition: the stores the APIs list (model.store.in_partition).
        for owner, attr, name, partition in (
            (world.auvy, "jobs", "auvy.jobs", workspace_of),
            (world.auvy, "interventions", "auvy.interventions", workspace_of),
            (world.auvy, "traces", "auvy.traces", None),
            (world.ava, "jobs", "ava.jobs", tenant_of),
            (world.ava, "logs", "ava.logs", None),
            (world.ava, "queues", "ava.queues", None),
            (world.ava_outbox, "records", "ava_outbox.records", None),
            (world.ava_outbox, "open", "ava_outbox.open", None),
            (world.strait, "runs", "strait.runs", project_of),
            (world.strait, "records", "strait.records", None),
            (world.strait, "ledgers", "strait.ledgers", None),
        ):
            records = SharedRecords[Any](name, getattr(owner, attr).items(), partition=partition)
            setattr(owner, attr, records)
            self._records[name] = records
        self._records[self._scheduler.records.name] = self._scheduler.records
        self._snapshots = Snapshots(
            [
                Root("clock", engine.clock, frozenset({"skew_ms"})),
                Root("scheduler", engine.scheduler, SharedScheduler.LOCAL),
                Root("auvy", world.auvy, config=AUVY_CONFIG),
                Root("receptors", world.receptors, config=frozenset({"receptors"})),
                Root("ava_outbox", world.ava_outbox, config=frozenset({"policy", "endpoints"})),
                Root("ava", world.ava, config=AVA_CONFIG),
                Root("strait", world.strait, config=STRAIT_CONFIG),
                Root("limiter", limiter, frozenset({"changes"})),
            ],
            {
                "engine": engine,
                **{f"streams:{n}": s for n, s in self._stores.items()},
                **{f"records:{n}": r for n, r in self._records.items()},
            },
            TIMER_CALLS,
        )
        for records in self._records.values():
            records.decode = self._snapshots.loads_value

    # -- sections ------------------------------------------------------------------------------

    async def _catch_up(self) -> None:
        """Load what other workers committed since this process's version (one round trip, no
        lock); also re-measures the clock's skew against Redis's TIME."""
        if self._lost:
            self._lost = False
            self.version = -1  # the whole world
        sent = time.time_ns()
        found: list[Any] = await self._section_call(
            _ENTER, _ENTER_KEYS, [self.version, self._record_prefix]
        )
        self._measure_skew(found[1], found[2], sent)
        self._load(found)

    async def _section_call(self, script: str, keys: tuple[str, ...], args: list[Any]) -> Any:
        """A script on the sections' own line (they run one at a time, so it is free), carried
        to its end even when the caller is cancelled (`_finish`); a Redis that cannot be
        reached or does not answer in time is Unavailable (the APIs' 503)."""
        try:
            return await _finish(
                self._section_line.script(script, self._keys_of(keys), args, deadline_s=AIO_WAIT_S)
            )
        except NO_ANSWER as exc:
            raise unavailable(exc, AIO_WAIT_S) from exc

    def _measure_skew(self, seconds: Any, micros: Any, sent_ns: int) -> None:
        """Redis's TIME (`seconds`, `micros`), read in a round trip begun at `sent_ns`."""
        clock = self.engine.clock
        if not isinstance(clock, SkewedClock):
            return
        received = time.time_ns()
        redis_ms = int(seconds) * 1000 + int(micros) // 1000
        # Redis read its clock somewhere in the round trip: assume the middle.
        clock.observe(redis_ms, (sent_ns + received) // 2_000_000)

    async def enter(
        self,
        *,
        turn: str = "",
        optimistic: bool = False,
        check_reads: bool = True,
        safe: bool = False,
        again: bool = False,
    ) -> None:
        """Begin a section (this process's sections run one at a time); `turn` is the token of
        the turn the caller holds, if any (see TURN_AFTER). An `optimistic` section skips the
        round trip that loads other workers' commits when the change feed has announced none
        this process lacks, or when this process's own commits are on their way (their answer
        brings what it lacks: see `_commit_all`). What the section read is checked at its end
        instead: a write's commit checks it anyway, and a section that wrote nothing checks it
        in the round trip it would otherwise have begun with (`_VALIDATE`, or with the commits
        on their way). Either way, one that ran on an older world than Redis holds, and read
        something since changed, is refused and runs again with a load: a request's answer
        still reflects every commit made before it arrived, and a write costs no round trip of
        its own. Background work that answers nobody (timer ticks, webhook dispatch) passes
        `check_reads=False`: when it wrote nothing, what it read on a world one commit old
        changes nothing, and the feed wakes it again for that commit.

        A `safe` section is a request whose method HTTP calls safe (GET, HEAD): one that fires
        no timer is taken to change nothing (see `_changed_nothing`); the tests check it does
        not. A caller that runs the section `again` when `leave` says it was refused lets it
        run on stand-ins for the streams this process holds no copy of: `leave` then undoes
        it, loads them without blocking the event loop, and says refused (see `_abort`)."""
        while self._holding:
            await self._unheld.wait()
        await self._local.acquire()
        try:
            must_load = self._lost or self.version <= 0 or not optimistic
            if must_load and self._busy():
                self._local.release()
                await self._quiet_locked()
            self._speculating = self._busy()
            skip = self._speculating or (not must_load and 0 < self._known_version <= self.version)
            self._check_reads = skip and check_reads
            if not skip:
                await self._catch_up()
        except BaseException:
            self._local.release()
            raise
        self._section_turn = turn
        self._safe = safe
        self._deferring = again
        self._limiter_changes = self._limiter_mark()
        self._marks = self._document_marks()
        self.engine.changed.clear()
        self._untouch()
        self.engine.ran_until = None
        self.engine.fired = 0
        self._scheduler.begin(self.version)
        for store in self._stores.values():
            store.discard()
        self.engine.begin_section()

    def _busy(self) -> bool:
        """Whether sections of this process have left and are not yet known committed."""
        return bool(self._queue) or bool(self._flights)

    async def _quiet_locked(self) -> None:
        """Take the lock once every section this process began is known committed or refused
        (its model then holds nothing speculative), holding new sections back meanwhile."""
        self._holding += 1
        self._unheld.clear()
        try:
            while True:
                await self._local.acquire()
                if not self._busy():
                    return
                self._local.release()
                await self._idle.wait()
        finally:
            self._holding -= 1
            if not self._holding:
                self._unheld.set()

    def _untouch(self) -> None:
        # What was read outside a section (an SSE reader judging its entries) changed nothing.
        for records in self._records.values():
            if records.was_read():
                records.untouch()

    def _changed_records(self) -> tuple[list[str | bytes], list[Changed], ReadSet]:
        """Name, bytes and due time of each touched record whose bytes differ from what Redis
        holds, and what the section read (what its commit must find unchanged)."""
        snapshots = self._require()
        timers = self._scheduler.records
        names: list[str | bytes] = []
        changed: list[Changed] = []
        read = self._read_set(untouch=False)
        for records in self._records.values():
            pending = records.pending
            for key in records.touched:
                value = records.current(key)
                # Told from the newest change on its way, if any, else from what Redis holds.
                before: Changed | None = pending.get(key) if pending else None
                # A record Redis does not hold yet is written anyway: no print to tell.
                known = key in records.blobs if before is None else before.printed is not None
                printed = None if value is None or not known else snapshots.print_value(value)
                if printed is not None and printed == (
                    records.prints.get(key) if before is None else before.printed
                ):
                    continue
                blob = b"" if value is None else snapshots.dumps_value(value)
                if blob != (records.blobs.get(key, b"") if before is None else before.blob):
                    due = ""
                    if records is timers:
                        due = "-" if value is None else str(value.due_ms)
                    names += (f"{records.name}\n{key}", records.stored(key, blob), due)
                    changed.append(Changed(records, key, blob, printed))
                elif printed is not None and before is None:
                    records.prints[key] = printed
            records.untouch()
        return names, changed, read

    def _read_set(self, *, untouch: bool = True) -> ReadSet:
        """What the section read, that its commit (or check) must find unchanged."""
        ran = self.engine.ran_until
        read = ReadSet(self.version, [], [], "" if ran is None else str(ran))
        for records in self._records.values():
            # Most sections touch one or two of the dozen stores.
            if not records.was_read():
                continue
            if records.scanned:
                read.stores.append(records.name)
            elif records.scanned_parts:
                read.stores += records.read_parts()
            read.names += records.read_names()
            if untouch:
                records.untouch()
        return read

    def _changed_nothing(self, streams: list[list[Any]]) -> bool:
        """Whether the section is known to have changed nothing without looking: a safe
        request (GET, HEAD: see `enter`) that fired no timer, notified nothing and appended to
        no stream. Looking (printing both documents and every record it touched) was most of
        a read's cost. With verification on (snapshot.VERIFY_ENV, as in the tests) it looks
        anyway, and `leave` fails a safe request that changed something."""
        return (
            self._presumed_unchanged()
            and not self.engine.changed
            and not streams
            and not self._require().verify
        )

    def _presumed_unchanged(self) -> bool:
        """A safe request that fired no timer and counted no rate-limit hit: what
        `_changed_nothing` takes to have changed nothing, and verification checks."""
        return (
            self._safe and not self.engine.fired and self._limiter_changes == self._limiter_mark()
        )

    def _limiter_mark(self) -> int:
        # A rate-limited GET changes the limiter (in the live document), by design.
        return -1 if self._limiter is None else self._limiter.changes

    async def leave(self, *, replace: bool = False) -> bool:
        """End the section; True once it is committed, False when its commit was refused
        (another worker committed first, or a section of this process it ran after was
        refused) or it was doomed (see `enter`): nothing the section did (state or events) was
        written, this process has rolled it back, and the caller may run the section again.

        The lock is given back before the commit's answer: the next section runs meanwhile, on
        the model this one left (see `Ticket`), and the sections that end while one commit is
        on its way share the next one (`_commit_all`). A section that wrote nothing answers at
        once, unless it ran after sections not yet known committed (it may have read what they
        wrote): it then waits for them."""
        return await self._leave(replace=replace) == LANDED

    async def _leave(self, *, replace: bool = False) -> int:
        """`leave`, saying LANDED, REFUSED or DOOMED."""
        missing = {store: keys for store in self._stores.values() if (keys := store.take_missing())}
        if missing:
            # The copies it appended to are dropped too: loaded again with the missing ones,
            # or the next run would lack them.
            for store, keys in self._abort().items():
                missing[store] = [*missing.get(store, []), *keys]
            self._counts["stream_loads"] += 1
            # Once this process's commits on their way have landed (a stream they append to is
            # not as Redis holds it until then; the section's next run waits for them anyway),
            # and outside the lock: other sections run meanwhile. Reads only: a load cut off by
            # its deadline or a cancelled caller leaves nothing behind.
            await self._quiet_locked()
            self._local.release()
            try:
                async with asyncio.timeout(AIO_WAIT_S):
                    await asyncio.gather(*(s.load(keys) for s, keys in missing.items()))
            except NO_ANSWER as exc:
                raise unavailable(exc, AIO_WAIT_S) from exc
            return DOOMED
        self.engine.end_section()
        owner = object()
        ticket: Ticket | None = None
        check: ReadSet | None = None
        try:
            stores = self._stores.values()
            streams_read = [key for store in stores for key in store.section_reads()]
            streams = [g for store in stores for g in store.take(owner)]
            try:
                if not replace and self._changed_nothing(streams):
                    changes, read = None, self._read_set()
                else:
                    changes, read = self._changes(streams, replace)
                read.streams = streams_read
            except BaseException:
                # State this process cannot write: it reloads the whole world Redis holds
                # before its next section.
                self._settle_streams(owner, committed=False)
                self._lost = True
                raise
            # A copy kept for this run though another worker appended to it since (see
            # `RedisStreams.forget`) is checked even when the section loaded: the world it
            # loaded does not vouch for it.
            checked = self._check_reads or any(r.endswith("\ts") for r in streams_read)
            if changes is not None:
                notified = "\n".join(sorted(self.engine.changed))
                ticket = Ticket(WRITE, read, owner, changes, streams, notified)
                ticket.turn, ticket.replace = self._section_turn, replace
                for change in changes.changed:
                    change.records.pending[change.key] = change
                for part in changes.docs:
                    self._pending_docs[part] = ticket
            elif self._speculating:
                ticket = Ticket(CHECK if checked else FOLLOW, read, owner)
            elif checked:
                check = read
            if ticket is not None:
                ticket.done = self._loop().create_future()
                self._queue.append(ticket)
                self._idle.clear()
                self._more.set()
                if self._committer is None or self._committer.done():
                    self._committer = self._loop().create_task(self._commit_all())
        finally:
            self.engine.changed.clear()
            for store in self._stores.values():
                store.discard()
            self._deferring = False
            self._local.release()
        if ticket is not None:
            # Not shielded: a request cancelled meanwhile cancels only this future; its ticket
            # stays in its batch, whose answer skips a future already done (`_answer`), so the
            # commit lands or not as it would have. A shield cost a loop turn per section.
            return LANDED if await ticket.done else REFUSED
        if check is not None:
            # Outside the lock: the next section runs while this one's check is on its way (it
            # wrote nothing another could depend on), and may share its round trip.
            return LANDED if await self._checks.check(check) else REFUSED
        return LANDED

    def _abort(self) -> dict[RedisStreams, list[str]]:
        """End a doomed section (it ran on stand-ins for streams it lacked, see `enter`)
        without committing it: what it changed in this process (records, documents, timers,
        stream copies) goes back to what the sections before it left, whose commits may still
        be on their way. Returns the streams whose copies it dropped."""
        self.engine.end_section()
        dropped: dict[RedisStreams, list[str]] = {}
        try:
            snapshots = self._require()
            _, changed, _ = self._changed_records()
            moved = [p for p in PARTS if snapshots.state_print(p) != self._newest_print(p)]
            docs: dict[str, bytes] = {}
            for part in moved:
                ticket = self._pending_docs.get(part)
                docs[part] = ticket.docs()[part] if ticket is not None else self._rest[part]
            for change in changed:
                records, key = change.records, change.key
                before = records.pending.get(key)
                blob = records.blobs.get(key, b"") if before is None else before.blob
                held = records.blobs.get(key)
                records.loaded(key, snapshots.loads_value(blob) if blob else None, blob)
                # `loaded` takes the bytes for Redis's: those may still be on their way.
                if held is None:
                    records.blobs.pop(key, None)
                else:
                    records.blobs[key] = held
            self._put_back(docs)
        except Exception:
            # Something this process cannot put back: it reloads the whole world Redis holds
            # before its next section.
            log.exception("could not undo a section; reloading the world")
            self._lost = True
        except BaseException:
            self._lost = True
            raise
        finally:
            self.engine.changed.clear()
            for store in self._stores.values():
                if keys := store.discard():
                    dropped[store] = keys
            self._deferring = False
            self._local.release()
        return dropped

    def _loop(self) -> asyncio.AbstractEventLoop:
        # Kept from `start`: asking asyncio for the running loop costs a system call (line.py).
        return self._checks.loop or asyncio.get_running_loop()

    def _settle_streams(self, owner: object, *, committed: bool) -> None:
        for store in self._stores.values():
            store.settle(owner, committed)

    def _changes(self, streams: list[list[Any]], replace: bool) -> tuple[Changes | None, ReadSet]:
        """What the section changed (None: nothing), found by printing the records it touched
        and, when it may have changed them (`_documents_checked`), the documents; and what it
        read."""
        snapshots = self._require()
        names, changed, read = self._changed_records()
        if self._documents_checked(replace, bool(names or streams)):
            prints = {part: snapshots.state_print(part) for part in PARTS}
            docs = {
                part: snapshots.dumps(part)
                for part in PARTS
                if replace or prints[part] is None or prints[part] != self._newest_print(part)
            }
        else:
            prints, docs = {part: self._newest_print(part) for part in PARTS}, {}
        if not (docs or names or streams):
            return None, read
        if self._presumed_unchanged():
            raise RuntimeError(
                "a safe request (GET, HEAD) that fired no timer changed the world: "
                f"{', '.join([*docs, *map(str, names[::3])])}" + (" and streams" if streams else "")
            )
        return Changes(docs, prints, changed, names), read

    def _documents_checked(self, replace: bool, wrote: bool) -> bool:
        """Whether a section's end looks at the documents: when it replaces the world, moved a
        mark of one (`_document_marks`), changed no record or stream
        (so the documents are all it may have changed), or a change nobody declared was found
        lately (CAREFUL_S). Otherwise the section is taken to have left them as they were:
        requests seldom change them (issuing and rotating share tokens, settings, the clock),
        looking at both in every section was a fifth of a write's time, and the commit checks
        the documents once for all the sections it carries, refusing them all when one of
        them did change a document after all (`_undeclared`): they run again, looking."""
        return (
            replace
            or not wrote
            or self._marks != self._document_marks()
            or time.monotonic() < self._careful_until
        )

    def _document_marks(self) -> tuple[int, int]:
        """Cheap signs of the document changes requests make often: the rate limiter's count of
        changes (a limited request counts a hit), and a manual clock's time (advancing it runs
        timers, whose records the section writes too)."""
        clock = self.engine.clock
        return self._limiter_mark(), clock.now_ms() if clock.manual else 0

    def _documents_moved(self) -> bool:
        """Whether a document differs from what the sections that left declared (see
        `_documents_checked`)."""
        snapshots = self._require()
        for part in PARTS:
            printed = snapshots.state_print(part)
            if printed is None:
                # No print to tell by: every section looks from now on.
                self._careful_until = float("inf")
                return True
            if printed != self._newest_print(part):
                return True
        return False

    def _undeclared(self) -> None:
        """Refuse the sections not sent yet, one of which changed a document without saying so
        (`_documents_moved`), once the calls on their way are answered: roll them back and the
        documents with them. They run again, each looking at the documents."""
        tickets, self._queue = self._queue, []
        snapshots = self._require()
        moved = [part for part in PARTS if snapshots.state_print(part) != self._state_print[part]]
        self._roll_back([t for t in tickets if t.kind == WRITE], documents=moved)
        for ticket in tickets:
            self._counts["undeclared"] += 1
            self._answer(ticket, committed=False)

    def _newest_print(self, part: str) -> bytes | None:
        """The print of a document as the newest change on its way left it, else as Redis
        holds it."""
        pending = self._pending_docs.get(part)
        return self._state_print[part] if pending is None else pending.prints()[part]

    async def _commit_all(self) -> None:
        """Commit the sections that left, until none is waiting: a database's group commit.
        The sections that end while a call is on its way go in the next one, and that one is
        sent at once, before the first's answer (up to PIPELINE calls on the wire, in order on
        one connection): a busy worker makes one round trip for many sections, and neither it
        nor Redis waits for the other."""
        flights = self._flights
        replies = Replies(self._section_line, self._loop(), AIO_WAIT_S)
        undeclared = False
        try:
            while True:
                while self._queue and len(flights) < PIPELINE and self._script_loaded:
                    async with self._local:  # no section half-way through
                        if not self._queue:
                            break
                        if self._documents_moved():
                            undeclared = True
                            self._careful_until = time.monotonic() + CAREFUL_S
                            break
                        flight = Flight(self._take_batch(), self._next_flight, bool(flights))
                        self._next_flight += 1
                        flights.append(flight)
                    await self._send_batch(flight)
                    replies.expect()
                if undeclared and not flights:
                    async with self._local:
                        self._undeclared()
                        undeclared = False
                        if not self._busy():
                            self._idle.set()
                    continue
                if not flights:
                    if self._queue:  # Redis lost the script: load it, then send
                        await self._section_call_load()
                        continue
                    break
                can_send = len(flights) < PIPELINE and self._script_loaded and not undeclared
                if can_send and not self._queue:
                    # Wait for the answer, or for sections to send meanwhile.
                    self._more.clear()
                    if not await replies.next_or(self._more):
                        continue
                try:
                    answer = await replies.next()
                except redis.exceptions.NoScriptError:
                    answer = None
                async with self._local:
                    self._apply(flights[0], answer)
                    flights.popleft()
                    if not self._busy():
                        self._idle.set()
        except BaseException as exc:
            # Whether the calls on their way landed is unknown: fail their sections and those
            # that ran after them; this process reloads the whole world before its next one.
            replies.cancel()
            self._script_loaded = False  # the next connection may reach a Redis without it
            async with self._local:
                self._fail([t for f in flights for t in f.batch] + self._queue, exc)
                flights.clear()
                self._queue = []
                self._idle.set()
            await self._section_line.close()
            if isinstance(exc, asyncio.CancelledError):
                raise
        finally:
            if not self._busy():
                self._idle.set()

    async def _section_call_load(self) -> None:
        await self._section_line.load(_COMMIT, deadline_s=AIO_WAIT_S)
        self._script_loaded = True

    def _take_batch(self) -> list[Ticket]:
        """The next tickets to commit together: a world replaced (start) goes alone."""
        if self._queue[0].replace:
            return [self._queue.pop(0)]
        count = 1
        while count < len(self._queue) and count < BATCH_MOST and not self._queue[count].replace:
            count += 1
        batch, self._queue = self._queue[:count], self._queue[count:]
        return batch

    async def _send_batch(self, flight: Flight) -> None:
        """Send one _COMMIT call for `flight`'s tickets (its answer is read in turn)."""
        batch = flight.batch
        replace = any(t.replace for t in batch)
        args: list[Any] = [
            self.version,
            self._record_prefix,
            self.fingerprint,
            self.worker,
            FEED_LENGTH,
            self._feed_prefix,
            "1" if replace else "",
            "\n".join(self._records),
            len(batch),
            flight.seq,
            flight.seq - 1 if flight.chained else "",
        ]
        for ticket in batch:
            read, changes = ticket.read, ticket.changes
            docs = {} if changes is None else changes.docs
            names = [] if ticket.kind == FOLLOW else read.names
            records = [] if changes is None else changes.names
            args += (
                read.version,
                ",".join(map(str, ticket.own)),
                docs.get("live", b""),
                docs.get("config", b""),
                ticket.notified,
                "\n".join(read.stores) if ticket.kind != FOLLOW else "",
                read.ran if ticket.kind != FOLLOW else "",
                ticket.turn,
                json.dumps(ticket.streams, separators=(",", ":")) if ticket.streams else "[]",
                ticket.kind,
                len(names),
                len(records) // 3,
                "\n".join(read.streams) if ticket.kind != FOLLOW else "",
                *names,
                *records,
            )
        flight.sent = time.time_ns()
        await self._section_line.send_script(_COMMIT, self._keys_of(_COMMIT_KEYS), args)

    def _apply(self, flight: Flight, answer: list[Any] | None) -> None:
        """Take a call's answer (None: Redis did not hold the script and ran nothing): the
        landed sections' bytes are what Redis holds, the refused ones (and every section that
        ran after one: in a later call, or not sent yet) are rolled back, and what other
        workers committed before the call is loaded."""
        batch = flight.batch
        if answer is None:
            self._script_loaded = False
            lacked, outcomes, version, next_due = None, [CASCADE] * len(batch), 0, ""
        else:
            lacked, outcomes, written, next_due = answer
            self._measure_skew(lacked[1], lacked[2], flight.sent)
            version = int(written)
        if flight.doomed:
            # Refused and rolled back when an earlier call broke: Redis refused it too.
            batch, outcomes = [], []
        landed: list[Ticket] = []
        refused: list[Ticket] = []
        for ticket, raw in zip(batch, outcomes, strict=True):
            outcome = int(raw)
            ticket.outcome = outcome == LANDED
            if ticket.kind != WRITE:
                if outcome == CONFLICT:
                    self._stale(ticket.read)
                elif outcome != LANDED:
                    self._counts[REFUSALS[outcome]] += 1
            elif outcome == LANDED:
                landed.append(ticket)
                self._counts["commits"] += 1
            else:
                refused.append(ticket)
                self._counts[REFUSALS[outcome]] += 1
        if refused:
            # The sections that ran after a refused one read what it wrote: refused too, in
            # the calls sent since (Redis refuses them: see _COMMIT) and not sent yet.
            later = [t for f in list(self._flights)[1:] for t in f.batch] + self._queue
            for f in list(self._flights)[1:]:
                f.doomed = True
            for ticket in later:
                ticket.outcome = False
                if ticket.kind == WRITE:
                    refused.append(ticket)
                self._counts["cascades"] += 1
            batch = [*batch, *later]
            self._queue = []
        for ticket in landed:
            ticket.written()
            for part, doc in ticket.docs().items():
                self._rest[part] = doc
                self._state_print[part] = ticket.prints()[part]
                if self._pending_docs.get(part) is ticket:
                    del self._pending_docs[part]
        if refused:
            self._roll_back(refused)
        if lacked is not None:
            self._load(lacked)
        if version:
            self._mine.add(version)
            self.version = version
            self._heard_of(version)
            self._heard_due(_due(next_due), version)
            for ticket in self._queue:
                ticket.own.append(version)
        for ticket in batch:
            self._answer(ticket, committed=bool(ticket.outcome))

    def _answer(self, ticket: Ticket, *, committed: bool) -> None:
        """Tell a ticket's section how its commit went: its stream copies are settled, and
        the readers of what it notified woken once it landed."""
        if ticket.kind == WRITE:
            self._settle_streams(ticket.owner, committed=committed)
            if committed:
                for key in ticket.notified.split("\n") if ticket.notified else ():
                    self._notify_here(key)
        if not ticket.done.done():
            ticket.done.set_result(committed)

    def _fail(self, tickets: list[Ticket], error: BaseException) -> None:
        self._lost = True
        self._pending_docs.clear()
        failure: BaseException = error
        if isinstance(error, NO_ANSWER):
            failure = unavailable(error, AIO_WAIT_S)
        for ticket in tickets:
            if ticket.kind == WRITE:
                self._settle_streams(ticket.owner, committed=False)
            if not ticket.done.done():
                if isinstance(error, asyncio.CancelledError):
                    ticket.done.cancel()
                else:
                    ticket.done.set_exception(failure)

    def _stale(self, read: ReadSet) -> None:
        self._counts["stale_reads"] += 1
        # Load before the next section: this process is behind.
        self._heard_of(read.version + 1)

    def _roll_back(self, refused: list[Ticket], documents: Iterable[str] = ()) -> None:
        """Undo refused sections in this process: back to what Redis holds (the bytes of the
        records they changed, and of the documents they changed, and `documents`)."""
        if any(t.replace for t in refused):
            # Publishing a world (start): nothing older to return to; reload whatever won.
            self._lost = True
            return
        snapshots = self._require()
        parts: set[str] = set(documents)
        done: set[tuple[int, str]] = set()
        for ticket in refused:
            parts.update(ticket.docs())
            for change in ticket.changed():
                if (id(change.records), change.key) in done:
                    continue
                done.add((id(change.records), change.key))
                change.records.pending.pop(change.key, None)
                old = change.records.blobs.get(change.key)
                value = snapshots.loads_value(old) if old else None
                change.records.loaded(change.key, value, old or b"")
        for part in parts:
            self._pending_docs.pop(part, None)
        if any(part not in self._rest for part in parts):
            self._lost = True
            return
        self._put_back({part: self._rest[part] for part in parts})

    def _put_back(self, docs: dict[str, bytes]) -> None:
        """The end of an undo (`_roll_back`, `_abort`): load these documents' bytes (what Redis
        holds, or the newest change on its way), and rebuild the timers' index from the timer
        records as they now are: the sections undone may have pushed, run or unfiled timers
        whether or not their records changed bytes."""
        if docs:
            snapshots = self._require()
            snapshots.load(docs)
            # Rebuilt, a document may print otherwise than the bytes it came from (see `_load`):
            # what later sections are told from is its print now.
            for part in docs:
                printed = snapshots.state_print(part)
                ticket = self._pending_docs.get(part)
                if ticket is None:
                    self._state_print[part] = printed
                else:
                    ticket.prints()[part] = printed
        self._scheduler.reindex()
        self._heard_due(self._scheduler.next_due(), self.version)

    async def prefetch(self, store: str, key: str, after: StreamId | None) -> None:
        """A stream reader's next read, fetched without blocking the event loop (see
        `RedisStreams.prefetch`)."""
        streams = self._stores.get(store)
        if streams is not None:
            await streams.prefetch(key, after, self.engine.now())

    def _notify_here(self, key: str) -> None:
        for store in self._stores.values():
            store.changed(key)  # reads fetched before this change are stale
        self.engine.notify_here(key)

    async def catch_up(self) -> None:
        """Bring the model up to at least the world Redis holds when this is called, for a stream
        reader about to judge entries it has just read (is this one terminal? is it the run's
        latest?): they were committed with a version the model then knows. Each stream read also
        returns the world's version, so when the model is already as new as every read and no
        section is open, there is nothing to load and no round trip.

        Readers share the work: the readers one commit woke all wait on one load, begun after
        each of them asked, instead of a round trip each. It waits for this process's running
        section (the model is not judged half-way through a request), and runs no timer."""
        seen = max((store.read_version for store in self._stores.values()), default=0)
        if seen <= self.version and self.version > 0:
            # The model already holds every commit up to the newest version any read saw: the
            # entries read are no newer than it. (One worker's readers woken by its own commit
            # never need the round trip.) Only sections still running or on their way are
            # waited for: the model must hold nothing they may yet take back.
            if self._local.locked() or self._busy():
                await self._quiet_locked()
                self._local.release()
            return
        need = self._catch_started + 1  # a load begun after this call
        while self._catch_finished < need:
            task = self._catch_task
            if task is None or task.done():
                task = self._catch_task = asyncio.create_task(self._catch_up_shared())
            await asyncio.shield(task)

    async def _catch_up_shared(self) -> None:
        self._catch_started += 1
        mine = self._catch_started
        await self._quiet_locked()
        try:
            await self._catch_up()
            self._untouch()
        finally:
            self._local.release()
        self._catch_finished = max(self._catch_finished, mine)

    @contextlib.asynccontextmanager
    async def section(
        self, *, turn: str = "", optimistic: bool = False, check_reads: bool = True
    ) -> AsyncIterator[Section]:
        """One attempt: `Section.committed` tells, after the block, whether it was written."""
        await self.enter(turn=turn, optimistic=optimistic, check_reads=check_reads, again=True)
        outcome = Section()
        try:
            yield outcome
        except Exception:
            if await self._leave() == DOOMED:
                outcome.doomed = True
                return  # it failed on stand-in streams: it runs again, on the real ones
            raise
        except BaseException:
            await self.leave()
            raise
        left = await self._leave()
        outcome.committed, outcome.doomed = left == LANDED, left == DOOMED

    async def transact(self, work: Callable[[], T], *, optimistic: bool = False) -> T:
        """Run `work` in sections until one commits (another worker's commit refuses ours); an
        `optimistic` first attempt may skip loading (see `enter`): for background work, whose
        reads are not checked when it writes nothing."""
        async with self.turns() as turn:
            for attempt in range(ATTEMPTS):
                first = optimistic and attempt == 0
                async with self.section(
                    turn=await turn(attempt), optimistic=first, check_reads=False
                ) as outcome:
                    result = work()
                if outcome.committed:
                    return result
                if not outcome.doomed:
                    await _back_off(attempt)
        raise Unavailable(f"the store refused {ATTEMPTS} commits in a row", 1)

    @contextlib.asynccontextmanager
    async def turns(self) -> AsyncIterator[Callable[[int], Awaitable[str]]]:
        """For a caller that runs attempts: `await turn(attempt)` is the turn token to pass to
        `enter` ('' before TURN_AFTER refusals; then the turn, waited for). A second attempt
        without the turn first waits while another worker holds it: its commit would only be
        refused again, after a section's work and a rollback. The turn is given back at the end
        unless a commit already used it."""
        held = ""

        async def turn(attempt: int) -> str:
            nonlocal held
            if attempt >= TURN_AFTER and not held:
                held = await self._take_turn()
            elif attempt > 0 and not held:
                await self._wait_for_no_turn()
            return held

        try:
            yield turn
        finally:
            if held:
                await _finish(self._give_back(keys=[self._keys["turn"]], args=[held]))

    async def _wait_for_no_turn(self) -> None:
        deadline = time.monotonic() + TURN_MS / 1000
        attempt = 0
        while await self.aio.exists(self._keys["turn"]) and time.monotonic() < deadline:
            await _back_off(attempt)
            attempt += 1

    async def _take_turn(self) -> str:
        token = secrets.token_hex(8)
        deadline = time.monotonic() + TURN_WAIT_MS / 1000
        attempt = 0
        while not await self.aio.set(self._keys["turn"], token, nx=True, px=TURN_MS):
            if time.monotonic() >= deadline:
                raise Unavailable(f"no turn to commit within {TURN_WAIT_MS} ms", 1)
            await _back_off(attempt)
            attempt += 1
        return token

    def _load(self, found: list[Any]) -> None:
        version = int(found[0])
        if len(found) > 3:
            snapshots = self._require()
            # What is decoded here is decoded before anything changes, so a world this process
            # cannot read (another version of the code) leaves its own intact.
            joining = self.version <= 0
            timers = self._scheduler
            loaded = []
            for i in range(7, len(found), 2):
                store, _, key = found[i].decode().partition("\n")
                records = self._records[store]
                part, blob = records.split(found[i + 1])
                if not joining and _holds(records, key, blob):
                    continue  # this process's own commit, or already the same
                if (
                    blob
                    and not joining
                    and records is not timers.records
                    and not records.holds_object(key)
                ):
                    # Built when a section first reads it (most never are). Joining decodes
                    # all: a world this process cannot read is replaced (see `start`).
                    value = UNDECODED
                else:
                    value = snapshots.loads_value(blob) if blob else None
                loaded.append((records, key, value, blob, part))
            if joining:
                # Joining (or after losing track): Redis sent every record; drop ours.
                for records in self._records.values():
                    records.forget()
                for store in self._stores.values():
                    store.forget(None)
            else:
                self._forget_streams(found[6])
            for records, key, value, blob, part in loaded:
                if records is timers.records:
                    timers.load_record(key, value, blob)
                else:
                    records.loaded(key, value, blob, part)
            if joining:
                timers.reindex()
            docs = {
                part: bytes(doc)
                for part, doc in (("live", found[3]), ("config", found[5]))
                if doc and (joining or bytes(doc) != self._rest.get(part))
            }
            if docs:
                snapshots.load(docs)
                self._rest.update(docs)
                # Later sections compare against a print of what we loaded, not the bytes
                # received: the same state can encode differently once rebuilt (a set's order
                # follows its history), and a read would then write the world back.
                for part in docs:
                    self._state_print[part] = snapshots.state_print(part)
        self.version = version
        # This process now holds the world at `version`, so its own timers say when that
        # world's next one is due (also after a tick that found nothing left to run: else the
        # driver would wake for it again at once).
        self._heard_due(self._scheduler.next_due(), version)
        self._heard_of(version)
        self._mine = {v for v in self._mine if v > version}

    def _forget_streams(self, changed: list[bytes]) -> None:
        """Drop this process's copies of the streams another worker appended to (`changed`:
        name, version, ...). A stream last appended to by this process's own commit is as it
        holds it: that commit checked the stream had not moved."""
        for raw, score in zip(changed[::2], changed[1::2], strict=True):
            if int(score) not in self._mine:
                self._forget_named([raw], int(score))

    def _forget_named(self, names: Iterable[bytes], version: int) -> None:
        """Drop the copies of these streams, appended to by commit `version`."""
        for raw in names:
            name = raw.decode()
            for store in self._stores.values():
                key = store.stream_of(name)
                if key is not None:
                    store.forget([key], version)
                    break

    def _require(self) -> Snapshots:
        if self._snapshots is None:
            raise RuntimeError("SharedWorld.attach() was not called")
        return self._snapshots

    def counts(self) -> dict[str, int]:
        """Commits and refused commits of this process: `conflicts` (another worker committed
        first), `streams_moved` (a stream this process held a stale copy of)."""
        return dict(self._counts)

    # -- lifetime ------------------------------------------------------------------------------

    async def start(self) -> None:
        """Join the world in Redis, or publish this process's freshly seeded one."""
        self.engine.shared = True
        self._checks.loop = asyncio.get_running_loop()
        # Alive before loading the world: every commit after it reaches this worker's feed.
        await self._beat(self._section_line)
        for attempt in range(ATTEMPTS):
            await self._local.acquire()
            try:
                sent = time.time_ns()
                found: list[Any] = await self._section_call(
                    _ENTER, _ENTER_KEYS, [0, self._record_prefix]
                )
                self._measure_skew(found[1], found[2], sent)
                joined = False
                if len(found) > 3:
                    fingerprint = found[4].decode() if isinstance(found[4], bytes) else found[4]
                    if fingerprint != self.fingerprint:
                        log.warning("the world in Redis has another profile: replacing it")
                    else:
                        try:
                            self.version = 0
                            self._load(found)
                            joined = True
                        except CodecError as exc:
                            log.warning("cannot load the world in Redis (%s): replacing it", exc)
                if not joined:
                    self.version = int(found[0])
                    # Forces the commit below to publish this world.
                    self._state_print = dict.fromkeys(PARTS)
                    for records in self._records.values():
                        records.blobs.clear()
                        records.prints.clear()
                        records.touched.update(records)
            except BaseException:
                self._local.release()
                raise
            self.engine.changed.clear()
            self.engine.begin_section()
            self._safe = self._speculating = self._check_reads = False
            if joined or await self.leave(replace=True):
                if joined:
                    self.engine.end_section()
                    self._local.release()
                break
            await _back_off(attempt)
        else:
            raise Unavailable("could not join or publish the world in Redis", 1)
        # Every section keeps objects alive across its round trips, while other tasks allocate:
        # with the default thresholds (700, 10, 10) many of them were caught alive by a young
        # collection and promoted, and a full collection (1,000 SSE streams: some 200,000
        # objects, 130 ms on a loaded 2-core machine) ran every second or two, which set the
        # p99 of delivery. Rarer young collections let them die young: at 1,000 streams p99
        # went from about 130 ms to about 15 ms, each young collection costing a few ms. And
        # what joining the world built lives as long as the process: frozen, as cli.py does
        # with the seed world, no full collection walks it again.
        gc.set_threshold(*GC_THRESHOLDS)
        gc.freeze()
        self._tasks = [
            asyncio.create_task(self._follow(), name="mock_server.store.follow"),
            asyncio.create_task(self._drive(), name="mock_server.store.drive"),
        ]

    async def stop(self) -> None:
        self._stopping = True
        if self._committer is not None and not self._committer.done():
            # The sections already ended get their answers, if Redis gives them in time.
            await asyncio.wait([self._committer], timeout=STOP_WAIT_S)
            self._committer.cancel()
        for task in self._tasks:
            task.cancel()
        if self._tasks:
            _, pending = await asyncio.wait(self._tasks, timeout=1)
            if pending:
                await self._feed_line.close()
                await asyncio.wait(pending, timeout=FEED_BLOCK_MS / 1000 + 1)
            for task in self._tasks:
                if task.done() and not task.cancelled() and task.exception() is not None:
                    log.error("%s ended with %r", task.get_name(), task.exception())
        self._tasks = []
        with contextlib.suppress(redis.RedisError, *NO_ANSWER):
            await self._section_line.call("ZREM", self._keys["workers"], self.worker, deadline_s=1)
            await self._section_line.call("DEL", self._feed, deadline_s=1)
        await self._feed_line.close()
        await self._section_line.close()
        await self._checks.close()
        await self.aio.aclose()
        self.client.close()

    async def _drive(self) -> None:
        """The timer driver: sleep until the world's next timer (as last heard), then run every
        due timer in a section. Only the worker holding the driver lease does; the others ask
        for the lease every LEASE_RETRY_MS while a timer is due, and get it once a leader that
        died lets it expire. A follower that ran ticks whenever the leader fell behind made both
        slower (their commits refuse each other), and the leader fell further behind: at 60 jobs
        stepping every 250 ms two workers stalled. (Requests run due timers too, in whichever
        worker; commits are compare-and-set, so a tick two workers ran lands once.)"""
        clock = self.engine.clock
        while True:
            # Cleared before `due` is read: a due time heard after this wakes the wait below.
            self._wake.clear()
            due = self.due
            now = clock.now_ms()
            if due is not None and not clock.manual and due <= now:
                leader = await self._lead(keys=[self._keys["driver"]], args=[self.worker, LEASE_MS])
                self.engine.leading = bool(leader)
                if leader:
                    try:
                        await self.transact(self.engine.run_ticks, optimistic=True)
                    except (CodecError, Unavailable):
                        # Data in Redis this process refuses to load, or a tick that kept
                        # losing: fail this tick, not the driver for good.
                        log.exception("timer tick failed; retrying")
                        await asyncio.sleep(LEASE_RETRY_MS / 1000)
                    continue
                due = now + LEASE_RETRY_MS
            timeout = None if due is None or clock.manual else (due - clock.now_ms()) / 1000
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=timeout)

    async def _follow(self) -> None:
        """Follow the change feed (blocking XREAD): wake local SSE readers and the driver."""
        feed = self._feed
        # From the start: the feed is this worker's own, made by commits since `start` first
        # beat, so nothing committed after the world it loaded is missed.
        last: bytes | str = "0"
        line = self._feed_line
        worker = self.worker.encode()
        while not self._stopping:
            try:
                if time.monotonic() - self._beaten >= HEARTBEAT_MS / 1000:
                    await self._beat(line)
                asked = time.monotonic()
                answer: Any = await line.call(
                    "XREAD",
                    "COUNT",
                    100,
                    "BLOCK",
                    FEED_BLOCK_MS,
                    "STREAMS",
                    feed,
                    last,
                    deadline_s=FEED_BLOCK_MS / 1000 + AIO_WAIT_S,
                )
            except NO_ANSWER as exc:
                if self._stopping:
                    return
                log.warning("change feed: %r; retrying", exc)
                await asyncio.sleep(0.5)
                continue
            elsewhere = False
            for ident, fields in feed_entries(answer):
                last = ident
                if fields[b"w"] != worker:
                    elsewhere = True
                    await self._changed_elsewhere(fields)
            pace = FEED_PACE_BUSY_MS if self._busy() else FEED_PACE_MS
            pause = asked + pace / 1000 - time.monotonic()
            if elsewhere and pause > 0:
                await asyncio.sleep(pause)

    async def _beat(self, line: Line) -> None:
        """Tell Redis this worker is alive. One whose last beat is older than WORKER_TTL_MS
        (a process paused that long) may have missed feed entries: it loads before its next
        section and wakes every reader, which reads again."""
        silent_s = time.monotonic() - self._beaten
        await line.script(_BEAT, self._keys_of(_BEAT_KEYS), [self.worker], deadline_s=AIO_WAIT_S)
        missed = self._beaten > 0 and silent_s >= WORKER_TTL_MS / 1000
        self._beaten = time.monotonic()
        if missed:
            log.warning("no heartbeat for %.0f s: catching up with the world", silent_s)
            self._heard_of(self.version + 1)  # so the next section loads
            for store in self._stores.values():
                store.forget(None)
            self.engine.notify_everyone_here()

    def _heard_of(self, version: int) -> None:
        """The world has reached at least `version` (a commit, the feed, a load); a section
        that begins behind it loads first (see `enter`)."""
        self._known_version = max(self._known_version, version)

    def _heard_due(self, due: int | None, version: int) -> None:
        """When the world's next timer is due, as of `version`: the latest word wins (a worker's
        own timers are the world's only up to the version it loaded)."""
        if version >= self._due_version:
            self._due_version = version
            if due != self.due:
                self.due = due
                self._wake.set()  # the driver sleeps until the due time it last read

    async def _changed_elsewhere(self, fields: dict[bytes, bytes]) -> None:
        version = int(fields[b"v"])
        self._heard_of(version)
        self._heard_due(_due(fields[b"d"]), version)
        keys = [k for k in fields[b"k"].decode().split("\n") if k]
        # The copies of the streams another worker appended to are stale now; readers woken
        # here catch up with the world after they read (`catch_up`).
        self._forget_named(fields.get(b"s", b"").split(b"\n"), version)
        for key in keys:
            self._notify_here(key)


@dataclass
class Changed:
    """A record a section changed: its new bytes, taken as Redis's once the commit lands."""

    records: SharedRecords[Any]
    key: str
    blob: bytes
    printed: bytes | None

    def written(self) -> None:
        if self.records.pending.get(self.key) is self:
            del self.records.pending[self.key]
        if self.blob:
            self.records.blobs[self.key] = self.blob
            if self.printed is not None:
                self.records.prints[self.key] = self.printed
        else:
            self.records.blobs.pop(self.key, None)
            self.records.prints.pop(self.key, None)


@dataclass(eq=False)
class Flight:
    """One _COMMIT call on its way: its tickets, its sequence number, and whether it was sent
    while the one before was still on its way (`chained`: its tickets ran after all of that
    one's, so Redis refuses them when that one broke). `doomed`: it was, and this process
    already rolled its tickets back."""

    batch: list[Ticket]
    seq: int
    chained: bool
    sent: int = 0  # time.time_ns() when sent
    doomed: bool = False


@dataclass(eq=False)
class Ticket:
    """A section that left: a WRITE waiting for its commit's answer, or a read that ran after
    sections not yet known committed (a CHECK, checked with them, or a FOLLOW, which only waits
    for them). `read.version` is the version the section began on, and `own` the versions this
    process's commits wrote since that it ran after: the sections on their way when it ran
    (their writes are in its model, and are not another worker's). `owner` names its streams'
    appends (`RedisStreams.take`)."""

    kind: str
    read: ReadSet
    owner: object
    changes: Changes | None = None
    streams: list[list[Any]] = field(default_factory=list)
    notified: str = ""  # the keys it notified, newline-joined
    turn: str = ""
    replace: bool = False
    own: list[int] = field(default_factory=list)
    outcome: bool | None = None
    done: asyncio.Future[bool] = field(init=False)

    def docs(self) -> dict[str, bytes]:
        return {} if self.changes is None else self.changes.docs

    def prints(self) -> dict[str, bytes | None]:
        return {} if self.changes is None else self.changes.prints

    def changed(self) -> list[Changed]:
        return [] if self.changes is None else self.changes.changed

    def written(self) -> None:
        for change in self.changed():
            change.written()


@dataclass
class Changes:
    """What a section changed: the documents (re-encoded) with their prints, and the records
    (`names`: name, bytes, due time of each, as the commit script takes them)."""

    docs: dict[str, bytes]
    prints: dict[str, bytes | None]
    changed: list[Changed]
    names: list[str | bytes]


def feed_entries(answer: Any) -> Iterator[tuple[bytes, dict[bytes, bytes]]]:
    """Id and fields of each entry of a raw XREAD reply: {stream: [[id, [field, value, ...]],
    ...]} in RESP3, a list of [stream, entries] pairs in RESP2, nil when BLOCK ran out."""
    streams = answer.items() if isinstance(answer, dict) else answer or ()
    for _, entries in streams:
        for ident, flat in entries:
            yield ident, dict(zip(flat[::2], flat[1::2], strict=True))


def _holds(records: SharedRecords[Any], key: str, blob: bytes) -> bool:
    """Whether `records` already holds `blob` as `key` (b'': holds no such record)."""
    if blob:
        return records.blobs.get(key) == blob
    return key not in records.blobs and records.current(key) is None


def _due(raw: bytes | str | None) -> int | None:
    return int(float(raw)) if raw else None


@dataclass
class Section:
    committed: bool = False
    doomed: bool = False  # it ran on stand-ins for streams it lacked: run it again at once


async def _back_off(attempt: int) -> None:
    # Random, so two workers that refused each other do not collide again in step.
    await asyncio.sleep(random.uniform(0, min(0.05, 0.001 * 2**attempt)))


class SectionRefused(BaseException):
    """Raised into a handler's `send` when its section's commit was refused: that response
    describes changes that were never written, so it must not reach the client. A BaseException,
    so the APIs' catch-all error handlers (`except Exception`) let it through."""


class SectionDoomed(SectionRefused):
    """The section ran on stand-ins for streams its worker lacked (see `SharedWorld.enter`);
    they are loaded now: run it again at once, as the same attempt."""


# A refused commit means another worker committed first; the winner always made progress, so a
# request refused this often in a row is answered 503 (in its API's envelope) rather than run
# yet again.
ATTEMPTS = 16


# Requests that change nothing by HTTP's definition, and here (see `SharedWorld.enter`).
SAFE_METHODS = frozenset({"GET", "HEAD"})


class SectionMiddleware:
    """Runs each HTTP request in a section, from before the handler until the response starts.

    The body is read before the section begins, so a slow client holds nothing up; an event
    stream's body runs after the section, reading Redis and woken by the change feed. A request
    whose commit is refused runs again, from its buffered body, against the world that won:
    nothing of the refused run was written, and none of its response was sent.
    `envelope_for(path)` is the error envelope of the API a path belongs to (None: no API's).
    """

    def __init__(
        self,
        app: ASGIApp,
        shared: SharedWorld,
        envelope_for: Callable[[str], Envelope | None] = lambda _: None,
    ) -> None:
        self.app = app
        self.shared = shared
        self.envelope_for = envelope_for
        self.header = (b"x-mock-worker", shared.worker.encode())

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        messages = await _buffered(receive)
        try:
            # The first attempt, as most requests' only one, holds no turn (see TURN_AFTER).
            if await self._attempt_once(scope, messages, receive, send, "", 0):
                return
            async with self.shared.turns() as turn:
                for attempt in range(1, ATTEMPTS):
                    if await self._attempt_once(
                        scope, messages, receive, send, await turn(attempt), attempt
                    ):
                        return
            busy = Unavailable(f"the store refused this change {ATTEMPTS} times; retry later", 1)
        except Unavailable as exc:
            busy = exc
        envelope = self.envelope_for(scope["path"])
        if envelope is None:
            body = {"code": "UNAVAILABLE", "message": str(busy)}
            response = JSONResponse(body, status_code=503, headers={"Retry-After": "1"})
        else:
            response = envelope.render(busy)
        response.headers.append(*(h.decode() for h in self.header))
        await response(scope, receive, send)

    async def _attempt_once(
        self,
        scope: Scope,
        messages: list[Message],
        receive: Receive,
        send: Send,
        turn: str,
        attempt: int,
    ) -> bool:
        """One attempt; False (after a back-off) when its commit was refused. A run doomed for
        lacking streams is run again at once (they are loaded by then), as the same attempt."""
        for _ in range(ATTEMPTS):
            try:
                # A copy: routing rewrites the scope it is given (a Mount's root_path), and the
                # next run must be routed from the request as it came.
                await self._attempt(
                    dict(scope), _replay(messages, receive), send, turn, first=attempt == 0
                )
                return True
            except BaseException as exc:
                if not _refused(exc):
                    raise
                if not _refused(exc, SectionDoomed):
                    break
        log.debug("%s %s: commit refused, running it again", scope["method"], scope["path"])
        await _back_off(attempt)
        return False

    async def _attempt(
        self, scope: Scope, receive: Receive, send: Send, turn: str, first: bool
    ) -> None:
        shared = self.shared
        await shared.enter(
            turn=turn, optimistic=first, safe=scope["method"] in SAFE_METHODS, again=True
        )
        open_ = True

        async def leave() -> None:
            left = await shared._leave()
            if left == DOOMED:
                raise SectionDoomed
            if left != LANDED:
                raise SectionRefused

        async def send_after_leaving(message: Message) -> None:
            nonlocal open_
            if message["type"] == "http.response.start":
                if open_:
                    open_ = False
                    await leave()
                message = {**message, "headers": [*message.get("headers", ()), self.header]}
            await send(message)

        try:
            await self.app(scope, receive, send_after_leaving)
        except Exception:
            if open_:
                open_ = False
                if await shared._leave() == DOOMED:
                    # What failed ran on stand-in streams: run it again, on the real ones.
                    raise SectionDoomed from None
            raise
        except BaseException:
            # Cancelled (or the like): the section ends, and nothing runs it again.
            if open_:
                open_ = False
                await shared.leave()
            raise
        if open_:  # no response started
            open_ = False
            await leave()


def _refused(exc: BaseException, kind: type[SectionRefused] = SectionRefused) -> bool:
    # A streaming response sends from inside a task group, which may wrap the exception.
    if isinstance(exc, BaseExceptionGroup):
        return all(_refused(inner, kind) for inner in exc.exceptions)
    return isinstance(exc, kind)


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
