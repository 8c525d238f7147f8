"""AUVY: workspaces, API keys, pathways and the jobs that run them.

A job runs its pathway's script one step per tick of its pacing. Every change is saved through the
store and appended to the job's event stream as the JSON the SSE route sends (`token`,
`state_update`, then a terminal `complete` or `error`).

The document's status enum has no `cancelled`; like BullMQ, which has no such state either, a
cancelled job is `failed` with failedReason "cancelled", and its stream ends with an `error` entry
whose code is CANCELLED.

The package, by concept:

- `lifecycle`: the statuses, the transition table, the moves each route may ask for;
- `records`: workspaces, keys, pathways, traces, interventions, jobs, settings;
- `interventions`: what an intervention accepts, and its `waitingFor` shape;
- `world`: the model's state, the world's setup and authentication;
- `streams`: the entries a job appends to its stream;
- `running`: the job's timer and its script's steps, waits and outcomes;
- `starting`, `reading`, `responding`, `control`, `forcing`: what callers and the control
  routes do with jobs and interventions;
- `model`: `AuvyModel`, which composes them.
"""

from .control import JobControl
from .forcing import FORCED_OUTCOMES, FORCED_WAITS, Forcing
from .interventions import ACTIONS_BY_WAIT, RESPONSE_STATUS, _matches_type, render_waiting_for
from .lifecycle import (
    ACTIONS,
    CANCELLED_REASON,
    REJECTED_REASON,
    TIMEOUT_REASON,
    TRANSITIONS,
    C,
    F,
    JobStatus,
    P,
    R,
    W,
    Z,
)
from .model import AuvyModel
from .reading import JobQueries
from .records import (
    DEFAULT_INLINE_SCRIPT,
    ApiKey,
    Intervention,
    InterventionStatus,
    Job,
    JobKind,
    Pathway,
    Principal,
    Settings,
    Trace,
    Workspace,
    WorkspaceState,
)
from .responding import Responses
from .running import JobRunner
from .starting import JobStarter
from .streams import JobStreams
from .world import AuvyWorld

__all__ = [
    "ACTIONS",
    "ACTIONS_BY_WAIT",
    "CANCELLED_REASON",
    "DEFAULT_INLINE_SCRIPT",
    "FORCED_OUTCOMES",
    "FORCED_WAITS",
    "REJECTED_REASON",
    "RESPONSE_STATUS",
    "TIMEOUT_REASON",
    "TRANSITIONS",
    "ApiKey",
    "AuvyModel",
    "AuvyWorld",
    "C",
    "F",
    "Forcing",
    "Intervention",
    "InterventionStatus",
    "Job",
    "JobControl",
    "JobKind",
    "JobQueries",
    "JobRunner",
    "JobStarter",
    "JobStatus",
    "JobStreams",
    "P",
    "Pathway",
    "Principal",
    "R",
    "Responses",
    "Settings",
    "Trace",
    "W",
    "Workspace",
    "WorkspaceState",
    "Z",
    "_matches_type",
    "render_waiting_for",
]
