"""The monitor in front of the reference server, with a slice of the conformance suite as its
traffic: against the faultless server it reports no violation and every requirement the slice
exercised as observed; against the server with a deliberate fault whose effect shows on the wire
it fails that fault's requirement, and its exit status says a MUST failed."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from conformance.masking import Masker
from conformance.profile import REFERENCE_PROFILE, TargetProfile
from conformance.requirements import load_catalog
from conformance.server import ReferenceServer
from mock_server.faults import FAULTS
from monitor.checks import MONITORED
from tests.conformance.suite_run import pytest_run
from tests.monitor.running import MonitorProcess

REPO = Path(__file__).resolve().parents[2]
CI_PROFILE = REPO / "fixtures" / "server" / "ci.toml"

# What the faultless run drives through the monitor (about 8 s against the reference server).
SLICE = (
    "auvy.stream",
    "auvy.jobs.cancel.terminal-400",
    "auvy.errors.other-workspace-404",
    "auvy.errors.typed-codes",
    "ava.jobs.cancel.terminal-409",
    "strait.cancel.terminal-400",
    "strait.access.other-project-404",
)

# Faults whose effect is on the wire where the monitor looks, grouped so that one server start
# serves several (faults of one group break different requirements and do not mask each other:
# after-inclusive and resume-drops-first would cancel out, stream-without-ids hides every id,
# workspace-blind rewrites every Authorization header), each with the suite's test that makes
# the traffic showing it.
FAULT_GROUPS = (
    ("after-inclusive", "cancel-terminal-ok", "strait-cancel-terminal-ok", "untyped-errors"),
    ("resume-drops-first", "ava-cancel-terminal-ok", "workspace-blind"),
    ("stream-without-ids",),
    ("stream-stays-open",),  # alone: it holds every stream of the others open for 20 s
)
FAULT_TRAFFIC = {
    "after-inclusive": "auvy/test_stream.py::test_after_is_exclusive",
    "cancel-terminal-ok": "auvy/test_control.py::test_cancel_of_a_terminal_job_is_400",
    "strait-cancel-terminal-ok": "strait/test_control.py::test_cancel_of_a_terminal_run_is_400",
    "untyped-errors": "auvy/test_errors.py::test_read_only_key_cannot_write",
    "resume-drops-first": (
        "auvy/test_stream.py::test_resume_after_disconnect_loses_and_repeats_nothing[private-3]"
    ),
    "ava-cancel-terminal-ok": "ava/test_cancel.py::test_cancel_of_a_finished_job_is_a_conflict",
    "workspace-blind": "auvy/test_stream.py::test_stream_of_another_workspaces_job_is_404",
    "stream-stays-open": (
        "auvy/test_stream.py::test_server_closes_the_stream_after_the_terminal_event[private]"
    ),
    "stream-without-ids": (
        "auvy/test_stream.py::test_every_event_has_an_id_and_json_data_with_a_type"
    ),
}


def run_suite(
    target: str, report_dir: Path, requirements: tuple[str, ...] = (), tests: tuple[str, ...] = ()
) -> Any:
    wanted = [arg for requirement in requirements for arg in ("--req", requirement)]
    return pytest_run(
        *(tests or ("conformance",)),
        "-q",
        "--target",
        target,
        "--decisions",
        "enforce",
        f"--report-dir={report_dir}",
        *wanted,
        timeout=120,
    )


def statuses(report: Any) -> dict[str, str]:
    return {r["id"]: r["status"] for r in report["requirements"]}


def test_the_suite_through_the_monitor_shows_no_violation(tmp_path: Path) -> None:
    with (
        ReferenceServer(CI_PROFILE) as server,
        MonitorProcess(server.url, tmp_path / "monitor") as monitor,
    ):
        suite = run_suite(monitor.url, tmp_path / "suite", SLICE)
        live = monitor.status()
        exit_status = monitor.stop()
    assert suite.returncode == 0, suite.stdout[-3000:]
    assert live["recent_violations"] == [], live["recent_violations"][:3]
    assert live["check_errors"] == 0, monitor.output()[-3000:]
    report = monitor.report()
    assert exit_status == 0, monitor.output()[-3000:]
    assert report["mode"] == "monitor"
    observed = statuses(report)
    assert "fail" not in observed.values(), {k: v for k, v in observed.items() if v == "fail"}
    # Every monitored requirement the suite exercised (and passed) the monitor saw too.
    suite_passed = {
        rid
        for rid, status in statuses(_json(tmp_path / "suite" / "conformance.json")).items()
        if status == "pass"
    }
    exercised = suite_passed & set(observed)
    assert exercised, "the slice exercised nothing the monitor checks"
    assert {rid: observed[rid] for rid in exercised} == dict.fromkeys(exercised, "pass")
    # The rules across exchanges were exercised too, not only the per-response ones.
    for rid in (
        "auvy.stream.resume-after-disconnect",
        "auvy.jobs.status.completed-final",
        "strait.lifecycle.statuses",
        "ava.jobs.cancel.terminal-409",
    ):
        assert observed[rid] == "pass", (rid, observed[rid])
    for name in ("junit.xml", "conformance.html"):
        assert (tmp_path / "monitor" / name).is_file()


@pytest.mark.parametrize("faults", FAULT_GROUPS, ids=["+".join(g) for g in FAULT_GROUPS])
def test_the_monitor_fails_the_requirement_a_fault_breaks(
    faults: tuple[str, ...], tmp_path: Path
) -> None:
    breaks = tuple(FAULTS[f].breaks for f in faults)
    for requirement in breaks:
        assert any(requirement in ids for ids in MONITORED.values()), requirement
    args = tuple(arg for fault in faults for arg in ("--fault", fault))
    with (
        ReferenceServer(CI_PROFILE, extra_args=args) as server,
        MonitorProcess(server.url, tmp_path / "monitor") as monitor,
    ):
        tests = tuple(f"conformance/{FAULT_TRAFFIC[fault]}" for fault in faults)
        suite = run_suite(monitor.url, tmp_path / "suite", tests=tests)
        exit_status = monitor.stop()
    report = monitor.report()
    observed = statuses(report)
    failed = {r["id"]: r for r in report["requirements"] if r["status"] == "fail"}
    for fault, requirement in zip(faults, breaks, strict=True):
        assert observed[requirement] == "fail", (
            f"{fault} went unnoticed by the monitor: {requirement} is {observed[requirement]}\n"
            f"suite: {suite.stdout[-1500:]}"
        )
        failure = failed[requirement]["failures"][0]
        assert failure["message"] and failure["exchanges"], failure
    # No credential reaches a report, though the violations' exchanges carried them.
    secrets = Masker.from_profile(TargetProfile.load(REFERENCE_PROFILE)).secrets
    for name in ("conformance.json", "conformance.html", "junit.xml"):
        text = (tmp_path / "monitor" / name).read_text(encoding="utf-8")
        leaked = [secret[:8] for secret in secrets if secret in text]
        assert not leaked, f"{name} shows credentials starting {leaked}"
    levels = {load_catalog().get(r).level for r in breaks}
    if "MUST" in levels:
        assert exit_status == 1, monitor.output()[-2000:]
        assert report["verdict"] == "not conformant"
    else:
        assert exit_status == 0, f"a {levels} failure must not fail the run"


def _json(path: Path) -> Any:
    return json.loads(path.read_text(encoding="utf-8"))
