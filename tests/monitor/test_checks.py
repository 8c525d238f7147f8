"""Each check of the monitor on hand-built exchanges: it fails on a crafted violation and holds
on a good sequence. The callers are the reference profile's: `main` and `other` AUVY keys
(different workspaces), `read_only` (the main workspace), tenants ten_acme and ten_globex, the
main and the other Strait project."""

from __future__ import annotations

import itertools
import json
from typing import Any

import pytest

from conformance.masking import Masker
from conformance.profile import REFERENCE_PROFILE, TargetProfile
from conformance.requirements import load_catalog
from monitor.checks import MONITORED, Checker, strait_reachable
from monitor.exchange import Event, Exchange
from monitor.ledger import Ledger
from monitor.routes import Router
from monitor.state import Jobs
from monitor.tenants import Tenants

PROFILE = TargetProfile.load(REFERENCE_PROFILE).data
KEYS = PROFILE["auvy"]["keys"]
MAIN = {"authorization": f"Bearer {KEYS['main']}"}
READ_ONLY = {"authorization": f"Bearer {KEYS['read_only']}"}
OTHER = {"authorization": f"Bearer {KEYS['other']}"}
AVA_MAIN = {"x-tenant-id": "ten_acme", "x-internal-secret": "s", "x-user-id": "u"}
AVA_OTHER = {"x-tenant-id": "ten_globex", "x-internal-secret": "s", "x-user-id": "u"}
STRAIT_MAIN = {"authorization": f"Bearer {PROFILE['strait']['key']}"}
STRAIT_OTHER = {"authorization": f"Bearer {PROFILE['strait']['other']['key']}"}
JOB = "5f0c1a52-6a4e-4c8e-9d43-6b1f0e7a9a01"


class Traffic:
    """A checker with its ledger, fed exchanges one at a time."""

    def __init__(self) -> None:
        self.ledger = Ledger(Masker.from_profile(PROFILE), "http://upstream")
        self.jobs = Jobs()
        self.checker = Checker(Tenants(PROFILE), self.jobs, self.ledger)
        self.router = Router({"auvy": "/auvy", "ava": "/ava", "strait": "/strait"})
        self._seq = itertools.count(1)

    def send(
        self,
        method: str,
        path: str,
        status: int,
        body: Any = None,
        *,
        headers: dict[str, str] | None = None,
        query: str = "",
        events: list[tuple[str | None, Any]] | None = None,
        event_field: str | None = None,
        open_after_s: float = 0.0,
        client_closed: bool = False,
        response_headers: dict[str, str] | None = None,
    ) -> Exchange:
        """One exchange; an event stream's events arrive at t=100 s, and the response ends
        `open_after_s` later, by the upstream or (`client_closed`) by the client."""
        exchange = Exchange(
            seq=next(self._seq),
            method=method,
            path=path,
            query=query,
            request_headers=dict(headers if headers is not None else MAIN),
        )
        route = self.router.match(method, path)
        assert route is not None, path
        snapshot = self.checker.begin(route, exchange)
        exchange.status = status
        if events is not None:
            exchange.response_headers = {
                "content-type": "text/event-stream",
                "cache-control": "no-cache",
                "x-accel-buffering": "no",
                **(response_headers or {}),
            }
            self.checker.stream_started(route, exchange)
            for ident, data in events:
                text = data if isinstance(data, str) else json.dumps(data)
                event = Event(ident, text, event_field, at=100.0)
                exchange.add_event(event)
                self.checker.stream_event(route, exchange, event)
            exchange.finished_at = 100.0 + open_after_s
        elif body is not None:
            exchange.response_headers = {"content-type": "application/json"}
            exchange.response_body = json.dumps(body).encode()
        exchange.complete = not client_closed
        exchange.client_closed = client_closed
        self.checker.finish(route, exchange, snapshot)
        return exchange

    def held(self, requirement: str) -> bool:
        return self.ledger.observed[requirement] > 0 and not self.ledger.failed[requirement]

    def failed(self, requirement: str) -> bool:
        return self.ledger.failed[requirement] > 0

    def unobserved(self, requirement: str) -> bool:
        return self.ledger.observed[requirement] == 0


