"""The property suites catch faults: the lifecycle model catches a server that accepts cancel after
completion and shrinks the failure to a short request sequence with curl lines and a replay
command; the battery, the stream-resume property and the AVA model each catch a fault of theirs."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from conformance.server import ReferenceServer

REPO = Path(__file__).resolve().parents[2]
CI_PROFILE = REPO / "fixtures" / "server" / "ci.toml"


def test_lifecycle_model_finds_and_shrinks_cancel_after_completion(tmp_path: Path) -> None:
    with ReferenceServer(CI_PROFILE, extra_args=("--fault", "cancel-terminal-ok")) as server:
        result = subprocess.run(
            [
                sys.executable,
                "-m",
                "pytest",
                "conformance/property/test_lifecycle.py",
                "-p",
                "no:xdist",
                "-q",
                "--target",
                server.url,
                "--req",
                "auvy.properties.lifecycle",
                "--seed",
                "7",
                "--depth",
                "deep",
                f"--report-dir={tmp_path}",
                "--junitxml",
                str(tmp_path / "junit.xml"),
            ],
            cwd=REPO,
            env={**os.environ, "PYTHONPATH": str(REPO)},
            capture_output=True,
            text=True,
            timeout=600,
            check=False,
        )
    out = result.stdout
    assert result.returncode == 1, out[-3000:]
    assert "auvy.properties.lifecycle" in out
    steps = re.findall(r"sequence \((\d+) steps?\)", out)
    assert steps, out[-3000:]
    # start, settle, cancel (perhaps a second cancel): hypothesis must have shrunk the run.
    assert int(steps[-1]) <= 4, out[-3000:]
    assert "$ curl -X POST" in out and "/cancel" in out
    assert "--seed 7" in out, "the failure must say how to replay it"


# Each fault breaks a promise a property suite restates for generated input: the property must
# fail by name. (The lifecycle case above also checks how the failure reads.)
PROPERTY_FAULTS = [
    ("untyped-errors", "auvy.properties.bad-input", "test_bad_input.py"),
    ("after-inclusive", "auvy.properties.stream-resume", "test_stream_resume.py"),
    ("ava-cancel-terminal-ok", "ava.properties.lifecycle", "test_lifecycle.py"),
]


@pytest.mark.parametrize(("fault", "requirement", "module"), PROPERTY_FAULTS)
def test_a_property_fails_the_requirement_a_fault_breaks(
    fault: str, requirement: str, module: str, tmp_path: Path
) -> None:
    with ReferenceServer(CI_PROFILE, extra_args=("--fault", fault)) as server:
        result = subprocess.run(
            [
                sys.executable,
                "-m",
                "pytest",
                f"conformance/property/{module}",
                "-p",
                "no:xdist",
                "-q",
                "--target",
                server.url,
                # The target is the reference server itself: its own choices bind it here too.
                "--decisions",
                "enforce",
                "--req",
                requirement,
                "--seed",
                "7",
                f"--report-dir={tmp_path}",
            ],
            cwd=REPO,
            env={**os.environ, "PYTHONPATH": str(REPO)},
            capture_output=True,
            text=True,
            timeout=600,
            check=False,
        )
    report = json.loads((tmp_path / "conformance.json").read_text())
    statuses = {r["id"]: r["status"] for r in report["requirements"]}
    assert statuses[requirement] == "fail", f"{fault} went unnoticed:\n{result.stdout[-3000:]}"
    assert result.returncode == 1, result.stdout[-3000:]
