"""Where the model keeps records and event streams.

The model follows load -> change -> `save` for every record, and appends and reads events only
through `StreamStore`, so a store kept outside the process (Redis, issue 9) can replace the
in-memory one without the model knowing. `MemoryStore` is the embedded default.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Generic, Protocol, TypeVar, runtime_checkable

from .stream import EventStream, ReadResult
from .stream_id import StreamId

T = TypeVar("T")


class RecordStore(Protocol[T]):
    def get(self, key: str) -> T | None: ...
    def save(self, key: str, value: T) -> None: ...
    def values(self) -> Iterable[T]: ...
    def clear(self) -> None: ...


@runtime_checkable
class Partitioned(Protocol[T]):
    """A store that keeps its records indexed by partition (the shared store, see
    store/records.py): a reader of one partition then depends on that partition alone."""

    def in_partition(self, part: str, partition: Callable[[T], str]) -> list[T]: ...


def in_partition(
    records: Mapping[str, T] | RecordStore[T], part: str, partition: Callable[[T], str]
) -> list[T]:
    """The records of one partition (the unit an API isolates: an AUVY workspace, an AVA tenant,
    a Strait project; `partition` names a record's), in no particular order. A listing asks
    this rather than walking the store, so with several workers a write in another partition
    does not refuse it."""
    if isinstance(records, Partitioned):
        return records.in_partition(part, partition)
    return [r for r in records.values() if partition(r) == part]


class StreamStore(Protocol):
    def create(self, key: str, now_ms: int) -> None: ...
    def append(self, key: str, data: Mapping[str, object], now_ms: int) -> StreamId: ...
    def read_after(
        self, key: str, after: StreamId | None, now_ms: int, count: int | None = None
    ) -> ReadResult: ...
    def clear(self) -> None: ...


class MemoryRecords(Generic[T]):
    def __init__(self) -> None:
        self._items: dict[str, T] = {}

    def get(self, key: str) -> T | None:
        return self._items.get(key)

    def save(self, key: str, value: T) -> None:
        self._items[key] = value

    def values(self) -> Iterator[T]:
        return iter(list(self._items.values()))

    def items(self) -> Iterator[tuple[str, T]]:
        return iter(list(self._items.items()))

    def clear(self) -> None:
        self._items.clear()

    def __len__(self) -> int:
        return len(self._items)


class MemoryStreams:
    """Streams by key. Expired streams are emptied as time passes (on the next create or append),
    not only when read again: a finished job's stream is rarely read, and lazy expiry alone would
    keep its entries for ever. The emptied stream itself stays, so resuming on it still reports
    the gap."""

    def __init__(self, *, maxlen: int | None, ttl_ms: int | None) -> None:
        self.maxlen = maxlen
        self.ttl_ms = ttl_ms
        self._streams: dict[str, EventStream] = {}
        # (expires_at_ms, key) in the order retention periods began: with one TTL for every
        # stream that is expiry order, so the due ones are found at the left without a scan.
        self._expiry: deque[tuple[int, str]] = deque()

    def create(self, key: str, now_ms: int) -> None:
        self._drop_expired(now_ms)
        stream = self._streams[key] = EventStream(now_ms, maxlen=self.maxlen, ttl_ms=self.ttl_ms)
        self._track(key, stream)

    def append(self, key: str, data: Mapping[str, object], now_ms: int) -> StreamId:
        self._drop_expired(now_ms)
        stream = self._streams.get(key)
        if stream is None:
            stream = self._streams[key] = EventStream(
                now_ms, maxlen=self.maxlen, ttl_ms=self.ttl_ms
            )
            self._track(key, stream)
        expires = stream.expires_at_ms()
        entry = stream.append(data, now_ms)
        if stream.expires_at_ms() != expires:
            self._track(key, stream)  # an append to an expired stream began a new period
        return entry.id

    def _track(self, key: str, stream: EventStream) -> None:
        expires = stream.expires_at_ms()
        if expires is not None:
            self._expiry.append((expires, key))

    def _drop_expired(self, now_ms: int) -> None:
        expiry = self._expiry
        while expiry and expiry[0][0] <= now_ms:
            _, key = expiry.popleft()
            stream = self._streams.get(key)
            if stream is not None:
                # A stream recreated or restarted since is not expired, and is tracked again.
                stream.drop_expired(now_ms)

    def read_after(
        self, key: str, after: StreamId | None, now_ms: int, count: int | None = None
    ) -> ReadResult:
        stream = self._streams.get(key)
        if stream is None:
            return ReadResult((), False, None)
        return stream.read_after(after, now_ms, count=count)

    def clear(self) -> None:
        self._streams.clear()
        self._expiry.clear()

    def retained(self) -> int:
        """Entries held in memory across every stream (a benchmark's measure of retention)."""
        return sum(len(s) for s in self._streams.values())
