"""Strait: a run's timers, one per slot (step, timeout, expiry), kept as data: each names the
model method it runs by name (`Call(model, "_fire", (run id, slot, action))`) and filed in the
scheduler under `("strait", run id, slot)`."""

from __future__ import annotations

from collections.abc import Callable

from ..scheduler import Call
from .records import Run
from .world import StraitWorld


class RunTimers(StraitWorld):
    def _at(self, run: Run, slot: str, due_ms: int, action: Callable[[Run, int], None]) -> None:
        self._unschedule(run, slot)
        call = Call(self, "_fire", (run.id, slot, action.__name__))
        self.engine.scheduler.at(due_ms, call, ("strait", run.id, slot))

    def _fire(self, run_id: str, slot: str, action: str, now: int) -> None:
        self.engine.scheduler.release(("strait", run_id, slot))
        current = self.runs.get(run_id)
        if current is not None:
            getattr(self, action)(current, now)

    def _unschedule(self, run: Run, *slots: str) -> None:
        for slot in slots:
            self.engine.scheduler.cancel(("strait", run.id, slot))
