"""Strait: the queue a run goes through on the engine's clock.

A run is created by triggering a job and then follows its job's behaviour: delayed (until
scheduled_at) -> queued -> dequeued -> executing -> an outcome. A failed attempt with attempts
left goes back to queued with `next_retry_at` set by the job's backoff; when attempts run out the
run is dead_letter; a run past its timeout is timed_out."""

from __future__ import annotations

from ...clock import iso
from .lifecycle import RunStatus, S
from .records import Behaviour, Job, Run, RunRecords, TriggerOptions, idempotency_slot, uuid7
from .streams import RunStreams, chunks_key
from .timers import RunTimers


class RunQueue(RunStreams, RunTimers):
    def _create(
        self,
        job: Job,
        triggered_by: str,
        opts: TriggerOptions,
        *,
        created_by: str | None,
        parent: Run | None = None,
        continues: Run | None = None,
    ) -> Run:
        now = self.engine.now()
        # Unique, increasing created_at: the list cursor is a created_at and must not tie.
        ledger = self._ledger(job.project_id)
        created = max(now, ledger.last_created + 1)
        ledger.last_created = created
        run = Run(
            id=uuid7(created),
            job_id=job.id,
            project_id=job.project_id,
            created_ms=created,
            triggered_by=triggered_by,
            payload=dict(opts.payload),
            metadata=dict(opts.metadata),
            tags=dict(opts.tags),
            scheduled_ms=opts.scheduled_ms,
            expires_ms=opts.expires_ms,
            parent_run_id=parent.id if parent else None,
            priority=opts.priority,
            idempotency_key=opts.idempotency_key,
            job_version=job.version,
            max_attempts_override=opts.max_attempts,
            timeout_secs_override=opts.timeout_secs,
            debug_mode=opts.debug_mode,
            continuation_of=continues.id if continues else None,
            lineage_depth=continues.lineage_depth + 1 if continues else 0,
            created_by=created_by,
            batch_id=opts.batch_id,
            concurrency_key=opts.concurrency_key,
        )
        self.runs[run.id] = run
        self.records[run.id] = RunRecords()
        self.streams.create(run.id, now)
        self.streams.create(chunks_key(run.id), now)
        if opts.idempotency_key is not None:
            ledger.idempotency[idempotency_slot(job.id, opts.idempotency_key)] = run.id
        if opts.scheduled_ms is not None and opts.scheduled_ms > now:
            run.status = S.DELAYED
            run.eligible_ms = opts.scheduled_ms
            self._at(run, "step", opts.scheduled_ms, self._promote)
        else:
            run.eligible_ms = now
            self._at(run, "step", now + self.settings.start_delay_ms, self._dequeue)
        if opts.expires_ms is not None:
            self._at(run, "expiry", max(opts.expires_ms, now), self._expire)
        self.engine.notify(run.id)
        return run

    def _promote(self, run: Run, now: int) -> None:
        if run.status is S.DELAYED:
            run.eligible_ms = now
            self._move(run, S.QUEUED, now)
            self._at(run, "step", now + self.settings.start_delay_ms, self._dequeue)

    def _expire(self, run: Run, now: int) -> None:
        if run.status in (S.DELAYED, S.QUEUED):
            self._finish(run, S.EXPIRED, now, "run expired before it started")

    def _dequeue(self, run: Run, now: int) -> None:
        if run.status is not S.QUEUED:
            return
        run.dequeued_ms = now
        run.next_retry_ms = None
        if not self._skips_dequeued(run):
            self._move(run, S.DEQUEUED, now)
        self._at(run, "step", now + self.settings.step_ms, self._execute)

    def _skips_dequeued(self, run: Run) -> bool:
        """queued -> executing directly (FACTS.md's table allows it); a run that cannot start
        still shows dequeued, the only way to system_failed."""
        return (
            self.settings.variant.skip_dequeued
            and self.jobs[run.job_id].behaviour is not Behaviour.SYSTEM_FAIL
        )

    def _execute(self, run: Run, now: int) -> None:
        ready = S.QUEUED if self._skips_dequeued(run) else S.DEQUEUED
        if run.status is not ready:
            return
        job = self.jobs[run.job_id]
        if job.behaviour is Behaviour.SYSTEM_FAIL:
            self._finish(run, S.SYSTEM_FAILED, now, "no worker could be provisioned")
            return
        self._unschedule(run, "expiry")
        run.started_ms = now
        run.heartbeat_ms = now
        dequeued = run.dequeued_ms if run.dequeued_ms is not None else now
        run.trace = {
            "queue_wait_ms": max(0, dequeued - run.eligible_ms),
            "dequeue_ms": now - dequeued,
            "connect_ms": 0,
            "ttfb_ms": None,
            "transfer_ms": None,
            "total_ms": None,
            "dispatch_ms": 0,
        }
        run.ticks_done = 0
        self._move(run, S.EXECUTING, now)
        self._record_attempt(run, now)
        timeout = run.timeout_secs_override or job.timeout_secs
        self._at(run, "timeout", now + timeout * self.settings.second_ms, self._time_out)
        self._at(run, "step", now + self.settings.step_ms, self._tick)

    def _tick(self, run: Run, now: int) -> None:
        if run.status is not S.EXECUTING:
            return
        job = self.jobs[run.job_id]
        run.heartbeat_ms = now
        run.ticks_done += 1
        if run.trace is not None and run.trace["ttfb_ms"] is None and run.started_ms is not None:
            run.trace["ttfb_ms"] = now - run.started_ms
        self._chunk(run, now, f"token {run.ticks_done} ", done=False)
        if run.debug_mode:
            self._event(run, now, "debug.tick", "debug", f"tick {run.ticks_done}")
        if run.ticks_done < job.ticks:
            self._at(run, "step", now + self.settings.step_ms, self._tick)
            return
        behaviour = job.behaviour
        if behaviour is Behaviour.LONG:
            return  # nothing more happens until cancel, pause, restart or the timeout
        if behaviour is Behaviour.FATAL:
            self._finish(run, S.FAILED, now, "non-retryable error: invalid input")
        elif behaviour is Behaviour.CRASH:
            self._finish(run, S.CRASHED, now, "worker heartbeat lost")
        elif behaviour is Behaviour.FAIL and run.attempt <= job.fail_attempts:
            self._fail_attempt(run, job, now, f"attempt {run.attempt} failed")
        elif behaviour is Behaviour.WAIT and not run.waited:
            run.waited = True
            self._move(run, S.WAITING, now)
            self._at(run, "step", now + job.wait_ticks * self.settings.step_ms, self._wake)
        elif behaviour is Behaviour.SPAWN and not run.children_spawned:
            run.children_spawned = True
            self._move(run, S.WAITING, now)
            self._spawn(run, job)
        else:
            self._complete(run, job, now)

    def _wake(self, run: Run, now: int) -> None:
        if run.status is S.WAITING:
            self._move(run, S.EXECUTING, now)
            self._at(run, "step", now + self.settings.step_ms, self._tick)

    def _spawn(self, run: Run, job: Job) -> None:
        child_job = self.jobs.get(job.spawn_job or "")
        # A run's children are runs of its own project (the world refuses a job spawning
        # another project's: see `StraitWorld.check_spawns`), so they are found in its partition.
        if child_job is None or job.spawn_count <= 0 or child_job.project_id != run.project_id:
            self._at(run, "step", self.engine.now(), self._wake)
            return
        for n in range(job.spawn_count):
            opts = TriggerOptions(payload={"parent": run.id, "index": n}, batch_id=run.batch_id)
            self._create(child_job, "spawn", opts, created_by=run.created_by, parent=run)

    def _child_finished(self, child: Run, now: int) -> None:
        parent = self.runs.get(child.parent_run_id or "")
        if parent is None or parent.status is not S.WAITING or not parent.children_spawned:
            return
        if all(r.terminal for r in self.children_of(parent)):
            self._at(parent, "step", now, self._wake)

    def _fail_attempt(self, run: Run, job: Job, now: int, reason: str) -> None:
        max_attempts = run.max_attempts_override or job.max_attempts
        if run.attempt >= max_attempts:
            self._finish(run, S.DEAD_LETTER, now, f"{reason}; {max_attempts} attempts exhausted")
            return
        self._unschedule(run, "timeout")
        delay = job.backoff_secs(run.attempt) * self.settings.second_ms
        self._event(run, now, "attempt.failed", "error", reason, {"attempt": run.attempt})
        run.error = reason
        run.attempt += 1
        run.next_retry_ms = now + delay
        run.eligible_ms = now + delay
        self._move(run, S.QUEUED, now)
        self._at(run, "step", now + delay, self._dequeue)

    def _time_out(self, run: Run, now: int) -> None:
        if run.status in (S.EXECUTING, S.WAITING):
            job = self.jobs[run.job_id]
            timeout = run.timeout_secs_override or job.timeout_secs
            self._finish(run, S.TIMED_OUT, now, f"run exceeded its timeout of {timeout}s")

    def _complete(self, run: Run, job: Job, now: int) -> None:
        result = dict(job.result) or {"ok": True}
        result["attempt"] = run.attempt
        run.result = result
        run.error = None
        self.records[run.id].outputs.append(
            {
                "id": uuid7(now),
                "run_id": run.id,
                "output_key": "result",
                "schema": {"type": "object"},
                "value": result,
                "created_at": iso(now),
            }
        )
        self._finish(run, S.COMPLETED, now, None)
        if job.behaviour is Behaviour.CONTINUE and run.lineage_depth < job.continue_depth:
            opts = TriggerOptions(
                payload={**run.payload, "continued_from": run.id},
                metadata=run.metadata,
                tags=run.tags,
                batch_id=run.batch_id,
            )
            self._create(job, run.triggered_by, opts, created_by=run.created_by, continues=run)

    def _finish(self, run: Run, status: RunStatus, now: int, error: str | None) -> None:
        self._unschedule(run, "step", "timeout", "expiry")
        if error is not None:
            run.error = error
        run.finished_ms = now
        run.next_retry_ms = None
        if run.trace is not None:
            run.trace["total_ms"] = now - run.created_ms
            if run.started_ms is not None:
                run.trace["transfer_ms"] = now - run.started_ms
        self._move(run, status, now)
        level = "info" if status is S.COMPLETED else "warn" if status is S.CANCELED else "error"
        self._event(run, now, f"run.{status.value}", level, error or f"run {status.value}")
        if self.records[run.id].chunks:
            self._chunk(run, now, "", done=True)
        # The chunk stream ends with the run even when it recorded no chunk.
        self.engine.notify(chunks_key(run.id))
        if run.parent_run_id is not None:
            self._child_finished(run, now)
