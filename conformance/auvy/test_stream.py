"""GET /v1/jobs/{jobId}/stream and its public twin GET /v1/public/jobs/{jobId}/stream: wire
format, ids, `after`, replay, keepalives, termination. Checks that apply to both run on both
(the `subject` fixture), since the documents promise the public route the same `after`."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest

from conformance.checks import (
    ConformanceFailure,
    auvy_error_envelope,
    body_of,
    event_ids_strictly_increase,
)
from conformance.clients.auvy import STARTED, AuvyClient, StreamRead
from conformance.profile import TargetProfile

req = pytest.mark.req
TERMINAL = {"completed", "failed"}


def timeout(profile: TargetProfile) -> float:
    return float(profile.get("auvy.job_timeout_s", 30))


@dataclass
class Subject:
    """Which stream route a check reads: the private one or the public share-token one."""

    route: str
    auvy: AuvyClient
    profile: TargetProfile

    def start(self) -> str:
        if self.route == "private":
            return self.auvy.start(self.profile.need("auvy.pathways.complete.id"))
        return execute_public(self.auvy, self.profile)

    def read(self, job_id: str, after: str | None = None, **kw: Any) -> StreamRead:
        if self.route == "public":
            kw["public_token"] = self.profile.need("auvy.public.receptors.main.token")
        return self.auvy.read_stream(job_id, after, **kw)

    def full(self, job_id: str, after: str | None = None) -> StreamRead:
        read = self.read(job_id, after)
        assert read.status_code == 200, f"{self.route} stream answered {read.status_code}"
        return read

    def finished(self) -> str:
        job_id = self.start()
        self.auvy.wait_for(job_id, TERMINAL, timeout(self.profile))
        return job_id


@pytest.fixture(params=["private", pytest.param("public", marks=req("auvy.public.stream.after"))])
def subject(request: pytest.FixtureRequest, auvy: AuvyClient, profile: TargetProfile) -> Subject:
    return Subject(request.param, auvy, profile)


@pytest.fixture(params=["private", "public"])
def either(request: pytest.FixtureRequest, auvy: AuvyClient, profile: TargetProfile) -> Subject:
    """Both routes, unmarked: for SHOULD-level checks (the public route's MUST requirement, same
    `after`, must not turn a SHOULD failure into a MUST one) and for decisions (which may carry
    no other requirement)."""
    return Subject(request.param, auvy, profile)


def execute_public(auvy: AuvyClient, profile: TargetProfile, **body: Any) -> str:
    """A job of the main receptor, started through the public execute route."""
    receptor = profile.need("auvy.public.receptors.main")
    workspace = profile.need("auvy.public.workspace")
    response = auvy.public(
        "executePublicReceptor",
        "POST",
        f"/v1/public/receptors/{workspace}/{receptor['slug']}/execute",
        token=receptor["token"],
        json_body={"message": "Summarise last quarter", **body},
    )
    if response.status_code not in STARTED:
        raise ConformanceFailure(
            f"public execute answered {response.status_code}", response.text[:300]
        )
    return str(body_of(response)["job_id"])


def full_stream(auvy: AuvyClient, job_id: str, after: str | None = None) -> StreamRead:
    read = auvy.read_stream(job_id, after)
    assert read.status_code == 200, f"stream answered {read.status_code}"
    return read


@req("auvy.stream.wire-format")
def test_every_event_has_an_id_and_json_data_with_a_type(subject: Subject) -> None:
    read = subject.full(subject.start())
    assert read.events, "the stream delivered no events"
    for event in read.events:
        assert event.id is not None, f"event without id: line: {event.data}"
        assert event.event is None, f"unexpected event: line {event.event!r}"
        payload = event.json()
        assert isinstance(payload, dict) and isinstance(payload.get("type"), str), payload


@req("auvy.stream.ids")
def test_ids_are_redis_ids_and_strictly_increase(subject: Subject) -> None:
    read = subject.full(subject.start())
    event_ids_strictly_increase(read.ids)


@req("auvy.stream.terminal-event", "auvy.stream.agrees-with-status")
def test_completed_job_stream_ends_with_complete(subject: Subject) -> None:
    auvy, profile = subject.auvy, subject.profile
    job_id = subject.start()
    read = subject.full(job_id)
    types = [p["type"] for p in read.payloads]
    assert types and types[-1] == "complete", f"the stream does not end with complete: {types}"
    assert types.count("complete") == 1 and "error" not in types, types
    final = auvy.wait_for(job_id, TERMINAL, timeout(profile))
    assert final["status"] == "completed", "the stream said complete, the status did not"
    # The documents promise the result on the status; if the event repeats it, it must agree.
    if "result" in read.payloads[-1]:
        assert read.payloads[-1]["result"] == final["result"], "stream and status disagree"


@req("auvy.stream.complete-carries-result")
def test_complete_event_carries_the_result(either: Subject) -> None:
    subject = either
    job_id = subject.start()
    read = subject.full(job_id)
    final = subject.auvy.wait_for(job_id, TERMINAL, timeout(subject.profile))
    assert read.payloads[-1]["type"] == "complete", read.payloads[-3:]
    assert "result" in read.payloads[-1], read.payloads[-1]
    assert read.payloads[-1]["result"] == final["result"], "stream and status disagree"


@req("auvy.stream.terminal-event", "auvy.stream.agrees-with-status")
def test_failed_job_stream_ends_with_error(auvy: AuvyClient, profile: TargetProfile) -> None:
    job_id = auvy.start(profile.need("auvy.pathways.fail.id"))
    read = full_stream(auvy, job_id)
    types = [p["type"] for p in read.payloads]
    assert types[-1] == "error" and "complete" not in types, types
    assert auvy.wait_for(job_id, TERMINAL, timeout(profile))["status"] == "failed"


@req("auvy.stream.ends-after-terminal")
def test_server_closes_the_stream_after_the_terminal_event(either: Subject) -> None:
    subject = either
    profile = subject.profile
    job_id = subject.start()
    # Events and keepalives arrive at least every keepalive interval, so a longer silence after
    # the terminal event means the server is holding the response open.
    grace = float(profile.get("auvy.keepalive_within_s", 30)) + 2
    read = subject.read(job_id, read_timeout_s=grace)
    assert read.status_code == 200
    assert read.ended, f"the server kept the response open {grace}s after the terminal event"
    terminal_at = next(i for i, p in enumerate(read.payloads) if p["type"] == "complete")
    assert terminal_at == len(read.events) - 1, "events followed the terminal event"


@req("auvy.stream.replay-without-after")
def test_replay_without_after_gives_what_was_seen_live(subject: Subject) -> None:
    job_id = subject.start()
    # Read while the job runs: what a live consumer saw is what a replay must give again.
    live = subject.full(job_id)
    assert live.terminal is not None, "the live stream ended without a terminal event"
    subject.auvy.wait_for(job_id, TERMINAL, timeout(subject.profile))
    replay = subject.full(job_id)
    assert replay.ids == live.ids, "the replay's ids differ from what was seen live"
    assert [e.data for e in replay.events] == [e.data for e in live.events], (
        "the replay's entries differ from what was seen live"
    )


@req("auvy.stream.after-exclusive")
def test_after_is_exclusive(subject: Subject) -> None:
    job_id = subject.finished()
    whole = subject.full(job_id)
    assert len(whole.ids) >= 3, "the fixture's stream is too short for this check"
    for cut in (0, len(whole.ids) // 2, len(whole.ids) - 2):
        rest = subject.full(job_id, after=whole.ids[cut])
        assert rest.ids == whole.ids[cut + 1 :], f"after={whole.ids[cut]} is not exclusive"


@req("auvy.stream.after-exclusive")
def test_after_the_terminal_id_sends_nothing_and_ends(subject: Subject) -> None:
    job_id = subject.finished()
    whole = subject.full(job_id)
    rest = subject.full(job_id, after=whole.ids[-1])
    assert rest.events == [], [e.data for e in rest.events]


@req("auvy.stream.after-exclusive")
def test_after_an_id_between_entries(subject: Subject) -> None:
    """`after` need not be an id that exists: entries strictly greater are sent."""
    job_id = subject.finished()
    whole = subject.full(job_id)
    ms, seq = whole.ids[1].split("-")
    between = f"{ms}-{int(seq) + 1000}"
    expected = [i for i in whole.ids if _key(i) > _key(between)]
    assert subject.full(job_id, after=between).ids == expected
    assert subject.full(job_id, after="0-0").ids == whole.ids


def _key(ident: str) -> tuple[int, int]:
    ms, seq = ident.split("-")
    return int(ms), int(seq)


@req("auvy.stream.resume-after-disconnect")
@pytest.mark.parametrize("cut", [1, 3, 6])
def test_resume_after_disconnect_loses_and_repeats_nothing(subject: Subject, cut: int) -> None:
    job_id = subject.start()
    # Drop the connection after `cut` events, while the job is still producing them.
    head = subject.read(job_id, max_events=cut)
    assert len(head.events) == cut, f"stream ended after {len(head.events)} events"
    tail = subject.full(job_id, after=head.ids[-1])
    resumed = head.ids + tail.ids
    whole = subject.full(job_id)
    assert resumed == whole.ids, "resuming lost, repeated or reordered events"
    assert [e.data for e in head.events + tail.events] == [e.data for e in whole.events]
    event_ids_strictly_increase(resumed)


@req("auvy.stream.resume-after-disconnect")
def test_resume_repeatedly_one_event_at_a_time(subject: Subject) -> None:
    job_id = subject.start()
    got: list[Any] = []
    after = None
    for _ in range(200):
        part = subject.read(job_id, after, max_events=1)
        got.extend(part.events)
        if not part.events or part.events[-1].json()["type"] in ("complete", "error"):
            break
        after = part.events[-1].id
    else:
        raise ConformanceFailure("the stream did not reach a terminal event in 200 reconnects")
    whole = subject.full(job_id)
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
@pytest.mark.parametrize("route", ["private", "public"])
def test_stream_true_invoke_streams_tokens(
    auvy: AuvyClient, profile: TargetProfile, route: str
) -> None:
    """ "When stream: true on invoke, tokens arrive at GET /v1/jobs/:jobId/stream": the public
    execute is the invoke that takes `stream`; its job is read on either stream route."""
    job_id = execute_public(auvy, profile, stream=True)
    token = profile.need("auvy.public.receptors.main.token") if route == "public" else None
    read = auvy.read_stream(job_id, public_token=token)
    assert read.status_code == 200, f"the {route} stream answered {read.status_code}"
    types = [p["type"] for p in read.payloads]
    assert "token" in types, f"no token events: {types}"
    assert types.index("token") < len(types) - 1, "tokens arrived only as the last event"


@req("auvy.stream.token-content")
def test_token_events_carry_content(auvy: AuvyClient, profile: TargetProfile) -> None:
    read = full_stream(auvy, execute_public(auvy, profile, stream=True))
    tokens = [p for p in read.payloads if p["type"] == "token"]
    assert tokens and all(isinstance(p.get("content"), str) for p in tokens), tokens


@req("auvy.stream.invalid-after")
@pytest.mark.parametrize(
    "after",
    ["abc", "12345", "-1-0", "1-", "-0", "1.5-0", "1-0-0", "99999999999999999999999-0", "1-0 "],
)
def test_invalid_after_is_400(either: Subject, after: str) -> None:
    subject = either
    job_id = subject.start()
    read = subject.read(job_id, after)
    assert read.status_code == 400, f"after={after!r} answered {read.status_code}"
    auvy_error_envelope(read.response, 400, "VALIDATION_ERROR")


@req("auvy.stream.workspace-check", "auvy.errors.other-workspace-404")
def test_stream_of_another_workspaces_job_is_404(auvy_as: Any, profile: TargetProfile) -> None:
    main, other = auvy_as("main"), auvy_as("other")
    job_id = main.start(profile.need("auvy.pathways.complete.id"))
    read = other.read_stream(job_id)
    assert not read.events, "another workspace's job streamed its events"
    auvy_error_envelope(read.response, 404, {"NOT_FOUND", "RESOURCE_NOT_FOUND"})
