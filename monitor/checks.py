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

import itertools
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

from conformance.checks import ConformanceFailure
from conformance.clients.auvy import TERMINAL as AUVY_TERMINAL
from conformance.clients.auvy import TERMINAL_EVENTS as AUVY_TERMINAL_EVENTS
from conformance.clients.ava import TERMINAL as AVA_TERMINAL
from conformance.clients.strait import PAUSED_TRANSITIONS, TRANSITIONS
from conformance.clients.strait import TERMINAL as STRAIT_TERMINAL
from conformance.spec_check import ResponseSpec

from .exchange import Exchange
from .ledger import Ledger
from .routes import Route
from .state import Jobs, JobState, pack, unpack
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
        # Documents only, whatever --decisions says: a reference-only constraint broken here
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
            if is_stream and status == 200 and exchange.events:
                for event in exchange.events:
                    try:
                        data = event.json()
                    except ValueError:
                        continue  # the stream checks judge the wire format
                    spec.check_event(route.operation_id, data)
        except KeyError:
            pass  # the operation declares no event schema
        except ConformanceFailure as failure:
            self.ledger.broke(requirement, f"{exchange.brief()}: {failure}", exchange)
            return
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
        events = exchange.events or []
        brief = exchange.brief()
        # Wire format: every event an id and JSON data with a type, no event: field.
        bad = next(
            (e for e in events if e.id is None or e.event is not None or not _typed(e.data)), None
        )
        if bad is not None:
            why = (
                "has no id: line"
                if bad.id is None
                else "has an event: line"
                if bad.event is not None
                else "has no JSON data with a type"
            )
            self.ledger.broke(
                "auvy.stream.wire-format", f"{brief}: an event {why}: {bad.data[:200]!r}", exchange
            )
        elif events:
            self.ledger.held("auvy.stream.wire-format")
        ids = [e.id for e in events if e.id is not None]
        packed = [pack(i) for i in ids]
        if not ids or exchange.events_dropped:
            valid: list[int] = []
        elif any(p is None for p in packed):
            wrong = next(i for i, p in zip(ids, packed, strict=True) if p is None)
            self.ledger.broke(
                "auvy.stream.ids", f"{brief}: event id {wrong!r} is not <ms>-<seq>", exchange
            )
            return
        else:
            valid = [p for p in packed if p is not None]
            regress = next(((a, b) for a, b in itertools.pairwise(valid) if not a < b), None)
            if regress is not None:
                self.ledger.broke(
                    "auvy.stream.ids",
                    f"{brief}: event ids do not strictly increase: "
                    f"{unpack(regress[0])} then {unpack(regress[1])}",
                    exchange,
                )
                return
            self.ledger.held("auvy.stream.ids")
        after_text = exchange.params.get("after")
        after = pack(after_text) if after_text else None
        if after is not None and valid:
            if valid[0] <= after:
                self.ledger.broke(
                    "auvy.stream.after-exclusive",
                    f"{brief}: after={after_text} but the stream sent {unpack(valid[0])}",
                    exchange,
                )
            else:
                self.ledger.held("auvy.stream.after-exclusive")
        # Exactly one terminal event, the last one, and the same one on every read.
        kinds = [_type(e.data) for e in events]
        ends = [i for i, kind in enumerate(kinds) if kind in AUVY_TERMINAL_EVENTS]
        if len(ends) > 1 or (ends and ends[0] != len(events) - 1):
            self.ledger.broke(
                "auvy.stream.terminal-event",
                f"{brief}: {len(ends)} terminal event(s), the first followed by "
                f"{len(events) - 1 - ends[0]} more event(s)",
                exchange,
            )
        elif ends:
            end = events[ends[0]]
            self._ends_after_terminal(exchange, end.at)
            end_id = pack(end.id) if end.id else None
            kind = kinds[ends[0]] or ""
            if end_id is not None and state.terminal_event not in (None, (end_id, kind)):
                first_id, first_kind = state.terminal_event or (0, "")
                self.ledger.broke(
                    "auvy.stream.terminal-event",
                    f"{brief}: ends with {kind} {unpack(end_id)}, an earlier read ended with "
                    f"{first_kind} {unpack(first_id)}",
                    exchange,
                )
            else:
                self.ledger.held("auvy.stream.terminal-event")
                if end_id is not None:
                    state.terminal_event = (end_id, kind)
                final = "completed" if kind == "complete" else "failed"
                self._observe_status("auvy", state, final, exchange, snapshot)
        if valid and not state.overflow:
            self._stream_agreement(state, exchange, valid, after)

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
        requirement = "strait.stream.status-changes"
        previous: str | None = None
        checked = False
        for event in exchange.events or []:
            try:
                frame = event.json()
            except ValueError:
                continue
            if not isinstance(frame, dict) or frame.get("type") != "status_change":
                continue
            before, after = frame.get("from"), frame.get("to")
            if not isinstance(before, str) or not isinstance(after, str):
                continue
            problem = ""
            if previous is not None and before != previous:
                problem = f"status_change from {before} follows a change to {previous}"
            elif after not in _STRAIT_EDGES.get(before, frozenset()):
                problem = f"status_change {before} -> {after} is not in FACTS.md's table"
            if problem:
                self.ledger.broke(requirement, f"{exchange.brief()}: {problem}", exchange)
                return
            previous, checked = after, True
        if checked:
            self.ledger.held(requirement)
            assert previous is not None
            state.status = previous
            if previous in STRAIT_TERMINAL - {"dead_letter"}:
                state.final = previous

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
                    self.ledger.broke(
                        requirement,
                        f"{exchange.brief()}: job {state.job_id} reported {status} after it was "
                        f"observed {final} ({seen_by})",
                        exchange,
                    )
                else:
                    self.ledger.held(requirement)
            if status in AUVY_TERMINAL and state.final is None:
                state.final = status
        elif api == "ava":
            final = snapshot.final if snapshot is not None else None
            if final is not None:
                if status != final:
                    self.ledger.broke(
                        "ava.jobs.get.terminal",
                        f"{exchange.brief()}: job {state.job_id} reported {status} after it was "
                        f"observed {final} ({seen_by})",
                        exchange,
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
                    self.ledger.broke(
                        "strait.lifecycle.statuses",
                        f"{exchange.brief()}: run {state.job_id} went {before} -> {status}, "
                        f"which FACTS.md's table does not allow ({seen_by})",
                        exchange,
                    )
            state.final = status if status in STRAIT_TERMINAL - {"dead_letter"} else None
        state.status = status
        self._seen_by[(api, state.job_id)] = exchange.brief()
        if len(self._seen_by) > 2 * self.jobs.cap:
            for key in list(self._seen_by)[: self.jobs.cap]:
                del self._seen_by[key]

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


def _type(data: str) -> str | None:
    try:
        value = json.loads(data)
    except ValueError:
        return None
    kind = value.get("type") if isinstance(value, dict) else None
    return kind if isinstance(kind, str) else None


def _typed(data: str) -> bool:
    return _type(data) is not None


def _strait_run(body: object) -> dict[str, Any] | None:
    if isinstance(body, dict) and isinstance(body.get("data"), dict):
        body = body["data"]
    if isinstance(body, dict) and isinstance(body.get("id"), str):
        return body
    return None
