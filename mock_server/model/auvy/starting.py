"""AUVY: starting jobs: a stored or inline pathway, a transcription, a chat reply."""

from __future__ import annotations

import base64
import binascii
import uuid
from collections.abc import Mapping
from typing import Any

from ..errors import InvalidInput, NotFound
from ..script import Complete, Progress, Step, progress_units
from .records import DEFAULT_INLINE_SCRIPT, Job, JobKind, Principal
from .running import JobRunner


class JobStarter(JobRunner):
    def start_pathway(
        self,
        who: Principal,
        pathway_id: str | None = None,
        *,
        inline: Mapping[str, Any] | None = None,
        input: Mapping[str, Any] | None = None,
        receptor_id: str | None = None,
        trace_id: str | None = None,
    ) -> Job:
        self._require_can_start(who)
        if pathway_id is not None:
            pathway = self.pathways.get(pathway_id)
            if pathway is None or pathway.workspace_id != who.workspace.id:
                raise NotFound("pathway", pathway_id)
            script, step_ms = pathway.script, pathway.step_ms
        else:
            script, step_ms = DEFAULT_INLINE_SCRIPT, None
        job = self.start_script(
            who.workspace.id,
            script,
            step_ms,
            dict(input or {}),
            pathway_id=pathway_id,
            receptor_id=receptor_id,
            trace_id=trace_id,
        )
        if inline is not None:
            job.input.setdefault("_inline_pathway", dict(inline))
            self.jobs.save(job.id, job)
        return job

    def transcribe(self, who: Principal, audio_base64: str, mime_type: str) -> Job:
        self._require_can_start(who)
        return self.start_transcription(who.workspace.id, audio_base64, mime_type)

    def start_transcription(
        self,
        workspace_id: str,
        audio_base64: str,
        mime_type: str,
        *,
        receptor_id: str | None = None,
        trace_id: str | None = None,
    ) -> Job:
        try:
            audio = base64.b64decode(audio_base64, validate=True)
        except (binascii.Error, ValueError):
            raise InvalidInput("audio_base64", "audio_base64 is not valid base64") from None
        if not audio:
            raise InvalidInput("audio_base64", "audio_base64 decodes to no bytes")
        if len(audio) > self.settings.max_audio_bytes:
            raise InvalidInput(
                "audio_base64", f"audio is larger than {self.settings.max_audio_bytes} bytes"
            )
        text = f"[transcript of {len(audio)} bytes of {mime_type}]"
        script = (
            Progress(2, "transcribe", (text,)),
            Complete({"text": text, "mime_type": mime_type, "bytes": len(audio)}),
        )
        return self._new_job(
            workspace_id,
            "transcription",
            script,
            None,
            {"mime_type": mime_type},
            receptor_id=receptor_id,
            trace_id=trace_id,
        )

    def chat(
        self, who: Principal, trace_id: str, message: str, options: Mapping[str, Any] | None
    ) -> Job:
        self._require_can_start(who)
        trace = self.traces.get(trace_id)
        if trace is None or trace.workspace_id != who.workspace.id:
            raise NotFound("trace", trace_id)
        words = ["You", " said:", *(" " + w for w in message.split()[:20])]
        reply = "".join(words)
        script = (Progress(len(words), "respond", tuple(words)), Complete({"message": reply}))
        job_input: dict[str, Any] = {"message": message}
        if options:
            job_input["neuron_task_options"] = dict(options)
        return self._new_job(who.workspace.id, "chat", script, None, job_input, trace_id=trace_id)

    def start_pathway_for(
        self,
        workspace_id: str,
        pathway_id: str,
        job_input: dict[str, Any],
        *,
        receptor_id: str | None = None,
        trace_id: str | None = None,
    ) -> Job:
        """Start a stored pathway on behalf of a workspace (a receptor firing, not a key)."""
        pathway = self.pathways[pathway_id]
        return self.start_script(
            workspace_id,
            pathway.script,
            pathway.step_ms,
            job_input,
            pathway_id=pathway_id,
            receptor_id=receptor_id,
            trace_id=trace_id,
        )

    def start_script(
        self,
        workspace_id: str,
        script: tuple[Step, ...],
        step_ms: int | None,
        job_input: dict[str, Any],
        *,
        pathway_id: str | None = None,
        receptor_id: str | None = None,
        trace_id: str | None = None,
    ) -> Job:
        job = self._new_job(
            workspace_id,
            "pathway",
            script,
            step_ms,
            job_input,
            pathway_id=pathway_id,
            receptor_id=receptor_id,
            trace_id=trace_id,
        )
        if trace_id is not None and (trace := self.traces.get(trace_id)) is not None:
            trace.job_ids.append(job.id)
        return job

    def _new_job(
        self,
        workspace_id: str,
        kind: JobKind,
        script: tuple[Step, ...],
        step_ms: int | None,
        job_input: dict[str, Any],
        *,
        pathway_id: str | None = None,
        receptor_id: str | None = None,
        trace_id: str | None = None,
    ) -> Job:
        now = self.engine.now()
        job = Job(
            id=str(uuid.uuid4()),
            workspace_id=workspace_id,
            kind=kind,
            script=script,
            step_ms=step_ms if step_ms is not None else self.settings.step_ms,
            created_ms=now,
            input=job_input,
            pathway_id=pathway_id,
            receptor_id=receptor_id,
            trace_id=trace_id,
            total_units=progress_units(script),
        )
        self.streams.create(job.id, now)
        self.jobs.save(job.id, job)
        self._schedule(job, now + self.settings.start_delay_ms)
        return job