def auvy_status(status: str, **extra: Any) -> dict[str, Any]:
    return {
        "job_id": JOB,
        "status": status,
        "progress": 100 if status == "completed" else 10,
        "current_step": None,
        "failedReason": "boom" if status == "failed" else None,
        "result": {"ok": True} if status == "completed" else None,
        "waitingFor": None,
        "created_at": "2026-12-05T08:00:00.000Z",
        "processed_at": "2026-12-05T08:00:00.010Z",
        "finished_at": "2026-12-05T08:00:01.000Z" if status in ("completed", "failed") else None,
        **extra,
    }


STATUS = f"/auvy/v1/jobs/{JOB}/status"
STREAM = f"/auvy/v1/jobs/{JOB}/stream"
CANCEL = f"/auvy/v1/jobs/{JOB}/cancel"


def started(traffic: Traffic, headers: dict[str, str] = MAIN) -> None:
    traffic.send(
        "POST", "/auvy/v1/jobs", 200, {"job_id": JOB, "status": "pending"}, headers=headers
    )


def update(n: int) -> dict[str, Any]:
    return {"type": "state_update", "status": "running", "progress": n}


COMPLETE = {"type": "complete", "result": {"ok": True}}


def stream(*ids: str, end: str | None = "complete") -> list[tuple[str | None, Any]]:
    events: list[tuple[str | None, Any]] = [(i, update(n)) for n, i in enumerate(ids)]
    if end == "complete" and events:
        events[-1] = (events[-1][0], COMPLETE)
    return events


# -- every response ---------------------------------------------------------------------------


def test_a_documented_response_holds_the_schema_and_an_undocumented_one_fails() -> None:
    traffic = Traffic()
    traffic.send("GET", STATUS, 200, auvy_status("running"))
    assert traffic.held("auvy.properties.schema")
    traffic.send("GET", STATUS, 200, {"status": 12})
    assert traffic.failed("auvy.properties.schema")
    other = Traffic()
    other.send("GET", STATUS, 418, {"code": "TEAPOT", "message": "no"})
    assert other.failed("auvy.properties.schema")
    message = other.ledger.violations["auvy.properties.schema"][0].message
    assert "418" in message


def test_an_auvy_error_carries_code_and_message() -> None:
    traffic = Traffic()
    traffic.send("GET", STATUS, 404, {"code": "NOT_FOUND", "message": "job not found"})
    assert traffic.held("auvy.errors.typed-codes")
    traffic.send("GET", STATUS, 404, {"error": "job not found"})
    assert traffic.failed("auvy.errors.typed-codes")


# -- AUVY streams -----------------------------------------------------------------------------


def test_stream_wire_format_needs_an_id_json_with_a_type_and_no_event_line() -> None:
    good = Traffic()
    good.send("GET", STREAM, 200, events=stream("1-0", "2-0"))
    assert good.held("auvy.stream.wire-format")
    cases: list[tuple[list[tuple[str | None, Any]], str | None]] = [
        ([(None, update(1))], None),
        ([("1-0", "not json")], None),
        ([("1-0", {"progress": 3})], None),
        ([("1-0", update(1))], "progress"),
    ]
    for events, field in cases:
        bad = Traffic()
        bad.send("GET", STREAM, 200, events=events, event_field=field)
        assert bad.failed("auvy.stream.wire-format"), (events, field)


def test_stream_ids_strictly_increase() -> None:
    good = Traffic()
    good.send("GET", STREAM, 200, events=stream("1-0", "1-1", "2-0"))
    assert good.held("auvy.stream.ids")
    for ids in (("1-0", "1-0"), ("2-0", "1-5"), ("1-0", "x-1")):
        bad = Traffic()
        bad.send("GET", STREAM, 200, events=stream(*ids))
        assert bad.failed("auvy.stream.ids"), ids


def test_a_long_stream_is_checked_to_its_end_though_few_events_are_kept() -> None:
    ids = [f"{n}-0" for n in range(1, 301)]
    good = Traffic()
    exchange = good.send("GET", STREAM, 200, events=stream(*ids))
    assert good.held("auvy.stream.ids") and good.held("auvy.stream.terminal-event")
    assert exchange.events is not None and len(exchange.events) < len(ids)  # kept for reports
    ids[250] = "1-0"  # far past what is kept
    bad = Traffic()
    bad.send("GET", STREAM, 200, events=stream(*ids))
    assert bad.failed("auvy.stream.ids")
    assert "250-0 then 1-0" in bad.ledger.violations["auvy.stream.ids"][0].message


