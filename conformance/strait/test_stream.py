"""GET /v1/runs/{runID}/stream and /stream/chunks, read from the target over HTTP: status changes
that agree with GET, keepalives, 410 for a finished run, and LLM chunks ending with done.

Frames of types the documents do not name are skipped (FACTS.md: clients tolerate unknown ones);
the checks below are about the frames they do name."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from typing import Any

import pytest

from conformance.checks import status_is, strait_error_envelope
from conformance.clients.sse import SseEvent
from conformance.clients.strait import TERMINAL, StraitClient, error_of, parse_ts
from conformance.profile import TargetProfile

req = pytest.mark.req
Job = Callable[[str], str]


@req("strait.stream.status-changes")
@pytest.mark.parametrize("job", ["complete", "fatal", "wait"])
def test_status_changes_chain_and_end_with_the_status_get_reports(
    strait: StraitClient, strait_job: Job, job: str
) -> None:
    run_id = strait.held(strait_job(job))["id"]
    read = strait.read(run_id, release=True)
    assert read.ended, "the stream stayed open after the run finished"
    changes = read.changes
    assert changes, "no status_change frames"
    assert changes[0]["from"] == "delayed", f"the first change is from {changes[0]['from']}"
    for before, after in itertools.pairwise(changes):
        assert after["from"] == before["to"], f"{after['from']} follows {before['to']}"
        assert parse_ts(after["timestamp"]) >= parse_ts(before["timestamp"])
    assert all(c["to"] not in TERMINAL for c in changes[:-1]), "changes after a terminal one"
    known = [f for f in read.frames if f.get("type") in {"status_change", "event"}]
    assert known[-1] is changes[-1], "status or event frames followed the terminal status change"
    assert {f.get("run_id") for f in known} == {run_id}, "frames of another run"
    final = strait.run(run_id)
    assert changes[-1]["to"] == final["status"], (changes[-1]["to"], final["status"])
    assert final["status"] in TERMINAL


def late_stream_changes(strait: StraitClient, strait_job: Job) -> list[dict[str, Any]]:
    """The status changes a stream opened on an executing run delivers until it is canceled."""
    run = strait.executing(strait_job("long"))
    try:
        with strait.stream(run["id"]) as stream:
            assert stream.status_code == 200, f"stream answered {stream.status_code}"
            strait.cancel(run["id"])
            frames = [i.json() for i in stream if isinstance(i, SseEvent)]
            assert stream.ended, "the stream stayed open after the run was canceled"
    finally:
        strait.cancel(run["id"])
    assert strait.run(run["id"])["status"] == "canceled"
    return [f for f in frames if isinstance(f, dict) and f.get("type") == "status_change"]


@req("strait.stream.status-changes")
def test_a_stream_opened_late_reports_the_changes_that_follow(
    strait: StraitClient, strait_job: Job
) -> None:
    # Whether earlier changes are replayed is not promised; what follows the connection is.
    changes = late_stream_changes(strait, strait_job)
    assert changes, "no status_change frame for the cancel of a streamed run"
    for before, after in itertools.pairwise(changes):
        assert after["from"] == before["to"], f"{after['from']} follows {before['to']}"
    assert changes[-1]["to"] == "canceled", [c["to"] for c in changes]
    assert changes[-1]["from"] == "executing", "the cancel's change is not from executing"


@req("strait.decision.stream-replays-history")
def test_the_reference_replays_earlier_changes_to_a_late_stream(
    strait: StraitClient, strait_job: Job
) -> None:
    changes = late_stream_changes(strait, strait_job)
    path = [changes[0]["from"], *(c["to"] for c in changes)] if changes else []
    # The run was triggered for now: its life began queued.
    assert path[:1] == ["queued"], f"not replayed from the start: {path}"
    assert "executing" in path[:-1], f"the changes before connecting were not replayed: {path}"


@req("strait.stream.keepalive")
def test_an_idle_stream_sends_keepalive_comments(
    strait: StraitClient, strait_job: Job, profile: TargetProfile
) -> None:
    within = float(profile.need("strait.keepalive_within_s"))
    run = strait.executing(strait_job("long"))
    try:
        read = strait.read(run["id"], until_comment=True, read_timeout_s=within + 1)
    finally:
        strait.cancel(run["id"])
    # Any comment line keeps the connection alive (SSE); FACTS.md names `: keepalive`.
    assert read.comments, f"no comment line within {within}s on an idle stream"


@req("strait.stream.terminal-410")
@pytest.mark.parametrize("status", ["completed", "failed", "canceled"])
def test_streaming_a_finished_run_is_410(
    strait: StraitClient, strait_job: Job, status: str
) -> None:
    if status == "canceled":
        run_id = strait.held(strait_job("complete"))["id"]
        strait.cancel(run_id)
        strait.wait_for(run_id, TERMINAL)
    else:
        run_id = strait.finish(
            strait_job("complete" if status == "completed" else "fatal"), status
        )["id"]
    codes: set[str] = set()
    for chunks in (False, True):
        with strait.stream(run_id, chunks=chunks) as stream:
            assert stream.status_code == 410, f"stream of a {status} run: {stream.status_code}"
            # FACTS.md's code table has no code for 410: any code, in the Strait envelope.
            error = error_of(stream.response, 410)
            codes.add(error["code"])
    assert len(codes) == 1, f"the 410 of a finished run changes its code: {sorted(codes)}"


@req("strait.decision.gone-code")
def test_the_reference_says_gone_for_a_finished_run(strait: StraitClient, strait_job: Job) -> None:
    run_id = strait.finish(strait_job("complete"), "completed")["id"]
    for chunks in (False, True):
        with strait.stream(run_id, chunks=chunks) as stream:
            strait_error_envelope(stream.response, 410, "gone")


@req("strait.stream.chunks")
def test_chunk_stream_sends_chunks_and_ends_with_done(
    strait: StraitClient, strait_job: Job
) -> None:
    run_id = strait.held(strait_job("complete"))["id"]
    read = strait.read(run_id, chunks=True, release=True)
    assert read.ended, "the chunk stream stayed open after the run finished"
    chunks = [f for f in read.frames if f.get("type") == "stream_chunk"]
    assert chunks, "no stream_chunk frames"
    assert chunks[-1]["done"] is True, "the last chunk frame is not done"
    assert not any(f["done"] for f in chunks[:-1]), "a done frame before the end"
    assert any(f["chunk"] for f in chunks), "every chunk is empty"
    assert strait.run(run_id)["status"] == "completed"


@req("strait.stream.status-changes", "strait.dlq-replay.in-place")
def test_the_stream_of_a_replayed_dead_letter_follows_its_second_life(
    strait: StraitClient, strait_job: Job
) -> None:
    dead = strait.finish(strait_job("dead_letter"), "dead_letter")
    status_is(strait.dlq_replay(dead["id"]), 200)
    # Live again: the stream must not stop at the first dead_letter, which is history now.
    read = strait.read(dead["id"])
    assert read.ended, "the stream stayed open after the run finished"
    changes = read.changes
    path = " -> ".join(read.path)
    assert changes, "no status change of the run's second life"
    for before, after in itertools.pairwise(changes):
        assert after["from"] == before["to"], f"{after['from']} follows {before['to']} ({path})"
    # Whether the requeue itself is replayed depends on history replay (a decision); what is
    # promised is that the stream follows the second life to its end, not the first.
    assert changes[-1]["to"] == "dead_letter", path
    assert any(c["to"] == "executing" for c in changes), f"the second life did not execute: {path}"
    final = strait.run(dead["id"])
    assert final["status"] == "dead_letter" and final.get("finished_at") != dead.get(
        "finished_at"
    ), path
