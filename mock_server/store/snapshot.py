"""The world's state as bytes and back, updating the live objects in place.

The records (jobs, runs, logs, ...) are written one by one (`dumps_value`, see records.py); the
rest of the world is one snapshot: the `__dict__` of a few root objects (the models, the
scheduler, the clock, ...). The bytes are JSON (`codec`), never pickle: loading what someone
else wrote into Redis builds data and allow-listed model objects, and runs no code they chose.
Anything that belongs to one process (the engine with its SSE listeners, the Redis-backed stream
stores, asyncio events) is written as a reference by name and resolved to this process's own
object when loading; so are the roots themselves wherever another object points at one. Loading
therefore swaps each root's attributes in place, and every handler, timer and app keeps pointing
at live objects. Timers are records (store/timers.py) whose callbacks are `Call`s (a root, a
method name, arguments); only the methods named in `calls` may be loaded.
"""

from __future__ import annotations

import io
import itertools
import operator
import os
import pickle
from collections.abc import Callable, Collection, Container, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from . import codec

# The two documents the rest of the world is written as. "config" holds what requests rarely
# change (keys, pathways, workers, settings); "live" everything else that is not a record
# (workspaces, receptors and share tokens, webhook endpoints, rate limits; jobs, queues, ledgers
# and timers are records, so its size does not follow the number of jobs). A section
# re-encodes, and a worker reloads, only a document whose state changed; and since every
# section reads both, a change to either refuses every section begun before it (shared.py).
PARTS = ("live", "config")


@dataclass
class Root:
    """An object whose attributes make up part of the world; `local` ones stay per process,
    `config` ones go to the config document (see PARTS), the others to the live one."""

    name: str
    obj: object
    local: frozenset[str] = field(default_factory=frozenset)
    config: frozenset[str] = field(default_factory=frozenset)

    def part_of(self, attr: str) -> str:
        return "config" if attr in self.config else "live"


