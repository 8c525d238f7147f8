"""Strait: what a run writes as it goes: status changes and events on its stream, LLM chunks on
its chunk stream, and the records of each attempt."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ...clock import iso
from .lifecycle import TRANSITIONS, RunStatus
from .records import Run, uuid7
from .world import StraitWorld


def chunks_key(run_id: str) -> str:
    return f"{run_id}:chunks"


class RunStreams(StraitWorld):
    def _record_attempt(self, run: Run, now: int) -> None:
        records = self.records[run.id]
        n = run.attempt
        self._event(run, now, "attempt.started", "info", f"attempt {n} started", {"attempt": n})
        records.checkpoints.append(
            {
                "id": uuid7(now),
                "run_id": run.id,
                "sequence": len(records.checkpoints) + 1,
                "source": "sdk",
                "state": {"attempt": n, "step": "started"},
                "created_at": iso(now),
            }
        )
        records.tool_calls.append(
            {
                "id": uuid7(now),
                "run_id": run.id,
                "tool_name": "fetch_context",
                "input": {"attempt": n},
                "output": {"documents": 2},
                "duration_ms": self.settings.step_ms,
                "status": "success",
                "created_at": iso(now),
            }
        )
        records.usage.append(
            {
                "id": uuid7(now),
                "run_id": run.id,
                "provider": "openai",
                "model": "gpt-4o-mini",
                "prompt_tokens": 120,
                "completion_tokens": 30,
                "total_tokens": 150,
                "cost_microusd": 45,
                "created_at": iso(now),
            }
        )

    def _event(
        self,
        run: Run,
        now: int,
        type: str,
        level: str,
        message: str,
        data: Mapping[str, Any] | None = None,
    ) -> None:
        event = {
            "id": uuid7(now),
            "run_id": run.id,
            "type": type,
            "level": level,
            "message": message,
            "data": dict(data or {}),
            "created_at": iso(now),
        }
        self.records[run.id].events.append(event)
        self.streams.append(run.id, {"type": "event", "run_id": run.id, "event": event}, now)
        self.engine.notify(run.id)

    def _chunk(self, run: Run, now: int, text: str, *, done: bool) -> None:
        self.records[run.id].chunks += 1
        frame = {"type": "stream_chunk", "chunk": text, "stream_id": f"llm-{run.attempt}"}
        if self.settings.variant.unknown_frames:
            self.streams.append(chunks_key(run.id), {"type": "x_token_usage", "tokens": 1}, now)
        run.last_chunk = self.streams.append(chunks_key(run.id), {**frame, "done": done}, now)
        self.engine.notify(chunks_key(run.id))

    def _move(self, run: Run, target: RunStatus, now: int) -> None:
        before = run.status
        TRANSITIONS.check(run.id, before, target, f"move to {target.value}")
        run.status = target
        if self._wire(before) != self._wire(target):
            change = {
                "type": "status_change",
                "run_id": run.id,
                "from": self._wire(before),
                "to": self._wire(target),
                "timestamp": iso(now),
            }
            if self.settings.variant.unknown_frames:
                probe = {"type": "x_queue_position", "run_id": run.id, "position": 0}
                self.streams.append(run.id, probe, now)
            run.last_change = self.streams.append(run.id, change, now)
        self.engine.notify(run.id)
