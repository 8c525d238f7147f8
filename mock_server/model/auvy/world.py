"""AUVY: the state every part of the model works on, how the world is set up, and who is
calling."""

from __future__ import annotations

from collections.abc import MutableMapping

from ..engine import Engine
from ..errors import Forbidden, Unauthenticated
from ..store import MemoryRecords, RecordStore, StreamStore
from .lifecycle import JobStatus
from .records import (
    ApiKey,
    Intervention,
    Job,
    Pathway,
    Principal,
    Settings,
    Trace,
    Workspace,
    WorkspaceState,
)


class AuvyWorld:
    def __init__(
        self,
        engine: Engine,
        settings: Settings | None = None,
        *,
        jobs: RecordStore[Job] | None = None,
        streams: StreamStore,
    ) -> None:
        self.engine = engine
        self.settings = settings or Settings()
        self.jobs: RecordStore[Job] = jobs if jobs is not None else MemoryRecords()
        self.interventions: RecordStore[Intervention] = MemoryRecords()
        self.streams = streams
        self.workspaces: dict[str, Workspace] = {}
        self.keys: dict[str, ApiKey] = {}
        self.pathways: dict[str, Pathway] = {}
        self.traces: MutableMapping[str, Trace] = {}
        self.jwt_secret: str | None = None

    # -- world ---------------------------------------------------------------------------------

    def add_workspace(self, ws: Workspace) -> None:
        self.workspaces[ws.id] = ws

    def add_key(self, key: ApiKey) -> None:
        if key.workspace_id not in self.workspaces:
            raise ValueError(f"api key for unknown workspace {key.workspace_id}")
        self.keys[key.token] = key

    def add_pathway(self, pathway: Pathway) -> None:
        self.pathways[pathway.id] = pathway

    def add_trace(self, trace: Trace) -> None:
        self.traces[trace.id] = trace

    def set_workspace_state(self, workspace_id: str, state: WorkspaceState) -> None:
        ws = self.workspaces[workspace_id]
        self.workspaces[workspace_id] = Workspace(ws.id, ws.slug, ws.name, state)

    def reset_jobs(self) -> None:
        self.engine.scheduler.cancel_kind("auvy")
        self.jobs.clear()
        self.interventions.clear()
        self.streams.clear()

    # -- callers -------------------------------------------------------------------------------

    def authenticate(self, token: str | None) -> Principal:
        key = self.keys.get(token or "")
        if key is None:
            raise Unauthenticated("a valid API key is required (Authorization: Bearer <key>)")
        return Principal(self.workspaces[key.workspace_id], key.scopes)

    @staticmethod
    def _require_write(who: Principal) -> None:
        if "write" not in who.scopes:
            raise Forbidden("this API key is read-only", "forbidden")

    def _require_can_start(self, who: Principal) -> None:
        self._require_write(who)
        self.require_billable(who.workspace.id)

    def require_billable(self, workspace_id: str) -> None:
        """Starting work costs money: a workspace past its trial or cost cap may only read."""
        ws = self.workspaces[workspace_id]
        if ws.state == "trial_expired":
            raise Forbidden("the workspace's trial has expired", "trial_expired")
        if ws.state == "cost_cap":
            raise Forbidden("the workspace has reached its cost cap", "cost_cap")

    def waiting_for(self, job: Job) -> Intervention | None:
        if job.status is not JobStatus.WAITING or job.intervention_id is None:
            return None
        return self.interventions.get(job.intervention_id)
