"""Strait: the model, made of the parts of this package.

Every move of a run goes through `TRANSITIONS` (FACTS.md's table), and every move and recorded
event is appended to the run's stream, which `/stream` replays (lifecycle, streams). Runs move on
the engine's clock through the queue (running, timers); callers read them (reading) and act on
them (control); the control routes force outcomes (forcing).
"""

from __future__ import annotations

from ..errors import NotFound
from .control import RunControl
from .forcing import Forcing
from .records import ApiKey, Run, TriggerOptions, idempotency_slot


class StraitModel(RunControl, Forcing):
    def trigger(self, who: ApiKey, job_id: str, opts: TriggerOptions) -> tuple[Run, bool]:
        """The new run, or (idempotency hit) the live run made with the same key; and whether
        it was a hit."""
        job = self.jobs.get(job_id)
        if job is None or job.project_id != who.project_id:
            raise NotFound("job", job_id)
        if opts.idempotency_key is not None:
            ledger = self.ledgers.get(job.project_id)
            slot = idempotency_slot(job.id, opts.idempotency_key)
            known = ledger.idempotency.get(slot) if ledger is not None else None
            earlier = self.runs.get(known) if known else None
            if (
                earlier is not None
                and earlier.idempotency_key == opts.idempotency_key
                and not earlier.terminal
            ):
                return earlier, True
        run = self._create(job, "manual", opts, created_by=who.id)
        return run, False
