"""Paths to operations: the documents' templates below each API's base path."""

from __future__ import annotations

from monitor.routes import Router


def test_paths_map_to_the_documents_operations() -> None:
    router = Router({"auvy": "/auvy", "ava": "/ava", "strait": ""})
    route = router.match("GET", "/auvy/v1/jobs/abc/stream")
    assert route is not None
    assert (route.api, route.operation_id, dict(route.params)) == (
        "auvy",
        "streamJob",
        {"jobId": "abc"},
    )
    dlq = router.match("GET", "/v1/runs/dlq")
    assert dlq is not None and dlq.operation_id == "listDeadLetterRuns"  # not getRun
    run = router.match("DELETE", "/v1/runs/run_1")
    assert run is not None and (run.api, run.operation_id) == ("strait", "cancelRun")
    ava = router.match("POST", "/ava/v1/ava/jobs/j1/cancel")
    assert ava is not None and (ava.operation_id, ava.params["id"]) == ("cancelJob", "j1")


def test_what_the_documents_do_not_describe_is_no_route() -> None:
    router = Router({"auvy": "/auvy"})
    assert router.match("GET", "/auvy/v1/nothing") is None
    assert router.match("PATCH", "/auvy/v1/jobs") is None
    assert router.match("GET", "/_mock/health") is None
    assert router.match("GET", "/auvy/v1/jobs/a/b/status") is None
    assert router.match("GET", "/v1/jobs") is None  # AUVY lives under /auvy here
