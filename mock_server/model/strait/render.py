"""Strait: runs and bulk results as the routes render them."""

from __future__ import annotations

from typing import Any

from ...clock import iso
from ...variants.strait import StraitVariant
from .lifecycle import wire_status
from .records import BulkItem, Job, Run


def run_record(run: Run, job: Job | None, variant: StraitVariant | None = None) -> dict[str, Any]:
    """The run as every route renders it: each documented field, null when it does not apply
    (or, with the variant's switches, left out, and with fields no document names)."""
    variant = variant or StraitVariant()
    record = _documented_record(run, job, variant)
    if variant.omit_nulls:
        record = {k: v for k, v in record.items() if v is not None}
    if variant.extra_fields:
        stamps = [run.created_ms, run.started_ms, run.heartbeat_ms, run.finished_ms]
        record["updated_at"] = iso(max(s for s in stamps if s is not None))
        record["x_region"] = "eu-west-1"
    return record


def _documented_record(run: Run, job: Job | None, variant: StraitVariant) -> dict[str, Any]:
    return {
        "id": run.id,
        "job_id": run.job_id,
        "project_id": run.project_id,
        "status": wire_status(run.status, variant.paused_status),
        "attempt": run.attempt,
        "payload": run.payload,
        "result": run.result,
        "metadata": run.metadata,
        "error": run.error,
        "triggered_by": run.triggered_by,
        "scheduled_at": iso(run.scheduled_ms),
        "started_at": iso(run.started_ms),
        "finished_at": iso(run.finished_ms),
        "heartbeat_at": iso(run.heartbeat_ms),
        "next_retry_at": iso(run.next_retry_ms),
        "expires_at": iso(run.expires_ms),
        "parent_run_id": run.parent_run_id,
        "priority": run.priority,
        "idempotency_key": run.idempotency_key,
        "job_version": run.job_version,
        "workflow_step_run_id": None,
        "max_attempts_override": run.max_attempts_override,
        "timeout_secs_override": run.timeout_secs_override,
        "retry_backoff": job.retry_backoff if job else "exponential",
        "retry_initial_delay_secs": job.retry_initial_delay_secs if job else 0,
        "retry_max_delay_secs": job.retry_max_delay_secs if job else 0,
        "execution_trace": dict(run.trace) if run.trace is not None else None,
        "debug_mode": run.debug_mode,
        "continuation_of": run.continuation_of,
        "lineage_depth": run.lineage_depth,
        "tags": run.tags,
        "job_version_id": f"{run.job_id}@v{run.job_version}",
        "created_by": run.created_by,
        "batch_id": run.batch_id,
        "concurrency_key": run.concurrency_key,
        "created_at": iso(run.created_ms),
    }


def bulk_record(items: list[BulkItem]) -> dict[str, Any]:
    canceled = sum(1 for i in items if i.error is None)
    results = []
    for item in items:
        entry = {"id": item.id, "status": item.status}
        if item.error is not None:
            entry["error"] = item.error
        results.append(entry)
    return {
        "results": results,
        "total": len(items),
        "canceled": canceled,
        "failed": len(items) - canceled,
    }
