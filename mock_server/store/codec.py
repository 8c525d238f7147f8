"""The world's objects as JSON and back: what the Redis store writes instead of pickles.

Unpickling runs whatever code the bytes name, so with pickles in Redis whoever could write a key
could run code in the server. Decoding here only ever builds:

- JSON values, and bytes, tuples, sets, frozensets, deques, counters, dicts with other keys,
  each tagged (`{"$tuple": [...]}`, ...);
- instances of classes defined in the modules of `ALLOWED_MODULES` (the models and their
  settings), made with `object.__new__` and given their attributes, as pickle itself does, but
  never calling a constructor, `__setstate__` or anything else the data names;
- enum members of those modules, looked up by value;
- references by name to this process's own objects (`{"$x": name}`: the models, the engine);
- timers' `Call`s (alone or inside a compact `{"$timer": [...]}`, which also carries the key
  the timer is filed under: a list of strings), whose target must be such a reference and whose
  method must be one the caller allows.

Anything else is refused with `CodecError`, before the live world changes. An object reached
twice is written once and referred to after (`{"$r": n}`), so identity survives within one
document. Lists and dicts reached twice come back as two copies: the models share none. (The
timers, once held both by the scheduler's heap and by their model's table, are records of their
own now and hold no reference across documents: see store/timers.py.)

Frozen dataclasses are values (`{"$f": class, "s": {...}}`, no number, two copies when reached
twice), taken as immutable all the way down as snapshot.py's shapes take them: one is encoded
once and its encoding reused in every document while it lives (see `FROZEN_CACHE_MOST`). A job
record's script, the pathway's frozen steps, was half of the record's encoding time (a job
record: 15.5 -> 9.7 us). One holding an object with identity is written as an object (`$o`).
"""

from __future__ import annotations

import base64
import binascii
import enum
import importlib
import itertools
import json
import math
import re
from collections import deque
from collections.abc import Callable, Collection, Mapping
from typing import Any, ClassVar

import orjson

from ..model.scheduler import Call, Timer

FORMAT = 1
ALLOWED_MODULES = ("mock_server.model.", "mock_server.variants.")
ALLOWED_EXACT = frozenset({"mock_server.clock", "mock_server.ratelimit"})


class CodecError(ValueError):
    """Data this process will not load (or an object it cannot write)."""


def _allowed_module(module: str) -> bool:
    return module in ALLOWED_EXACT or module.startswith(ALLOWED_MODULES)


_names: dict[type, str] = {}
_classes: dict[str, type] = {}
_slots: dict[type, tuple[str, ...]] = {}


def _class_name(cls: type) -> str:
    name = _names.get(cls)
    if name is None:
        if not _allowed_module(cls.__module__) or "<" in cls.__qualname__:
            raise CodecError(f"cannot write a {cls.__module__}.{cls.__qualname__}")
        name = _names[cls] = f"{cls.__module__}:{cls.__qualname__}"
    return name


def _class(name: Any) -> type:
    cls = _classes.get(name) if isinstance(name, str) else None
    if cls is not None:
        return cls
    module, _, qualname = str(name).partition(":")
    if not _allowed_module(module) or not re.fullmatch(r"[A-Za-z_][\w.]*", qualname):
        raise CodecError(f"refusing to load a {name!r}")
    found: Any = importlib.import_module(module)
    for part in qualname.split("."):
        found = getattr(found, part, None)
    if (
        not isinstance(found, type)
        or found.__module__ != module
        or found.__qualname__ != qualname
        # Built as pickle would, with object.__new__: a class with its own __new__ is refused.
        or (_constructor(found) is not object.__new__ and not issubclass(found, enum.Enum))
    ):
        raise CodecError(f"refusing to load a {name!r}")
    _classes[name] = found
    return found


def _constructor(cls: type) -> object:
    constructor: object = cls.__new__
    return constructor


def _state(obj: object) -> dict[str, Any]:
    state = dict(getattr(obj, "__dict__", ()))
    cls = type(obj)
    slots = _slots.get(cls)
    if slots is None:
        names = [s for c in cls.__mro__ for s in getattr(c, "__slots__", ())]
        slots = _slots[cls] = tuple(s for s in names if s not in ("__dict__", "__weakref__"))
    for slot in slots:
        if hasattr(obj, slot):
            state[slot] = getattr(obj, slot)
    return state


_COUNT = re.compile(r"count\((-?\d+)\)")


def count_value(counter: itertools.count[int]) -> int:
    match = _COUNT.fullmatch(repr(counter))
    if match is None:
        raise CodecError(f"cannot write {counter!r} (only count(n) with step 1)")
    return int(match[1])


