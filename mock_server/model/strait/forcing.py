"""Strait: forcing a run's outcome, as the /_mock/ control routes and the inspector do."""

from __future__ import annotations

from collections.abc import Mapping

from ..errors import IllegalTransition, InvalidInput, NotFound
from .lifecycle import TRANSITIONS, RunStatus, RunTerminal, S
from .records import Run
from .running import RunQueue


class Forcing(RunQueue):
    def all_runs(self) -> list[Run]:
        return sorted(self.runs.values(), key=lambda r: -r.created_ms)

    def force(self, run_id: str, outcome: str, reason: str | None = None) -> Run:
        """Drive a live run to an outcome now, as /_mock/strait/runs/{id}/outcome asks.

        The run walks the table's own edges (queued -> dequeued -> executing -> the outcome), so
        its stream shows every status a real run would pass through."""
        run = self.runs.get(run_id)
        if run is None:
            raise NotFound("run", run_id)
        target = FORCED_OUTCOMES.get(outcome)
        if target is None:
            names = ", ".join(FORCED_OUTCOMES)
            raise InvalidInput("outcome", f"outcome must be one of {names}")
        if run.terminal:
            raise RunTerminal(run, outcome)
        if target is S.WAITING and run.status in (S.WAITING, S.PAUSED):
            raise IllegalTransition("run", run.id, self._wire(run.status), outcome)
        now = self.engine.now()
        job = self.jobs[run.job_id]
        self._unschedule(run, "step", "expiry")
        if run.status is S.PAUSED:
            self._move(run, S.QUEUED, now)
        if run.status is S.DELAYED:
            run.eligible_ms = now
            self._move(run, S.QUEUED, now)
        if run.status is S.QUEUED:
            run.dequeued_ms = now
            run.next_retry_ms = None
            self._move(run, S.DEQUEUED, now)
        if run.status is S.DEQUEUED:
            run.started_ms = run.heartbeat_ms = now
            self._move(run, S.EXECUTING, now)
            self._record_attempt(run, now)
        if run.status is S.WAITING and not TRANSITIONS.allowed(S.WAITING, target):
            self._move(run, S.EXECUTING, now)
        if target is S.COMPLETED:
            self._complete(run, job, now)
        elif target is S.WAITING:
            # Stays waiting until another forced outcome, a cancel or its timeout.
            self._move(run, S.WAITING, now)
        else:
            self._finish(run, target, now, reason or FORCED_ERRORS[target])
        return run


# What /_mock/strait/runs/{id}/outcome can do to a run that is not yet terminal.
FORCED_OUTCOMES: Mapping[str, RunStatus] = {
    "complete": S.COMPLETED,
    "fail": S.FAILED,
    "timeout": S.TIMED_OUT,
    "crash": S.CRASHED,
    "dead_letter": S.DEAD_LETTER,
    "wait": S.WAITING,
}
FORCED_ERRORS: Mapping[RunStatus, str] = {
    S.FAILED: "forced failure",
    S.TIMED_OUT: "run exceeded its timeout (forced)",
    S.CRASHED: "worker heartbeat lost (forced)",
    S.DEAD_LETTER: "attempts exhausted (forced)",
}
