"""Strait: what a caller can do to a run: cancel, replay, dlq-replay, reschedule, pause,
resume, restart."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from ..errors import Conflict, IllegalTransition, InvalidInput
from ..store import in_partition
from .lifecycle import CANCELLABLE, KEY_BUSY, REPLAYABLE, TERMINAL_MESSAGE, RunTerminal, S
from .reading import RunQueries
from .records import ApiKey, BulkItem, Run, TriggerOptions, idempotency_slot, project_of
from .running import RunQueue


class RunControl(RunQueue, RunQueries):
    def cancel(self, who: ApiKey, run_id: str) -> Run:
        run = self.get_run(who, run_id)
        if run.status not in CANCELLABLE:
            raise RunTerminal(run, "cancel")
        self._cancel(run, self.engine.now())
        return run

    def _cancel(self, run: Run, now: int) -> None:
        self._finish(run, S.CANCELED, now, "canceled")
        for child in self.children_of(run):
            if child.status in CANCELLABLE:
                self._cancel(child, now)

    def bulk_cancel(self, who: ApiKey, run_ids: Iterable[str]) -> list[BulkItem]:
        out = []
        for run_id in run_ids:
            run = self.runs.get(run_id)
            if run is None or run.project_id != who.project_id:
                out.append(BulkItem(run_id, "not_found", "run not found"))
            elif run.status not in CANCELLABLE:
                out.append(BulkItem(run_id, self._wire(run.status), TERMINAL_MESSAGE))
            else:
                self._cancel(run, self.engine.now())
                out.append(BulkItem(run_id, self._wire(run.status)))
        return out

    def bulk_cancel_all(
        self,
        who: ApiKey,
        project_id: str,
        *,
        job_id: str | None = None,
        batch_id: str | None = None,
        triggered_by: str | None = None,
        status: str | None = None,
    ) -> list[BulkItem]:
        self._project(who, project_id)
        if job_id is None and batch_id is None and triggered_by is None and status is None:
            raise InvalidInput("", "at least one of job_id, batch_id, triggered_by, status")
        matching = [
            r.id
            for r in sorted(
                in_partition(self.runs, project_id, project_of), key=lambda r: -r.created_ms
            )
            if not r.terminal
            and (job_id is None or r.job_id == job_id)
            and (batch_id is None or r.batch_id == batch_id)
            and (triggered_by is None or r.triggered_by == triggered_by)
            and (status is None or self._wire(r.status) == status)
        ]
        return self.bulk_cancel(who, matching)

    def replay(self, who: ApiKey, run_id: str) -> Run:
        run = self.get_run(who, run_id)
        self._check_replayable(run)
        return self._replay(run)

    def _check_replayable(self, run: Run) -> None:
        if run.status not in REPLAYABLE:
            raise IllegalTransition("run", run.id, self._wire(run.status), "replay")

    def _replay(self, run: Run) -> Run:
        job = self.jobs[run.job_id]
        opts = TriggerOptions(
            payload=run.payload,
            metadata=run.metadata,
            tags=run.tags,
            priority=run.priority,
            batch_id=run.batch_id,
            concurrency_key=run.concurrency_key,
            debug_mode=run.debug_mode,
            max_attempts=run.max_attempts_override,
            timeout_secs=run.timeout_secs_override,
        )
        return self._create(job, "manual", opts, created_by=run.created_by)

    def bulk_replay(self, who: ApiKey, run_ids: list[str]) -> list[Run]:
        """All or nothing: every id is checked before any run is replayed."""
        bad = []
        for run_id in run_ids:
            run = self.runs.get(run_id)
            if run is None or run.project_id != who.project_id or run.status not in REPLAYABLE:
                bad.append(run_id)
        if bad and self.settings.variant.bulk_replay_partial:
            return [self._replay(self.runs[r]) for r in run_ids if r not in bad]
        if bad:
            raise InvalidInput(
                "run_ids",
                f"not replayable (unknown, or not failed/timed_out/crashed/"
                f"system_failed): {', '.join(bad)}",
            )
        return [self._replay(self.runs[run_id]) for run_id in run_ids]

    def dlq_replay(self, who: ApiKey, run_id: str) -> Run:
        run = self.get_run(who, run_id)
        if run.status is not S.DEAD_LETTER:
            raise Conflict(f"run is not in dead_letter (it is {self._wire(run.status)})")
        self._dlq_replay(run)
        return run

    def _dlq_replay(self, run: Run) -> None:
        now = self.engine.now()
        run.attempt = 1
        run.error = None
        run.finished_ms = None
        run.next_retry_ms = None
        run.eligible_ms = now
        self._move(run, S.QUEUED, now)
        self._at(run, "step", now + self.settings.start_delay_ms, self._dequeue)

    def bulk_dlq_replay(
        self, who: ApiKey, *, run_ids: list[str] | None, project_id: str | None
    ) -> list[Run]:
        if (run_ids is None) == (project_id is None):
            raise InvalidInput("", "give exactly one of run_ids and project_id")
        if project_id is not None:
            runs = self.dead_letters(who, project_id)
        else:
            runs = [self.get_run(who, run_id) for run_id in run_ids or []]
            waiting = [r.id for r in runs if r.status is not S.DEAD_LETTER]
            if waiting and self.settings.variant.bulk_dlq_mixed_400:
                raise InvalidInput("run_ids", f"not in dead_letter: {', '.join(waiting)}")
            if waiting:
                raise Conflict(f"not in dead_letter: {', '.join(waiting)}")
        for run in runs:
            self._dlq_replay(run)
        return runs

    def set_debug(self, who: ApiKey, run_id: str, enabled: bool) -> Run:
        run = self.get_run(who, run_id)
        run.debug_mode = enabled
        self.engine.notify(run.id)
        return run

    def reset_idempotency_key(self, who: ApiKey, run_id: str) -> Run:
        run = self.get_run(who, run_id)
        if run.status in KEY_BUSY:
            raise Conflict(f"cannot reset the idempotency key of a {run.status.value} run")
        if run.idempotency_key is not None:
            ledger = self.ledgers.get(run.project_id)
            if ledger is not None:
                ledger.idempotency.pop(idempotency_slot(run.job_id, run.idempotency_key), None)
        run.idempotency_key = None
        return run

    def reschedule(self, who: ApiKey, run_id: str, scheduled_ms: int) -> Run:
        run = self.get_run(who, run_id)
        if run.status not in (S.DELAYED, S.QUEUED):
            raise Conflict(
                f"only delayed or queued runs can be rescheduled, not {self._wire(run.status)}"
            )
        now = self.engine.now()
        run.scheduled_ms = scheduled_ms
        if scheduled_ms > now:
            if run.status is S.QUEUED:
                self._move(run, S.DELAYED, now)
            run.eligible_ms = scheduled_ms
            self._at(run, "step", scheduled_ms, self._promote)
        else:
            if run.status is S.DELAYED:
                self._move(run, S.QUEUED, now)
            run.eligible_ms = now
            self._at(run, "step", now + self.settings.start_delay_ms, self._dequeue)
        self.engine.notify(run.id)
        return run

    def pause(self, who: ApiKey, run_id: str) -> Run:
        run = self.get_run(who, run_id)
        if run.status is not S.EXECUTING:
            raise Conflict(f"only executing runs can be paused, not {self._wire(run.status)}")
        now = self.engine.now()
        self._unschedule(run, "step", "timeout")
        self._move(run, S.PAUSED, now)
        self._event(run, now, "run.paused", "info", "run paused")
        return run

    def resume(self, who: ApiKey, run_id: str) -> Run:
        run = self.get_run(who, run_id)
        if run.status is not S.PAUSED:
            raise Conflict(f"only paused runs can be resumed, not {self._wire(run.status)}")
        self._requeue(run, "run.resumed", {})
        return run

    def restart(self, who: ApiKey, run_id: str, machine_preset: str | None = None) -> Run:
        run = self.get_run(who, run_id)
        if run.status not in (S.EXECUTING, S.PAUSED):
            raise Conflict(
                f"only executing or paused runs can be restarted, not {self._wire(run.status)}"
            )
        self._requeue(run, "run.restarted", {"machine_preset": machine_preset})
        return run

    def _requeue(self, run: Run, event: str, data: dict[str, Any]) -> None:
        now = self.engine.now()
        self._unschedule(run, "step", "timeout")
        run.ticks_done = 0
        run.waited = False
        run.eligible_ms = now
        self._move(run, S.QUEUED, now)
        self._event(run, now, event, "info", event.replace(".", " "), data)
        self._at(run, "step", now + self.settings.start_delay_ms, self._dequeue)