class Snapshots:
    def __init__(
        self,
        roots: Iterable[Root],
        externals: Mapping[str, object],
        calls: Collection[tuple[str, str]] = (),
    ) -> None:
        self.roots = {root.name: root for root in roots}
        refs: dict[str, object] = {f"root:{n}": r.obj for n, r in self.roots.items()}
        refs.update({f"ext:{n}": obj for n, obj in externals.items()})
        self._by_name = refs
        self._by_id = {id(obj): name for name, obj in refs.items()}
        # (root, method) pairs a loaded timer may call, as references: ("root:auvy", "_tick").
        self._calls = frozenset((f"root:{root}", method) for root, method in calls)
        # The printer's dispatch table, made once: a section prints two documents and every
        # record it touched, and building it each time cost as much as a small record's print.
        self._dispatch = _Printer.table(self._by_id, refs.values())
        # Per part: its last shape (`_shape_of`) and the print made for it (`state_print`).
        self._prints: dict[str, tuple[list[Any], bytes | None]] = {}
        # Per (root, part): the root's attribute names, and those of them in the part.
        self._names: dict[tuple[str, str], tuple[tuple[str, ...], tuple[str, ...]]] = {}
        # Print every time anyway and fail when a shape hid a change (see VERIFY_ENV).
        self.verify = os.environ.get(VERIFY_ENV, "") == "1"

    def _state(self, part: str) -> dict[str, dict[str, Any]]:
        return {
            name: {
                k: v
                for k, v in vars(root.obj).items()
                if k not in root.local and root.part_of(k) == part
            }
            for name, root in self.roots.items()
        }

    def dumps(self, part: str) -> bytes:
        return codec.dumps(self._state(part), self._by_id, verify=self.verify)

    def state_print(self, part: str) -> bytes | None:
        """Bytes that differ whenever the part's state does, made fast (C pickle, about a
        tenth of the JSON encoder's time). They stay in this process: nothing ever loads them and
        they never reach Redis; they only let a section that changed nothing skip the JSON
        encoding. None when the state holds something pickle cannot write (then encode).

        A part made only of containers, immutable values (frozen dataclasses, strings, ...)
        and references by name is printed again only when its shape (`_shape`) changed: both
        documents are, and printing them was most of a read request's cost under the Redis
        store, for a state requests seldom change."""
        cached = self._prints.get(part)
        if cached is not None and self._has_shape(part, cached[0]):
            if self.verify:
                _check_unchanged(part, cached[1], self.print_value(self._state(part)))
            return cached[1]
        printed = self.print_value(self._state(part))
        shape = self._shape_of(part)
        if shape is None:
            self._prints.pop(part, None)
        else:
            self._prints[part] = (shape, printed)
        return printed

    def _shape_of(self, part: str) -> list[Any] | None:
        """The part's shape, root by root: the root's attribute names, the names in the part,
        and a `_node` of each such attribute's value; None when one holds a mutable object.
        It holds every object it names, so their identities stay theirs."""
        refs = self._by_id
        shape: list[Any] = []
        for root in self.roots.values():
            attrs = vars(root.obj)
            names = self._names_in(root, part, attrs)
            nodes = []
            for name in names:
                node = _node(attrs[name], refs)
                if node is MUTABLE:
                    return None
                nodes.append(node)
            shape.append((list(attrs), names, nodes))
        return shape

    def _has_shape(self, part: str, shape: list[Any]) -> bool:
        """Whether the part still has `shape`: compared by identity, container by container,
        in C loops (`map(operator.is_, ...)`); building a shape to compare with, each
        section, cost several times as much."""
        for root, (keys, names, nodes) in zip(self.roots.values(), shape, strict=True):
            attrs = vars(root.obj)
            if len(attrs) != len(keys) or not all(map(operator.is_, attrs, keys)):
                return False
            for name, node in zip(names, nodes, strict=True):
                value = attrs[name]
                if node[0] is _ATOM:
                    if value is not node[1]:
                        return False
                elif not _same(value, node):
                    return False
        return True

    def _names_in(self, root: Root, part: str, attrs: dict[str, Any]) -> tuple[str, ...]:
        """The names of `root`'s attributes in `part` (remembered while its names stay)."""
        present = tuple(attrs)
        cached = self._names.get((root.name, part))
        if cached is not None and cached[0] == present:
            return cached[1]
        names = tuple(k for k in present if k not in root.local and root.part_of(k) == part)
        self._names[(root.name, part)] = (present, names)
        return names

    def print_value(self, value: object) -> bytes | None:
        """`state_print` of one object (a record)."""
        buffer = io.BytesIO()
        try:
            _Printer(buffer, self._dispatch).dump(value)
        except (pickle.PicklingError, TypeError, AttributeError):
            return None
        return buffer.getvalue()

    def dumps_value(self, value: object) -> bytes:
        """One object (a record) alone, with the same references by name."""
        return codec.dumps(value, self._by_id, verify=self.verify)

    def loads_value(self, blob: bytes) -> Any:
        return codec.loads(blob, self._by_name, self._calls)

    def load(self, blobs: Mapping[str, bytes]) -> None:
        """Replace the parts given (part -> bytes); every part is decoded before any changes."""
        states = {}
        for part, blob in blobs.items():
            state = codec.loads(blob, self._by_name, self._calls)
            if not isinstance(state, dict) or set(state) != set(self.roots):
                raise codec.CodecError(f"the {part} document does not hold this world's roots")
            for name, root in self.roots.items():
                attrs = state[name]
                if not isinstance(attrs, dict) or any(
                    k in root.local or root.part_of(k) != part for k in attrs
                ):
                    raise codec.CodecError(f"the {part} document holds {name}'s other attributes")
            states[part] = state
        for part, state in states.items():
            for name, root in self.roots.items():
                attrs = vars(root.obj)
                for k in [k for k in attrs if k not in root.local and root.part_of(k) == part]:
                    del attrs[k]
                attrs.update(state[name])


# What `_shape` answers for a value holding something a shape cannot stand for.
MUTABLE = object()
# Set to 1 (the Redis tests do) to print every part every time and raise when `state_print`
# answered from a shape that hid a change: a frozen object holding a container changed in place.
VERIFY_ENV = "MOCK_SERVER_VERIFY_SHAPES"
# Types whose instances never change (frozen dataclasses join as they are met), and types seen
# not to be (so they are asked about once).
_IMMUTABLE: set[type] = {str, int, float, bool, bytes, type(None), frozenset}
_MUTABLE_TYPES: set[type] = {dict, list, tuple}


