"""Strait: the state every part of the model works on, how the world is set up, and who is
calling."""

from __future__ import annotations

from collections.abc import MutableMapping
from typing import Any

from ...clock import iso
from ..engine import Engine
from ..errors import NotFound, Unauthenticated
from ..store import MemoryStreams, in_partition
from .lifecycle import RunStatus, wire_status
from .records import (
    KEY_PATTERN,
    ApiKey,
    Job,
    Ledger,
    Project,
    Run,
    RunRecords,
    Settings,
    project_of,
    uuid7,
)


class StraitWorld:
    def __init__(self, engine: Engine, settings: Settings | None = None) -> None:
        self.engine = engine
        self.settings = settings or Settings()
        self.projects: dict[str, Project] = {}
        self.keys: dict[str, ApiKey] = {}
        self.jobs: dict[str, Job] = {}
        self.dependencies: dict[str, list[dict[str, Any]]] = {}
        self.runs: MutableMapping[str, Run] = {}
        self.records: MutableMapping[str, RunRecords] = {}
        self.streams = MemoryStreams(maxlen=None, ttl_ms=None)
        # Per project (see `Ledger`).
        self.ledgers: MutableMapping[str, Ledger] = {}

    # -- world ---------------------------------------------------------------------------------

    def add_project(self, project: Project) -> None:
        self.projects[project.id] = project

    def add_key(self, key: ApiKey) -> None:
        if key.project_id not in self.projects:
            raise ValueError(f"key {key.id} names unknown project {key.project_id}")
        if not KEY_PATTERN.fullmatch(key.token):
            raise ValueError(f"key {key.id}: a token is strait_ and 64 lower-case hex digits")
        self.keys[key.token] = key

    def add_job(self, job: Job) -> None:
        if job.project_id not in self.projects:
            raise ValueError(f"job {job.id} names unknown project {job.project_id}")
        self.jobs[job.id] = job
        now = self.engine.now()
        self.dependencies[job.id] = [
            {
                "id": uuid7(now),
                "job_id": job.id,
                "depends_on_job_id": other,
                "condition": "completed",
                "created_at": iso(now),
            }
            for other in job.depends_on
        ]

    def check_spawns(self) -> None:
        """Every job that spawns runs spawns runs of a job of its own project (a run's children
        are its project's, listed and found in its partition)."""
        for job in self.jobs.values():
            if job.spawn_job is None:
                continue
            child = self.jobs.get(job.spawn_job)
            if child is None or child.project_id != job.project_id:
                raise ValueError(
                    f"job {job.id}: spawn_job {job.spawn_job} is not a job of project "
                    f"{job.project_id}"
                )

    def children_of(self, parent: Run) -> list[Run]:
        return [
            r
            for r in in_partition(self.runs, parent.project_id, project_of)
            if r.parent_run_id == parent.id
        ]

    def reset_runs(self) -> None:
        self.engine.scheduler.cancel_kind("strait")
        self.runs.clear()
        self.records.clear()
        self.streams.clear()
        self.ledgers.clear()

    def clear_world(self) -> None:
        self.reset_runs()
        self.projects.clear()
        self.keys.clear()
        self.jobs.clear()
        self.dependencies.clear()

    def _ledger(self, project_id: str) -> Ledger:
        ledger = self.ledgers.get(project_id)
        if ledger is None:
            ledger = self.ledgers[project_id] = Ledger()
        return ledger

    # -- callers -------------------------------------------------------------------------------

    def authenticate(self, token: str | None) -> ApiKey:
        key = self.keys.get(token or "")
        if key is None:
            raise Unauthenticated("a valid API key is required (Authorization: Bearer strait_...)")
        return key

    def _wire(self, status: RunStatus) -> str:
        return wire_status(status, self.settings.variant.paused_status)

    def _foreign(self, who: ApiKey, project_id: str) -> bool:
        """Whether a listing names another project and the variant answers it with nothing."""
        return self.settings.variant.foreign_project_empty and project_id != who.project_id

    def _project(self, who: ApiKey, project_id: str) -> Project:
        # Another project's id reads as unknown, like another project's run.
        if project_id != who.project_id or project_id not in self.projects:
            raise NotFound("project", project_id)
        return self.projects[project_id]