def test_event_data_must_match_the_documented_event_schema() -> None:
    good = Traffic()
    good.send("GET", STREAM, 200, events=stream("1-0", "2-0"))
    assert good.held("auvy.properties.schema")
    bad = Traffic()
    bad.send("GET", STREAM, 200, events=[("1-0", {"type": "state_update", "progress": "half"})])
    assert bad.failed("auvy.properties.schema")


def test_after_is_exclusive() -> None:
    good = Traffic()
    good.send("GET", STREAM, 200, query="after=5-0", events=stream("5-1", "6-0"))
    assert good.held("auvy.stream.after-exclusive")
    bad = Traffic()
    bad.send("GET", STREAM, 200, query="after=5-0", events=stream("5-0", "6-0"))
    assert bad.failed("auvy.stream.after-exclusive")


def test_exactly_one_terminal_event_ends_the_stream_and_the_same_one_each_time() -> None:
    good = Traffic()
    good.send("GET", STREAM, 200, events=stream("1-0", "2-0", "3-0"))
    good.send("GET", STREAM, 200, query="after=2-0", events=stream("3-0"))
    assert good.held("auvy.stream.terminal-event")
    after_end = Traffic()
    after_end.send("GET", STREAM, 200, events=[("1-0", COMPLETE), ("2-0", update(5))])
    assert after_end.failed("auvy.stream.terminal-event")
    two = Traffic()
    two.send("GET", STREAM, 200, events=[("1-0", COMPLETE), ("2-0", COMPLETE)])
    assert two.failed("auvy.stream.terminal-event")
    moved = Traffic()
    moved.send("GET", STREAM, 200, events=stream("1-0", "2-0"))
    moved.send("GET", STREAM, 200, events=stream("1-0", "2-0", "3-0"))
    assert moved.failed("auvy.stream.terminal-event")


def test_the_stream_ends_soon_after_its_terminal_event() -> None:
    good = Traffic()
    good.send("GET", STREAM, 200, events=stream("1-0", "2-0"), open_after_s=0.01)
    assert good.held("auvy.stream.ends-after-terminal")
    held_open = Traffic()
    held_open.send("GET", STREAM, 200, events=stream("1-0", "2-0"), open_after_s=20)
    assert held_open.failed("auvy.stream.ends-after-terminal")
    waited = Traffic()
    waited.send("GET", STREAM, 200, events=stream("1-0", "2-0"), open_after_s=5, client_closed=True)
    assert waited.failed("auvy.stream.ends-after-terminal")
    impatient = Traffic()
    impatient.send(
        "GET", STREAM, 200, events=stream("1-0", "2-0"), open_after_s=0.01, client_closed=True
    )
    assert impatient.unobserved("auvy.stream.ends-after-terminal")


def test_a_resumed_read_loses_nothing_an_earlier_read_saw() -> None:
    good = Traffic()
    good.send("GET", STREAM, 200, events=stream("1-0", "2-0", "3-0", "4-0"))
    good.send("GET", STREAM, 200, query="after=2-0", events=stream("3-0", "4-0"))
    assert good.held("auvy.stream.resume-after-disconnect")
    bad = Traffic()
    bad.send("GET", STREAM, 200, events=stream("1-0", "2-0", "3-0", "4-0"))
    bad.send("GET", STREAM, 200, query="after=2-0", events=stream("4-0"))
    assert bad.failed("auvy.stream.resume-after-disconnect")


def test_a_later_full_read_shows_what_a_resumed_read_skipped() -> None:
    """The read after a disconnect skipped 3-0, which no read had seen yet: the replay that
    follows shows it, inside the range the resumed read covered."""
    traffic = Traffic()
    traffic.send("GET", STREAM, 200, events=stream("1-0", "2-0", end=None))
    traffic.send("GET", STREAM, 200, query="after=2-0", events=stream("4-0", "5-0"))
    assert not traffic.failed("auvy.stream.resume-after-disconnect")  # nothing to tell yet
    traffic.send("GET", STREAM, 200, events=stream("1-0", "2-0", "3-0", "4-0", "5-0"))
    assert traffic.failed("auvy.stream.resume-after-disconnect")


