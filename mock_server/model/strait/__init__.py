"""Strait: projects, API keys, jobs with known behaviour, and the runs they make.

A run is created by triggering a job and then follows its job's behaviour on the engine's clock:
delayed (until scheduled_at) -> queued -> dequeued -> executing -> an outcome. Every move goes
through `TRANSITIONS` (FACTS.md's table), and every move and recorded event is appended to the
run's stream, which `/stream` replays. A failed attempt with attempts left goes back to queued
with `next_retry_at` set by the job's backoff; when attempts run out the run is dead_letter.

The document's status enum has no `paused`; the live system's paused runs are kept here as
`PAUSED` and rendered as `waiting` (`wire_status`), the document's word for a run that is not
progressing.

Records every attempt writes (events, a checkpoint, a tool call, model usage, LLM chunks, and on
success a structured output) exist so that every read endpoint returns real data.

The package, by concept:

- `lifecycle`: the statuses, the transition table, which statuses are terminal, cancellable,
  replayable; the wire name of a status;
- `records`: projects, keys, jobs and their behaviours, runs and what they record, settings;
- `render`: a run and a bulk result as the routes render them;
- `world`: the model's state, the world's setup and authentication;
- `timers`: a run's timers (step, timeout, expiry) as data;
- `streams`: status changes, events, LLM chunks and an attempt's records;
- `running`: creating a run and the queue it goes through: steps, retries, dead-lettering,
  timeouts, outcomes;
- `reading`, `control`, `forcing`: what callers and the control routes do with runs;
- `model`: `StraitModel`, which composes them.
"""

from .control import RunControl
from .forcing import FORCED_ERRORS, FORCED_OUTCOMES, Forcing
from .lifecycle import (
    CANCELLABLE,
    KEY_BUSY,
    REPLAYABLE,
    TERMINAL,
    TERMINAL_MESSAGE,
    TRANSITIONS,
    RunStatus,
    RunTerminal,
    S,
    wire_status,
)
from .model import StraitModel
from .reading import RunQueries, contains
from .records import (
    DEFAULT_LIMIT,
    EVENT_LEVELS,
    KEY_PATTERN,
    MAX_BULK,
    MAX_LIMIT,
    TRIGGER_SOURCES,
    ApiKey,
    Behaviour,
    BulkItem,
    Job,
    Project,
    Run,
    RunRecords,
    Settings,
    TriggerOptions,
    uuid7,
)
from .render import _documented_record, bulk_record, run_record
from .running import RunQueue
from .streams import RunStreams, chunks_key
from .timers import RunTimers
from .world import StraitWorld

__all__ = [
    "CANCELLABLE",
    "DEFAULT_LIMIT",
    "EVENT_LEVELS",
    "FORCED_ERRORS",
    "FORCED_OUTCOMES",
    "KEY_BUSY",
    "KEY_PATTERN",
    "MAX_BULK",
    "MAX_LIMIT",
    "REPLAYABLE",
    "TERMINAL",
    "TERMINAL_MESSAGE",
    "TRANSITIONS",
    "TRIGGER_SOURCES",
    "ApiKey",
    "Behaviour",
    "BulkItem",
    "Forcing",
    "Job",
    "Project",
    "Run",
    "RunControl",
    "RunQueries",
    "RunQueue",
    "RunRecords",
    "RunStatus",
    "RunStreams",
    "RunTerminal",
    "RunTimers",
    "S",
    "Settings",
    "StraitModel",
    "StraitWorld",
    "TriggerOptions",
    "_documented_record",
    "bulk_record",
    "chunks_key",
    "contains",
    "run_record",
    "uuid7",
    "wire_status",
]
