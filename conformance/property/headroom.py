"""Room on CPython's frame stack for hypothesis's deep recursion.

CPython (3.11 and later) keeps Python frames in 16 KiB chunks: the chunk that a frame starts is
unmapped as soon as that frame returns, and mapped again by the next call. Hypothesis draws data
through nested strategies, so when a chunk boundary falls at a depth its recursion keeps crossing,
every crossing pays an mmap and an munmap, thousands of times a second: measured here, up to 15 s
of system time per xdist worker and a test file twice as slow. Whether it happens depends on how
many frames pytest, xdist and their plugins put below the test, not on the test. `with_headroom`
runs a function above one large frame, which starts a chunk big enough for the whole recursion,
so no boundary falls inside it.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, TypeVar

__all__ = ["with_headroom"]

T = TypeVar("T")

# Slots (pointers) of the large frame. CPython sizes the new chunk to at least the frame plus a
# margin, rounded up to a power of two: 40,000 slots give a 512 KiB chunk with about 25,000 slots
# (some 500 frames of hypothesis and schemathesis) free above the large frame.
SLOTS = 40_000


@functools.cache
def _spacer() -> Callable[[Callable[[], Any]], Any]:
    names = " = ".join(f"_{n}" for n in range(SLOTS))
    # __tracebackhide__: a failure's traceback reads as if the test had called `fn` itself.
    source = f"def spacer(fn):\n    __tracebackhide__ = True\n    {names} = None\n    return fn()\n"
    namespace: dict[str, Any] = {}
    exec(compile(source, "<frame-stack headroom>", "exec"), namespace)
    spacer: Callable[[Callable[[], Any]], Any] = namespace["spacer"]
    return spacer


def with_headroom(fn: Callable[[], T]) -> T:
    __tracebackhide__ = True
    result: T = _spacer()(fn)
    return result