def test_a_truncated_read_opens_with_its_gap_marker_and_may_lack_trimmed_entries() -> None:
    marker = {"type": "truncated", "requested_after": "1-0", "first_retained": "4-0"}
    traffic = Traffic()
    traffic.send("GET", STREAM, 200, events=stream("1-0", "2-0", "3-0", "4-0", "5-0"))
    traffic.send(
        "GET",
        STREAM,
        200,
        query="after=1-0",
        events=[(None, marker), *stream("4-0", "5-0")],
        response_headers={"x-stream-truncated": "true"},
    )
    for requirement in (
        "auvy.stream.wire-format",
        "auvy.stream.resume-after-disconnect",
        "auvy.properties.schema",
    ):
        assert not traffic.failed(requirement), traffic.ledger.violations[requirement][0].message
    # Without the header the same marker is an event without an id.
    bare = Traffic()
    bare.send("GET", STREAM, 200, query="after=1-0", events=[(None, marker), *stream("4-0")])
    assert bare.failed("auvy.stream.wire-format")


def test_a_replay_without_after_gives_what_was_seen() -> None:
    good = Traffic()
    good.send("GET", STREAM, 200, events=stream("1-0", "2-0", "3-0"))
    good.send("GET", STREAM, 200, events=stream("1-0", "2-0", "3-0"))
    assert good.held("auvy.stream.replay-without-after")
    bad = Traffic()
    bad.send("GET", STREAM, 200, events=stream("1-0", "2-0", "3-0"))
    bad.send("GET", STREAM, 200, events=stream("1-0", "3-0"))
    assert bad.failed("auvy.stream.replay-without-after")


# -- AUVY statuses, cancel, isolation -----------------------------------------------------------


@pytest.mark.parametrize("final", ["completed", "failed"])
def test_a_final_auvy_status_stays(final: str) -> None:
    requirement = f"auvy.jobs.status.{final}-final"
    good = Traffic()
    good.send("GET", STATUS, 200, auvy_status(final))
    good.send("GET", STATUS, 200, auvy_status(final))
    assert good.held(requirement)
    bad = Traffic()
    bad.send("GET", STATUS, 200, auvy_status(final))
    bad.send("GET", STATUS, 200, auvy_status("running"))
    assert bad.failed(requirement)
    assert "observed " + final in bad.ledger.violations[requirement][0].message


def test_a_stream_that_completed_makes_the_job_final() -> None:
    traffic = Traffic()
    traffic.send("GET", STREAM, 200, events=stream("1-0", "2-0"))
    traffic.send("GET", STATUS, 200, auvy_status("failed"))
    assert traffic.failed("auvy.jobs.status.completed-final")


def test_cancel_of_a_job_observed_final_is_refused() -> None:
    good = Traffic()
    good.send("GET", STATUS, 200, auvy_status("completed"))
    good.send("POST", CANCEL, 400, {"code": "VALIDATION_ERROR", "message": "it is completed"})
    assert good.held("auvy.jobs.cancel.terminal-400")
    bad = Traffic()
    bad.send("GET", STATUS, 200, auvy_status("failed"))
    bad.send("POST", CANCEL, 200, {"job_id": JOB, "status": "failed"})
    assert bad.failed("auvy.jobs.cancel.terminal-400")
    live = Traffic()
    live.send("GET", STATUS, 200, auvy_status("running"))
    live.send("POST", CANCEL, 200, {"job_id": JOB, "status": "failed"})
    assert live.unobserved("auvy.jobs.cancel.terminal-400")


def test_another_workspaces_job_is_never_served() -> None:
    good = Traffic()
    started(good)
    good.send("GET", STATUS, 404, {"code": "NOT_FOUND", "message": "job not found"}, headers=OTHER)
    good.send("GET", STATUS, 200, auvy_status("running"), headers=READ_ONLY)
    assert good.held("auvy.errors.other-workspace-404")
    bad = Traffic()
    started(bad)
    bad.send("GET", STREAM, 200, events=stream("1-0"), headers=OTHER)
    assert bad.failed("auvy.errors.other-workspace-404")
    unknown = Traffic()
    started(unknown)
    unknown.send(
        "GET", STATUS, 200, auvy_status("running"), headers={"authorization": "Bearer unknown_key"}
    )
    assert unknown.unobserved("auvy.errors.other-workspace-404")


