"""Strait variants: where the documents leave a choice open, the answer the reference does not give.

Each switch is another answer the documents (seeds/strait-runs-api.txt) or FACTS.md allow; the
conformance suite must accept every one of them against `--target` (decisions informational).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class StraitVariant:
    """Every default is the reference server's own choice."""

    # Cancel of a live run answers 200 with the canceled run (FACTS.md, the live system) instead
    # of the document's Empty 204.
    cancel_answers_run: bool = False
    # A paused run reports the live system's `paused` (FACTS.md) instead of the document's
    # `waiting`; its stream says executing -> paused -> queued.
    paused_status: bool = False
    # GET /v1/runs and /v1/runs/dlq answer the live system's `{data, next_cursor, has_more}`
    # (FACTS.md) instead of the document's plain array.
    list_page: bool = False
    # The code of the 410 for a finished run's stream: FACTS.md's table has none for 410.
    gone_code: str = "gone"
    # A stream opened late replays the run's earlier changes (nothing promises it); off, it starts
    # with what happens after the connection.
    replay_history: bool = True
    # Runs go queued -> executing directly (FACTS.md's table allows it), never showing dequeued;
    # a run that cannot start still goes through dequeued to system_failed.
    skip_dequeued: bool = False
    # Streams carry frames of types no document names (FACTS.md: clients tolerate unknown types).
    unknown_frames: bool = False
    # Responses carry fields no document names, one of which changes as the run moves.
    extra_fields: bool = False
    # Run records leave out fields that do not apply instead of sending them as null.
    omit_nulls: bool = False
    # Listing with another project's project_id answers an empty list instead of 404.
    foreign_project_empty: bool = False
    # bulk-dlq-replay naming a run not in dead_letter is 400 bad_request instead of 409 conflict.
    bulk_dlq_mixed_400: bool = False
    # bulk-replay naming a run that cannot be replayed replays the others and leaves it out,
    # instead of refusing the whole request.
    bulk_replay_partial: bool = False
    # A body value the schema refuses (a priority out of range, a debug_mode that is not a
    # boolean, a malformed date-time) is 422 validation_failed instead of 400 bad_request:
    # FACTS.md's table has both. Malformed JSON stays 400.
    body_validation_422: bool = False

    def check(self) -> str | None:
        if not self.gone_code or not self.gone_code.replace("_", "").isalnum():
            return f"gone_code must be a snake_case word, not {self.gone_code!r}"
        return None


# The "choices" preset: every switch of this module set to the other allowed answer.
OTHER_CHOICES: dict[str, Any] = {
    "cancel_answers_run": True,
    "paused_status": True,
    "list_page": True,
    "gone_code": "run_finished",
    "replay_history": False,
    "skip_dequeued": True,
    "unknown_frames": True,
    "extra_fields": True,
    "omit_nulls": True,
    "foreign_project_empty": True,
    "bulk_dlq_mixed_400": True,
    "bulk_replay_partial": True,
    "body_validation_422": True,
}

# The "strait-live" preset: the live system's shapes where FACTS.md records a deviation from the
# document (openapi/strait.yaml's x-deviation notes), so clients written for the live API (the
# official strait-python SDK) can develop against the mock. `paused` and `replay_staged` are in
# the spec's reported enum; the live system holds `replay_staged` only inside the bulk
# dlq-replay transaction, so no client ever sees it and neither does this server show it.
LIVE: dict[str, Any] = {
    "cancel_answers_run": True,
    "paused_status": True,
    "list_page": True,
}