_INT_MIN = -(2**63)  # what orjson reads back as an int
_INT_MAX = 2**64 - 1

# Encodings of frozen objects by id: (the object, kept alive so its id is not reused; its
# encoding, or None when it holds an object with identity; whether that encoding needs the
# json module). Requests make frozen objects too (log lines, attempts), so the cache is emptied
# when full rather than kept for ever; a long-lived object is then encoded again once.
FROZEN_CACHE_MOST = 4096
_frozen_cache: dict[int, tuple[object, Any, bool]] = {}
_frozen_classes: dict[type, bool] = {}


def is_frozen_dataclass(cls: type) -> bool:
    """Whether instances of `cls` are values that never change: frozen dataclasses, taken as
    immutable all the way down (here, and by snapshot.py's shapes)."""
    found = _frozen_classes.get(cls)
    if found is None:
        params = getattr(cls, "__dataclass_params__", None)
        found = _frozen_classes[cls] = params is not None and bool(params.frozen)
    return found


class Encoder:
    """One document's worth of objects (identity is kept within one `dumps`). With `verify`,
    every frozen object is encoded afresh and compared with its cached encoding: a frozen
    object whose inner container was changed in place fails loudly (the tests run so)."""

    def __init__(self, refs: Mapping[int, str], *, verify: bool = False) -> None:
        self._refs = refs
        self._verify = verify
        self._seen: dict[int, int] = {}
        self._alive: list[object] = []  # keeps every id() above valid while encoding
        # orjson writes NaN and the infinities as null and reads integers beyond 64 bits as
        # floats: a document holding one is written (and read) by the json module, which keeps
        # them.
        self.exact = False

    def encode(self, value: Any) -> Any:
        kind = type(value)
        if kind is str or value is None or kind is bool:
            return value
        if kind is int:
            if not _INT_MIN <= value <= _INT_MAX:
                self.exact = True
            return value
        if kind is float:
            if not math.isfinite(value):
                self.exact = True
            return value
        if kind is dict:
            if all(type(k) is str and not k.startswith("$") for k in value):
                return self._fields(value)
            return {"$dict": [[self.encode(k), self.encode(v)] for k, v in value.items()]}
        if kind is list:
            return [self.encode(v) for v in value]
        builtin = _BUILTINS.get(kind)
        if builtin is not None:
            return builtin(self, value)
        name = self._refs.get(id(value))
        if name is not None:
            return {"$x": name}
        if kind is Call:
            target = self._refs.get(id(value.target))
            if target is None:
                raise CodecError(f"a timer calls {value.method} on an object with no name")
            return {"$call": [target, value.method, self.encode(value.args)]}
        if _is_enum(kind):
            return {"$e": _class_name(kind), "v": self.encode(value.value)}
        if is_frozen_dataclass(kind):
            frozen = self._frozen(value, kind)
            if frozen is not None:
                return frozen
        seen = self._seen.get(id(value))
        if seen is not None:
            return {"$r": seen}
        if kind is Timer and type(value.callback) is Call:
            compact = self._timer(value)
            if compact is not None:
                return compact
        cls = _class_name(kind)
        number = self._seen[id(value)] = len(self._seen)
        self._alive.append(value)
        return {"$o": cls, "$n": number, "s": self._fields(_state(value))}

    def _fields(self, mapping: dict[str, Any]) -> dict[str, Any]:
        """A mapping with plain string keys, its values encoded. Most of a record's values are
        strings, None or booleans: taken as they are here, without a call each (with the type
        table, a job record's walk went from 15 to 13 us)."""
        out = {}
        encode = self.encode
        for key, value in mapping.items():
            kind = type(value)
            out[key] = value if kind is str or value is None or kind is bool else encode(value)
        return out

    def _frozen(self, value: object, kind: type) -> Any:
        """A frozen object's encoding, from the cache when it has one; None when the object
        holds one with identity (an `$o`: then it is written as one too)."""
        cached = _frozen_cache.get(id(value))
        if cached is not None and cached[0] is value and not self._verify:
            self.exact = self.exact or cached[2]
            return cached[1]
        inner = Encoder(self._refs, verify=self._verify)
        encoded: Any = {"$f": _class_name(kind), "s": inner._fields(_state(value))}
        if inner._seen:
            encoded = None
        elif cached is not None and cached[0] is value and cached[1] != encoded:
            raise RuntimeError(
                f"a frozen {kind.__qualname__} changed after it was encoded: it holds a "
                "container that was changed in place"
            )
        if len(_frozen_cache) >= FROZEN_CACHE_MOST:
            _frozen_cache.clear()
        _frozen_cache[id(value)] = (value, encoded, inner.exact)
        if encoded is not None:
            self.exact = self.exact or inner.exact
        return encoded

    def _tuple(self, value: tuple[Any, ...]) -> Any:
        return {"$tuple": [self.encode(v) for v in value]}

    def _set(self, value: set[Any] | frozenset[Any]) -> Any:
        # Sorted where possible, so the same set gives the same bytes in every process.
        items = [self.encode(v) for v in value]
        items.sort(key=lambda v: json.dumps(v, sort_keys=True))
        return {"$set" if type(value) is set else "$frozenset": items}

    def _deque(self, value: deque[Any]) -> Any:
        return {"$deque": [self.encode(v) for v in value], "maxlen": value.maxlen}

    def _count(self, value: itertools.count[int]) -> Any:
        return {"$count": count_value(value)}

    def _bytes(self, value: bytes) -> Any:
        return {"$bytes": base64.b64encode(value).decode()}

    def _timer(self, timer: Timer) -> Any:
        """A timer in one short list: a busy world holds one per pending job (each a record,
        see store/timers.py), and this is most of what a section that schedules work writes."""
        call = timer.callback
        assert isinstance(call, Call)
        target = self._refs.get(id(call.target))
        if target is None:
            return None
        number = self._seen[id(timer)] = len(self._seen)
        self._alive.append(timer)
        args = [self.encode(a) for a in call.args]
        key = None if timer.key is None else list(timer.key)
        return {
            "$timer": [
                number,
                timer.due_ms,
                timer.seq,
                target,
                call.method,
                args,
                timer.cancelled,
                key,
            ]
        }


