"""AUVY: workspaces, API keys, pathways, traces, interventions and jobs; the settings."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from ...variants.auvy import AuvyVariant
from ..script import Progress, Step, Wait
from .lifecycle import TRANSITIONS, JobStatus

InterventionStatus = Literal["pending", "approved", "rejected", "answered", "expired", "cancelled"]
WorkspaceState = Literal["active", "trial_expired", "cost_cap"]
JobKind = Literal["pathway", "transcription", "chat"]


@dataclass(frozen=True)
class Workspace:
    id: str
    slug: str
    name: str
    state: WorkspaceState = "active"


@dataclass(frozen=True)
class ApiKey:
    token: str
    workspace_id: str
    scopes: frozenset[str] = frozenset({"read", "write"})
    rate_limit: tuple[int, int] | None = None  # (requests, window ms): this key's own limit


@dataclass(frozen=True)
class Principal:
    workspace: Workspace
    scopes: frozenset[str]


@dataclass(frozen=True)
class Pathway:
    id: str
    workspace_id: str
    name: str
    script: tuple[Step, ...]
    step_ms: int | None = None


@dataclass
class Trace:
    id: str
    workspace_id: str
    receptor_id: str | None = None
    user_id: str | None = None
    created_ms: int = 0
    job_ids: list[str] = field(default_factory=list)


@dataclass
class Intervention:
    id: str
    job_id: str
    workspace_id: str
    wait: Wait
    created_ms: int
    status: InterventionStatus = "pending"
    responded_ms: int | None = None
    response: dict[str, Any] | None = None


@dataclass
class Job:
    id: str
    workspace_id: str
    kind: JobKind
    script: tuple[Step, ...]
    step_ms: int
    created_ms: int
    input: dict[str, Any] = field(default_factory=dict)
    pathway_id: str | None = None
    receptor_id: str | None = None
    trace_id: str | None = None
    status: JobStatus = JobStatus.PENDING
    pc: int = 0
    unit: int = 0
    done_units: int = 0
    total_units: int = 0
    current_step: str | None = None
    failed_reason: str | None = None
    result: Any = None
    intervention_id: str | None = None
    processed_ms: int | None = None
    finished_ms: int | None = None
    responses: list[dict[str, Any]] = field(default_factory=list)

    @property
    def progress(self) -> int:
        if self.status is JobStatus.COMPLETED:
            return 100
        if self.total_units == 0:
            return 0
        return min(99, self.done_units * 100 // self.total_units)

    @property
    def terminal(self) -> bool:
        return TRANSITIONS.is_terminal(self.status)


def workspace_of(record: Job | Intervention) -> str:
    """The partition of AUVY's jobs and interventions (see `model.store.in_partition`)."""
    return record.workspace_id


@dataclass(frozen=True)
class Settings:
    step_ms: int = 50
    start_delay_ms: int = 0
    stream_maxlen: int | None = 10_000
    stream_ttl_ms: int | None = 24 * 3600 * 1000
    max_audio_bytes: int = 10 * 1024 * 1024
    # The other allowed answers this server gives, where the documents leave a choice open.
    variant: AuvyVariant = field(default_factory=AuvyVariant)


DEFAULT_INLINE_SCRIPT: tuple[Step, ...] = (Progress(3, "inline"),)
