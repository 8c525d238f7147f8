"""`SharedRecords`: one model's records (jobs, runs, logs, ...), each kept under its own Redis key.

The records are held in this process like a dict and stand in for the model's `MemoryRecords` or
plain dict. What a section may have changed is what it *touched*: every record it read, wrote or
removed (a model changes a record only after getting it from its store). What it depended on
is also what it looked up and did not find (`absent`), and, when it walked or counted the
store (`scanned`), all of it: the commit is refused if another worker has since written any of
that (see shared.py), and only then. At the end of a
section `SharedWorld` encodes the touched records alone (JSON, see codec.py) and writes those
whose bytes differ from what Redis holds; other workers load just the records changed since
their version. Cost follows what a request touches, not how big the world has grown.

A record loaded from Redis updates the live object in place (its `__dict__`, or a list's items),
so anything else holding it (a handler mid-request, the timers' heap) sees the new state.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, MutableMapping
from typing import Any, Generic, TypeVar

T = TypeVar("T")


class SharedRecords(MutableMapping[str, T], Generic[T]):
    def __init__(self, name: str, items: Iterable[tuple[str, T]] = ()) -> None:
        self.name = name
        self._items: dict[str, T] = dict(items)
        self.touched: set[str] = set(self._items)
        # Keys looked up and not found, or asked about with `in`: read, but nothing to write.
        self.absent: set[str] = set()
        self.scanned = False
        # The bytes Redis holds for each record, as last loaded or written by this process.
        self.blobs: dict[str, bytes] = {}
        # A print (`Snapshots.print_value`) of each record whose blob is known to match it: a
        # touched record whose print is unchanged needs no JSON encoding to tell it unchanged.
        self.prints: dict[str, bytes] = {}
        # The newest change of a record whose commit is on its way (a `shared.Changed`): what a
        # later section's change is told from, not what Redis holds yet.
        self.pending: dict[str, Any] = {}

    # -- the model's interface (RecordStore and MutableMapping) ------------------------------------

    def get(self, key: str, default: T | None = None) -> T | None:  # type: ignore[override]
        value = self._items.get(key)
        if value is None:
            self.absent.add(key)
            return default
        self.touched.add(key)
        return value

    def save(self, key: str, value: T) -> None:
        self[key] = value

    def __getitem__(self, key: str) -> T:
        try:
            value = self._items[key]
        except KeyError:
            self.absent.add(key)
            raise
        self.touched.add(key)
        return value

    def __setitem__(self, key: str, value: T) -> None:
        self._items[key] = value
        self.touched.add(key)

    def __delitem__(self, key: str) -> None:
        del self._items[key]
        self.touched.add(key)

    def __contains__(self, key: object) -> bool:
        if isinstance(key, str):
            self.absent.add(key)
        return key in self._items

    def __iter__(self) -> Iterator[str]:
        self.scanned = True
        # A copy: the model may add or remove records while it walks them.
        return iter(list(self._items))

    def __len__(self) -> int:
        self.scanned = True
        return len(self._items)

    def values(self) -> Iterator[T]:  # type: ignore[override]
        self.scanned = True
        self.touched.update(self._items)
        return iter(list(self._items.values()))

    def clear(self) -> None:
        self.scanned = True
        self.touched.update(self._items)
        self._items.clear()

    # -- for SharedWorld -----------------------------------------------------------------------

    def read_names(self) -> list[str]:
        """The records the section depended on, by name (none when it scanned the store: the
        store's own version then stands for them all)."""
        if self.scanned:
            return []
        return [f"{self.name}\n{key}" for key in self.touched | self.absent]

    def untouch(self) -> None:
        self.touched.clear()
        self.absent.clear()
        self.scanned = False

    def current(self, key: str) -> T | None:
        """The record without touching it."""
        return self._items.get(key)

    def size(self) -> int:
        """How many records, without counting as a scan."""
        return len(self._items)

    def untouched_values(self) -> list[T]:
        """Every record, touching none (an index rebuilt from them changes nothing)."""
        return list(self._items.values())

    def loaded(self, key: str, value: T | None, blob: bytes) -> None:
        """Take another worker's version of a record (None: it was removed)."""
        if value is None:
            self._items.pop(key, None)
            self.blobs.pop(key, None)
            self.prints.pop(key, None)
            return
        self.blobs[key] = blob
        self.prints.pop(key, None)
        live = self._items.get(key)
        if live is not None and type(live) is type(value):
            if isinstance(live, list):
                live[:] = value  # type: ignore[call-overload]
                return
            if hasattr(live, "__dict__"):
                attrs = vars(live)
                attrs.clear()
                attrs.update(vars(value))
                return
        self._items[key] = value

    def forget(self) -> None:
        """Drop every record (before loading the whole store again)."""
        self._items.clear()
        self.blobs.clear()
        self.prints.clear()
        self.pending.clear()
        self.untouch()
