"""Races: requests that compete for one job must leave it in one consistent state.

Cancel racing completion; two answers racing for one intervention; bulk cancel racing bulk replay
(Strait); many concurrent streams of one job. The interleaving is the OS scheduler's, so each race
is repeated `race_rounds` times (more at --depth deep). Every wait has a deadline (the profile's job
timeouts; streams the client's stream deadline) and fails naming what it awaited.

Only what the documents promise is demanded of the winner: a cancel accepted with any 2xx; a
refused answer with a status and code of the error table; whatever terminal status an accepted
answer leads to (the reference's approve-completes / reject-fails is checked by the lifecycle
model's reference test)."""

from __future__ import annotations

import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor, wait
from typing import Any

import httpx
import pytest

from ..checks import (
    ConformanceFailure,
    auvy_error_envelope,
    ava_error_envelope,
    body_of,
    event_ids_strictly_increase,
)
from ..clients.auvy import TERMINAL, AuvyClient
from ..clients.ava import AvaClient
from ..clients.strait import StraitClient
from ..profile import TargetProfile
from .depth import Depth
from .machines import auvy_refusal, intervention_of

# Racing requests are single calls (or one stream read each, bounded by the client's own stream
# deadline); this bounds them all together, in case a client's own deadline does not hold.
RACE_DEADLINE_S = 120.0


def _together(
    *calls: Callable[[], Any], what: str, deadline_s: float = RACE_DEADLINE_S
) -> list[Any]:
    """Start every call at once; their results in order, or fail naming what did not answer."""
    pool = ThreadPoolExecutor(max_workers=len(calls))
    try:
        futures = [pool.submit(c) for c in calls]
        _, pending = wait(futures, timeout=deadline_s)
        if pending:
            raise ConformanceFailure(
                f"awaited {what} within {deadline_s:.0f} s",
                f"{len(pending)} of {len(futures)} had not answered",
            )
        return [f.result() for f in futures]
    finally:
        pool.shutdown(wait=False, cancel_futures=True)


@pytest.mark.req("auvy.properties.race-cancel")
def test_auvy_cancel_racing_completion(
    auvy: AuvyClient, profile: TargetProfile, depth: Depth
) -> None:
    pathway = str(profile.need("auvy.pathways.complete.id"))
    timeout_s = float(profile.get("auvy.job_timeout_s", 30))
    for round_ in range(depth.race_rounds * 3):
        job_id = auvy.start(pathway)
        # Spread the cancels over the job's short life so some land before and some after the end.
        time.sleep(0.05 * (round_ % 6))
        answer = auvy.cancel(job_id)
        final = auvy.wait_for(job_id, TERMINAL, timeout_s)
        read = auvy.read_stream(job_id)
        event = (read.terminal or {}).get("type")
        if 200 <= answer.status_code < 300:
            ok = final["status"] == "failed" and event == "error"
        elif answer.status_code == 400:
            auvy_error_envelope(answer, 400, "VALIDATION_ERROR")
            ok = final["status"] == "completed" and event == "complete"
        else:
            ok = False
        if not ok:
            raise ConformanceFailure(
                "cancel, status and stream disagree on who won",
                f"cancel {answer.status_code}, status {final['status']!r}, stream ended {event!r}",
            )


@pytest.mark.req("auvy.properties.race-input")
def test_auvy_two_answers_race_for_one_intervention(
    auvy_as: Callable[[str | None], AuvyClient], profile: TargetProfile, depth: Depth
) -> None:
    first, second = auvy_as("main"), auvy_as("main")
    pathway = str(profile.need("auvy.pathways.approval.id"))
    workspace = str(profile.need("auvy.workspace_id"))
    timeout_s = float(profile.get("auvy.job_timeout_s", 30))
    for _ in range(depth.race_rounds):
        job_id = first.start(pathway)
        snap = first.wait_for(job_id, {"waiting"}, timeout_s)
        intervention = intervention_of(first, job_id, snap)

        def answer(
            client: AuvyClient, action: str, job_id: str = job_id, intervention: str = intervention
        ) -> httpx.Response:
            body = {
                "workspace_id": workspace,
                "input": {
                    "type": "intervention_response",
                    "interventionId": intervention,
                    "action": action,
                },
            }
            return client.submit_input(job_id, body)

        results = _together(
            lambda: answer(first, "approve"),
            lambda: answer(second, "reject"),
            what="two answers to one intervention",
        )
        codes = sorted(r.status_code for r in results)
        won = [r for r in results if 200 <= r.status_code < 300]
        if len(won) != 1:
            raise ConformanceFailure("exactly one answer must win", f"answers {codes}")
        lost = next(r for r in results if r is not won[0])
        auvy_refusal(lost)
        # The job no longer waits for the question both answered: it ends, as the winner chose.
        first.wait_for(job_id, TERMINAL, timeout_s)


