"""AUVY: what an intervention accepts as an answer, and how it is rendered (`waitingFor`)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ...clock import iso
from .records import Intervention, InterventionStatus

ACTIONS_BY_WAIT: Mapping[str, tuple[str, ...]] = {
    "approval": ("approve", "reject"),
    "input": ("submit_input",),
    "questions": ("answer_questions", "decline_questions"),
}
RESPONSE_STATUS: Mapping[str, InterventionStatus] = {
    "approve": "approved",
    "reject": "rejected",
    "submit_input": "answered",
    "answer_questions": "answered",
    "decline_questions": "rejected",
}


def _matches_type(value: object, kind: str) -> bool:
    if kind == "boolean":
        return isinstance(value, bool)
    if kind == "number":
        return isinstance(value, int | float) and not isinstance(value, bool)
    return isinstance(value, str)


def render_waiting_for(intervention: Intervention) -> dict[str, Any]:
    wait = intervention.wait
    out: dict[str, Any] = {
        "interventionId": intervention.id,
        "type": wait.kind,
        "prompt": wait.prompt,
        "actions": list(ACTIONS_BY_WAIT[wait.kind]),
        "created_at": iso(intervention.created_ms),
    }
    if wait.kind == "input":
        out["fields"] = [
            {"name": f.name, "type": f.type, "required": f.required} for f in wait.fields
        ]
    if wait.kind == "questions":
        out["questions"] = [{"id": q.id, "text": q.text} for q in wait.questions]
    return out