def test_a_list_shows_only_the_callers_workspace() -> None:
    listing = {"jobs": [auvy_status("running")], "total": 1, "limit": 20, "offset": 0}
    good = Traffic()
    started(good)
    good.send("GET", "/auvy/v1/jobs", 200, listing, headers=READ_ONLY)
    assert good.held("auvy.jobs.list.workspace-scoped")
    bad = Traffic()
    started(bad)
    bad.send("GET", "/auvy/v1/jobs", 200, listing, headers=OTHER)
    assert bad.failed("auvy.jobs.list.workspace-scoped")


# -- AVA --------------------------------------------------------------------------------------

AVA_JOB = "job_01hxyz"


def ava_record(status: str, tenant: str = "ten_acme") -> dict[str, Any]:
    return {"data": {"id": AVA_JOB, "tenant_id": tenant, "worker_id": "wkr", "status": status}}


def test_ava_a_final_status_stays_and_its_cancel_is_a_conflict() -> None:
    path = f"/ava/v1/ava/jobs/{AVA_JOB}"
    good = Traffic()
    good.send("GET", path, 200, ava_record("completed"), headers=AVA_MAIN)
    good.send("GET", path, 200, ava_record("completed"), headers=AVA_MAIN)
    conflict = {"error": {"code": "resource_conflict", "message": "m", "request_id": "r"}}
    good.send("POST", f"{path}/cancel", 409, conflict, headers=AVA_MAIN)
    assert good.held("ava.jobs.get.terminal")
    assert good.held("ava.jobs.cancel.terminal-409")
    bad = Traffic()
    bad.send("GET", path, 200, ava_record("failed"), headers=AVA_MAIN)
    bad.send("POST", f"{path}/cancel", 200, ava_record("cancelled"), headers=AVA_MAIN)
    bad.send("GET", path, 200, ava_record("running"), headers=AVA_MAIN)
    assert bad.failed("ava.jobs.cancel.terminal-409")
    assert bad.failed("ava.jobs.get.terminal")


def test_ava_another_tenants_job_is_never_served() -> None:
    path = f"/ava/v1/ava/jobs/{AVA_JOB}"
    good = Traffic()
    good.send("POST", "/ava/v1/ava/jobs", 201, ava_record("queued"), headers=AVA_MAIN)
    not_found = {"error": {"code": "resource_not_found", "message": "m", "request_id": "r"}}
    good.send("GET", path, 404, not_found, headers=AVA_OTHER)
    assert good.held("ava.access.tenant-isolation")
    bad = Traffic()
    bad.send("POST", "/ava/v1/ava/jobs", 201, ava_record("queued"), headers=AVA_MAIN)
    bad.send("GET", f"{path}/logs", 200, {"data": []}, headers=AVA_OTHER)
    assert bad.failed("ava.access.tenant-isolation")
    listed = Traffic()
    listed.send("POST", "/ava/v1/ava/jobs", 201, ava_record("queued"), headers=AVA_MAIN)
    listed.send(
        "GET",
        "/ava/v1/ava/jobs",
        200,
        {"data": [ava_record("queued")["data"]]},
        headers=AVA_OTHER,
    )
    assert listed.failed("ava.access.tenant-isolation")


# -- Strait -----------------------------------------------------------------------------------

RUN = "run_01"
RUN_PATH = f"/strait/v1/runs/{RUN}"


def run(status: str, project: str = "proj_acme") -> dict[str, Any]:
    return {"id": RUN, "job_id": "job_x", "project_id": project, "status": status}


def test_strait_reachability_follows_the_suites_table() -> None:
    assert strait_reachable("queued", "completed")  # executing unseen in between
    assert strait_reachable("dead_letter", "executing")  # replayed in place
    assert strait_reachable("executing", "paused")
    assert not strait_reachable("completed", "queued")
    assert not strait_reachable("canceled", "executing")
    assert not strait_reachable("executing", "delayed")


