"""AUVY: what a job appends to its event stream: the JSON the SSE route sends."""

from __future__ import annotations

from typing import Any

from .interventions import render_waiting_for
from .records import Job
from .world import AuvyWorld


class JobStreams(AuvyWorld):
    def _append(self, job: Job, entry: dict[str, Any], now: int) -> None:
        if self.settings.variant.extra_fields:
            entry = {**entry, "x_worker": "variant-worker-1"}
        self.streams.append(job.id, entry, now)

    def _emit_state(self, job: Job, now: int) -> None:
        intervention = self.waiting_for(job)
        self._append(
            job,
            {
                "type": "state_update",
                "status": job.status.value,
                "progress": job.progress,
                "current_step": job.current_step,
                "waitingFor": render_waiting_for(intervention) if intervention else None,
            },
            now,
        )
