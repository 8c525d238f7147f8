"""Timers on the model's clock.

The model schedules work (the next step of a job, a scheduled start, a TTL) as callbacks due at a
time in ms. Nothing here sleeps: the HTTP layer's driver calls `run_due` when real time passes, and
a manual clock's `advance` calls it directly, which makes time-dependent behaviour deterministic.

A model names the timers it may later cancel by a key, `(kind, id, ...)` (a job's next step is
`("auvy", job id)`), and cancels by that key: the scheduler holds the key -> timer table, so the
models hold no timer objects. A store shared by several processes (mock_server/store/timers.py)
keeps each timer as a record of its own; cancelling by key works there without two documents
having to agree on which object a timer is.
"""

from __future__ import annotations

import heapq
import itertools
from collections.abc import Callable
from dataclasses import dataclass, field

Callback = Callable[[int], None]
# (kind, id, ...): the kind ("auvy", "ava", "strait") keeps the models' ids apart.
TimerKey = tuple[str, ...]


@dataclass(frozen=True)
class Call:
    """A timer's callback as data rather than a closure: `target.<method>(*args, due_ms)`.

    The models schedule only these, so a store kept outside the process can write its timers
    down as (object, method name, arguments) and run them in another process.
    """

    target: object
    method: str
    args: tuple[object, ...] = ()

    def __call__(self, due_ms: int) -> None:
        getattr(self.target, self.method)(*self.args, due_ms)


@dataclass(order=True)
class Timer:
    due_ms: int
    seq: int
    callback: Callback = field(compare=False)
    cancelled: bool = field(default=False, compare=False)
    # The key it was filed under. A shared store, which rebuilds the key table from its timer
    # records, also clears it once another timer takes the key or the key is released; the
    # in-memory scheduler has its table and does not bother.
    key: TimerKey | None = field(default=None, compare=False)

    def cancel(self) -> None:
        self.cancelled = True


class Scheduler:
    def __init__(self) -> None:
        self._heap: list[Timer] = []
        self._seq = itertools.count()
        self._keyed: dict[TimerKey, Timer] = {}
        self.on_schedule: Callable[[], None] | None = None

    def at(self, due_ms: int, callback: Callback, key: TimerKey | None = None) -> Timer:
        """Run `callback(due_ms)` once the clock reaches `due_ms`. A `key` files the timer for
        `cancel(key)`; a timer already filed under it loses the key but stays due (the models
        cancel first where they mean to replace)."""
        timer = Timer(due_ms, self._next_seq(), callback, False, key)
        if key is not None:
            self._keyed[key] = timer
        heapq.heappush(self._heap, timer)
        if self.on_schedule is not None and self._heap[0] is timer:
            # Lets a sleeping driver wake early when new work is due sooner than it planned. It
            # sleeps until the earliest timer, so one that is not now the earliest changes nothing
            # (waking it anyway cost a loop turn per created job).
            self.on_schedule()
        return timer

    def _next_seq(self) -> int:
        return next(self._seq)

    def cancel(self, key: TimerKey) -> None:
        """Cancel the timer filed under `key`, if any."""
        timer = self._keyed.pop(key, None)
        if timer is not None:
            timer.cancelled = True

    def release(self, key: TimerKey) -> None:
        """Unfile `key` without cancelling its timer: a timer's callback calls it for its own
        key as it runs, so the key is free for the next step."""
        self._keyed.pop(key, None)

    def cancel_kind(self, kind: str) -> None:
        """Cancel every filed timer whose key starts with `kind` (a model's reset)."""
        for key in [k for k in self._keyed if k[0] == kind]:
            self.cancel(key)

    def filed(self, key: TimerKey) -> Timer | None:
        return self._keyed.get(key)

    def next_due(self) -> int | None:
        while self._heap and self._heap[0].cancelled:
            heapq.heappop(self._heap)
        return self._heap[0].due_ms if self._heap else None

    def run_due(self, now_ms: int) -> int:
        """Run every timer due at or before now, in due order; timers they add run too if due."""
        ran = 0
        while self._heap and self._heap[0].due_ms <= now_ms:
            timer = heapq.heappop(self._heap)
            if timer.cancelled:
                continue
            # Each timer sees its own due time, so a clock jump replays steps at their true times.
            timer.callback(timer.due_ms)
            ran += 1
        return ran

    def clear(self) -> None:
        self._heap.clear()
        self._keyed.clear()

    def __len__(self) -> int:
        return sum(1 for t in self._heap if not t.cancelled)