def _immutable(kind: type) -> bool:
    if kind in _IMMUTABLE:
        return True
    if kind in _MUTABLE_TYPES:
        return False
    if codec.is_frozen_dataclass(kind):
        _IMMUTABLE.add(kind)
        return True
    _MUTABLE_TYPES.add(kind)
    return False


# The kinds of a shape's nodes (see `_node`).
_ATOM, _DICT, _SEQUENCE = "atom", "dict", "sequence"


def _node(value: Any, refs: Container[int]) -> Any:
    """`value`'s shape: (_ATOM, value) for an immutable value or one written by name (`refs`,
    ids), else its container's kind, keys and values (or items) as lists, and the nodes of
    those that are containers themselves, by position; MUTABLE when it holds an object whose
    contents a shape cannot see. By identity, not value: the print writes an object reached
    twice once, so two equal objects print unlike one object twice."""
    kind = type(value)
    if kind in _IMMUTABLE or id(value) in refs:
        return (_ATOM, value)
    if kind is dict or kind is list or kind is tuple:
        items: list[Any] = list(value.values() if kind is dict else value)
        inner: list[tuple[int, Any]] = []
        if not _IMMUTABLE.issuperset(map(type, items)):
            for index, item in enumerate(items):
                node = _node(item, refs)
                if node is MUTABLE:
                    return MUTABLE
                if node[0] is not _ATOM:
                    inner.append((index, node))
        if kind is dict:
            return (_DICT, list(value), items, tuple(inner))
        return (_SEQUENCE, kind, items, tuple(inner))
    if _immutable(kind):
        return (_ATOM, value)
    return MUTABLE


def _same(value: Any, node: Any) -> bool:
    """Whether `value` still has the shape `node` (see `_node`)."""
    tag = node[0]
    if tag is _ATOM:
        return value is node[1]
    items = node[2]
    if tag is _DICT:
        if type(value) is not dict or len(value) != len(items):
            return False
        if not all(map(operator.is_, value, node[1])):
            return False
        if not all(map(operator.is_, value.values(), items)):
            return False
    else:
        if type(value) is not node[1] or len(value) != len(items):
            return False
        if not all(map(operator.is_, value, items)):
            return False
    # A loop, not all() over a generator: most containers have no inner ones, and making
    # the generator cost more than checking them.
    for index, inner in node[3]:  # noqa: SIM110
        if not _same(items[index], inner):
            return False
    return True


def _check_unchanged(part: str, cached: bytes | None, printed: bytes | None) -> None:
    if printed != cached:
        raise RuntimeError(
            f"the {part} document changed while its shape did not: an object taken as "
            "immutable (a frozen dataclass) holds a container that was changed in place"
        )


class _Printer(pickle.Pickler):
    """Writes this process's own objects (the roots, the engine) by name, as the codec does.

    Through `dispatch_table`, keyed by those objects' types, rather than `reducer_override`:
    that is a Python call for every object pickled, and made the print of a world with a few
    hundred jobs cost half a read request. Only objects of the listed types reach `_by_name`."""

    def __init__(self, file: io.BytesIO, table: Mapping[type, Callable[[Any], Any]]) -> None:
        super().__init__(file, protocol=pickle.HIGHEST_PROTOCOL)
        self.dispatch_table = table

    @staticmethod
    def table(
        refs: Mapping[int, str], objects: Iterable[object]
    ) -> dict[type, Callable[[Any], Any]]:
        def by_name(obj: Any) -> Any:
            name = refs.get(id(obj))
            if name is not None:
                return str, (name,)
            # Another object of a type some reference has: as pickle would write it.
            return obj.__reduce_ex__(pickle.HIGHEST_PROTOCOL)

        table: dict[type, Callable[[Any], Any]] = {type(obj): by_name for obj in objects}
        # Pickling itertools objects is deprecated from Python 3.12 and gone in 3.14.
        table[itertools.count] = lambda obj: (int, (codec.count_value(obj),))
        return table
