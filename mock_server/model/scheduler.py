"""Timers on the model's clock.

The model schedules work (the next step of a job, a scheduled start, a TTL) as callbacks due at a
time in ms. Nothing here sleeps: the HTTP layer's driver calls `run_due` when real time passes, and
a manual clock's `advance` calls it directly, which makes time-dependent behaviour deterministic.
"""

from __future__ import annotations

import heapq
import itertools
from collections.abc import Callable
from dataclasses import dataclass, field

Callback = Callable[[int], None]


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

    def cancel(self) -> None:
        self.cancelled = True


class Scheduler:
    def __init__(self) -> None:
        self._heap: list[Timer] = []
        self._seq = itertools.count()
        self.on_schedule: Callable[[], None] | None = None

    def at(self, due_ms: int, callback: Callback) -> Timer:
        timer = Timer(due_ms, next(self._seq), callback)
        heapq.heappush(self._heap, timer)
        if self.on_schedule is not None and self._heap[0] is timer:
            # Lets a sleeping driver wake early when new work is due sooner than it planned. It
            # sleeps until the earliest timer, so one that is not now the earliest changes nothing
            # (waking it anyway cost a loop turn per created job).
            self.on_schedule()
        return timer

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

    def __len__(self) -> int:
        return sum(1 for t in self._heap if not t.cancelled)