def test_strait_statuses_move_only_along_the_table() -> None:
    good = Traffic()
    good.send("POST", "/strait/v1/jobs/job_x/trigger", 201, run("queued"), headers=STRAIT_MAIN)
    good.send("GET", RUN_PATH, 200, run("completed"), headers=STRAIT_MAIN)
    assert good.held("strait.lifecycle.statuses")
    bad = Traffic()
    bad.send("GET", RUN_PATH, 200, run("completed"), headers=STRAIT_MAIN)
    bad.send("GET", RUN_PATH, 200, run("executing"), headers=STRAIT_MAIN)
    assert bad.failed("strait.lifecycle.statuses")


def test_strait_status_change_frames_chain_along_the_table() -> None:
    def change(before: str, after: str) -> dict[str, Any]:
        return {"type": "status_change", "run_id": RUN, "from": before, "to": after}

    good = Traffic()
    frames = [change("queued", "executing"), change("executing", "completed")]
    good.send(
        "GET", f"{RUN_PATH}/stream", 200, events=[(None, f) for f in frames], headers=STRAIT_MAIN
    )
    assert good.held("strait.stream.status-changes")
    for frames in (
        [change("queued", "executing"), change("queued", "completed")],
        [change("queued", "completed")],
    ):
        bad = Traffic()
        bad.send(
            "GET",
            f"{RUN_PATH}/stream",
            200,
            events=[(None, f) for f in frames],
            headers=STRAIT_MAIN,
        )
        assert bad.failed("strait.stream.status-changes"), frames


def test_strait_cancel_of_a_finished_run_is_refused() -> None:
    bad_request = {"error": {"code": "bad_request", "message": "run already in terminal state"}}
    good = Traffic()
    good.send("GET", RUN_PATH, 200, run("completed"), headers=STRAIT_MAIN)
    good.send("DELETE", RUN_PATH, 400, bad_request, headers=STRAIT_MAIN)
    assert good.held("strait.cancel.terminal-400")
    bad = Traffic()
    bad.send("GET", RUN_PATH, 200, run("crashed"), headers=STRAIT_MAIN)
    bad.send("DELETE", RUN_PATH, 200, run("canceled"), headers=STRAIT_MAIN)
    assert bad.failed("strait.cancel.terminal-400")


def test_strait_another_projects_run_is_never_served() -> None:
    good = Traffic()
    good.send("POST", "/strait/v1/jobs/job_x/trigger", 201, run("queued"), headers=STRAIT_MAIN)
    not_found = {"error": {"code": "not_found", "message": "run not found"}}
    good.send("GET", RUN_PATH, 404, not_found, headers=STRAIT_OTHER)
    good.send("GET", "/strait/v1/runs", 200, [], headers=STRAIT_OTHER)
    assert good.held("strait.access.other-project-404")
    assert good.held("strait.access.project-scoped-lists")
    bad = Traffic()
    bad.send("POST", "/strait/v1/jobs/job_x/trigger", 201, run("queued"), headers=STRAIT_MAIN)
    bad.send("GET", RUN_PATH, 200, run("queued"), headers=STRAIT_OTHER)
    bad.send("GET", "/strait/v1/runs", 200, [run("queued")], headers=STRAIT_OTHER)
    assert bad.failed("strait.access.other-project-404")
    assert bad.failed("strait.access.project-scoped-lists")


def test_violations_keep_the_exchange_with_credentials_masked() -> None:
    traffic = Traffic()
    traffic.send("GET", STATUS, 200, auvy_status("completed"))
    traffic.send("POST", CANCEL, 200, {"job_id": JOB})
    violation = traffic.ledger.violations["auvy.jobs.cancel.terminal-400"][0]
    (exchange,) = violation.exchanges
    assert exchange.url.endswith(CANCEL)
    assert KEYS["main"] not in json.dumps(exchange.to_dict())
    assert exchange.request_headers["authorization"].startswith("Bearer auvy_")
    assert exchange.request_headers["authorization"].endswith("…")


def test_every_monitored_requirement_is_catalogued_and_none_is_a_decision() -> None:
    catalog = load_catalog()
    for api, requirements in MONITORED.items():
        for requirement in requirements:
            found = catalog.get(requirement)  # raises for an unknown id
            assert found.api == api
            assert not found.is_decision, f"{requirement} would fail a foreign upstream"