_BUILTINS: dict[type, Callable[[Encoder, Any], Any]] = {
    tuple: Encoder._tuple,
    set: Encoder._set,
    frozenset: Encoder._set,
    deque: Encoder._deque,
    itertools.count: Encoder._count,
    bytes: Encoder._bytes,
}
_enums: dict[type, bool] = {}


def _is_enum(cls: type) -> bool:
    found = _enums.get(cls)
    if found is None:
        found = _enums[cls] = issubclass(cls, enum.Enum)
    return found


class Decoder:
    """Builds the objects of one document; see the module docstring for what it allows."""

    def __init__(self, refs: Mapping[str, object], calls: Collection[tuple[str, str]]) -> None:
        self._refs = refs
        self._calls = calls
        self._objects: dict[int, object] = {}

    def decode(self, data: Any) -> Any:
        kind = type(data)
        if kind is list:
            return [self.decode(v) for v in data]
        if kind is not dict:
            return data
        # The encoder writes a tag first and never writes a plain key starting with "$".
        tag = next(iter(data), "")
        if tag[:1] == "$":
            handler = self._tags.get(tag)
            if handler is None:
                raise CodecError(f"unknown tag {tag!r}")
            return handler(self, data)
        return {k: self.decode(v) for k, v in data.items()}

    def _object(self, data: dict[str, Any]) -> object:
        obj = self._new(data["$o"])
        self._objects[int(data["$n"])] = obj
        return self._fill(obj, data["s"])

    def _frozen(self, data: dict[str, Any]) -> object:
        # A value: no number, as nothing refers back to it.
        return self._fill(self._new(data["$f"]), data["s"])

    def _new(self, name: Any) -> object:
        cls = _class(name)
        if issubclass(cls, enum.Enum):
            raise CodecError(f"{name} is an enum")
        return object.__new__(cls)

    def _fill(self, obj: object, state: Any) -> object:
        if not isinstance(state, dict):
            raise CodecError("an object's state must be a mapping")
        for key, value in state.items():
            if key.startswith("__"):
                raise CodecError(f"refusing to set {key!r}")
            object.__setattr__(obj, key, self.decode(value))
        return obj

    def _seen(self, data: dict[str, Any]) -> object:
        try:
            return self._objects[int(data["$r"])]
        except KeyError:
            raise CodecError(f"a reference to object {data['$r']!r} before it") from None

    def _ref(self, data: dict[str, Any]) -> object:
        try:
            return self._refs[data["$x"]]
        except (KeyError, TypeError):
            raise CodecError(f"a reference to unknown object {data['$x']!r}") from None

    def _call(self, data: dict[str, Any]) -> Call:
        target, method, args = data["$call"]
        if (target, method) not in self._calls:
            raise CodecError(f"refusing a timer calling {target}.{method}")
        decoded = self.decode(args)
        if not isinstance(decoded, tuple):
            raise CodecError("a timer's arguments must be a tuple")
        return Call(self._ref({"$x": target}), method, decoded)

    def _timer(self, data: dict[str, Any]) -> Timer:
        number, due_ms, seq, target, method, args, cancelled, key = data["$timer"]
        call = self._call({"$call": [target, method, {"$tuple": args}]})
        if type(due_ms) is not int or type(seq) is not int or type(cancelled) is not bool:
            raise CodecError("a timer's due time, sequence and flag must be ints and a bool")
        if key is not None and (
            type(key) is not list or not key or any(type(k) is not str for k in key)
        ):
            raise CodecError("a timer's key must be null or a non-empty list of strings")
        timer = Timer(due_ms, seq, call, cancelled, None if key is None else tuple(key))
        self._objects[int(number)] = timer
        return timer

    def _enum(self, data: dict[str, Any]) -> object:
        cls = _class(data["$e"])
        if not issubclass(cls, enum.Enum):
            raise CodecError(f"{data['$e']} is not an enum")
        return cls(self.decode(data["v"]))

    def _pairs(self, data: dict[str, Any]) -> dict[Any, Any]:
        return {self.decode(k): self.decode(v) for k, v in data["$dict"]}

    def _tuple(self, data: dict[str, Any]) -> tuple[Any, ...]:
        return tuple(self.decode(v) for v in data["$tuple"])

    def _set(self, data: dict[str, Any]) -> set[Any]:
        return {self.decode(v) for v in data["$set"]}

    def _frozenset(self, data: dict[str, Any]) -> frozenset[Any]:
        return frozenset(self.decode(v) for v in data["$frozenset"])

    def _deque(self, data: dict[str, Any]) -> deque[Any]:
        maxlen = data.get("maxlen")
        return deque((self.decode(v) for v in data["$deque"]), maxlen=maxlen)

    def _count(self, data: dict[str, Any]) -> itertools.count[int]:
        return itertools.count(int(data["$count"]))

    def _bytes(self, data: dict[str, Any]) -> bytes:
        return base64.b64decode(data["$bytes"], validate=True)

    _tags: ClassVar[Mapping[str, Callable[[Decoder, dict[str, Any]], Any]]] = {
        "$o": _object,
        "$f": _frozen,
        "$r": _seen,
        "$x": _ref,
        "$call": _call,
        "$timer": _timer,
        "$e": _enum,
        "$dict": _pairs,
        "$tuple": _tuple,
        "$set": _set,
        "$frozenset": _frozenset,
        "$deque": _deque,
        "$count": _count,
        "$bytes": _bytes,
    }


