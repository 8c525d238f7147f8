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
so anything else holding it (a handler mid-request, the timers' heap) sees the new state. One
this process holds no object of yet may arrive *undecoded* (`loaded(key, UNDECODED, blob)`): it
is built from its bytes (`decode`) when a section first reads it. Each worker hears of every
record the others write and reads few of them (with two workers creating jobs, building the
other's records was a tenth of a worker's time).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, MutableMapping
from typing import Any, Generic, TypeVar

T = TypeVar("T")


class _Undecoded:
    def __repr__(self) -> str:
        return "UNDECODED"


# Stands in `SharedRecords._items` for a record whose bytes (in `blobs`) are not decoded yet.
UNDECODED: Any = _Undecoded()


def _no_decoder(blob: bytes) -> Any:
    raise RuntimeError("SharedRecords.decode was not set, and a record arrived undecoded")


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
        # Builds a record from its bytes (set by SharedWorld; may raise codec.CodecError).
        self.decode: Callable[[bytes], T] = _no_decoder

    # -- the model's interface (RecordStore and MutableMapping) ------------------------------------

    def get(self, key: str, default: T | None = None) -> T | None:  # type: ignore[override]
        value = self._items.get(key)
        if value is None:
            self.absent.add(key)
            return default
        if value is UNDECODED:
            value = self._decoded(key)
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
        if value is UNDECODED:
            value = self._decoded(key)
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
        values = self._all()
        # After building them: a record that cannot be built was not read, and must not be
        # looked at again when the section ends.
        self.touched.update(self._items)
        return iter(values)

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
        value = self._items.get(key)
        return self._decoded(key) if value is UNDECODED else value

    def size(self) -> int:
        """How many records, without counting as a scan."""
        return len(self._items)

    def untouched_values(self) -> list[T]:
        """Every record, touching none (an index rebuilt from them changes nothing)."""
        return self._all()

    def holds_object(self, key: str) -> bool:
        """Whether this process holds the record as an object (not absent, not undecoded):
        one that others may hold too, so a new version must update it in place."""
        value = self._items.get(key)
        return value is not None and value is not UNDECODED

    def loaded(self, key: str, value: T | None, blob: bytes) -> None:
        """Take another worker's version of a record (None: it was removed; UNDECODED: build
        it from `blob` when first read, for a record this process holds no object of)."""
        if value is None:
            self._items.pop(key, None)
            self.blobs.pop(key, None)
            self.prints.pop(key, None)
            return
        self.blobs[key] = blob
        self.prints.pop(key, None)
        if value is UNDECODED:
            if self.holds_object(key):
                raise ValueError(f"{self.name} {key}: a held record must be updated in place")
            self._items[key] = value
            return
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

    def _decoded(self, key: str) -> T:
        # A record that cannot be decoded stays undecoded: only the sections that read it fail.
        value = self.decode(self.blobs[key])
        self._items[key] = value
        return value

    def _all(self) -> list[T]:
        return [
            self._decoded(key) if value is UNDECODED else value
            for key, value in list(self._items.items())
        ]

    def forget(self) -> None:
        """Drop every record (before loading the whole store again)."""
        self._items.clear()
        self.blobs.clear()
        self.prints.clear()
        self.pending.clear()
        self.untouch()
