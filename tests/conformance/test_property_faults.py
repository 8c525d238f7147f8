"""The lifecycle model catches a server that accepts cancel after completion, and shrinks the
failure to a short request sequence with curl lines and a replay command."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

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
