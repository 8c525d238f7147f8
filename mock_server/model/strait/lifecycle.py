"""Strait: a run's statuses, the moves between them, and which of them are final.

The document's status enum has no `paused`; the live system's paused runs are kept here as
`PAUSED` and rendered as `waiting` (`wire_status`), the document's word for a run that is not
progressing.
"""

from __future__ import annotations

from enum import StrEnum
from typing import TYPE_CHECKING

from ..errors import IllegalTransition
from ..status import TransitionTable

if TYPE_CHECKING:
    from .records import Run


class RunStatus(StrEnum):
    DELAYED = "delayed"
    QUEUED = "queued"
    DEQUEUED = "dequeued"
    EXECUTING = "executing"
    WAITING = "waiting"
    COMPLETED = "completed"
    FAILED = "failed"
    TIMED_OUT = "timed_out"
    CRASHED = "crashed"
    SYSTEM_FAILED = "system_failed"
    CANCELED = "canceled"
    EXPIRED = "expired"
    DEAD_LETTER = "dead_letter"
    PAUSED = "paused"  # the live system's; rendered as waiting (see the module docstring)


S = RunStatus
TRANSITIONS: TransitionTable[RunStatus] = TransitionTable(
    "run",
    {
        # Reschedule moves a queued run with a future time back to delayed (FACTS.md's rule),
        # an edge the table of FACTS.md does not list.
        S.DELAYED: {S.QUEUED, S.CANCELED, S.EXPIRED},
        S.QUEUED: {S.DEQUEUED, S.EXECUTING, S.CANCELED, S.EXPIRED, S.DELAYED},
        S.DEQUEUED: {S.EXECUTING, S.QUEUED, S.CANCELED, S.SYSTEM_FAILED},
        S.EXECUTING: {
            S.COMPLETED,
            S.FAILED,
            S.TIMED_OUT,
            S.CRASHED,
            S.CANCELED,
            S.WAITING,
            S.QUEUED,
            S.SYSTEM_FAILED,
            S.DEAD_LETTER,
            S.PAUSED,
        },
        S.WAITING: {S.EXECUTING, S.COMPLETED, S.FAILED, S.CANCELED, S.TIMED_OUT},
        S.PAUSED: {S.QUEUED, S.CANCELED},
        S.COMPLETED: set(),
        S.FAILED: set(),
        S.TIMED_OUT: set(),
        S.CRASHED: set(),
        S.SYSTEM_FAILED: set(),
        S.CANCELED: set(),
        S.EXPIRED: set(),
        S.DEAD_LETTER: {S.QUEUED},
    },
)

# dead_letter has an edge (dlq-replay) yet is terminal: nothing happens to it by itself.
TERMINAL = frozenset(TRANSITIONS.terminal | {S.DEAD_LETTER})
CANCELLABLE = frozenset(s for s in TRANSITIONS.statuses() if TRANSITIONS.allowed(s, S.CANCELED))
REPLAYABLE = frozenset({S.FAILED, S.TIMED_OUT, S.CRASHED, S.SYSTEM_FAILED})
KEY_BUSY = frozenset({S.DEQUEUED, S.EXECUTING, S.WAITING})
TERMINAL_MESSAGE = "run already in terminal state"


def wire_status(status: RunStatus, paused: bool = False) -> str:
    """The status as responses report it: a paused run is `waiting` (the document's enum), or
    with the `paused_status` variant the live system's `paused`."""
    if status is S.PAUSED and not paused:
        return S.WAITING.value
    return status.value


class RunTerminal(IllegalTransition):
    def __init__(self, run: Run, action: str) -> None:
        super().__init__("run", run.id, run.status.value, action)
        self.message = TERMINAL_MESSAGE
        self.args = (TERMINAL_MESSAGE,)
