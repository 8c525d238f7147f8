"""AUVY: a job's statuses, the moves between them, and which of them each route may ask for.

The document's status enum has no `cancelled`; like BullMQ, which has no such state either, a
cancelled job is `failed` with failedReason "cancelled", and its stream ends with an `error` entry
whose code is CANCELLED.
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum

from ..status import TransitionTable


class JobStatus(StrEnum):
    PENDING = "pending"
    RUNNING = "running"
    COMPLETED = "completed"
    FAILED = "failed"
    WAITING = "waiting"
    PAUSED = "paused"


P, R, C, F, W, Z = (
    JobStatus.PENDING,
    JobStatus.RUNNING,
    JobStatus.COMPLETED,
    JobStatus.FAILED,
    JobStatus.WAITING,
    JobStatus.PAUSED,
)

TRANSITIONS: TransitionTable[JobStatus] = TransitionTable(
    "job",
    {
        P: {R, F},
        R: {C, F, W, Z},
        W: {R, F},
        Z: {R, F},
        C: set(),
        F: set(),
    },
)

# What a client may ask for, from which statuses: the table above says which moves exist at all,
# this says which of them each route may trigger.
ACTIONS: Mapping[str, tuple[frozenset[JobStatus], JobStatus]] = {
    "cancel": (frozenset({P, R, W, Z}), F),
    "resume": (frozenset({W, Z}), R),
    "input": (frozenset({W}), R),
}

CANCELLED_REASON = "cancelled"
REJECTED_REASON = "rejected"
TIMEOUT_REASON = "timeout"
