"""Strait: projects, API keys, jobs with known behaviour, the runs they make and what a run
records."""

from __future__ import annotations

import re
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from ...variants.strait import StraitVariant
from ..stream_id import StreamId
from .lifecycle import TERMINAL, RunStatus, S

TRIGGER_SOURCES = ("manual", "cron", "spawn", "workflow", "retry", "event")
EVENT_LEVELS = ("debug", "info", "warn", "error")
DEFAULT_LIMIT, MAX_LIMIT, MAX_BULK = 50, 100, 100
KEY_PATTERN = re.compile(r"strait_[0-9a-f]{64}")


class Behaviour(StrEnum):
    COMPLETE = "complete"  # executes `ticks` steps, then completes with the job's result
    FAIL = "fail"  # its first `fail_attempts` attempts fail (retryable), later ones complete
    FATAL = "fatal"  # fails with a non-retryable error: failed at once
    CRASH = "crash"  # the worker's heartbeat stops: crashed
    SYSTEM_FAIL = "system_fail"  # the platform cannot start it: dequeued -> system_failed
    WAIT = "wait"  # executes, waits `wait_ticks` steps, executes again, completes
    SPAWN = "spawn"  # spawns `spawn_count` runs of `spawn_job`, waits for them, completes
    CONTINUE = "continue"  # completes and continues as a new run until `continue_depth`
    LONG = "long"  # executes until canceled, paused or timed out


def uuid7(now_ms: int) -> str:
    """A UUIDv7 (FACTS.md): 48 bits of ms, version 7, variant 10, random otherwise."""
    value = (now_ms & (2**48 - 1)) << 80 | 0x7 << 76 | secrets.randbits(12) << 64
    value |= 0b10 << 62 | secrets.randbits(62)
    h = f"{value:032x}"
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


@dataclass(frozen=True)
class Project:
    id: str
    name: str


@dataclass(frozen=True)
class ApiKey:
    id: str
    token: str
    project_id: str


@dataclass(frozen=True)
class Job:
    id: str
    project_id: str
    name: str
    behaviour: Behaviour = Behaviour.COMPLETE
    max_attempts: int = 3
    timeout_secs: int = 300
    retry_backoff: str = "exponential"
    retry_initial_delay_secs: int = 1
    retry_max_delay_secs: int = 30
    ticks: int = 2
    fail_attempts: int = 0
    wait_ticks: int = 2
    spawn_job: str | None = None
    spawn_count: int = 0
    continue_depth: int = 0
    depends_on: tuple[str, ...] = ()
    version: int = 1
    result: Mapping[str, Any] = field(default_factory=dict)

    def backoff_secs(self, attempt: int) -> int:
        """The delay before attempt + 1: fixed, or doubling from the initial delay, capped."""
        if self.retry_backoff == "fixed":
            return self.retry_initial_delay_secs
        delay: int = self.retry_initial_delay_secs * 2 ** max(0, attempt - 1)
        return min(delay, self.retry_max_delay_secs)


@dataclass
class Run:
    id: str
    job_id: str
    project_id: str
    created_ms: int
    triggered_by: str
    status: RunStatus = S.QUEUED
    attempt: int = 1
    payload: dict[str, Any] = field(default_factory=dict)
    result: dict[str, Any] | None = None
    metadata: dict[str, str] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)
    error: str | None = None
    scheduled_ms: int | None = None
    started_ms: int | None = None
    finished_ms: int | None = None
    heartbeat_ms: int | None = None
    next_retry_ms: int | None = None
    expires_ms: int | None = None
    parent_run_id: str | None = None
    priority: int = 0
    idempotency_key: str | None = None
    job_version: int = 1
    max_attempts_override: int | None = None
    timeout_secs_override: int | None = None
    debug_mode: bool = False
    continuation_of: str | None = None
    lineage_depth: int = 0
    created_by: str | None = None
    batch_id: str | None = None
    concurrency_key: str | None = None
    # Bookkeeping the API does not show.
    eligible_ms: int = 0
    dequeued_ms: int | None = None
    trace: dict[str, int | None] | None = None
    ticks_done: int = 0
    waited: bool = False
    children_spawned: bool = False
    # The latest status change and LLM chunk in the run's streams: a stream ends at a terminal
    # entry only if it is the latest, since a dlq-replayed run lives on after its first end.
    last_change: StreamId | None = None
    last_chunk: StreamId | None = None

    @property
    def terminal(self) -> bool:
        return self.status in TERMINAL


def project_of(run: Run) -> str:
    """The partition of Strait's runs (see `model.store.in_partition`)."""
    return run.project_id


@dataclass
class Ledger:
    """What creating a run changes in its project besides the run: kept per project, so that a
    store shared by several processes lets two projects' writes commit side by side (see
    store/shared.py)."""

    # The latest run's created_at: a project's list cursor is a created_at and must not tie.
    last_created: int = 0
    # "job id\nidempotency key" -> the run made with that key.
    idempotency: dict[str, str] = field(default_factory=dict)


def idempotency_slot(job_id: str, key: str) -> str:
    return f"{job_id}\n{key}"


@dataclass
class RunRecords:
    events: list[dict[str, Any]] = field(default_factory=list)
    checkpoints: list[dict[str, Any]] = field(default_factory=list)
    usage: list[dict[str, Any]] = field(default_factory=list)
    tool_calls: list[dict[str, Any]] = field(default_factory=list)
    outputs: list[dict[str, Any]] = field(default_factory=list)
    chunks: int = 0


@dataclass(frozen=True)
class Settings:
    step_ms: int = 250
    start_delay_ms: int = 0
    # How long one second of job configuration (timeout_secs, retry delays) lasts, so CI can
    # run a 1 s backoff in 100 ms; the rendered times are on the same clock.
    second_ms: int = 1000
    # The other allowed answers this server gives, where the documents leave a choice open.
    variant: StraitVariant = field(default_factory=StraitVariant)


@dataclass(frozen=True)
class BulkItem:
    id: str
    status: str
    error: str | None = None


@dataclass(frozen=True)
class TriggerOptions:
    payload: Mapping[str, Any] = field(default_factory=dict)
    metadata: Mapping[str, str] = field(default_factory=dict)
    tags: Mapping[str, str] = field(default_factory=dict)
    scheduled_ms: int | None = None
    expires_ms: int | None = None
    priority: int = 0
    batch_id: str | None = None
    concurrency_key: str | None = None
    debug_mode: bool = False
    max_attempts: int | None = None
    timeout_secs: int | None = None
    idempotency_key: str | None = None
