"""The rules the monitor checks on the traffic it forwards, each under an id of the catalog.

Per exchange: the response is one the API's document allows for the operation (status, content
type, body and each event's data, without the reference server's own `x-reference-only`
constraints), and AUVY errors carry the {code, message} envelope. Across exchanges (per job, see
`state`): stream ids strictly increase, `after` is exclusive, two reads of one stream agree
(nothing an earlier read saw is missing from a later one's range, and the reverse), exactly one
terminal event ends a stream and the same one every time, statuses move only along the
documents' tables between two observations, cancel of a job observed final is refused, and a
job is never served to a caller of another workspace, tenant or project.

Statuses: AUVY's and AVA's tables say only which statuses are final (the suite's
`conformance.clients.auvy.TERMINAL` and `conformance.clients.ava.TERMINAL`); Strait's is
FACTS.md's table as the suite holds it (`conformance.clients.strait.TRANSITIONS`, plus the
`paused` edges of the live system). Two polls may miss statuses in between, so a change between
two observations is judged by reachability along the table; a `status_change` frame, by its edge.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final

from conformance.checks import ConformanceFailure
from conformance.clients.auvy import TERMINAL as AUVY_TERMINAL
from conformance.clients.auvy import TERMINAL_EVENTS as AUVY_TERMINAL_EVENTS
from conformance.clients.ava import TERMINAL as AVA_TERMINAL
from conformance.clients.strait import PAUSED_TRANSITIONS, TRANSITIONS
from conformance.clients.strait import TERMINAL as STRAIT_TERMINAL
from conformance.spec_check import ResponseSpec

from .exchange import Event, Exchange
from .ledger import Ledger, Violation
from .routes import Route
from .state import IDS_CAP, Jobs, JobState, pack, unpack
from .tenants import Tenants

# Every requirement the monitor can observe, per API: the reports' scope. Documents and FACTS.md
# only: the reference server's own choices (authority `decision`) must never fail a foreign
# upstream, and the monitor judges whatever it is put in front of.
MONITORED: Final[Mapping[str, tuple[str, ...]]] = {
    "auvy": (
        "auvy.properties.schema",
        "auvy.errors.typed-codes",
        "auvy.stream.wire-format",
        "auvy.stream.ids",
        "auvy.stream.after-exclusive",
        "auvy.stream.resume-after-disconnect",
        "auvy.stream.replay-without-after",
        "auvy.stream.terminal-event",
        "auvy.stream.ends-after-terminal",
        "auvy.jobs.status.completed-final",
        "auvy.jobs.status.failed-final",
        "auvy.jobs.cancel.terminal-400",
        "auvy.errors.other-workspace-404",
        "auvy.jobs.list.workspace-scoped",
    ),
    "ava": (
        "ava.properties.schema",
        "ava.jobs.get.terminal",
        "ava.jobs.cancel.terminal-409",
        "ava.access.tenant-isolation",
    ),
    "strait": (
        "strait.properties.schema",
        "strait.lifecycle.statuses",
        "strait.stream.status-changes",
        "strait.cancel.terminal-400",
        "strait.access.other-project-404",
        "strait.access.project-scoped-lists",
    ),
}

_AUVY_STARTS = frozenset(
    {
        "createJob",
        "executePathway",
        "transcribe",
        "chatTrace",
        "executePublicReceptor",
        "transcribePublicReceptor",
        "executePublicReceptorById",
    }
)
_AUVY_JOB_ROUTES = frozenset(
    {"getJobStatus", "streamJob", "cancelJob", "resumeJob", "submitJobInput"}
)
_AUVY_STREAMS = frozenset({"streamJob", "streamPublicJob"})
_AVA_JOB_ROUTES = frozenset({"getJob", "getJobLogs", "cancelJob"})
_STRAIT_RUN_RECORDS = frozenset(
    {
        "getRun",
        "cancelRun",
        "replayDeadLetterRun",
        "pauseRun",
        "resumeRun",
        "restartRun",
        "rescheduleRun",
    }
)
# How long the upstream may keep a stream open after its terminal event (the SHOULD of
# auvy.stream.ends-after-terminal): a response still open this long after it is held open.
ENDS_WITHIN_S = 3.0
_FINAL_REQUIREMENT = {
    "completed": "auvy.jobs.status.completed-final",
    "failed": "auvy.jobs.status.failed-final",
}
_STRAIT_EDGES: Final[dict[str, frozenset[str]]] = {
    status: TRANSITIONS.get(status, frozenset()) | PAUSED_TRANSITIONS.get(status, frozenset())
    for status in {*TRANSITIONS, *PAUSED_TRANSITIONS, *STRAIT_TERMINAL}
}


def strait_reachable(before: str, after: str) -> bool:
    """Whether `after` can follow `before` through zero or more of the table's edges."""
    seen, frontier = {before}, [before]
    while frontier:
        for nxt in _STRAIT_EDGES.get(frontier.pop(), frozenset()):
            if nxt not in seen:
                seen.add(nxt)
                frontier.append(nxt)
    return after in seen


