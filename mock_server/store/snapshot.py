"""The world's state as bytes and back, updating the live objects in place.

The records (jobs, runs, logs, ...) are pickled one by one (`dumps_value`, see records.py); the
rest of the world is one snapshot: the `__dict__` of a few root objects (the models, the
scheduler, the clock, ...).
Anything that belongs to one process (the engine with its SSE listeners, the Redis-backed stream
stores, asyncio events) is written as a reference by name (pickle's persistent ids) and resolved
to this process's own object when loading; so are the roots themselves wherever another object
points at one. Loading therefore swaps each root's attributes in place, and every handler, timer
and app keeps pointing at live objects.

Timers hold closures (`lambda t: self._tick(job_id, t)`), which pickle refuses; they are written
as where their code is (module, qualified name, line: every worker runs the same source) plus the
values of their cells. Unpickling runs code chosen by whoever can write the snapshot: the Redis
store must be trusted like the server itself.
"""

from __future__ import annotations

import functools
import importlib
import io
import itertools
import pickle
import re
import types
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any


@dataclass
class Root:
    """An object whose attributes make up part of the world; `local` ones stay per process."""

    name: str
    obj: object
    local: frozenset[str] = field(default_factory=frozenset)


class Snapshots:
    def __init__(self, roots: Iterable[Root], externals: Mapping[str, object]) -> None:
        self.roots = {root.name: root for root in roots}
        refs: dict[str, object] = {f"root:{n}": r.obj for n, r in self.roots.items()}
        refs.update({f"ext:{n}": obj for n, obj in externals.items()})
        self._by_name = refs
        self._by_id = {id(obj): name for name, obj in refs.items()}

    def dumps(self) -> bytes:
        state = {
            name: {k: v for k, v in vars(root.obj).items() if k not in root.local}
            for name, root in self.roots.items()
        }
        buffer = io.BytesIO()
        _Pickler(buffer, self._by_id).dump(state)
        return buffer.getvalue()

    def dumps_value(self, value: object) -> bytes:
        """One object (a record) alone, with the same references by name."""
        buffer = io.BytesIO()
        _Pickler(buffer, self._by_id).dump(value)
        return buffer.getvalue()

    def loads_value(self, blob: bytes) -> Any:
        return _Unpickler(io.BytesIO(blob), self._by_name).load()

    def load(self, blob: bytes) -> None:
        state: dict[str, dict[str, Any]] = _Unpickler(io.BytesIO(blob), self._by_name).load()
        for name, root in self.roots.items():
            attrs = vars(root.obj)
            kept = {k: attrs[k] for k in root.local if k in attrs}
            attrs.clear()
            attrs.update(state[name])
            attrs.update(kept)


class _Pickler(pickle.Pickler):
    """References by name through `reducer_override`, not `persistent_id`: pickle asks the former
    only about objects that are not of a built-in type, a few percent of a world's objects."""

    def __init__(self, file: io.BytesIO, refs: Mapping[int, str]) -> None:
        super().__init__(file, protocol=pickle.HIGHEST_PROTOCOL)
        self._refs = refs

    def reducer_override(self, obj: Any) -> Any:
        name = self._refs.get(id(obj))
        if name is not None:
            return _ref, (name,)
        if type(obj) is types.FunctionType and (obj.__closure__ or "<" in obj.__qualname__):
            return _reduce_function(obj)
        if type(obj) is itertools.count:
            # Pickling itertools objects is deprecated from Python 3.12 and gone in 3.14.
            return itertools.count, (_count_value(obj),)
        return NotImplemented


class _Unpickler(pickle.Unpickler):
    def __init__(self, file: io.BytesIO, refs: Mapping[str, object]) -> None:
        super().__init__(file)
        self._refs = refs

    def load(self) -> Any:
        _loading.append(self._refs)
        try:
            return super().load()
        finally:
            _loading.pop()


# The references of the snapshot being loaded: `_ref` is called by pickle with its arguments
# only, and loading never yields to another task, so a stack is enough.
_loading: list[Mapping[str, object]] = []


def _ref(name: str) -> object:
    try:
        return _loading[-1][name]
    except KeyError:
        raise pickle.UnpicklingError(f"the snapshot refers to unknown object {name!r}") from None


def _reduce_function(fn: types.FunctionType) -> Any:
    cells = tuple(c.cell_contents for c in fn.__closure__ or ())
    state = (cells, fn.__defaults__, fn.__kwdefaults__)
    where = (fn.__module__, fn.__code__.co_qualname, fn.__code__.co_firstlineno)
    # The state goes after the function is memoised, so a closure over an object that refers back
    # to it (a model whose timer table holds this timer) pickles without recursion.
    return _function, (*where, len(cells)), state, None, None, _fill


_COUNT = re.compile(r"count\((-?\d+)\)")


def _count_value(counter: itertools.count[int]) -> int:
    match = _COUNT.fullmatch(repr(counter))
    if match is None:
        raise pickle.PicklingError(f"cannot snapshot {counter!r} (only count(n) with step 1)")
    return int(match[1])


@functools.cache
def _code(module: str, qualname: str, line: int) -> types.CodeType:
    """A nested function's code, found by name and line in the code of the function around it:
    every worker runs the same source, so this names the code without serialising it."""
    outer: Any = importlib.import_module(module)
    for part in qualname.split(".<locals>.")[0].split("."):
        outer = getattr(outer, part)
    todo: list[types.CodeType] = [outer.__code__]
    while todo:
        code = todo.pop()
        if code.co_qualname == qualname and code.co_firstlineno == line:
            return code
        todo.extend(c for c in code.co_consts if isinstance(c, types.CodeType))
    raise pickle.UnpicklingError(f"no function {qualname} at {module} line {line}")


def _function(module: str, qualname: str, line: int, cells: int) -> types.FunctionType:
    code = _code(module, qualname, line)
    namespace = importlib.import_module(module).__dict__
    closure = tuple(types.CellType() for _ in range(cells))
    return types.FunctionType(code, namespace, code.co_name, None, closure or None)


def _fill(fn: types.FunctionType, state: tuple[tuple[Any, ...], Any, Any]) -> None:
    cells, defaults, kwdefaults = state
    for cell, value in zip(fn.__closure__ or (), cells, strict=True):
        cell.cell_contents = value
    fn.__defaults__ = defaults
    fn.__kwdefaults__ = kwdefaults
