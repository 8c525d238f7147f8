"""GET /v1/jobs/{jobId}/stream: wire format, ids, `after`, replay, keepalives, termination."""

from __future__ import annotations

from typing import Any

import pytest

from conformance.checks import ConformanceFailure, auvy_error_envelope, event_ids_strictly_increase
from conformance.clients.auvy import AuvyClient, StreamRead
from conformance.profile import TargetProfile

req = pytest.mark.req
TERMINAL = {"completed", "failed"}


def timeout(profile: TargetProfile) -> float:
    return float(profile.get("auvy.job_timeout_s", 30))


def full_stream(auvy: AuvyClient, job_id: str, after: str | None = None) -> StreamRead:
    read = auvy.read_stream(job_id, after)
    assert read.status_code == 200, f"stream answered {read.status_code}"
    return read


def finished_job(auvy: AuvyClient, profile: TargetProfile, kind: str = "complete") -> str:
    job_id = auvy.start(profile.need(f"auvy.pathways.{kind}.id"))
    auvy.wait_for(job_id, TERMINAL, timeout(profile))
    return job_id


@req("auvy.stream.wire-format")
def test_every_event_has_an_id_and_json_data_with_a_type(
    auvy: AuvyClient, profile: TargetProfile
) -> None:
    job_id = auvy.start(profile.need("auvy.pathways.complete.id"))
    read = full_stream(auvy, job_id)
    assert read.events, "the stream delivered no events"
    for event in read.events:
        assert event.id is not None, f"event without id: line: {event.data}"
        assert event.event is None, f"unexpected event: line {event.event!r}"
        payload = event.json()
        assert isinstance(payload, dict) and isinstance(payload.get("type"), str), payload


@req("auvy.stream.ids")
def test_ids_are_redis_ids_and_strictly_increase(auvy: AuvyClient, profile: TargetProfile) -> None:
    read = full_stream(auvy, auvy.start(profile.need("auvy.pathways.complete.id")))
    event_ids_strictly_increase(read.ids)


@req("auvy.stream.terminal-event", "auvy.stream.agrees-with-status")
def test_completed_job_stream_ends_with_complete_carrying_the_result(
    auvy: AuvyClient, profile: TargetProfile
) -> None:
    job_id = auvy.start(profile.need("auvy.pathways.complete.id"))
    read = full_stream(auvy, job_id)
    types = [p["type"] for p in read.payloads]
    assert types[-1] == "complete", f"last event is {types[-1]!r}, events: {types}"
    assert types.count("complete") == 1 and "error" not in types, types
    final = auvy.wait_for(job_id, TERMINAL, timeout(profile))
    assert final["status"] == "completed"
    assert read.payloads[-1].get("result") == final["result"], "stream and status disagree"


@req("auvy.stream.terminal-event", "auvy.stream.agrees-with-status")
def test_failed_job_stream_ends_with_error(auvy: AuvyClient, profile: TargetProfile) -> None:
    job_id = auvy.start(profile.need("auvy.pathways.fail.id"))
    read = full_stream(auvy, job_id)
    types = [p["type"] for p in read.payloads]
    assert types[-1] == "error" and "complete" not in types, types
    assert auvy.wait_for(job_id, TERMINAL, timeout(profile))["status"] == "failed"


@req("auvy.stream.ends-after-terminal")
def test_server_closes_the_stream_after_the_terminal_event(
    auvy: AuvyClient, profile: TargetProfile
) -> None:
    job_id = auvy.start(profile.need("auvy.pathways.complete.id"))
    # Events and keepalives arrive at least every keepalive interval, so a longer silence after
    # the terminal event means the server is holding the response open.
    grace = float(profile.get("auvy.keepalive_within_s", 30)) + 2
    read = auvy.read_stream(job_id, read_timeout_s=grace)
    assert read.status_code == 200
    assert read.ended, f"the server kept the response open {grace}s after the terminal event"
    terminal_at = next(i for i, p in enumerate(read.payloads) if p["type"] == "complete")
    assert terminal_at == len(read.events) - 1, "events followed the terminal event"


@req("auvy.stream.replay-without-after")
def test_replay_without_after_gives_the_whole_stream_again(
    auvy: AuvyClient, profile: TargetProfile
) -> None:
    job_id = finished_job(auvy, profile)
    first = full_stream(auvy, job_id)
    second = full_stream(auvy, job_id)
    assert first.ids and first.ids == second.ids, "two full replays differ"
    assert first.payloads == second.payloads


