"""SSE resumption: disconnect at random points while the job is still producing events, read on
with `after=<last id>`, and the pieces must join into exactly the stream a reader that never
disconnected sees: no gap, no duplicate, the same terminal event. Also on the public share
stream. Always over real HTTP, since the property is about connections."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
import hypothesis
import pytest
from hypothesis import strategies as st

from ..checks import ConformanceFailure, body_of, event_ids_strictly_increase
from ..clients.auvy import AuvyClient, StreamRead
from ..profile import TargetProfile
from .depth import Depth, settings_for
from .headroom import with_headroom
from .repro import replay_command

# Events read before each disconnect; the last piece reads on to the end.
PIECES = st.lists(st.integers(min_value=1, max_value=4), min_size=1, max_size=5)


def _pieces_join(
    read: Callable[[str | None, int | None], StreamRead],
    pieces: list[int],
    finish: Callable[[], None],
) -> None:
    got: list[str] = []
    last: str | None = None
    # A job that ends on its own may deliver its terminal event inside a piece; the read after
    # it then rightly has nothing left, so the joined stream's terminal is whichever piece had it.
    terminal: Any | None = None
    for count in pieces:
        part = read(last, count)
        got.extend(part.ids)
        terminal = terminal or part.terminal
        if part.ids:
            last = part.ids[-1]
        if part.ended:
            break
    finish()  # make the job end so the last piece and the full read terminate
    rest = read(last, None)
    got.extend(rest.ids)
    terminal = terminal or rest.terminal
    full = read(None, None)
    try:
        event_ids_strictly_increase(got)
    except ConformanceFailure as exc:
        raise ConformanceFailure(f"pieces {pieces}: {exc.title}", exc.detail) from None
    if got != full.ids:
        missing = [i for i in full.ids if i not in got]
        extra = [i for i in got if i not in full.ids]
        raise ConformanceFailure(
            "resumed pieces do not join into the full stream",
            f"pieces {pieces}: missing {missing[:5]}, duplicated or unknown {extra[:5]}, "
            f"{len(got)} ids read vs {len(full.ids)} in the full stream",
        )
    if full.terminal is None or terminal != full.terminal:
        raise ConformanceFailure("the resumed stream ends differently", f"{terminal!r}")


def _accepted(response: httpx.Response, what: str) -> None:
    if not 200 <= response.status_code < 300:
        raise ConformanceFailure(f"{what} answered {response.status_code}", response.text[:300])


def _run(test: Callable[[list[int]], None], depth: Depth, seed: int, replay: str) -> None:
    @hypothesis.seed(seed)
    # At most 5 pieces of at most 4 events: a failing pattern is already short, and shrinking it
    # would start a job and read its stream several times per attempt.
    @settings_for(depth.sse_examples, shrink=False)
    @hypothesis.given(pieces=PIECES)
    def run(pieces: list[int]) -> None:
        test(pieces)

    try:
        with_headroom(run)
    except ConformanceFailure as exc:
        raise ConformanceFailure(f"{exc}\nreplay: {replay}") from None


@pytest.mark.req("auvy.properties.stream-resume")
def test_private_stream_resumes_with_exactly_the_missing_suffix(
    auvy: AuvyClient,
    profile: TargetProfile,
    depth: Depth,
    prop_seed: int,
    run_seed: int,
    request: pytest.FixtureRequest,
) -> None:
    # The long pathway keeps emitting progress until cancelled: disconnects land mid-production.
    pathway = str(profile.need("auvy.pathways.long.id"))

    def one(pieces: list[int]) -> None:
        job_id = auvy.start(pathway)

        def read(after: str | None, count: int | None) -> StreamRead:
            return auvy.read_stream(job_id, after, max_events=count)

        def finish() -> None:
            # Any 2xx accepts a cancel; only a finished job's is documented (400).
            _accepted(auvy.cancel(job_id), "cancel of a running job")

        _pieces_join(read, pieces, finish)

    _run(one, depth, prop_seed, replay_command(run_seed, request.node.nodeid, depth.name))


@pytest.mark.req("auvy.properties.public-stream-resume")
def test_public_stream_resumes_with_exactly_the_missing_suffix(
    auvy: AuvyClient,
    profile: TargetProfile,
    depth: Depth,
    prop_seed: int,
    run_seed: int,
    request: pytest.FixtureRequest,
) -> None:
    workspace = str(profile.need("auvy.public.workspace"))
    receptor = profile.need("auvy.public.receptors.main")
    token = str(receptor["token"])
    timeout_s = float(profile.get("auvy.job_timeout_s", 30))

    def one(pieces: list[int]) -> None:
        response = auvy.public(
            "executePublicReceptor",
            "POST",
            f"/v1/public/receptors/{workspace}/{receptor['slug']}/execute",
            token=token,
            json_body={"message": "hello"},
        )
        # "receptor fires return a job_id"; the status of that answer is not documented.
        _accepted(response, "a public execute")
        job_id = str(body_of(response)["job_id"])

        def read(after: str | None, count: int | None) -> StreamRead:
            return auvy.read_stream(job_id, after, max_events=count, public_token=token)

        def finish() -> None:
            # The receptor's pathway ends by itself; wait so the final reads terminate.
            auvy.wait_for(job_id, {"completed", "failed"}, timeout_s)

        _pieces_join(read, pieces, finish)

    _run(one, depth, prop_seed, replay_command(run_seed, request.node.nodeid, depth.name))
