"""Where the model keeps records and event streams.

The model follows load -> change -> `save` for every record, and appends and reads events only
through `StreamStore`, so a store kept outside the process (Redis, issue 9) can replace the
in-memory one without the model knowing. `MemoryStore` is the embedded default.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Generic, Protocol, TypeVar

from .stream import EventStream, ReadResult
from .stream_id import StreamId

T = TypeVar("T")


class RecordStore(Protocol[T]):
    def get(self, key: str) -> T | None: ...
    def save(self, key: str, value: T) -> None: ...
    def values(self) -> Iterator[T]: ...
    def clear(self) -> None: ...


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

    def clear(self) -> None:
        self._items.clear()

    def __len__(self) -> int:
        return len(self._items)


class MemoryStreams:
    def __init__(self, *, maxlen: int | None, ttl_ms: int | None) -> None:
        self.maxlen = maxlen
        self.ttl_ms = ttl_ms
        self._streams: dict[str, EventStream] = {}

    def create(self, key: str, now_ms: int) -> None:
        self._streams[key] = EventStream(now_ms, maxlen=self.maxlen, ttl_ms=self.ttl_ms)

    def append(self, key: str, data: Mapping[str, object], now_ms: int) -> StreamId:
        stream = self._streams.get(key)
        if stream is None:
            stream = self._streams[key] = EventStream(
                now_ms, maxlen=self.maxlen, ttl_ms=self.ttl_ms
            )
        return stream.append(data, now_ms).id

    def read_after(
        self, key: str, after: StreamId | None, now_ms: int, count: int | None = None
    ) -> ReadResult:
        stream = self._streams.get(key)
        if stream is None:
            return ReadResult((), False, None)
        return stream.read_after(after, now_ms, count=count)

    def clear(self) -> None:
        self._streams.clear()

    def retained(self) -> int:
        """Entries held in memory across every stream (a benchmark's measure of retention)."""
        return sum(len(s) for s in self._streams.values())
