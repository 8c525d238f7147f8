"""The suite catches violations: the reference server is started with one deliberate fault, the
suite is run against it for the requirement the fault breaks, and the run must fail that
requirement by name (a MUST failure also fails the exit status; a SHOULD one is reported only)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from conformance.requirements import load_catalog
from conformance.server import ReferenceServer
from mock_server.faults import FAULTS
from tests.conformance.suite_run import pytest_run

REPO = Path(__file__).resolve().parents[2]
CI_PROFILE = REPO / "fixtures" / "server" / "ci.toml"


def run_suite(
    target: str, requirements: list[str], report_dir: Path
) -> subprocess.CompletedProcess[str]:
    wanted = [arg for requirement in requirements for arg in ("--req", requirement)]
    return pytest_run(
        "conformance",
        "-q",
        "--target",
        target,
        # The target is the reference server itself: its own choices are binding here too.
        "--decisions",
        "enforce",
        f"--report-dir={report_dir}",
        "--junitxml",
        str(report_dir / "junit.xml"),
        *wanted,
    )


@pytest.mark.parametrize("fault", sorted(FAULTS))
def test_suite_fails_the_requirement_a_fault_breaks(fault: str, tmp_path: Path) -> None:
    breaks = FAULTS[fault].breaks
    level = load_catalog().get(breaks).level
    with ReferenceServer(CI_PROFILE, extra_args=("--fault", fault)) as server:
        result = run_suite(server.url, [breaks], tmp_path)
    report = json.loads((tmp_path / "conformance.json").read_text())
    statuses = {r["id"]: r["status"] for r in report["requirements"]}
    assert statuses[breaks] == "fail", f"{fault} went unnoticed:\n{result.stdout[-3000:]}"
    failures = next(r for r in report["requirements"] if r["id"] == breaks)["failures"]
    assert failures and failures[0]["message"], "the failure carries no detail"
    if level == "MUST":
        assert result.returncode == 1, result.stdout[-3000:]
        assert breaks in result.stdout, "the terminal summary does not name the requirement"
        assert report["verdict"] == "not conformant"
    else:
        assert result.returncode == 0, f"a {level} failure must not fail the run"


def test_the_same_checks_pass_without_faults(tmp_path: Path) -> None:
    """The control: every requirement a fault breaks passes against the faultless server."""
    wanted = sorted({f.breaks for f in FAULTS.values()})
    with ReferenceServer(CI_PROFILE) as server:
        result = run_suite(server.url, wanted, tmp_path)
    assert result.returncode == 0, result.stdout[-3000:]
    report = json.loads((tmp_path / "conformance.json").read_text())
    statuses = {r["id"]: r["status"] for r in report["requirements"]}
    assert {statuses[w] for w in wanted} == {"pass"}, statuses
