"""A Redis-like event stream per job: auto ids, MAXLEN trimming, a TTL, and resumable reads."""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Mapping
from dataclasses import dataclass

from .stream_id import ZERO, StreamId


@dataclass(frozen=True, slots=True)
class Entry:
    id: StreamId
    # Stored as given, never copied or inspected: callers hand over JSON-ready data and must not
    # mutate it afterwards.
    data: Mapping[str, object]


@dataclass(frozen=True, slots=True)
class ReadResult:
    entries: tuple[Entry, ...]
    truncated: bool
    first_retained: StreamId | None


class EventStream:
    """Entries with strictly increasing `StreamId`s, trimmed by `maxlen` and expired by `ttl_ms`.

    Reading after an id that has been trimmed away silently resumes at the oldest retained entry,
    as Redis does. Whatever was dropped is always a prefix of everything ever appended, so a reader
    resuming `after=X` missed something exactly when X is older than the newest dropped id; that is
    `ReadResult.truncated`, and the server turns it into a gap marker before the entries.
    `first_retained` says where the retained window now begins. A read without `after` replays the
    retained window and is never truncated.

    Expiry: the whole stream expires `ttl_ms` after its creation, however recently it was appended
    to. Once expired, every entry counts as dropped and reads return nothing. An append to an
    expired stream starts a new retention period at that time (as XADD recreates an expired key),
    but ids keep increasing from `last_id` so that old resume points still order correctly.
    Expiry is applied by `append`, `read_after` and `drop_expired` (which a store calls for streams
    nobody touches any more), so `len()` may still count entries of an expired stream until one of
    them runs.
    """

    __slots__ = (
        "_created_ms",
        "_dropped_through",
        "_entries",
        "_ids",
        "_last_id",
        "_maxlen",
        "_start",
        "_ttl_ms",
    )

    # How many entries from the end `_index_after` looks at by identity before it bisects.
    RECENT = 8

    def __init__(
        self, created_ms: int, *, maxlen: int | None = None, ttl_ms: int | None = None
    ) -> None:
        if maxlen is not None and maxlen < 0:
            raise ValueError("maxlen must be >= 0")
        if ttl_ms is not None and ttl_ms <= 0:
            raise ValueError("ttl_ms must be > 0")
        self._created_ms = created_ms
        self._maxlen = maxlen
        self._ttl_ms = ttl_ms
        # Parallel lists so bisect can search plain ids; `_start` marks the dead prefix left by
        # trimming, which is compacted in bulk to keep trimming O(1) amortised.
        self._ids: list[StreamId] = []
        self._entries: list[Entry] = []
        self._start = 0
        self._last_id: StreamId | None = None
        self._dropped_through: StreamId | None = None

    @classmethod
    def restore(
        cls,
        created_ms: int,
        entries: list[Entry],
        *,
        last_id: StreamId | None,
        dropped_through: StreamId | None,
        maxlen: int | None = None,
        ttl_ms: int | None = None,
    ) -> EventStream:
        """A stream as another store last held it (a shared store's working copy)."""
        stream = cls(created_ms, maxlen=maxlen, ttl_ms=ttl_ms)
        stream._ids = [entry.id for entry in entries]
        stream._entries = list(entries)
        stream._last_id = last_id
        stream._dropped_through = dropped_through
        return stream

    @property
    def last_id(self) -> StreamId | None:
        return self._last_id

    def expires_at_ms(self) -> int | None:
        if self._ttl_ms is None:
            return None
        return self._created_ms + self._ttl_ms

    def is_expired(self, now_ms: int) -> bool:
        expires_at = self.expires_at_ms()
        return expires_at is not None and now_ms >= expires_at

    def drop_expired(self, now_ms: int) -> None:
        """Drop every entry once the stream has expired (what a read at `now_ms` would do)."""
        if self.is_expired(now_ms):
            self._drop_oldest(len(self))

    def __len__(self) -> int:
        return len(self._ids) - self._start

    def append(self, data: Mapping[str, object], now_ms: int) -> Entry:
        if now_ms < 0:
            raise ValueError("now_ms must be >= 0")
        if self.is_expired(now_ms):
            self._drop_oldest(len(self))
            self._created_ms = now_ms
        # ZERO.next_for gives (now_ms, 0), or 0-1 at time 0, since Redis never issues 0-0.
        previous = ZERO if self._last_id is None else self._last_id
        entry = Entry(previous.next_for(now_ms), data)
        self._ids.append(entry.id)
        self._entries.append(entry)
        self._last_id = entry.id
        if self._maxlen is not None and len(self) > self._maxlen:
            self._drop_oldest(len(self) - self._maxlen)
        return entry

    def read_after(
        self, after: StreamId | None, now_ms: int, *, count: int | None = None
    ) -> ReadResult:
        """Retained entries with ids strictly greater than `after` (all when None), oldest first."""
        if count is not None and count < 1:
            raise ValueError("count must be >= 1")
        self.drop_expired(now_ms)
        start = self._start
        if after is not None:
            start = self._index_after(after)
        stop = len(self._ids) if count is None else min(len(self._ids), start + count)
        truncated = (
            after is not None
            and self._dropped_through is not None
            and after < self._dropped_through
        )
        first = self._ids[self._start] if len(self._ids) > self._start else None
        return ReadResult(tuple(self._entries[start:stop]), truncated, first)

    def _index_after(self, after: StreamId) -> int:
        """Where the entries after `after` begin (the first retained one at the earliest).

        A live reader's cursor is the very id object of an entry near the end, since it came
        from an earlier read: found by identity it costs no comparison, where bisect calls
        StreamId's Python-level `__lt__` a dozen times (every reader, every wake-up).
        """
        ids = self._ids
        i = len(ids) - 1
        stop = max(self._start, i - self.RECENT)
        while i >= stop:
            if ids[i] is after:
                return i + 1
            i -= 1
        return bisect_right(ids, after, lo=self._start)

    def _drop_oldest(self, n: int) -> None:
        if n <= 0:
            return
        self._start += n
        self._dropped_through = self._ids[self._start - 1]
        # Compacting only once the dead prefix outweighs the live part means each compaction copies
        # fewer entries than were trimmed since the last one: O(1) amortised per append.
        if 2 * self._start > len(self._ids):
            del self._ids[: self._start]
            del self._entries[: self._start]
            self._start = 0