def dumps(value: object, refs: Mapping[int, str], *, verify: bool = False) -> bytes:
    encoder = Encoder(refs, verify=verify)
    data = encoder.encode(value)
    if not encoder.exact:
        # orjson takes a tenth of the json module's time here, and this runs for every record
        # a write changes. It refuses some of what the json module writes (lone surrogates,
        # nesting deeper than 254): those documents are written as the exact ones are.
        try:
            return orjson.dumps({"format": FORMAT, "data": data})
        except orjson.JSONEncodeError:
            pass
    # "exact" tells loads to read the document with the json module too; ASCII escapes keep
    # a lone surrogate (which JSON request bodies may carry) writable.
    document = {"format": FORMAT, "exact": True, "data": data}
    return json.dumps(document, separators=(",", ":")).encode()


def _parse(blob: bytes) -> Any:
    try:
        document = orjson.loads(blob)
    except orjson.JSONDecodeError:
        # Still JSON to the json module, unmarked: NaN or infinities in a document an earlier
        # version wrote (it wrote everything with the json module). Anything else fails below.
        pass
    else:
        if not (isinstance(document, dict) and document.get("exact") is True):
            return document
    try:
        return json.loads(blob)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise CodecError(f"not a JSON document ({exc})") from None


def loads(blob: bytes, refs: Mapping[str, object], calls: Collection[tuple[str, str]]) -> Any:
    document = _parse(blob)
    if not isinstance(document, dict) or document.get("format") != FORMAT:
        raise CodecError(f"not a world document of format {FORMAT}")
    try:
        return Decoder(refs, calls).decode(document["data"])
    except CodecError:
        raise
    except (KeyError, TypeError, ValueError, AttributeError, binascii.Error) as exc:
        raise CodecError(f"malformed world document ({exc!r})") from None