_NOT_JSON: Final = object()


@dataclass(slots=True)
class StreamProgress:
    """What one event-stream answer showed so far: a summary, not its events."""

    after: int | None = None  # AUVY: the packed `after` of the request
    after_checked: bool = False
    count: int = 0
    ids: list[int] = field(default_factory=list)  # packed, at most IDS_CAP
    ids_overflow: bool = False
    last_id: int | None = None
    terminal: tuple[int | None, str, float] | None = None  # (packed id, type, arrival)
    broken: set[str] = field(default_factory=set)
    previous: str | None = None  # Strait: the last status_change's `to`
    changes: int = 0


@dataclass(frozen=True, slots=True)
class Snapshot:
    """What was known of the job a request names when the request arrived."""

    tenant: str | None
    owner: str | None = None
    status: str | None = None
    final: str | None = None
    seen_by: str = ""


class Checker:
    def __init__(self, tenants: Tenants, jobs: Jobs, ledger: Ledger) -> None:
        self.tenants = tenants
        self.jobs = jobs
        self.ledger = ledger
        # Called with (api, job id, exchange, violation) when a status rule breaks: the proxy's
        # --probe re-reads the status then. None: the monitor stays passive.
        self.suspect: Callable[[str, str, Exchange, Violation], None] | None = None
        # Where a job's last status was observed, for the message of a later violation.
        self._seen_by: dict[tuple[str, str], str] = {}

    # -- entry points ---------------------------------------------------------------------------

    def begin(self, route: Route, exchange: Exchange) -> Snapshot:
        tenant = self.tenants.of(route.api, exchange.request_headers)
        job_id = _job_param(route)
        if job_id is None:
            return Snapshot(tenant)
        state = self.jobs.peek(route.api, job_id)
        if state is None:
            return Snapshot(tenant)
        return Snapshot(
            tenant,
            state.owner,
            state.status,
            state.final,
            self._seen_by.get((route.api, job_id), ""),
        )

    def finish(self, route: Route, exchange: Exchange, snapshot: Snapshot) -> None:
        if exchange.status is None or exchange.method == "HEAD":
            return
        self.schema(route, exchange)
        if route.api == "auvy":
            self.auvy(route, exchange, snapshot)
        elif route.api == "ava":
            self.ava(route, exchange, snapshot)
        elif route.api == "strait":
            self.strait(route, exchange, snapshot)

    # -- every operation ------------------------------------------------------------------------

    def schema(self, route: Route, exchange: Exchange) -> None:
        requirement = f"{route.api}.properties.schema"
        status = exchange.status
        assert status is not None
        # Documents only (no x-reference-only constraint): one of those broken here
        # would otherwise be reported as a failure of this document requirement.
        spec = ResponseSpec.for_api(route.api, decisions=False)
        is_stream = exchange.media_type == "text/event-stream"
        if exchange.body_truncated and not is_stream:
            return
        body: Any = None
        has_body = bool(exchange.response_body) and not is_stream
        if has_body and exchange.media_type.endswith("json"):
            try:
                body = exchange.json_body()
            except (ValueError, UnicodeDecodeError):
                self.ledger.broke(
                    requirement,
                    f"{route.operation_id} {status}: the JSON body does not parse",
                    exchange,
                )
                return
        elif has_body:
            body = exchange.response_body.decode("utf-8", "replace")
        try:
            spec.check(
                route.operation_id, status, exchange.response_headers, body, has_body=has_body
            )
        except ConformanceFailure as failure:
            self.ledger.broke(requirement, f"{exchange.brief()}: {failure}", exchange)
            return
        progress = exchange.progress
        if isinstance(progress, StreamProgress) and requirement in progress.broken:
            return  # an event broke it, and said so when it arrived
        self.ledger.held(requirement)

    # -- AUVY -----------------------------------------------------------------------------------

    def auvy(self, route: Route, exchange: Exchange, snapshot: Snapshot) -> None:
        status = exchange.status
        assert status is not None
        op = route.operation_id
        if status >= 400:
            self._auvy_envelope(exchange)
        job_id = _job_param(route)
        body = _json_or_none(exchange)
        if op in _AUVY_STARTS and 200 <= status < 300 and isinstance(body, dict):
            new_id = body.get("job_id")
            if isinstance(new_id, str):
                state = self.jobs.get("auvy", new_id)
                if not op.endswith(("PublicReceptor", "PublicReceptorById")):
                    state.owner = state.owner or snapshot.tenant
                self._observe_status("auvy", state, body.get("status"), exchange, snapshot=None)
        if op == "listJobs" and status == 200 and isinstance(body, dict):
            self._list_scope(
                "auvy.jobs.list.workspace-scoped",
                "auvy",
                body.get("jobs"),
                "job_id",
                exchange,
                snapshot.tenant,
            )
        if job_id is None or op not in _AUVY_JOB_ROUTES | _AUVY_STREAMS:
            return
        if op in _AUVY_JOB_ROUTES and self._isolation(
            "auvy.errors.other-workspace-404", "auvy", job_id, exchange, snapshot
        ):
            return
        state = self.jobs.get("auvy", job_id)
        if 200 <= status < 300 and snapshot.tenant and state.owner is None:
            state.owner = snapshot.tenant
        if op == "getJobStatus" and status == 200 and isinstance(body, dict):
            self._observe_status("auvy", state, body.get("status"), exchange, snapshot)
        elif op == "cancelJob":
            self._cancel_terminal(
                "auvy.jobs.cancel.terminal-400", {400}, exchange, snapshot, AUVY_TERMINAL
            )
        elif op in _AUVY_STREAMS and status == 200 and exchange.events is not None:
            self._auvy_stream(state, exchange, snapshot)

    def _auvy_envelope(self, exchange: Exchange) -> None:
        requirement = "auvy.errors.typed-codes"
        if exchange.media_type == "text/event-stream" or not exchange.response_body:
            self.ledger.broke(
                requirement, f"{exchange.brief()}: an error without a JSON body", exchange
            )
            return
        body = _json_or_none(exchange)
        if (
            not isinstance(body, dict)
            or not isinstance(body.get("code"), str)
            or not isinstance(body.get("message"), str)
        ):
            self.ledger.broke(
                requirement,
                f"{exchange.brief()}: the error body is not the envelope {{code, message}}",
                exchange,
            )
            return
        self.ledger.held(requirement)

    def _auvy_stream(self, state: JobState, exchange: Exchange, snapshot: Snapshot) -> None:
        """The end of an AUVY stream read: what its events showed (judged as they came, see
        `stream_event`) held, and the rules across reads of the job."""
        progress = exchange.progress
        if not isinstance(progress, StreamProgress) or not progress.count:
            return
        for requirement, exercised in (
            ("auvy.stream.wire-format", True),
            ("auvy.stream.ids", bool(progress.ids) or progress.ids_overflow),
            ("auvy.stream.after-exclusive", progress.after_checked),
        ):
            if exercised and requirement not in progress.broken:
                self.ledger.held(requirement)
        terminal = progress.terminal
        if terminal is not None and "auvy.stream.terminal-event" not in progress.broken:
            end_id, kind, at = terminal
            self._ends_after_terminal(exchange, at)
            if end_id is not None and state.terminal_event not in (None, (end_id, kind)):
                first_id, first_kind = state.terminal_event or (0, "")
                self.ledger.broke(
                    "auvy.stream.terminal-event",
                    f"{exchange.brief()}: ends with {kind} {unpack(end_id)}, an earlier read "
                    f"ended with {first_kind} {unpack(first_id)}",
                    exchange,
                )
            else:
                self.ledger.held("auvy.stream.terminal-event")
                if end_id is not None:
                    state.terminal_event = (end_id, kind)
                final = "completed" if kind == "complete" else "failed"
                self._observe_status("auvy", state, final, exchange, snapshot)
        if (
            progress.ids
            and not progress.ids_overflow
            and "auvy.stream.ids" not in progress.broken
            and not state.overflow
        ):
            # A truncated read lost the trimmed entries on purpose: only its own range counts.
            after = None if _truncated(exchange) else progress.after
            self._stream_agreement(state, exchange, progress.ids, after)

    # -- event streams, event by event ---------------------------------------------------------

    def stream_started(self, route: Route, exchange: Exchange) -> StreamProgress | None:
        """Called when an event-stream answer starts: the stream checks run on each event as it
        is forwarded (`stream_event`), so a violation shows at once and nothing but a compact
        summary is kept, however long the stream."""
        if exchange.status != 200 or exchange.media_type != "text/event-stream":
            return None
        if route.operation_id not in (*_AUVY_STREAMS, "streamRun"):
            return None
        after_text = exchange.params.get("after") if route.api == "auvy" else None
        progress = StreamProgress(after=pack(after_text) if after_text else None)
        exchange.progress = progress
        return progress

    def stream_event(self, route: Route, exchange: Exchange, event: Event) -> None:
        progress = exchange.progress
        if not isinstance(progress, StreamProgress):
            return
        progress.count += 1
        try:
            data: Any = json.loads(event.data)
        except ValueError:
            data = _NOT_JSON
        schema = f"{route.api}.properties.schema"
        if data is not _NOT_JSON and schema not in progress.broken:
            try:
                ResponseSpec.for_api(route.api, decisions=False).check_event(
                    route.operation_id, data
                )
            except KeyError:
                pass  # the operation declares no event schema
            except ConformanceFailure as failure:
                self._stream_broke(progress, schema, f"{exchange.brief()}: {failure}", exchange)
        if route.api == "auvy":
            self._auvy_event(progress, exchange, event, data)
        else:
            self._strait_event(progress, exchange, data)

    def _stream_broke(
        self, progress: StreamProgress, requirement: str, message: str, exchange: Exchange
    ) -> None:
        """One violation per requirement and stream: the first one."""
        if requirement not in progress.broken:
            progress.broken.add(requirement)
            self.ledger.broke(requirement, message, exchange)

    def _auvy_event(
        self, progress: StreamProgress, exchange: Exchange, event: Event, data: Any
    ) -> None:
        brief = exchange.brief()
        kind = data.get("type") if isinstance(data, dict) else None
        if progress.count == 1 and kind == "truncated" and _truncated(exchange):
            # The documented gap marker of a read whose `after` was trimmed away: it opens the
            # stream without an id: line (openapi/auvy.yaml, X-Stream-Truncated).
            return
        if event.id is None or event.event is not None or not isinstance(kind, str):
            why = (
                "has no id: line"
                if event.id is None
                else "has an event: line"
                if event.event is not None
                else "has no JSON data with a type"
            )
            self._stream_broke(
                progress,
                "auvy.stream.wire-format",
                f"{brief}: event {progress.count} {why}: {event.data[:200]!r}",
                exchange,
            )
        packed: int | None = None
        if event.id is not None:
            packed = pack(event.id)
            if packed is None:
                self._stream_broke(
                    progress,
                    "auvy.stream.ids",
                    f"{brief}: event id {event.id!r} is not <ms>-<seq>",
                    exchange,
                )
            else:
                if progress.last_id is not None and packed <= progress.last_id:
                    self._stream_broke(
                        progress,
                        "auvy.stream.ids",
                        f"{brief}: event ids do not strictly increase: "
                        f"{unpack(progress.last_id)} then {event.id}",
                        exchange,
                    )
                if progress.after is not None and not progress.after_checked:
                    progress.after_checked = True
                    if packed <= progress.after:
                        self._stream_broke(
                            progress,
                            "auvy.stream.after-exclusive",
                            f"{brief}: after={unpack(progress.after)} but the stream sent "
                            f"{event.id}",
                            exchange,
                        )
                progress.last_id = packed
                if len(progress.ids) < IDS_CAP:
                    progress.ids.append(packed)
                else:
                    progress.ids_overflow = True
        if progress.terminal is not None:
            self._stream_broke(
                progress,
                "auvy.stream.terminal-event",
                f"{brief}: event {progress.count} ({kind}) follows the terminal "
                f"{progress.terminal[1]} event",
                exchange,
            )
        elif kind in AUVY_TERMINAL_EVENTS:
            progress.terminal = (packed, kind, event.at)

    def _strait_event(self, progress: StreamProgress, exchange: Exchange, data: Any) -> None:
        if not isinstance(data, dict) or data.get("type") != "status_change":
            return
        before, after = data.get("from"), data.get("to")
        if not isinstance(before, str) or not isinstance(after, str):
            return
        problem = ""
        if progress.previous is not None and before != progress.previous:
            problem = f"status_change from {before} follows a change to {progress.previous}"
        elif after not in _STRAIT_EDGES.get(before, frozenset()):
            problem = f"status_change {before} -> {after} is not in FACTS.md's table"
        if problem:
            self._stream_broke(
                progress, "strait.stream.status-changes", f"{exchange.brief()}: {problem}", exchange
            )
        progress.previous = after
        progress.changes += 1

    def _ends_after_terminal(self, exchange: Exchange, terminal_at: float) -> None:
        """The upstream closes the response once it sent the terminal event: judged when it
        did (within ENDS_WITHIN_S), or when the client waited longer than that for it."""
        if terminal_at <= 0 or exchange.finished_at <= 0:
            return
        open_for = exchange.finished_at - terminal_at
        if open_for > ENDS_WITHIN_S and (exchange.complete or exchange.client_closed):
            self.ledger.broke(
                "auvy.stream.ends-after-terminal",
                f"{exchange.brief()}: the response stayed open {open_for:.1f} s after the "
                f"terminal event (allowed: {ENDS_WITHIN_S:g} s)",
                exchange,
            )
        elif exchange.complete:
            self.ledger.held("auvy.stream.ends-after-terminal")

    def _stream_agreement(
        self, state: JobState, exchange: Exchange, ids: list[int], after: int | None
    ) -> None:
        """Two reads of one stream send the same entries wherever both fully cover it."""
        requirement = (
            "auvy.stream.resume-after-disconnect"
            if after is not None
            else "auvy.stream.replay-without-after"
        )
        low = after + 1 if after is not None else ids[0]
        high = ids[-1]
        got = set(ids)
        lost = sorted(x for x in state.seen if low <= x <= high and x not in got)
        if lost:
            self.ledger.broke(
                requirement,
                f"{exchange.brief()}: the read lost {len(lost)} entry(ies) an earlier read of "
                f"the job sent: {', '.join(unpack(x) for x in lost[:5])}",
                exchange,
            )
        # The reverse: an entry no earlier read sent although one covered its id.
        missed = sorted(x for x in got if x not in state.seen and state.is_covered(x))
        if missed:
            self.ledger.broke(
                "auvy.stream.resume-after-disconnect",
                f"{exchange.brief()}: sent {', '.join(unpack(x) for x in missed[:5])}, which an "
                "earlier read of the job covered but did not send",
                exchange,
            )
        if not lost and not missed and (state.seen or state.covered):
            self.ledger.held(requirement)
        state.add_coverage(low, high, ids)

    # -- AVA ------------------------------------------------------------------------------------

    def ava(self, route: Route, exchange: Exchange, snapshot: Snapshot) -> None:
        status = exchange.status
        assert status is not None
        op = route.operation_id
        body = _json_or_none(exchange)
        data = body.get("data") if isinstance(body, dict) else None
        if op == "triggerJob" and 200 <= status < 300 and isinstance(data, dict):
            if isinstance(data.get("id"), str):
                state = self.jobs.get("ava", data["id"])
                state.owner = state.owner or snapshot.tenant
                self._observe_status("ava", state, data.get("status"), exchange, None)
            return
        if op == "listJobs" and status == 200:
            self._list_scope(
                "ava.access.tenant-isolation", "ava", data, "id", exchange, snapshot.tenant
            )
            return
        job_id = _job_param(route)
        if job_id is None or op not in _AVA_JOB_ROUTES:
            return
        if self._isolation("ava.access.tenant-isolation", "ava", job_id, exchange, snapshot):
            return
        state = self.jobs.get("ava", job_id)
        if 200 <= status < 300 and snapshot.tenant and state.owner is None:
            state.owner = snapshot.tenant
        if op == "getJob" and status == 200 and isinstance(data, dict):
            self._observe_status("ava", state, data.get("status"), exchange, snapshot)
        elif op == "cancelJob":
            self._cancel_terminal(
                "ava.jobs.cancel.terminal-409", {409}, exchange, snapshot, AVA_TERMINAL
            )

    # -- Strait ---------------------------------------------------------------------------------

    def strait(self, route: Route, exchange: Exchange, snapshot: Snapshot) -> None:
        status = exchange.status
        assert status is not None
        op = route.operation_id
        body = _json_or_none(exchange)
        if op in ("triggerJob", "replayRun") and 200 <= status < 300:
            run = _strait_run(body)
            if run is not None:
                if op == "triggerJob":
                    self.tenants.learn_strait_project(
                        exchange.request_headers, run.get("project_id")
                    )
                tenant = snapshot.tenant or self.tenants.of("strait", exchange.request_headers)
                state = self.jobs.get("strait", run["id"])
                state.owner = state.owner or tenant
                self._observe_status("strait", state, run.get("status"), exchange, None)
            return
        if op in ("listRuns", "listDeadLetterRuns") and status == 200:
            items = body.get("data") if isinstance(body, dict) else body
            self._list_scope(
                "strait.access.project-scoped-lists",
                "strait",
                items,
                "id",
                exchange,
                snapshot.tenant,
            )
            return
        run_id = _job_param(route)
        if run_id is None:
            return
        if self._isolation("strait.access.other-project-404", "strait", run_id, exchange, snapshot):
            return
        state = self.jobs.get("strait", run_id)
        if 200 <= status < 300 and snapshot.tenant and state.owner is None:
            state.owner = snapshot.tenant
        if op in _STRAIT_RUN_RECORDS and 200 <= status < 300:
            run = _strait_run(body)
            if run is not None and run.get("id") == run_id:
                self._observe_status("strait", state, run.get("status"), exchange, snapshot)
        if op == "cancelRun":
            self._cancel_terminal(
                "strait.cancel.terminal-400", {400}, exchange, snapshot, STRAIT_TERMINAL
            )
        elif op == "streamRun" and status == 200 and exchange.events is not None:
            self._strait_stream(state, exchange)

    def _strait_stream(self, state: JobState, exchange: Exchange) -> None:
        progress = exchange.progress
        if not isinstance(progress, StreamProgress) or not progress.changes:
            return
        if "strait.stream.status-changes" in progress.broken:
            return
        self.ledger.held("strait.stream.status-changes")
        assert progress.previous is not None
        state.status = progress.previous
        if progress.previous in STRAIT_TERMINAL - {"dead_letter"}:
            state.final = progress.previous

    # -- shared rules ---------------------------------------------------------------------------

    def _observe_status(
        self,
        api: str,
        state: JobState,
        status: object,
        exchange: Exchange,
        snapshot: Snapshot | None,
    ) -> None:
        """A status observed in a response: judged against what was observed before the
        request was sent (`snapshot`; None for a job the response itself creates)."""
        if not isinstance(status, str):
            return
        before = snapshot.status if snapshot is not None else None
        seen_by = snapshot.seen_by if snapshot is not None else ""
        if api == "auvy":
            final = snapshot.final if snapshot is not None else None
            if final is not None:
                requirement = _FINAL_REQUIREMENT[final]
                if status != final:
                    self._suspected(
                        api,
                        state.job_id,
                        exchange,
                        self.ledger.broke(
                            requirement,
                            f"{exchange.brief()}: job {state.job_id} reported {status} after it "
                            f"was observed {final} ({seen_by})",
                            exchange,
                        ),
                    )
                else:
                    self.ledger.held(requirement)
            if status in AUVY_TERMINAL and state.final is None:
                state.final = status
        elif api == "ava":
            final = snapshot.final if snapshot is not None else None
            if final is not None:
                if status != final:
                    self._suspected(
                        api,
                        state.job_id,
                        exchange,
                        self.ledger.broke(
                            "ava.jobs.get.terminal",
                            f"{exchange.brief()}: job {state.job_id} reported {status} after it "
                            f"was observed {final} ({seen_by})",
                            exchange,
                        ),
                    )
                else:
                    self.ledger.held("ava.jobs.get.terminal")
            if status in AVA_TERMINAL and state.final is None:
                state.final = status
        elif api == "strait":
            if before is not None and before != status:
                if strait_reachable(before, status):
                    self.ledger.held("strait.lifecycle.statuses")
                else:
                    self._suspected(
                        api,
                        state.job_id,
                        exchange,
                        self.ledger.broke(
                            "strait.lifecycle.statuses",
                            f"{exchange.brief()}: run {state.job_id} went {before} -> {status}, "
                            f"which FACTS.md's table does not allow ({seen_by})",
                            exchange,
                        ),
                    )
            state.final = status if status in STRAIT_TERMINAL - {"dead_letter"} else None
        state.status = status
        self._seen_by[(api, state.job_id)] = exchange.brief()
        if len(self._seen_by) > 2 * self.jobs.cap:
            for key in list(self._seen_by)[: self.jobs.cap]:
                del self._seen_by[key]

    def _suspected(self, api: str, job_id: str, exchange: Exchange, violation: Violation) -> None:
        if self.suspect is not None:
            self.suspect(api, job_id, exchange, violation)

    def _cancel_terminal(
        self,
        requirement: str,
        refusals: set[int],
        exchange: Exchange,
        snapshot: Snapshot,
        terminal: frozenset[str],
    ) -> None:
        """A cancel of a job observed final before the request: refused with `refusals`."""
        final = snapshot.final if snapshot.final is not None else None
        if final is None and snapshot.status in terminal:
            final = snapshot.status
        if final is None or exchange.status is None:
            return
        if exchange.status in refusals:
            self.ledger.held(requirement)
        elif 200 <= exchange.status < 300:
            self.ledger.broke(
                requirement,
                f"{exchange.brief()}: cancel of a job observed {final} ({snapshot.seen_by}) "
                f"answered {exchange.status}",
                exchange,
            )

    def _isolation(
        self, requirement: str, api: str, job_id: str, exchange: Exchange, snapshot: Snapshot
    ) -> bool:
        """True when the caller is of another tenant than the job's (judged here; the job's
        state is then left alone)."""
        if snapshot.owner is None or snapshot.tenant is None or snapshot.owner == snapshot.tenant:
            return False
        status = exchange.status or 0
        if 200 <= status < 300:
            self.ledger.broke(
                requirement,
                f"{exchange.brief()}: {api} job {job_id} of {snapshot.owner} was served to a "
                f"caller of {snapshot.tenant}",
                exchange,
            )
        elif status in (403, 404):
            self.ledger.held(requirement)
        return True

    def _list_scope(
        self,
        requirement: str,
        api: str,
        items: object,
        id_field: str,
        exchange: Exchange,
        tenant: str | None,
    ) -> None:
        if tenant is None or not isinstance(items, list):
            return
        foreign = []
        for item in items:
            ident = item.get(id_field) if isinstance(item, dict) else None
            state = self.jobs.peek(api, ident) if isinstance(ident, str) else None
            if state is not None and state.owner is not None and state.owner != tenant:
                foreign.append(f"{ident} of {state.owner}")
        if foreign:
            self.ledger.broke(
                requirement,
                f"{exchange.brief()}: the list of a caller of {tenant} shows "
                + ", ".join(foreign[:5]),
                exchange,
            )
        else:
            self.ledger.held(requirement)


def _job_param(route: Route) -> str | None:
    for name in ("jobId", "id", "runID"):
        if name in route.params:
            return route.params[name]
    return None


def _json_or_none(exchange: Exchange) -> Any:
    if exchange.events is not None or not exchange.response_body:
        return None
    try:
        return exchange.json_body()
    except (ValueError, UnicodeDecodeError):
        return None


def _truncated(exchange: Exchange) -> bool:
    return exchange.response_headers.get("x-stream-truncated", "").strip().lower() == "true"


def _strait_run(body: object) -> dict[str, Any] | None:
    if isinstance(body, dict) and isinstance(body.get("data"), dict):
        body = body["data"]
    if isinstance(body, dict) and isinstance(body.get("id"), str):
        return body
    return None
