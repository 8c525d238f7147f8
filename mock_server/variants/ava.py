"""Ava variants: where the documents leave a choice open, the answer the reference does not give.

Each field is one open choice of ava-jobs.txt and FACTS.md; the default is the reference server's
own answer (an x-decision of openapi/ava.yaml), the other value an answer an independent server
written from the same documents may give. OTHER_CHOICES sets every one of them at once, and the
conformance suite must pass against that server too.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

WEBHOOK_SHAPES = ("envelope", "job")
LIST_ORDERS = ("newest", "oldest")
OVER_MAX = ("reject", "cap")
UNKNOWN_WORKER = ("not_found", "validation")


@dataclass(frozen=True)
class AvaVariant:
    """Every default is the reference server's own choice."""

    # "triggering one returns immediately with a job record": 201 Created or 202 Accepted.
    trigger_status: int = 201
    # The document shows no answer to a cancel: the record (200) or none (204).
    cancel_status: int = 200
    # FACTS: "validation_error 400/422".
    validation_status: int = 400
    # The document documents only the statuses: whether a cancelled job gets completed_at is open.
    cancelled_completed_at: bool = True
    # "The event payload includes the full job record": `{id, type, created_at, data: record}`
    # (envelope) or `{id, event, created_at, job: record}` (job).
    webhook_shape: str = "envelope"
    # Events beyond the two documented ones (ava.job.started, ava.job.cancelled), which a
    # receiver subscribed to "ava.job.completed and ava.job.failed" must be able to ignore.
    webhook_extra_events: bool = False
    # FACTS lists unauthorized 401 and forbidden 403; a missing x-platform-role may be either, and
    # so may a missing or unknown x-tenant-id / x-user-id.
    missing_role_status: int = 403
    missing_identity_status: int = 401
    # Another tenant's job: not found (404, no existence leak) or forbidden (403).
    other_tenant_status: int = 404
    # No pagination is documented: 0 lists everything in one page; n > 0 pages by n with
    # `next_cursor`/`has_more` beside `data` and a `cursor` query parameter.
    list_page_size: int = 0
    # No order is documented.
    list_order: str = "newest"
    # "ISO 8601 lower bound": a calendar date (2025-06-01) is ISO 8601 too (its midnight UTC).
    date_only_bounds: bool = False
    # Whether a job created exactly at a bound is inside it is not documented.
    exclusive_bounds: bool = False
    # "Default 100, max 500.": a larger limit may be rejected or capped at 500.
    log_limit_over_max: str = "reject"
    # filter[level] may keep exactly that level or that level and above.
    log_level_at_least: bool = False
    # FACTS allows resource_not_found 404 or validation_error with fields for an unknown worker.
    unknown_worker: str = "not_found"
    # "Required: No" is silent on an explicit null: rejected, or read as omitted.
    null_as_omitted: bool = False
    # Records, lists, logs and webhook events carry fields the documents do not name.
    extra_fields: bool = False

    def check(self) -> str | None:
        if self.trigger_status not in (201, 202):
            return "trigger_status must be 201 or 202"
        if self.cancel_status not in (200, 204):
            return "cancel_status must be 200 or 204"
        if self.validation_status not in (400, 422):
            return "validation_status must be 400 or 422"
        for name in ("missing_role_status", "missing_identity_status"):
            if getattr(self, name) not in (401, 403):
                return f"{name} must be 401 or 403"
        if self.other_tenant_status not in (403, 404):
            return "other_tenant_status must be 403 or 404"
        if self.webhook_shape not in WEBHOOK_SHAPES:
            return f"webhook_shape must be one of {', '.join(WEBHOOK_SHAPES)}"
        if self.list_page_size < 0:
            return "list_page_size must be 0 (no pagination) or positive"
        if self.list_order not in LIST_ORDERS:
            return f"list_order must be one of {', '.join(LIST_ORDERS)}"
        if self.log_limit_over_max not in OVER_MAX:
            return f"log_limit_over_max must be one of {', '.join(OVER_MAX)}"
        if self.unknown_worker not in UNKNOWN_WORKER:
            return f"unknown_worker must be one of {', '.join(UNKNOWN_WORKER)}"
        return None


# The "choices" preset: every switch of this module set to the other allowed answer.
OTHER_CHOICES: dict[str, Any] = {
    "trigger_status": 202,
    "cancel_status": 204,
    "validation_status": 422,
    "cancelled_completed_at": False,
    "webhook_shape": "job",
    "webhook_extra_events": True,
    "missing_role_status": 401,
    "missing_identity_status": 403,
    "other_tenant_status": 403,
    "list_page_size": 25,
    "list_order": "oldest",
    "date_only_bounds": True,
    "exclusive_bounds": True,
    "log_limit_over_max": "cap",
    "log_level_at_least": True,
    "unknown_worker": "validation",
    "null_as_omitted": True,
    "extra_fields": True,
}