@req("auvy.stream.after-exclusive")
def test_after_is_exclusive(auvy: AuvyClient, profile: TargetProfile) -> None:
    job_id = finished_job(auvy, profile)
    whole = full_stream(auvy, job_id)
    assert len(whole.ids) >= 3, "the fixture's stream is too short for this check"
    for cut in (0, len(whole.ids) // 2, len(whole.ids) - 2):
        rest = full_stream(auvy, job_id, after=whole.ids[cut])
        assert rest.ids == whole.ids[cut + 1 :], f"after={whole.ids[cut]} is not exclusive"


@req("auvy.stream.after-exclusive")
def test_after_the_terminal_id_sends_nothing_and_ends(
    auvy: AuvyClient, profile: TargetProfile
) -> None:
    job_id = finished_job(auvy, profile)
    whole = full_stream(auvy, job_id)
    rest = full_stream(auvy, job_id, after=whole.ids[-1])
    assert rest.events == [], [e.data for e in rest.events]


@req("auvy.stream.after-exclusive")
def test_after_an_id_between_entries(auvy: AuvyClient, profile: TargetProfile) -> None:
    """`after` need not be an id that exists: entries strictly greater are sent."""
    job_id = finished_job(auvy, profile)
    whole = full_stream(auvy, job_id)
    ms, seq = whole.ids[1].split("-")
    between = f"{ms}-{int(seq) + 1000}"
    expected = [i for i in whole.ids if _key(i) > _key(between)]
    assert full_stream(auvy, job_id, after=between).ids == expected
    assert full_stream(auvy, job_id, after="0-0").ids == whole.ids


def _key(ident: str) -> tuple[int, int]:
    ms, seq = ident.split("-")
    return int(ms), int(seq)


@req("auvy.stream.resume-after-disconnect")
@pytest.mark.parametrize("cut", [1, 3, 6])
def test_resume_after_disconnect_loses_and_repeats_nothing(
    auvy: AuvyClient, profile: TargetProfile, cut: int
) -> None:
    job_id = auvy.start(profile.need("auvy.pathways.complete.id"))
    # Drop the connection after `cut` events, while the job is still producing them.
    head = auvy.read_stream(job_id, max_events=cut)
    assert len(head.events) == cut, f"stream ended after {len(head.events)} events"
    tail = full_stream(auvy, job_id, after=head.ids[-1])
    resumed = head.ids + tail.ids
    whole = full_stream(auvy, job_id)
    assert resumed == whole.ids, "resuming lost, repeated or reordered events"
    assert [e.data for e in head.events + tail.events] == [e.data for e in whole.events]
    event_ids_strictly_increase(resumed)


@req("auvy.stream.resume-after-disconnect")
def test_resume_repeatedly_one_event_at_a_time(auvy: AuvyClient, profile: TargetProfile) -> None:
    job_id = auvy.start(profile.need("auvy.pathways.complete.id"))
    got: list[Any] = []
    after = None
    for _ in range(200):
        part = auvy.read_stream(job_id, after, max_events=1)
        got.extend(part.events)
        if not part.events or part.events[-1].json()["type"] in ("complete", "error"):
            break
        after = part.events[-1].id
    else:
        raise ConformanceFailure("the stream did not reach a terminal event in 200 reconnects")
    whole = full_stream(auvy, job_id)
    assert [e.id for e in got] == whole.ids


@req("auvy.stream.keepalive")
def test_idle_stream_sends_ping_comments(auvy: AuvyClient, profile: TargetProfile) -> None:
    within = float(profile.need("auvy.keepalive_within_s"))
    job_id = auvy.start(profile.need("auvy.pathways.approval.id"))
    auvy.wait_for(job_id, {"waiting"}, timeout(profile))
    try:
        read = auvy.read_stream(job_id, until_comment=True, read_timeout_s=within + 1)
    finally:
        auvy.cancel(job_id)
    assert read.comments, f"no comment line within {within}s on an idle stream"
    # A keepalive is a comment, never an event a client would have to skip.
    assert all(p["type"] != "ping" for p in read.payloads)


@req("auvy.stream.tokens")
def test_running_job_streams_tokens(auvy: AuvyClient, profile: TargetProfile) -> None:
    read = full_stream(auvy, auvy.start(profile.need("auvy.pathways.complete.id")))
    tokens = [p for p in read.payloads if p["type"] == "token"]
    assert tokens, "no token events before completion"


@req("auvy.stream.invalid-after", "auvy.errors.validation")
@pytest.mark.parametrize(
    "after",
    ["abc", "12345", "-1-0", "1-", "-0", "1.5-0", "1-0-0", "99999999999999999999999-0", "1-0 "],
)
def test_invalid_after_is_400(auvy: AuvyClient, profile: TargetProfile, after: str) -> None:
    job_id = auvy.start(profile.need("auvy.pathways.complete.id"))
    read = auvy.read_stream(job_id, after)
    assert read.status_code == 400, f"after={after!r} answered {read.status_code}"
    response = auvy.api.http.get(
        auvy.api.base_url + f"/v1/jobs/{job_id}/stream",
        params={"after": after},
        headers=auvy.api.headers,
    )
    auvy_error_envelope(response, 400, "VALIDATION_ERROR")


@req("auvy.stream.workspace-check", "auvy.errors.other-workspace-404")
def test_stream_of_another_workspaces_job_is_404(auvy_as: Any, profile: TargetProfile) -> None:
    main, other = auvy_as("main"), auvy_as("other")
    job_id = main.start(profile.need("auvy.pathways.complete.id"))
    read = other.read_stream(job_id)
    assert read.status_code == 404 and not read.events
    response = other.api.http.get(
        other.api.base_url + f"/v1/jobs/{job_id}/stream", headers=other.api.headers
    )
    auvy_error_envelope(response, 404, {"NOT_FOUND", "RESOURCE_NOT_FOUND"})