@pytest.mark.req("auvy.properties.race-streams")
def test_auvy_many_streams_of_one_job_agree(
    auvy_as: Callable[[str | None], AuvyClient], profile: TargetProfile, depth: Depth
) -> None:
    readers = [auvy_as("main") for _ in range(depth.concurrent_streams)]
    job_id = readers[0].start(str(profile.need("auvy.pathways.complete.id")))
    reads = _together(
        *[lambda c=c: c.read_stream(job_id) for c in readers],
        what=f"{len(readers)} concurrent reads of one stream to its end",
    )
    refused = sorted({read.status_code for read in reads} - {200})
    if refused:
        raise ConformanceFailure("a concurrent reader of one stream was refused", f"{refused}")
    reference = reads[0].ids
    event_ids_strictly_increase(reference)
    for read in reads:
        if read.ids != reference or read.terminal != reads[0].terminal:
            raise ConformanceFailure(
                "concurrent readers of one stream saw different events",
                f"{len(read.ids)} vs {len(reference)} ids; terminal {read.terminal!r}",
            )
    if reads[0].terminal is None:
        raise ConformanceFailure("the streams ended without a terminal event", job_id)


@pytest.mark.req("ava.properties.race-cancel")
def test_ava_cancel_racing_completion(ava: AvaClient, profile: TargetProfile, depth: Depth) -> None:
    worker = str(profile.need("ava.workers.complete.id"))
    timeout_s = float(profile.get("ava.job_timeout_s", 30))
    for round_ in range(depth.race_rounds * 3):
        job_id = str(ava.start(worker)["id"])
        time.sleep(0.05 * (round_ % 6))
        answer = ava.cancel(job_id)
        final = ava.wait_for(job_id, {"completed", "failed", "cancelled"}, timeout_s)["status"]
        if answer.status_code == 409:
            ava_error_envelope(answer, 409, "resource_conflict")
        expected = "cancelled" if 200 <= answer.status_code < 300 else None
        expected = "completed" if answer.status_code == 409 else expected
        if final != expected:
            raise ConformanceFailure(
                "cancel answer and final status disagree",
                f"cancel {answer.status_code}, final {final!r}",
            )


@pytest.mark.req("strait.properties.race-bulk")
def test_strait_bulk_cancel_racing_bulk_replay(
    strait: StraitClient, profile: TargetProfile, depth: Depth
) -> None:
    job = str(profile.need("strait.jobs.fatal"))
    for _ in range(depth.race_rounds):
        runs = [strait.start(job)["id"] for _ in range(3)]
        for run in runs:
            strait.wait_for(run, {"failed"})
        ids = list(runs)
        results = _together(
            lambda ids=ids: strait.bulk_cancel({"run_ids": ids}),  # type: ignore[misc]
            lambda ids=ids: strait.bulk_replay({"run_ids": ids}),  # type: ignore[misc]
            what="a bulk cancel and a bulk replay of the same runs",
        )
        cancel, replay = results
        if cancel.status_code >= 500 or replay.status_code >= 500:
            raise ConformanceFailure(
                "a bulk operation failed", f"{cancel.status_code}, {replay.status_code}"
            )
        for run in runs:
            status = strait.run(run)["status"]
            if status != "failed":
                raise ConformanceFailure(
                    "a failed run changed status under bulk cancel/replay (both leave it as is)",
                    f"{run}: {status!r}",
                )
        if cancel.status_code == 200:
            counts = body_of(cancel)
            # Terminal runs cannot be canceled: FACTS.md has them reported as per-run errors.
            if isinstance(counts, dict) and counts.get("canceled") not in (0, None):
                raise ConformanceFailure(
                    "bulk cancel counted failed runs as canceled", repr(counts)[:300]
                )
        if replay.status_code in (200, 201):
            new = _replayed_ids(body_of(replay))
            if len(new) != len(set(new)) or set(new) & set(runs) or len(new) > len(runs):
                raise ConformanceFailure(
                    "bulk replay created duplicate or reused runs",
                    f"replayed {runs}, answered with runs {new}",
                )


def _replayed_ids(body: Any) -> list[Any]:
    """The new runs of a bulk replay's answer: the document shows a plain array of runs; a
    wrapping object (`runs`, `data` or `replayed`) is read too."""
    items = body
    if isinstance(body, dict):
        items = next(
            (body[k] for k in ("runs", "data", "replayed") if isinstance(body.get(k), list)), None
        )
    if not isinstance(items, list):
        raise ConformanceFailure("a bulk replay's answer lists no runs", repr(body)[:300])
    return [item.get("id") if isinstance(item, dict) else item for item in items]
