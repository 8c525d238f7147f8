"""Races: requests that compete for one job must leave it in one consistent state.

Cancel racing completion; two answers racing for one intervention; bulk cancel racing bulk replay
(Strait); many concurrent streams of one job. The interleaving is the OS scheduler's, so each race
is repeated `race_rounds` times (more at --depth deep)."""

from __future__ import annotations

import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest

from ..checks import ConformanceFailure, body_of, event_ids_strictly_increase
from ..clients.auvy import TERMINAL, AuvyClient
from ..clients.ava import AvaClient
from ..clients.strait import StraitClient
from ..profile import TargetProfile
from .depth import Depth


def _together(*calls: Callable[[], Any]) -> list[Any]:
    with ThreadPoolExecutor(max_workers=len(calls)) as pool:
        return [f.result() for f in [pool.submit(c) for c in calls]]


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
        if answer.status_code == 200:
            ok = final["status"] == "failed" and event == "error"
        elif answer.status_code == 400:
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
        waiting = first.wait_for(job_id, {"waiting"}, timeout_s)["waitingFor"]

        def answer(
            client: AuvyClient, action: str, job_id: str = job_id, waiting: Any = waiting
        ) -> httpx.Response:
            body = {
                "workspace_id": workspace,
                "input": {
                    "type": "intervention_response",
                    "interventionId": waiting["interventionId"],
                    "action": action,
                },
            }
            return client.submit_input(job_id, body)

        results = _together(lambda: answer(first, "approve"), lambda: answer(second, "reject"))
        codes = sorted(r.status_code for r in results)
        won = [r for r in results if r.status_code == 200]
        if len(won) != 1 or not 400 <= codes[-1] < 500:
            raise ConformanceFailure("exactly one answer must win", f"answers {codes}")
        final = first.wait_for(job_id, TERMINAL, timeout_s)["status"]
        winner = "approve" if won[0] is results[0] else "reject"
        expected = "completed" if winner == "approve" else "failed"
        if final != expected:
            raise ConformanceFailure(f"{winner} won but the job ended {final!r}", job_id)


@pytest.mark.req("auvy.properties.race-streams")
def test_auvy_many_streams_of_one_job_agree(
    auvy_as: Callable[[str | None], AuvyClient], profile: TargetProfile, depth: Depth
) -> None:
    readers = [auvy_as("main") for _ in range(depth.concurrent_streams)]
    job_id = readers[0].start(str(profile.need("auvy.pathways.complete.id")))
    reads = _together(*[lambda c=c: c.read_stream(job_id) for c in readers])
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
        expected = {200: "cancelled", 409: "completed"}.get(answer.status_code)
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
        if replay.status_code == 200:
            created = body_of(replay)
            new = (
                [r.get("id") for r in created.get("runs", created.get("data")) or []]
                if isinstance(created, dict)
                else []
            )
            if len(new) != len(set(new)) or set(new) & set(runs):
                raise ConformanceFailure(
                    "bulk replay created duplicate or reused runs", repr(created)[:300]
                )
