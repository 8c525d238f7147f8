"""GET /v1/runs/{runID}/stream and /stream/chunks, read from the target over HTTP: status changes
that agree with GET, keepalives, 410 for a finished run, and LLM chunks ending with done."""

from __future__ import annotations

import itertools
from collections.abc import Callable

import pytest

from conformance.checks import status_is, strait_error_envelope
from conformance.clients.sse import SseEvent
from conformance.clients.strait import TERMINAL, StraitClient, parse_ts
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
    assert read.frames[-1] is changes[-1], "frames followed the terminal status change"
    assert {f["run_id"] for f in read.frames} == {run_id}
    final = strait.run(run_id)
    assert changes[-1]["to"] == final["status"], (changes[-1]["to"], final["status"])
    assert final["status"] in TERMINAL


@req("strait.stream.status-changes")
def test_a_stream_opened_late_replays_the_earlier_changes(
    strait: StraitClient, strait_job: Job
) -> None:
    run = strait.executing(strait_job("long"))
    try:
        with strait.stream(run["id"]) as stream:
            assert stream.status_code == 200
            strait.cancel(run["id"])
            frames = [i.json() for i in stream if isinstance(i, SseEvent)]
        changes = [f for f in frames if f["type"] == "status_change"]
        path = [changes[0]["from"], *(c["to"] for c in changes)] if changes else []
        assert "executing" in path, f"the changes before connecting were not replayed: {path}"
        assert path[-1] == "canceled" == strait.run(run["id"])["status"], path
    finally:
        strait.cancel(run["id"])


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
    assert read.comments, f"no comment line within {within}s on an idle stream"
    assert read.comments[0] == "keepalive", f"the keepalive comment is {read.comments[0]!r}"


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
    for chunks in (False, True):
        with strait.stream(run_id, chunks=chunks) as stream:
            assert stream.status_code == 410, f"stream of a {status} run: {stream.status_code}"
            strait_error_envelope(stream.response, 410, "gone")


@req("strait.stream.chunks")
def test_chunk_stream_sends_chunks_and_ends_with_done(
    strait: StraitClient, strait_job: Job
) -> None:
    run_id = strait.held(strait_job("complete"))["id"]
    read = strait.read(run_id, chunks=True, release=True)
    assert read.ended, "the chunk stream stayed open after the run finished"
    assert read.frames, "no chunk frames"
    assert {f["type"] for f in read.frames} == {"stream_chunk"}
    assert read.frames[-1]["done"] is True, "the last chunk frame is not done"
    assert not any(f["done"] for f in read.frames[:-1]), "a done frame before the end"
    assert any(f["chunk"] for f in read.frames), "every chunk is empty"
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
    requeue = next(
        (n for n, c in enumerate(changes) if (c["from"], c["to"]) == ("dead_letter", "queued")),
        None,
    )
    path = " -> ".join([changes[0]["from"], *(c["to"] for c in changes)] if changes else [])
    assert requeue is not None, f"the stream ended before the replay: {path}"
    assert changes[-1]["to"] == "dead_letter" and len(changes) > requeue + 1, path
    assert changes[-1]["to"] == strait.run(dead["id"])["status"]
