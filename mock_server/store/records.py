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

A store split by the unit its API isolates (`partition`: an AUVY workspace, an AVA tenant, a
Strait project) keeps an index of its records by partition. A listing (`in_partition`) reads
that partition alone: only a write in it refuses the listing's section, and only its records are
built. Redis holds such a record as `PARTITION "\n" JSON` (JSON has no raw newline), so the
partition of a record that arrives undecoded is known without decoding it, and a commit
versions the partition it wrote in (shared.py). A record's partition never changes.
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
    def __init__(
        self,
        name: str,
        items: Iterable[tuple[str, T]] = (),
        *,
        partition: Callable[[T], str] | None = None,
    ) -> None:
        self.name = name
        self.partition = partition
        self._items: dict[str, T] = {}
        # Each record's partition, and each partition's keys (with `partition` only).
        self._part_of: dict[str, str] = {}
        self._members: dict[str, set[str]] = {}
        self.touched: set[str] = set()
        # Keys looked up and not found, or asked about with `in`: read, but nothing to write.
        self.absent: set[str] = set()
        self.scanned = False
        # The partitions listed (`in_partition`): read whole, by the partition's version.
        self.scanned_parts: set[str] = set()
        # The partition of each record the section removed: its commit versions it.
        self._removed_from: dict[str, str] = {}
        for key, value in items:
            self[key] = value
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
        if self.partition is not None:
            self._place(key, self.partition(value))
        self._items[key] = value
        self.touched.add(key)

    def __delitem__(self, key: str) -> None:
        del self._items[key]
        part = self._unplace(key)
        if part is not None:
            self._removed_from[key] = part
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
        self._removed_from.update(self._part_of)
        self._part_of.clear()
        self._members.clear()

    def in_partition(self, part: str, partition: Callable[[T], str]) -> list[T]:
        """The records of partition `part` (see `model.store.in_partition`), built if need be;
        the section then depends on that partition, not on the whole store."""
        if partition is not self.partition:
            raise ValueError(f"{self.name} is not split by {partition.__name__}")
        self.scanned_parts.add(part)
        keys = self._members.get(part, ())
        items = self._items
        values = [
            self._decoded(key) if items[key] is UNDECODED else items[key] for key in list(keys)
        ]
        self.touched.update(keys)  # after building them all, as in `values`
        # A record whose bytes came under another partition's name than it holds (written by
        # something other than this store) is not listed: one tenant never sees another's. Once
        # built it is filed under its own (`_decoded`).
        return [value for value in values if partition(value) == part]

    # -- for SharedWorld -----------------------------------------------------------------------

    def read_names(self) -> list[str]:
        """The records the section depended on, by name (none when it scanned the store, nor
        those of a partition it listed: the store's or the partition's version then stands for
        them, except for one it looked up in vain, which another worker may have made in
        another partition)."""
        if self.scanned:
            return []
        keys = self.touched
        if self.scanned_parts:
            parts, part_of = self.scanned_parts, self._part_of
            keys = {key for key in keys if part_of.get(key) not in parts}
        return [f"{self.name}\n{key}" for key in keys | self.absent]

    def was_read(self) -> bool:
        """Whether the section read anything of this store (or looked for what it lacks)."""
        return bool(self.touched or self.absent or self.scanned or self.scanned_parts)

    def read_parts(self) -> list[str]:
        """The partitions the section listed, by their version's name (`part_name`)."""
        if self.scanned:
            return []
        return [self.part_name(part) for part in self.scanned_parts]

    def part_name(self, part: str) -> str:
        """A partition's name among the stores' versions (shared.py): the store's name, a tab,
        the partition."""
        return f"{self.name}\t{part}"

    def stored(self, key: str, blob: bytes) -> bytes:
        """What a commit sends for a record of these bytes (b"": removed): prefixed by its
        partition, if the store is split, so the commit knows which partition it wrote in."""
        if self.partition is None:
            return blob
        part = self._part_of.get(key) if blob else self._removed_from.get(key)
        return blob if part is None else part.encode() + b"\n" + blob

    def split(self, stored: bytes) -> tuple[str | None, bytes]:
        """A record's partition and bytes from what Redis holds (`stored`'s inverse). A value
        without a partition is kept whole, in partition "" (that no listing names)."""
        if self.partition is None or not stored:
            return None, stored
        part, sep, blob = stored.partition(b"\n")
        try:
            return (part.decode(), blob) if sep else ("", stored)
        except UnicodeDecodeError:
            return "", stored

    def untouch(self) -> None:
        self.touched.clear()
        self.absent.clear()
        self.scanned = False
        if self.scanned_parts:
            self.scanned_parts.clear()
        if self._removed_from:
            self._removed_from.clear()

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

    def loaded(self, key: str, value: T | None, blob: bytes, part: str | None = None) -> None:
        """Take another worker's version of a record (None: it was removed; UNDECODED: build
        it from `blob` when first read, for a record this process holds no object of, whose
        partition is then `part`, as Redis holds it)."""
        if value is None:
            self._items.pop(key, None)
            self._unplace(key)
            self.blobs.pop(key, None)
            self.prints.pop(key, None)
            return
        self.blobs[key] = blob
        self.prints.pop(key, None)
        if value is UNDECODED:
            if self.holds_object(key):
                raise ValueError(f"{self.name} {key}: a held record must be updated in place")
            if self.partition is not None:
                self._place(key, part or "", moving=True)
            self._items[key] = value
            return
        if self.partition is not None:
            self._place(key, self.partition(value), moving=True)
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

    def _place(self, key: str, part: str, *, moving: bool = False) -> None:
        was = self._part_of.get(key)
        if was == part:
            return
        if was is not None:
            if not moving:
                raise ValueError(f"{self.name} {key}: a record's partition never changes")
            self._members[was].discard(key)
        if "\n" in part:
            raise ValueError(f"{self.name} {key}: a partition has no newline: {part!r}")
        self._part_of[key] = part
        self._members.setdefault(part, set()).add(key)

    def _unplace(self, key: str) -> str | None:
        part = self._part_of.pop(key, None)
        if part is not None:
            members = self._members[part]
            members.discard(key)
            if not members:
                del self._members[part]
        return part

    def _decoded(self, key: str) -> T:
        # A record that cannot be decoded stays undecoded: only the sections that read it fail.
        value = self.decode(self.blobs[key])
        if self.partition is not None:
            self._place(key, self.partition(value), moving=True)
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
        self._part_of.clear()
        self._members.clear()
        self.blobs.clear()
        self.prints.clear()
        self.pending.clear()
        self.untouch()
